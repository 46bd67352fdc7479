"""The compression run: Run / Pause / Cancel, progress and ETA into the panel and the loss plot, the result
into the session and the cluster table.

:class:`CompressionController` owns the :class:`~app.compress_worker.CompressionWorker` of the run in
progress (``worker``, None when idle) and its slots; the compression itself runs in that thread.
A finished result becomes the session's (``Session.set_compressed``) and is shown through the
:class:`~app.cluster_controller.ClusterController`; a cancelled run leaves the plot showing the result that
is still the session's (not the cancelled run's curves).

The ETA shown covers the whole run (:class:`OverallEta`): the stage in progress by its own estimate, every
later stage by its work in the run's configuration (views x pixels, iterations) times the seconds per unit of
work measured in the last finished run (kept in the settings; before any, measured defaults), scaled by how
fast this run has been against that prediction so far.
"""

from __future__ import annotations

import json
import logging
import time

from PySide6.QtCore import QObject, QSettings, Signal, Slot

from app.cluster_controller import ClusterController
from app.compress_worker import CompressionWorker
from app.documents import CompressedScene
from app.session import Session
from widgets.loss_plot import LossPlot
from widgets.param_panel import ParameterPanel, format_duration
from widgets.units import human_bytes

log = logging.getLogger(__name__)

STAGE_ORDER = ("views", "importance", "prune", "coadapt", "cluster", "fit", "finetune", "search", "qat", "evaluate")
"""The pipeline's stages in the order they run (rate control's "search" before the last evaluation)."""
TIMING_STAGE = {"prune search": "prune", "encode": "search"}  # CompressionResult.timings keys -> stages
# Seconds per unit of work (stage_units): the "preview" preset on the demo donut (45,624 Gaussians) on the shared
# 2-core CPU (views 8.4 s, importance 4.8, fit 15.3, fine-tuning 42.9, evaluation 6.9); replaced by the last
# finished run's own numbers (ETA_SETTINGS_KEY).
DEFAULT_SECONDS_PER_UNIT = {"views": 2.85, "importance": 12.2, "prune": 0.02, "cluster": 0.005, "fit": 0.051,
                            "finetune": 17.4, "search": 1.0, "evaluate": 2.7, "coadapt": 2.4, "qat": 2.8}
# co-adaptation and QAT: donut (45,624 Gaussians, 256-px training views) 0.13-0.16 s and ~0.18 s per step
ETA_SETTINGS_KEY = "eta/seconds_per_unit"
MIN_CALIBRATION_S = 0.5  # seconds of this run's work before its speed rescales the prediction


def stage_units(config, n_cameras: int | None = None) -> dict[str, float]:
    """How much work each stage of a run with ``config`` does, in the units DEFAULT_SECONDS_PER_UNIT prices:
    megapixels rendered (views, importance, evaluate), iterations (k-means, fit), iterations x megapixels
    (fine-tuning), candidates (prune search), searches (rate control). ``n_cameras``: a dataset's cameras."""
    if n_cameras:
        n_test = len(range(0, n_cameras, config.test_every)) if config.test_every > 0 else 0
        n_train = max(0, n_cameras - n_test)
        px_train = px_test = config.dataset_max_size ** 2 / 1e6
    else:
        n_train, n_test = config.n_views, config.n_test_views
        px_train, px_test = config.image_size ** 2 / 1e6, config.eval_size ** 2 / 1e6
    targets = config.format_version == 2 and bool(config.target_psnr or config.target_size)
    return {
        "views": n_train * px_train + n_test * px_test,
        "importance": n_train * px_train,
        "prune": 1.0 + (len(config.prune_candidates) if targets else 0),
        "cluster": float(config.kmeans_iters) if config.effective_clusters > 1 else 0.0,
        "fit": float(config.fit_iters),
        "finetune": float(config.finetune_iters) * px_train,
        "coadapt": float(config.coadapt_iters) * px_train,
        "qat": float(config.qat_iters) * px_train if targets else 0.0,
        "search": 1.0 if targets else 0.0,
        "evaluate": n_test * px_test if config.evaluate else 0.0,
    }


def seconds_per_unit(timings: dict[str, float], units: dict[str, float]) -> dict[str, float]:
    """Seconds per unit of each stage of a finished run (its ``CompressionResult.timings``)."""
    spent: dict[str, float] = {}
    for key, seconds in timings.items():
        stage = TIMING_STAGE.get(key, key)
        spent[stage] = spent.get(stage, 0.0) + float(seconds)
    return {s: spent[s] / units[s] for s in spent if units.get(s, 0.0) > 0 and spent[s] > 0}


