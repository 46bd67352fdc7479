"""The main window: compare view in the centre with the loss plot below it, compression panel and
cluster table on the right; File / View / Compression / Clusters / Help menus.

The GUI thread only draws and wires: files load and export through :class:`~app.tasks.TaskRunner`,
the compression runs in a :class:`~app.compress_worker.CompressionWorker`, renders in the viewport's
:class:`~app.render_thread.RenderThread`. What is open and what was made is one Qt-free
:class:`~app.session.Session` (``session``); the window builds the widgets and docks and composes the
controllers that read and change it:

- ``files`` (:class:`~app.file_controller.FileController`): open, recent files, datasets, export, screenshots;
- ``compression`` (:class:`~app.compression_controller.CompressionController`): run / pause / cancel,
  progress, the result;
- ``clusters`` (:class:`~app.cluster_controller.ClusterController`): the cluster table and the B side;
- ``cameras`` (:class:`~app.camera_controller.CameraController`): world up and training cameras.

The menus are built from the controllers' actions (:func:`app.menus.build_menus`).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QSplitter

from app import dialogs
from app.camera_controller import CameraController
from app.cluster_controller import ClusterController
from app.compress_worker import warm_up_compression
from app.compression_controller import CompressionController
from app.file_controller import FileController
from app.menus import SHORTCUTS, build_menus
from app.session import Session
from app.tasks import TaskRunner
from app.viewport import Viewport
from widgets.cluster_table import ClusterTable
from widgets.compare_view import CompareView
from widgets.loss_plot import LossPlot
from widgets.param_panel import ParameterPanel
from widgets.units import human_bytes

log = logging.getLogger(__name__)

THREAD_STOP_TIMEOUT_MS = 30_000  # closing waits this long for the worker and the render thread (see closeEvent)


class MainWindow(QMainWindow):
    """NeuralGS Studio's window. ``settings``: where recent files live (default: the user's QSettings).

    ``modal_errors`` False: errors are logged and signalled (``errorShown``) without a dialog (``--screenshot``).
    """

    errorShown = Signal(str, str)  # title, message

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("NeuralGS Studio")
        self.settings = settings or QSettings("NeuralGS", "NeuralGS Studio")
        self.session = Session()
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

        self.clusters = ClusterController(self.session, self.table, self.loss, self.viewport, self)
        self.cameras = CameraController(self.session, self.view, self.viewport, self)
        self.compression = CompressionController(self.session, self.panel, self.loss, self.clusters, self)
        self.files = FileController(self.session, self, self.tasks, self.settings, self.viewport, self.compression,
                                    self.clusters, self.cameras)
        for controller in (self.clusters, self.compression, self.files):
            controller.changed.connect(self._refresh)
        for controller in (self.compression, self.files):
            controller.statusMessage.connect(self.statusBar().showMessage)
            controller.errorRaised.connect(self._error)
        self.actions_by_name = build_menus(self)

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
        """Enable what can be done now; update the overlay facts, the camera list and the title."""
        self.files.refresh()
        self.compression.refresh()
        self.cameras.refresh()
        s = self.session
        facts = []
        if s.original:
            o = s.original
            facts.append(f"A · {o.path.name}: {o.scene.num_gaussians:,} Gaussians · {human_bytes(o.n_bytes)} "
                         f"({o.format})")
        if s.compressed:
            c = s.compressed
            ratio = f" · {s.original.n_bytes / c.n_bytes:.1f}× smaller" if s.original and c.n_bytes else ""
            facts.append(f"B · NeuralGS: {s.n_shown():,} of {c.scene.num_gaussians:,} Gaussians shown · "
                         f"{c.n_clusters} clusters · {human_bytes(c.n_bytes)} (.ngs){ratio}")
        self.viewport.set_facts(facts)
        src = s.source_path()
        self.setWindowTitle(f"{src.name} — NeuralGS Studio" if src else "NeuralGS Studio")

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        # A QThread destroyed while it runs aborts the process, so wait for both threads: the worker
        # stops at its next step after cancel(), the render thread after its current render; on a
        # busy machine either can take seconds, hence the long limit.
        self.compression.shutdown(THREAD_STOP_TIMEOUT_MS)
        self.viewport.shutdown(THREAD_STOP_TIMEOUT_MS)
        super().closeEvent(event)
