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

The title names the files shown (the original, an opened ``.ngs`` beside it) and starts with "•" while a
result is not exported (the status bar says so too). Quitting (Ctrl+Q, the window's close button) asks before
an unexported result or a run is thrown away (:meth:`FileController.confirm_discard`), then never blocks the GUI
for long: the run is cancelled, the render thread asked to stop (waiting ``QUIT_WAIT_MS`` at most), and if
either is still busy the window hides at once and closes for good when both have ended (``closed``).
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, Qt, QTimer, Signal
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

QUIT_WAIT_MS = 100  # quitting blocks the GUI at most this long for the render thread; then it waits hidden
QUIT_POLL_MS = 20  # how often a hidden, quitting window checks whether its threads have ended


class MainWindow(QMainWindow):
    """NeuralGS Studio's window. ``settings``: where recent files live (default: the user's QSettings).

    ``modal_errors`` False: errors are logged and signalled (``errorShown``) without a dialog (``--screenshot``).
    """

    errorShown = Signal(str, str)  # title, message
    closed = Signal()  # the window closed for good: its threads have ended (main.py quits on it)

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("NeuralGS Studio")
        self.settings = settings or QSettings("NeuralGS", "NeuralGS Studio")
        self.session = Session()
        self.shutdown_complete = False  # closed for good: no thread of this window runs any more
        self._quitting = False
        self._quit_started = 0.0
        self._quit_timer = QTimer(self, interval=QUIT_POLL_MS)
        self._quit_timer.timeout.connect(self._poll_shutdown)
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
        self.compression = CompressionController(self.session, self.panel, self.loss, self.clusters, self,
                                                 self.settings)
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
        self.setWindowTitle(s.title())
        self.status_label.setText("Result not exported" if s.has_unexported_result else "")
        self.status_label.setToolTip("The compressed result exists only in memory: File > Export .ngs (Ctrl+E) "
                                     "keeps it" if s.has_unexported_result else "")

    # -- quitting ---------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.shutdown_complete:
            super().closeEvent(event)
            return
        if not self._quitting:
            if not self.files.confirm_discard("Quit NeuralGS Studio?", self.close):
                event.ignore()  # Cancel, or Export… first (which closes again once written)
                return
            self._begin_shutdown()
        if not self._threads_ended():
            # A QThread destroyed while it runs aborts the process: wait for both threads, but hidden, with
            # the event loop running (a large scene's fine-tuning step or render can take seconds)
            event.ignore()
            self.hide()
            return
        self._end_shutdown()
        super().closeEvent(event)

    def _begin_shutdown(self) -> None:
        self._quitting = True
        self._quit_started = time.monotonic()
        self.compression.request_stop()
        self.viewport.shutdown(QUIT_WAIT_MS)  # asks the render thread to stop; waits for it briefly
        self._quit_timer.start()

    def _threads_ended(self) -> bool:
        worker = self.compression.worker
        return ((worker is None or not worker.isRunning()) and not self.viewport.thread.isRunning()
                and not self.tasks.busy_with("export"))

    def _poll_shutdown(self) -> None:
        if self._threads_ended():
            self.close()

    def _end_shutdown(self) -> None:
        self._quit_timer.stop()
        self.shutdown_complete = True
        log.info("closed %.2f s after quitting", time.monotonic() - self._quit_started)
        self.closed.emit()

    def wait_closed(self, timeout_s: float = 60.0) -> bool:
        """Process events until the window has closed for good (after ``close()`` outside an event loop, e.g.
        once ``app.exec()`` returned); False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not self.shutdown_complete and self._quitting and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.005)
        return self.shutdown_complete