def stage_times_text(timings: dict[str, float]) -> str:
    """Seconds per stage of a finished run, in the order they ran ("Time per stage: views 4 s, ...")."""
    from widgets.param_panel import STAGE_NAMES

    spent: dict[str, float] = {}
    for key, seconds in timings.items():
        stage = TIMING_STAGE.get(key, key)
        spent[stage] = spent.get(stage, 0.0) + float(seconds)
    order = [s for s in STAGE_ORDER if spent.get(s, 0.0) > 0] + [s for s in spent if s not in STAGE_ORDER]
    when = lambda v: f"{v:.1f} s" if v < 60 else format_duration(v)
    return "Time per stage: " + ", ".join(f"{STAGE_NAMES.get(s, s)} {when(spent[s])}" for s in order)


class OverallEta:
    """The seconds left in a whole run, from its progress records (see the module docstring)."""

    def __init__(self, units: dict[str, float], per_unit: dict[str, float] | None = None) -> None:
        self.units = units
        self.per_unit = {**DEFAULT_SECONDS_PER_UNIT, **(per_unit or {})}
        self.done_actual = 0.0  # seconds of the stages finished in this run
        self.done_predicted = 0.0
        self.stage: str | None = None
        self._last_elapsed = 0.0
        self._seen: set[str] = set()

    def predicted(self, stage: str) -> float:
        return self.units.get(stage, 0.0) * self.per_unit.get(stage, 0.0)

    def update(self, stage: str, step: int, total: int, elapsed_s: float, eta_s: float | None) -> float:
        """Seconds left in the run after this record of ``stage``."""
        if stage != self.stage:
            if self.stage is not None:  # the previous stage ended
                self.done_actual += self._last_elapsed
                if self.stage not in self._seen:
                    self.done_predicted += self.predicted(self.stage)
                self._seen.add(self.stage)
            self.stage = stage
        self._last_elapsed = elapsed_s
        frac = 1.0 if total <= 0 else min(1.0, max(0.0, step / total))
        pred_cur = self.predicted(stage)
        measured = self.done_actual + elapsed_s
        expected = self.done_predicted + (pred_cur * frac if stage not in self._seen else 0.0)
        factor = 1.0
        if measured >= MIN_CALIBRATION_S and expected > 0:
            factor = min(10.0, max(0.1, measured / expected))
        if eta_s is not None and step > 0:
            current = eta_s
        else:
            current = max(0.0, factor * pred_cur - elapsed_s)
        index = STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER)
        later = sum(self.predicted(s) for s in STAGE_ORDER[index + 1:])
        return current + factor * later


