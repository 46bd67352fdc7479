"""The compression run of the main window: Run / Pause / Cancel, progress into the panel and the loss plot,
the result into the table and the B side.

:class:`CompressionRun` is a part of :class:`~app.main_window.MainWindow` (a mixin: it uses the window's
``panel``, ``loss``, ``original``, ``camera_set`` and ``worker``). The compression itself runs in a
:class:`~app.compress_worker.CompressionWorker`; the slots here only move its reports onto widgets.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Slot

from app.compress_worker import CompressionWorker
from app.documents import CompressedScene
from widgets.param_panel import format_duration
from widgets.units import human_bytes

log = logging.getLogger(__name__)


class CompressionRun:
    """Run, pause, cancel and the worker's signals (part of MainWindow)."""

    def build_config(self, values: dict):
        """CompressionConfig from the panel's values (ValueError naming the bad field)."""
        from core.pipeline.config import config_from_preset

        fields = {k: v for k, v in values.items() if k not in ("preset", "custom")}
        if self.camera_set is None:
            fields["up"] = self.up_axis()
        return config_from_preset(values["preset"] or "preview", **{**fields, **self.config_overrides})

    @Slot(dict)
    def run_compression(self, values: dict | None = None) -> None:
        """Compress the open scene with the panel's settings (no reload: the scene stays in memory)."""
        if self.worker is not None:
            return
        if self.original is None:
            self._error("Nothing to compress", "Open a .ply, .compressed.ply or .splat scene first (Ctrl+O).")
            return
        try:
            config = self.build_config(values or self.panel.values())
        except ValueError as exc:
            self._error("Invalid settings", str(exc))
            return
        cams = self.camera_set.cameras if self.camera_set is not None else None
        self.worker = CompressionWorker(self.original.scene, config, cams, None, self)
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
    def pause_compression(self, paused: bool) -> None:
        if self.worker is not None:
            self.worker.set_paused(paused)
            self.statusBar().showMessage("Compression paused" if paused else "Compression resumed", 3000)

    @Slot()
    def cancel_compression(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            self.panel.show_status("Cancelling…")

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
        self._show_compressed(cs)
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
        self._error("Compression failed", message)

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
        self._refresh()
