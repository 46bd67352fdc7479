"""The compression run: Run / Pause / Cancel, progress and ETA into the panel and the loss plot, the result
into the session and the cluster table.

:class:`CompressionController` owns the :class:`~app.compress_worker.CompressionWorker` of the run in
progress (``worker``, None when idle) and its slots; the compression itself runs in that thread.
A finished result becomes the session's (``Session.set_compressed``) and is shown through the
:class:`~app.cluster_controller.ClusterController`.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot

from app.cluster_controller import ClusterController
from app.compress_worker import CompressionWorker
from app.documents import CompressedScene
from app.session import Session
from widgets.loss_plot import LossPlot
from widgets.param_panel import ParameterPanel, format_duration
from widgets.units import human_bytes

log = logging.getLogger(__name__)


class CompressionController(QObject):
    """See the module docstring. Signals: ``changed`` (the window refreshes), ``statusMessage(text, ms)``,
    ``errorRaised(title, message)``."""

    changed = Signal()
    statusMessage = Signal(str, int)
    errorRaised = Signal(str, str)

    def __init__(self, session: Session, panel: ParameterPanel, loss: LossPlot, clusters: ClusterController,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.panel, self.loss, self.clusters = session, panel, loss, clusters
        self.worker: CompressionWorker | None = None
        from core.pipeline.config import PRESETS, config_from_preset

        panel.set_presets({name: config_from_preset(name).to_dict() for name in PRESETS}, "preview")
        panel.set_available_devices(self._devices())
        panel.runRequested.connect(self.run)
        panel.pauseToggled.connect(self.pause)
        panel.cancelRequested.connect(self.cancel)

    @staticmethod
    def _devices() -> list[str]:
        import torch

        return ["auto", "cpu", "cuda"] if torch.cuda.is_available() else ["auto", "cpu"]

    # -- the user's requests --------------------------------------------------------------------------
    @Slot(dict)
    def run(self, values: dict | None = None) -> None:
        """Compress the open scene with the panel's settings (no reload: the scene stays in memory)."""
        if self.worker is not None:
            return
        s = self.session
        if s.original is None:
            self.errorRaised.emit("Nothing to compress",
                                  "Open a .ply, .compressed.ply, .splat, .spz or .sog scene first (Ctrl+O).")
            return
        try:
            config = s.compression_config(values or self.panel.values())
        except ValueError as exc:
            self.errorRaised.emit("Invalid settings", str(exc))
            return
        self.worker = CompressionWorker(s.original.scene, config, s.dataset_cameras(), None, self)
        self.worker.progress.connect(self._on_progress)
        self.worker.succeeded.connect(self._on_succeeded)
        self.worker.failed.connect(self._on_failed)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.finished.connect(self._worker_finished)
        self.loss.reset()
        self.loss.set_live(True)
        self.panel.set_running(True)
        self.panel.show_status("Starting…", 0.0)
        self.worker.start()
        log.info("compression started: preset %s, K=%d, prune %.2f, %d+%d iterations, width %d, device %s",
                 config.preset, config.n_clusters, config.prune_ratio, config.fit_iters, config.finetune_iters,
                 config.hidden, config.device)

    @Slot(bool)
    def pause(self, paused: bool) -> None:
        if self.worker is not None:
            self.worker.set_paused(paused)
            self.statusMessage.emit("Compression paused" if paused else "Compression resumed", 3000)

    @Slot()
    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.panel.show_status("Cancelling…")

    def reset_plot(self) -> None:
        """Clear the loss curves (a new scene was opened)."""
        self.loss.reset()

    def shutdown(self, timeout_ms: int) -> None:
        """Cancel a run in progress and wait up to ``timeout_ms`` for its thread to end (the window closes:
        a QThread destroyed while it runs aborts the process)."""
        if self.worker is not None:
            self.worker.cancel()
            if not self.worker.wait(timeout_ms):
                log.warning("the compression thread did not stop within %d s", timeout_ms // 1000)

    def refresh(self) -> None:
        """Run is possible with a scene open and no run in progress."""
        self.panel.run_button.setEnabled(self.worker is None and self.session.original is not None)

    # -- the worker's reports -------------------------------------------------------------------------
    @Slot(object)
    def _on_progress(self, batch) -> None:
        rec = batch.record
        for step, losses in batch.fit_points:
            self.loss.add_fit(step, losses)
        for step, value in batch.tune_points:
            self.loss.add_finetune(step, value)
        if self.worker is not None and not self.worker.cancelling:
            self.panel.show_progress(rec.stage, rec.step, rec.total, rec.message, rec.elapsed_s, rec.eta_s)

    @Slot(object)
    def _on_succeeded(self, cs: CompressedScene) -> None:
        r = cs.result
        self.session.set_compressed(cs)
        self.clusters.show_result()
        metrics = r.metrics or {}
        held = ""
        if metrics:  # measured at the held-out views: eval_size px (800, DESIGN §7) or the dataset's own size
            from core.pipeline.evaluation import view_size

            held = (f" · held-out PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f} "
                    f"at {view_size(r.views.test_cameras)} px")
        self.panel.show_status(f"Done in {format_duration(sum(r.timings.values()))}: {r.n_kept:,} of "
                               f"{r.n_original:,} Gaussians kept, {cs.n_clusters} clusters, {human_bytes(cs.n_bytes)}"
                               f"{held}", 1.0)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.panel.show_status("Failed")
        self.errorRaised.emit("Compression failed", message)

    @Slot()
    def _on_cancelled(self) -> None:
        self.panel.show_status("Cancelled: nothing was kept or written", 0.0)

    @Slot()
    def _worker_finished(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            # QThread emits finished() just before its thread really ends; deleting the object in that
            # window is fatal ("QThread: Destroyed while thread is still running", abort). The window is
            # microseconds, but a busy machine can stretch it past the deferred delete: wait it out.
            worker.wait()
            worker.deleteLater()
        self.panel.set_running(False)
        self.loss.set_live(False)  # the last points, drawn smooth
        self.changed.emit()