class CompressionController(QObject):
    """See the module docstring. Signals: ``changed`` (the window refreshes), ``statusMessage(text, ms)``,
    ``errorRaised(title, message)``."""

    changed = Signal()
    statusMessage = Signal(str, int)
    errorRaised = Signal(str, str)

    def __init__(self, session: Session, panel: ParameterPanel, loss: LossPlot, clusters: ClusterController,
                 parent: QObject | None = None, settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self.session, self.panel, self.loss, self.clusters = session, panel, loss, clusters
        self.settings = settings  # where the ETA's seconds per unit of work are kept (None: this session only)
        self.worker: CompressionWorker | None = None
        self.eta: OverallEta | None = None
        self._run_started = 0.0
        self._per_unit: dict[str, float] = self._load_per_unit()
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
        cameras = s.dataset_cameras()
        self.worker = CompressionWorker(s.original.scene, config, cameras, None, self, source=s.original.source_meta())
        units = stage_units(config, len(cameras) if cameras else None)
        self.eta = OverallEta(units, self._per_unit)
        self.panel.set_stages([st for st in STAGE_ORDER if units.get(st, 0.0) > 0 or st == "prune"])
        self._run_started = time.monotonic()
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
        target = (f"{config.target_psnr:g} dB" if config.target_psnr else f"{config.target_size:,} bytes"
                  if config.target_size else "none (pure NeuralGS)")
        log.info("compression started: preset %s, K=%d, prune %.2f, %d+%d iterations, width %d, device %s, "
                 "target %s, .ngs v%d", config.preset, config.n_clusters, config.prune_ratio, config.fit_iters,
                 config.finetune_iters, config.hidden, config.device, target, config.format_version)

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
        """A new scene was opened: no curves, no run's status line (its "Done in" belonged to the old scene)."""
        self.loss.reset()
        self.panel.show_file_size(None)
        if self.worker is None:
            self.panel.show_status("", 0.0)

    def show_opened(self, cs: CompressedScene) -> None:
        """An opened ``.ngs`` is the result: no curves (the file has none), a status line about the file."""
        self.loss.reset()
        self.panel.show_file_size(cs.n_bytes)
        if self.worker is not None:
            return
        held = cs.meta.get("heldout") if isinstance(cs.meta.get("heldout"), dict) else None
        recorded = (f" · held-out PSNR {held['psnr']:.2f} dB recorded in the file"
                    if held and isinstance(held.get("psnr"), (int, float)) else "")
        name = cs.path.name if cs.path is not None else "compressed scene"
        self.panel.show_status(f"Opened {name}: {cs.scene.num_gaussians:,} Gaussians, {cs.n_clusters} clusters, "
                               f"{human_bytes(cs.n_bytes)}{recorded}", 1.0)

    def show_result_history(self) -> None:
        """The loss curves of the session's result (none: an empty plot)."""
        self.loss.reset()
        result = self.session.compressed.result if self.session.compressed is not None else None
        history = getattr(result, "history", None) or {}
        for step, losses in history.get("fit", []):
            self.loss.add_fit(step, losses)
        for stage in ("coadapt", "finetune", "qat"):
            for step, value in history.get(stage, []):
                self.loss.add_image_loss(stage, step, value)
        self.loss.set_live(False)

    @property
    def running(self) -> bool:
        """A run is in progress (or its thread has not ended yet)."""
        return self.worker is not None and (self.worker.isRunning() or not self.worker.isFinished())

    def request_stop(self) -> None:
        """Cancel a run in progress without waiting (the window closes: it waits without blocking)."""
        if self.worker is not None:
            self.worker.cancel()

    def shutdown(self, timeout_ms: int) -> None:
        """Cancel a run in progress and wait up to ``timeout_ms`` for its thread to end (a QThread destroyed
        while it runs aborts the process)."""
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
        worker = self.worker
        if worker is None or worker.cancelling or self.sender() not in (None, worker):
            return  # a cancelled run's last batches: its curves are not the result's
        rec = batch.record
        for step, losses in batch.fit_points:
            self.loss.add_fit(step, losses)
        for stage, step, value in batch.tune_points:
            self.loss.add_image_loss(stage, step, value)
        self.panel.show_progress(rec.stage, rec.step, rec.total, rec.message, rec.elapsed_s, rec.eta_s)
        if self.eta is not None:
            left = self.eta.update(rec.stage, rec.step, rec.total, rec.elapsed_s, rec.eta_s)
            # the panel's own line speaks of the stage only; this one covers the run
            stage = f" · {format_duration(rec.eta_s)} this stage" if rec.eta_s is not None else ""
            self.panel.eta_label.setText(f"elapsed {format_duration(time.monotonic() - self._run_started)} · "
                                         f"ETA {format_duration(left)} overall{stage}")
            self.panel.eta_label.setToolTip("Time since Run and estimated time left in the whole run (the stage "
                                            "in progress by its own rate, later stages by the last finished run's "
                                            "seconds per unit of work, scaled by this run's speed so far)")

    def _load_per_unit(self) -> dict[str, float]:
        if self.settings is None:
            return {}
        try:
            data = json.loads(str(self.settings.value(ETA_SETTINGS_KEY, "") or "{}"))
            return {str(k): float(v) for k, v in data.items() if float(v) >= 0}
        except (TypeError, ValueError):
            return {}

    def _learn(self, worker: CompressionWorker, result) -> None:
        """Keep the finished run's seconds per unit of work for the next runs' ETA."""
        cameras = worker.cameras
        learned = seconds_per_unit(getattr(result, "timings", {}) or {},
                                   stage_units(worker.config, len(cameras) if cameras else None))
        self._per_unit.update(learned)
        if self.settings is not None and learned:
            self.settings.setValue(ETA_SETTINGS_KEY, json.dumps(self._per_unit))

    @Slot(object)
    def _on_succeeded(self, cs: CompressedScene) -> None:
        r = cs.result
        if self.worker is not None:
            self._learn(self.worker, r)
        self.session.set_compressed(cs)
        self.clusters.show_result()
        self.panel.show_file_size(cs.n_bytes)  # what File > Export .ngs will write, byte for byte
        metrics = r.metrics or {}
        held = ""
        if metrics:  # measured at the held-out views: eval_size px (800, DESIGN §7) or the dataset's own size
            from core.pipeline.evaluation import view_size

            held = (f" · held-out PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f} "
                    f"at {view_size(r.views.test_cameras)} px")
        self.panel.show_status(f"Done in {format_duration(sum(r.timings.values()))}: {r.n_kept:,} of "
                               f"{r.n_original:,} Gaussians kept, {cs.n_clusters} clusters, {human_bytes(cs.n_bytes)}"
                               f"{held}", 1.0)
        self.panel.message_label.setText(stage_times_text(r.timings))

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.panel.show_status("Failed")
        self.errorRaised.emit("Compression failed", message)

    @Slot()
    def _on_cancelled(self) -> None:
        self.show_result_history()  # the plot goes back to the result the table shows (if any)
        kept = "; the previous result is shown again" if self.session.compressed is not None else ""
        self.panel.show_status(f"Cancelled: nothing was kept or written{kept}", 0.0)

    @Slot()
    def _worker_finished(self) -> None:
        worker, self.worker = self.worker, None
        self.eta = None
        if worker is not None:
            # QThread emits finished() just before its thread really ends; deleting the object in that
            # window is fatal ("QThread: Destroyed while thread is still running", abort). The window is
            # microseconds, but a busy machine can stretch it past the deferred delete: wait it out.
            worker.wait()
            worker.deleteLater()
        self.panel.set_running(False)
        self.loss.set_live(False)  # the last points, drawn smooth
        self.changed.emit()
