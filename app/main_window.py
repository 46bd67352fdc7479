"""The main window: compare view in the centre with the loss plot below it, compression panel and
cluster table on the right; File / View / Compression / Clusters / Help menus.

The GUI thread only draws and wires: files load and export through :class:`~app.tasks.TaskRunner`,
the compression runs in a :class:`~app.compress_worker.CompressionWorker`, renders in the viewport's
:class:`~app.render_thread.RenderThread`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, QBuffer, QIODevice, QSettings, Qt, Signal, Slot
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QSplitter

from app import dialogs
from app.compress_worker import CompressionWorker, warm_up_compression
from app.documents import CompressedScene, OriginalScene, display_scene, export_ngs, export_ply, load_any
from app.menus import SHORTCUTS, add_recent, build_menus, fill_recent_menu
from app.tasks import TaskRunner
from app.viewport import Viewport
from widgets.cluster_table import ClusterTable
from widgets.compare_view import CompareView
from widgets.loss_plot import LossPlot
from widgets.param_panel import ParameterPanel, format_duration

log = logging.getLogger(__name__)

DEMO_UP = (0.0, 0.0, 1.0)  # the bundled donut was made in Blender: z is up
DEFAULT_UP = (0.0, -1.0, 0.0)  # COLMAP / graphdeco captures


def human_bytes(n: int) -> str:
    """1,234,567 -> '1.18 MiB'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


