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

The menus are built from the controllers' actions (:func:`app.menus.build_menus`). The window owns the View menu's
background colour (black, white, grey or a custom one, remembered in the settings' ``BACKGROUND_KEY``; both sides
and the render-only stills use it, so the view's PSNR/SSIM compare like with like) and the About box (the versions
of the app and of what it runs on, the renderer in use, the demo scene's licence: :func:`about_html`).

The title names the files shown (the original, an opened ``.ngs`` beside it) and starts with "•" while a
result is not exported (the status bar says so too). Quitting (Ctrl+Q, the window's close button) asks before
an unexported result or a run is thrown away (:meth:`FileController.confirm_discard`), then never blocks the GUI
for long: the run is cancelled, the render thread asked to stop (waiting ``QUIT_WAIT_MS`` at most), and if
either is still busy the window hides at once and closes for good when both have ended (``closed``).
"""

from __future__ import annotations

import html
import logging
import platform
import time

from PySide6.QtCore import QCoreApplication, QEventLoop, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QDockWidget, QFrame, QLabel, QMainWindow, QMessageBox, QScrollArea, QSplitter

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
BACKGROUND_KEY = "view/background"  # "#rrggbb"
BACKGROUNDS = {"Black": (0.0, 0.0, 0.0), "White": (1.0, 1.0, 1.0), "Grey": (0.5, 0.5, 0.5)}
DEFAULT_BACKGROUND = BACKGROUNDS["White"]


def color_hex(rgb) -> str:
    return "#" + "".join(f"{round(255 * min(1.0, max(0.0, float(c)))):02x}" for c in rgb)


def parse_color(text) -> tuple[float, float, float] | None:
    """RGB in [0, 1] of "#rrggbb"; None for anything else."""
    text = str(text or "").strip()
    if len(text) != 7 or not text.startswith("#"):
        return None
    try:
        return tuple(int(text[i:i + 2], 16) / 255.0 for i in (1, 3, 5))
    except ValueError:
        return None


def _version(module_name: str, dist: str | None = None) -> str:
    """The installed version of a module ("not installed" when it cannot be imported)."""
    import importlib
    from importlib import metadata

    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - an optional package that is missing or broken
        return f"not installed ({type(exc).__name__})"
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            version = metadata.version(dist or module_name)
        except metadata.PackageNotFoundError:
            version = "unknown version"
    return str(version)


def demo_license() -> str:
    """The demo scene's licence in a few words (from resources/demo/donut.LICENSE)."""
    from core.paths import DEMO_SCENE

    path = DEMO_SCENE.with_suffix(".LICENSE")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return "unknown (no licence file)"
    first = text.strip().splitlines()[0] if text.strip() else ""
    kind = "MIT" if "Permission is hereby granted, free of charge" in text else "see the file"
    return f"{kind} ({path.name}: {first})"


def about_rows(renderer: str = "") -> list[tuple[str, str]]:
    """(name, version) of the app and of what it runs on; ``renderer``: the view's renderer, in words."""
    from importlib import metadata

    import PySide6
    from PySide6.QtCore import qVersion

    try:
        app_version = metadata.version("neuralgs-studio")
    except metadata.PackageNotFoundError:
        app_version = "unknown (not installed as a package)"
    rows = [("NeuralGS Studio", app_version), ("Python", platform.python_version()),
            ("PySide6 / Qt", f"{PySide6.__version__} / {qVersion()}")]
    torch_version = _version("torch")
    try:
        import torch

        cuda = (f"CUDA {torch.version.cuda} available: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available()
                else "CUDA not available")
    except Exception as exc:  # noqa: BLE001 - torch missing or its CUDA probe failing
        cuda = f"CUDA unknown ({type(exc).__name__})"
    rows += [("torch", f"{torch_version} ({cuda})"), ("numpy", _version("numpy")), ("numba", _version("numba")),
             ("gsplat", f"{_version('gsplat')} ({'CUDA' if 'not available' not in cuda else 'unused: no CUDA'})"),
             ("constriction", _version("constriction")), ("zstandard", _version("zstandard")),
             ("Renderer in use", renderer or "not started yet"), ("Demo scene licence", demo_license())]
    return rows


def about_html(renderer: str = "") -> str:
    rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>"
                   for k, v in about_rows(renderer))
    return ("<h3>NeuralGS Studio</h3><p>Compress 3D Gaussian splatting scenes with NeuralGS and compare the result "
            f"with the original.</p><table cellspacing=4>{rows}</table>")


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
        self._dock("Compression", _scrollable(self.panel), Qt.DockWidgetArea.RightDockWidgetArea)
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
        self.background_group = self._background_actions()
        self.set_background(parse_color(self.settings.value(BACKGROUND_KEY, "")) or DEFAULT_BACKGROUND, save=False)
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

    # -- background and About -----------------------------------------------------------------------
    def _background_actions(self) -> QActionGroup:
        group = QActionGroup(self)
        for name, rgb in BACKGROUNDS.items():
            act = QAction(name, self, checkable=True)
            act.setToolTip(f"Render A and B on {name.lower()}")
            act.setData(rgb)
            act.triggered.connect(lambda _=False, rgb=rgb: self.set_background(rgb))
            group.addAction(act)
        custom = QAction("Custom…", self, checkable=True)
        custom.setToolTip("Render A and B on a colour of your choice")
        custom.triggered.connect(self.choose_background)
        group.addAction(custom)
        return group

    def set_background(self, rgb, save: bool = True) -> None:
        """Render both sides (and the render-only stills) on ``rgb`` (3 floats in [0, 1]); ``save``: remember it."""
        self.viewport.set_background(rgb)
        rgb = self.viewport.background
        if save:
            self.settings.setValue(BACKGROUND_KEY, color_hex(rgb))
            self.settings.sync()
        acts = self.background_group.actions()
        preset = next((a for a in acts[:-1] if color_hex(a.data()) == color_hex(rgb)), None)
        (preset or acts[-1]).setChecked(True)
        acts[-1].setText("Custom…" if preset else f"Custom ({color_hex(rgb)})…")

    def choose_background(self) -> None:
        rgb = dialogs.ask_color(self, self.viewport.background)
        self.set_background(rgb if rgb is not None else self.viewport.background, save=rgb is not None)

    def renderer_text(self) -> str:
        res = self.viewport.last_result
        backend = res.backend if res is not None else ""
        return {"gl": "display renderer: OpenGL (EGL)", "cpu": "display renderer: numba CPU tile rasteriser"}.get(
            backend, backend)

    def show_about(self) -> None:
        dialogs.show_about(self, "About NeuralGS Studio", about_html(self.renderer_text()))

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
        self.files.cancel_render()
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


def _scrollable(widget) -> QScrollArea:
    """``widget`` in a frameless vertical scroll area: a dock whose content grows (the codec's knobs, the ETA
    lines) never forces the window taller than the screen; on a tall screen nothing changes."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setMinimumWidth(widget.minimumWidth() + 16)
    return area
