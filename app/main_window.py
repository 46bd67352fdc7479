"""The main window: compare view in the centre with the loss plot below it, compression panel and
cluster table on the right; File / View / Compression / Clusters / Help menus.

The GUI thread only draws and wires: files load and export through :class:`~app.tasks.TaskRunner`,
the compression runs in a :class:`~app.compress_worker.CompressionWorker`, renders in the viewport's
:class:`~app.render_thread.RenderThread`. This module builds the window and keeps the view state (world
up, training cameras, which clusters the B side shows, the overlay facts); the File menu's work is in
:mod:`app.file_actions`, the compression run's in :mod:`app.compression_run`.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from PySide6.QtCore import QSettings, Qt, Signal, Slot
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QSplitter

from app import dialogs
from app.compress_worker import CompressionWorker, warm_up_compression
from app.compression_run import CompressionRun
from app.documents import CompressedScene, OriginalScene, display_scene
from app.file_actions import FileActions
from app.menus import SHORTCUTS, build_menus, fill_recent_menu
from app.tasks import TaskRunner
from app.viewport import Viewport
from widgets.cluster_table import ClusterTable
from widgets.compare_view import CompareView
from widgets.loss_plot import LossPlot
from widgets.param_panel import ParameterPanel
from widgets.units import human_bytes

log = logging.getLogger(__name__)

DEFAULT_UP = (0.0, -1.0, 0.0)  # COLMAP / graphdeco captures
THREAD_STOP_TIMEOUT_MS = 30_000  # closing waits this long for the worker and the render thread (see closeEvent)


class MainWindow(FileActions, CompressionRun, QMainWindow):
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

    # -- world up and training cameras -------------------------------------------------------------
    def up_axis(self) -> tuple[float, float, float]:
        """The world up: the View menu's choice, else the cameras' estimate, else +z for the demo, else -y."""
        from core.cameras import estimate_up
        from core.demo import DEMO_SCENE, DEMO_UP

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
        # A QThread destroyed while it runs aborts the process, so wait for both threads: the worker
        # stops at its next step after cancel(), the render thread after its current render; on a
        # busy machine either can take seconds, hence the long limit.
        if self.worker is not None:
            self.worker.cancel()
            if not self.worker.wait(THREAD_STOP_TIMEOUT_MS):
                log.warning("the compression thread did not stop within %d s", THREAD_STOP_TIMEOUT_MS // 1000)
        self.viewport.shutdown(THREAD_STOP_TIMEOUT_MS)
        super().closeEvent(event)