class MainWindow(QMainWindow):
    """NeuralGS Studio's window. ``settings``: where recent files live (default: the user's QSettings).

    ``modal_errors`` False: errors are logged and signalled (``errorShown``) without a dialog (``--screenshot``).
    """

    errorShown = Signal(str, str)  # title, message

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("NeuralGS Studio")
        self.settings = settings or QSettings("NeuralGS", "NeuralGS Studio")
        self.original: OriginalScene | None = None
        self.compressed: CompressedScene | None = None
        self.camera_set = None  # core.cameras.CameraSet
        self.up_override: tuple[float, float, float] | None = None
        self.worker: CompressionWorker | None = None
        self.config_overrides: dict = {}  # extra CompressionConfig fields (scripts, tests)
        self.last_error = ""
        self.modal_errors = True
        self.tasks = TaskRunner(self)

        self.view = CompareView()
        self.viewport = Viewport(self.view, self)
        self.panel = ParameterPanel()
        self.loss = LossPlot()
        self.table = ClusterTable()
        self.splitter = QSplitter(Qt.Orientation.Vertical)  # the loss plot under the compare view
        self.splitter.addWidget(self.view)
        self.splitter.addWidget(self.loss)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([520, 380])
        self.setCentralWidget(self.splitter)
        self.panel.setMinimumWidth(360)
        self._dock("Compression", self.panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Clusters", self.table, Qt.DockWidgetArea.RightDockWidgetArea)
        self.status_label = QLabel("")
        self.statusBar().addPermanentWidget(self.status_label)
        self.actions_by_name = build_menus(self)
        fill_recent_menu(self)

        from core.pipeline.config import PRESETS, config_from_preset

        self.panel.set_presets({name: config_from_preset(name).to_dict() for name in PRESETS}, "preview")
        self.panel.set_available_devices(self._devices())
        self.panel.runRequested.connect(self.run_compression)
        self.panel.pauseToggled.connect(self.pause_compression)
        self.panel.cancelRequested.connect(self.cancel_compression)
        self.table.displayChanged.connect(self._cluster_display_changed)
        self.table.clusterSelected.connect(lambda c: self.loss.select_cluster(c))
        self.loss.clusterSelected.connect(self.table.select_cluster)
        self.view.cameraChanged.connect(self._free_camera)
        self.camera_box.activated.connect(self._camera_chosen)
        self._refresh()
        self.viewport.start()
        self.tasks.submit(warm_up_compression, lambda _: None, lambda exc: log.warning("warm-up failed: %s", exc),
                          "warm-up")
        self.resize(1440, 900)

    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}Dock")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    @staticmethod
    def _devices() -> list[str]:
        import torch

        return ["auto", "cpu", "cuda"] if torch.cuda.is_available() else ["auto", "cpu"]

    # -- opening files ----------------------------------------------------------------------------
    def open_scene_dialog(self) -> None:
        path = dialogs.ask_open_scene(self, str(self._folder()))
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """Load a scene or .ngs file in the background; errors become a dialog naming the file."""
        self.statusBar().showMessage(f"Opening {path}…")
        self.tasks.submit(lambda: load_any(path), lambda doc: self._loaded(doc, Path(path)),
                          lambda exc: self._error("Cannot open file", dialogs.error_message(exc, path)), "open")

    def _loaded(self, doc, path: Path) -> None:
        add_recent(self.settings, path)
        fill_recent_menu(self)
        if isinstance(doc, OriginalScene):
            self.cancel_compression()
            self.original, self.compressed = doc, None
            self.table.set_clusters([])
            self.loss.reset()
            self.viewport.set_scene(0, doc.scene)
            self.viewport.set_scene(1, None)
            self.view.set_scene_bounds(*doc.bounds, up=self.up_axis())
            for w in doc.warnings:
                self.statusBar().showMessage(f"{path.name}: {w}", 10000)
        else:
            self._show_compressed(doc)
            if self.original is None:
                self.view.set_scene_bounds(*doc.bounds, up=self.up_axis())
        self.statusBar().showMessage(f"Opened {path}", 5000)
        self._refresh()

    def open_cameras_dialog(self) -> None:
        path = dialogs.ask_open_cameras(self, str(self._folder()))
        if path:
            self.open_cameras(path)

    def open_cameras(self, path: str | Path) -> None:
        """Load a dataset folder or cameras file (training cameras, and targets when it has images)."""
        from core.cameras import load_cameras

        self.tasks.submit(lambda: load_cameras(path), self._cameras_loaded,
                          lambda exc: self._error("Cannot open cameras", dialogs.error_message(exc, path)), "cameras")

    def _cameras_loaded(self, camera_set) -> None:
        self.camera_set = camera_set
        images = sum(c.image_path is not None for c in camera_set.cameras)
        skipped = f", {len(camera_set.skipped)} skipped" if camera_set.skipped else ""
        self.statusBar().showMessage(f"{len(camera_set)} cameras from {camera_set.source} ({images} with images"
                                     f"{skipped})", 10000)
        if self.up_override is None:
            self.view.rig.set_up(self.up_axis())
        self._refresh()

    def _folder(self) -> Path:
        src = self.original.path if self.original else (self.compressed.path if self.compressed else None)
        return src.parent if src else Path.cwd()

    # -- world up and training cameras -------------------------------------------------------------
    def up_axis(self) -> tuple[float, float, float]:
        """The world up: the View menu's choice, else the cameras' estimate, else +z for the demo, else -y."""
        from core.cameras import estimate_up
        from core.cli_render import DEMO_SCENE

        if self.up_override is not None:
            return self.up_override
        if self.camera_set is not None:
            return tuple(float(v) for v in estimate_up(self.camera_set))
        if self.original is not None and self.original.path.resolve() == DEMO_SCENE.resolve():
            return DEMO_UP
        return DEFAULT_UP

    def set_up_axis(self, up) -> None:
        self.up_override = tuple(float(v) for v in up)
        self.view.rig.set_up(self.up_override)
        self.view.frame_scene()

    def training_cameras(self) -> list:
        """Cameras to jump to: the loaded dataset / cameras file, else the last compression's training views."""
        if self.camera_set is not None:
            return list(self.camera_set.cameras)
        result = self.compressed.result if self.compressed else None
        return list(result.views.train_cameras) if result is not None else []

    def step_camera(self, delta: int) -> None:
        cams = self.training_cameras()
        if cams:
            i = self.camera_box.currentIndex() - 1
            self.show_camera((i + delta) % len(cams) if i >= 0 else (0 if delta > 0 else len(cams) - 1))

    def show_camera(self, index: int) -> None:
        """Look through training camera ``index`` (pose and vertical field of view)."""
        cam = self.training_cameras()[index]
        fov = math.degrees(2.0 * math.atan(0.5 * cam.height / cam.fy))
        self.view.rig.set_pose(cam.world_to_camera, fov)
        self.camera_box.setCurrentIndex(index + 1)
        self.viewport.request_full()

    def _camera_chosen(self, combo_index: int) -> None:
        if combo_index > 0:
            self.show_camera(combo_index - 1)

    @Slot()
    def _free_camera(self) -> None:
        if self.view.rig.pose_override is None and self.camera_box.currentIndex() != 0:
            self.camera_box.setCurrentIndex(0)

    # -- compression --------------------------------------------------------------------------------
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
        held = f" · held-out PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.4f}" if metrics else ""
        self.panel.show_status(f"Done in {format_duration(sum(r.timings.values()))}: {r.n_kept:,} of "
                               f"{r.n_original:,} Gaussians kept, {cs.n_clusters} clusters, {cs.n_bytes:,} bytes"
                               f"{held}", 1.0)
        self.loss.redraw()

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
            worker.deleteLater()
        self.panel.set_running(False)
        self._refresh()

    # -- the compressed scene and its clusters ----------------------------------------------------------
    def _show_compressed(self, cs: CompressedScene) -> None:
        self.compressed = cs
        self.table.set_clusters(cs.rows)  # emits displayChanged -> the B side is rebuilt
        self._refresh()

    @Slot()
    def _cluster_display_changed(self) -> None:
        cs = self.compressed
        if cs is None:
            return
        st = self.table.display_state()
        vis = st["visible"] if len(st["visible"]) == cs.n_clusters else None
        self.viewport.set_scene(1, lambda: display_scene(cs, vis, st["color_by_cluster"], st["highlight"]))
        self._refresh()

    # -- export and screenshots ----------------------------------------------------------------------
    def _ask_target(self, title: str, suffix: str, file_filter: str) -> tuple[Path, bool] | None:
        """(path, overwrite) from a save dialog, asking before replacing a file; None when cancelled."""
        stem = self.original.path.stem if self.original else "scene"
        suggested = str(self._folder() / f"{stem}{suffix}")
        path = dialogs.ask_save_path(self, title, suggested, file_filter)
        if not path:
            return None
        p = Path(path)
        if not p.name.lower().endswith(suffix.lower()):
            p = p.with_name(p.name + suffix)
        if p.exists():
            if not dialogs.ask_overwrite(self, p):
                return None
            return p, True
        return p, False

    def export_ngs_dialog(self) -> None:
        self._export("Export .ngs", ".ngs", "NeuralGS (*.ngs)", export_ngs)

    def export_ply_dialog(self) -> None:
        self._export("Export decompressed .ply", ".ply", "Gaussian splats (*.ply)", export_ply)

    def _export(self, title: str, suffix: str, file_filter: str, writer) -> None:
        cs = self.compressed
        if cs is None:
            self._error(title, "There is no compressed scene yet: run a compression (F5) or open a .ngs file.")
            return
        target = self._ask_target(title, suffix, file_filter)
        if target is None:
            return
        path, overwrite = target
        self.statusBar().showMessage(f"Writing {path}…")
        self.tasks.submit(lambda: writer(cs, path, overwrite),
                          lambda n: self.statusBar().showMessage(f"Wrote {path} ({n:,} bytes)", 10000),
                          lambda exc: self._error(f"{title} failed", dialogs.error_message(exc, path)), "export")

    def screenshot_dialog(self) -> None:
        target = self._ask_target("Save screenshot", ".png", "PNG images (*.png)")
        if target is not None:
            try:
                self.save_screenshot(*target)
            except OSError as exc:
                self._error("Cannot save the screenshot", dialogs.error_message(exc, target[0]))

    def save_screenshot(self, path: str | Path, overwrite: bool = False) -> int:
        """Write a PNG of the whole window, atomically; returns its size in bytes."""
        from core.io import atomic_write_bytes

        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        self.grab().save(buf, "PNG")
        buf.close()
        atomic_write_bytes(Path(path), bytes(data), overwrite=overwrite)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return len(data)

    # -- misc -----------------------------------------------------------------------------------------
    def _error(self, title: str, message: str) -> None:
        self.last_error = message
        self.statusBar().showMessage(message, 10000)
        self.errorShown.emit(title, message)
        if self.modal_errors:
            dialogs.show_error(self, title, message)
        else:
            log.error("%s: %s", title, message)

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", f"<table cellspacing=4>{rows}</table>")

    def _refresh(self) -> None:
        """Enable what can be done now; update the overlay facts and the camera list."""
        have_b = self.compressed is not None
        for name in ("export_ngs", "export_ply"):
            self.actions_by_name[name].setEnabled(have_b)
        self.panel.run_button.setEnabled(self.worker is None and self.original is not None)
        cams = self.training_cameras()
        names = ["Free camera"] + [c.name or f"camera {i}" for i, c in enumerate(cams)]
        if [self.camera_box.itemText(i) for i in range(self.camera_box.count())] != names:
            self.camera_box.clear()
            self.camera_box.addItems(names)
        for name in ("next_camera", "prev_camera"):
            self.actions_by_name[name].setEnabled(bool(cams))
        self.camera_box.setEnabled(bool(cams))
        facts = []
        if self.original:
            o = self.original
            facts.append(f"A · {o.path.name}: {o.scene.num_gaussians:,} Gaussians · {human_bytes(o.n_bytes)} "
                         f"({o.format})")
        if self.compressed:
            c = self.compressed
            shown = int(np.count_nonzero(self.table.display_state()["visible"][c.cluster_ids]))
            ratio = f" · {self.original.n_bytes / c.n_bytes:.1f}× smaller" if self.original and c.n_bytes else ""
            facts.append(f"B · NeuralGS: {shown:,} of {c.scene.num_gaussians:,} Gaussians shown · {c.n_clusters} "
                         f"clusters · {human_bytes(c.n_bytes)} (.ngs){ratio}")
        self.viewport.set_facts(facts)
        title = self.original.path.name if self.original else (self.compressed.path.name if self.compressed and
                                                                 self.compressed.path else "")
        self.setWindowTitle(f"{title} — NeuralGS Studio" if title else "NeuralGS Studio")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.worker is not None:
            self.worker.cancel()
            self.worker.wait(3000)
        self.viewport.shutdown()
        super().closeEvent(event)
