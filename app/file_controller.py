"""The File menu: opening scenes, ``.ngs`` files, datasets and cameras, recent files, exporting, screenshots, renders.

:class:`FileController` owns the File menu's actions and the recent-files menu. Every file is read and
written off the GUI thread through the window's :class:`~app.tasks.TaskRunner`; the task callbacks
make the session's transitions (``open_scene``, ``open_compressed``, ``set_cameras``, ``mark_exported``)
and show the outcome through the other controllers. Errors become a dialog naming the file and the
problem (``errorRaised``).

Nothing is thrown away without asking (:meth:`FileController.confirm_discard`): opening a file while a run is
in progress or a result is not exported asks Export… / Discard / Cancel (so does quitting, through the window).
A ``.ngs`` made from another scene than the open one is not put beside it silently (:meth:`Session.source_check`).
Exports are proposed in the last export folder (the settings' ``EXPORT_FOLDER_KEY``), never over a file the
session shows.

Export as SPZ writes the compressed scene B as decoded, or the original A when there is no result (the dialog's
title says which), as SPZ version 4. Save render… (Shift+F12) writes a render-only PNG of the view's camera at a
chosen size, of A, B or both side by side, rendered in the background with a progress dialog whose Cancel stops
it before anything is written; F12 still saves the whole window.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QSettings, Qt, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QProgressDialog, QWidget

from app import dialogs
from app.camera_controller import CameraController
from app.cluster_controller import ClusterController
from app.compression_controller import CompressionController
from app.documents import CompressedScene, OriginalScene, export_ngs, export_ply, load_any
from app.menus import add_recent, make_action, recent_files
from app.session import Session
from app.tasks import Cancelled, Progress, TaskRunner
from app.viewport import MAX_STILL_SIZE, SIDE_NAMES, STILL_SIDES, Viewport
from widgets.units import human_bytes

log = logging.getLogger(__name__)

EXPORT_FOLDER_KEY = "last_export_folder"
SPZ_VERSION = 4
RENDER_PROGRESS_DELAY_MS = 400  # a render that ends sooner shows no progress dialog


def write_spz_scene(scene, path: Path, overwrite: bool) -> int:
    """Write ``scene`` as SPZ version 4, atomically; the number of bytes written."""
    from core.io.spz import write_spz

    return write_spz(scene, path, SPZ_VERSION, overwrite)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == Path(b).resolve()
    except OSError:
        return False


class FileController(QObject):
    """See the module docstring. ``window``: the parent of the dialogs, the owner of the actions and what a
    screenshot shows. Signals: ``changed`` (the window refreshes), ``statusMessage(text, ms)`` (0: until
    replaced), ``errorRaised(title, message)``."""

    changed = Signal()
    statusMessage = Signal(str, int)
    errorRaised = Signal(str, str)

    def __init__(self, session: Session, window: QWidget, tasks: TaskRunner, settings: QSettings,
                 viewport: Viewport, compression: CompressionController, clusters: ClusterController,
                 cameras: CameraController) -> None:
        super().__init__(window)
        self.session, self.window, self.tasks, self.settings = session, window, tasks, settings
        self.viewport, self.compression, self.clusters, self.cameras = viewport, compression, clusters, cameras
        self.actions: dict[str, QAction] = {
            "open": make_action(window, "&Open scene…", self.open_scene_dialog, "Ctrl+O",
                                "Open a .ply, .compressed.ply, .splat, .spz, .sog or .ngs file (Ctrl+O)"),
            "open_cameras": make_action(window, "Open &dataset or cameras…", self.open_cameras_dialog,
                                        "Ctrl+Shift+O", "A dataset folder (images become the targets) or a cameras "
                                                        "file (Ctrl+Shift+O)"),
            "export_ngs": make_action(window, "&Export .ngs…", self.export_ngs_dialog, "Ctrl+E",
                                      "Save the compressed scene as a .ngs file (Ctrl+E)"),
            "export_ply": make_action(window, "Export decompressed .&ply…", self.export_ply_dialog, "Ctrl+Shift+E",
                                      "Save the decoded compressed scene as a standard .ply (Ctrl+Shift+E)"),
            "export_spz": make_action(window, "Export as SP&Z…", self.export_spz_dialog, "Ctrl+Alt+E",
                                      "Save the compressed scene as decoded (or the original when there is no "
                                      "result) as an SPZ v4 file, for other splat viewers and editors (Ctrl+Alt+E)"),
            "screenshot": make_action(window, "Save &screenshot…", self.screenshot_dialog, "F12",
                                      "Save a PNG of the window (F12)"),
            "save_render": make_action(window, "Save &render…", self.save_render_dialog, "Shift+F12",
                                       "Save a PNG of the view's render alone (A, B or side by side) at a chosen "
                                       "resolution (Shift+F12)"),
        }
        self.render_progress: Progress | None = None  # the render-only still being made
        self.progress_dialog: QProgressDialog | None = None
        self.recent_menu = QMenu("Open &recent", window)
        self.fill_recent_menu()

    # -- opening files --------------------------------------------------------------------------------
    def open_scene_dialog(self) -> None:
        path = dialogs.ask_open_scene(self.window, str(self.session.folder()))
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """Load a scene or .ngs file in the background; errors become a dialog naming the file. A run in
        progress or an unexported result is not dropped without asking (:meth:`confirm_discard`)."""
        if self.confirm_discard(f"Open {Path(path).name}?", lambda: self.open_path(path)):
            self._start_open(path)

    def _start_open(self, path: str | Path) -> None:
        self.statusMessage.emit(f"Opening {path}…", 0)
        self.tasks.submit(lambda: load_any(path), lambda doc: self._loaded(doc, Path(path)),
                          lambda exc: self.errorRaised.emit("Cannot open file", dialogs.error_message(exc, path)),
                          "open")

    def confirm_discard(self, question: str, retry: Callable[[], None]) -> bool:
        """Whether to go on with what ``question`` asks ("Open x.ply?", "Quit NeuralGS Studio?") now, after
        asking when it would throw away a run in progress or a result not exported: Export… (exports the result,
        then calls ``retry``; False now), Discard (cancels the run; True), Cancel (False). Nothing to lose: True
        without a question."""
        running = self.compression.worker is not None and not self.compression.worker.cancelling
        unexported = self.session.has_unexported_result
        if not running and not unexported:
            return True
        parts = []
        if running:
            parts.append("The compression that is running will be cancelled.")
        if unexported:
            cs = self.session.compressed
            parts.append(f"The compressed result ({cs.n_clusters} clusters, {human_bytes(cs.n_bytes)}) has not been "
                         "exported: export it first?")
        answer = dialogs.ask_discard(self.window, question.rstrip("?"), f"{question}\n\n" + " ".join(parts),
                                     unexported)
        log.info("%s %s: %s", question, " ".join(parts), answer)
        if answer == "cancel":
            return False
        if running:
            self.compression.cancel()
        if answer == "export" and unexported:
            self.export_ngs_dialog(then=lambda: self._after_export(retry))
            return False
        return True

    def _after_export(self, retry: Callable[[], None]) -> None:
        if not self.session.has_unexported_result:
            retry()

    def _loaded(self, doc: OriginalScene | CompressedScene, path: Path) -> None:
        add_recent(self.settings, path)
        self.fill_recent_menu()
        if isinstance(doc, OriginalScene):
            self.compression.cancel()
            self._show_original(doc, path, self.session.open_scene(doc))
            return
        check = self.session.source_check(doc)
        if check.verdict != "different":  # beside the open original (or alone: nothing was open)
            self.session.open_compressed(doc)
            self._opened_ngs(doc, path, None, check.message if check.verdict == "unknown" else "")
        elif dialogs.ask_foreign_ngs(self.window, check.message) == "own":  # a scene of its own
            self._opened_ngs(doc, path, self.session.open_compressed_alone(doc))
        else:
            self.statusMessage.emit(f"Not opened: {check.message}", 10000)
            return
        if self.session.original is None:
            self.viewport.set_scene(0, None)
            self.cameras.frame(doc.bounds)

    def _show_original(self, doc: OriginalScene, path: Path, dropped) -> None:
        self.compression.reset_plot()
        self.viewport.set_scene(0, doc.scene)
        self.clusters.show_result()  # no result: an empty table, no B side
        self.cameras.frame(doc.bounds)
        for w in doc.warnings:
            self.statusMessage.emit(f"{path.name}: {w}", 10000)
        self.statusMessage.emit(f"Opened {path}{self._dropped_text(dropped)}", 10000 if dropped else 5000)
        self.changed.emit()

    def _opened_ngs(self, doc: CompressedScene, path: Path, dropped, note: str = "") -> None:
        self.compression.show_opened(doc)
        self.clusters.show_result()
        extra = f" · {note}" if note else ""
        self.statusMessage.emit(f"Opened {path}{self._dropped_text(dropped)}{extra}", 10000 if dropped or note
                                else 5000)
        self.changed.emit()

    @staticmethod
    def _dropped_text(dropped) -> str:
        if dropped is None:
            return ""
        cams = dropped.camera_set
        source = getattr(cams, "source", None)
        what = f"{len(cams.cameras)} from {Path(source).name}" if source is not None else f"{len(cams.cameras)}"
        return f" · Cameras of {dropped.scene.name} dropped ({what})"

    def open_cameras_dialog(self) -> None:
        path = dialogs.ask_open_cameras(self.window, str(self.session.folder()))
        if path:
            self.open_cameras(path)

    def open_cameras(self, path: str | Path) -> None:
        """Load a dataset folder or cameras file (training cameras, and targets when it has images)."""
        from core.cameras import load_cameras

        self.tasks.submit(lambda: load_cameras(path), self._cameras_loaded,
                          lambda exc: self.errorRaised.emit("Cannot open cameras", dialogs.error_message(exc, path)),
                          "cameras")

    def _cameras_loaded(self, camera_set) -> None:
        self.session.set_cameras(camera_set)
        images = sum(c.image_path is not None for c in camera_set.cameras)
        skipped = f", {len(camera_set.skipped)} skipped" if camera_set.skipped else ""
        self.statusMessage.emit(f"{len(camera_set)} cameras from {camera_set.source} ({images} with images"
                                f"{skipped})", 10000)
        self.cameras.follow_cameras_up()
        self.changed.emit()

    # -- recent files ---------------------------------------------------------------------------------
    def fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        items = recent_files(self.settings)
        for i, p in enumerate(items):
            act = self.recent_menu.addAction(f"&{i + 1} {Path(p).name}", lambda p=p: self.open_path(p))
            act.setToolTip(p)
        self.recent_menu.setEnabled(bool(items))

    # -- export and screenshots -----------------------------------------------------------------------
    def refresh(self) -> None:
        """Export is possible once there is a compressed scene."""
        for name in ("export_ngs", "export_ply"):
            self.actions[name].setEnabled(self.session.compressed is not None)
        has_scene = self.session.compressed is not None or self.session.original is not None
        self.actions["export_spz"].setEnabled(has_scene)
        self.actions["save_render"].setEnabled(has_scene)

    def export_folder(self) -> Path:
        """Where exports are proposed: the last export's folder (kept in the settings), else the scene's."""
        last = self.settings.value(EXPORT_FOLDER_KEY, "")
        if last and Path(str(last)).is_dir():
            return Path(str(last))
        return self.session.folder()

    def _suggestion(self, folder: Path, base: str, suffix: str) -> Path:
        """``folder/base+suffix``, or ``base-2``, ``base-3``... when that is a file the session shows."""
        sources = [p for p in (self.session.original.path if self.session.original else None,
                               self.session.compressed.path if self.session.compressed else None) if p is not None]
        candidate, i = folder / f"{base}{suffix}", 2
        while any(_same_file(candidate, p) for p in sources):
            candidate, i = folder / f"{base}-{i}{suffix}", i + 1
        return candidate

    def _ask_target(self, title: str, suffix: str, file_filter: str, base: str | None = None
                    ) -> tuple[Path, bool] | None:
        """(path, overwrite) from a save dialog, asking before replacing a file; None when cancelled. The proposal
        (``base`` + suffix when given) is never a file the session shows (:meth:`Session.export_suggestion`)."""
        folder = self.export_folder() if suffix != ".png" else self.session.folder()
        suggested = str(self.session.export_suggestion(suffix, folder) if base is None
                        else self._suggestion(folder, base, suffix))
        path = dialogs.ask_save_path(self.window, title, suggested, file_filter)
        if not path:
            return None
        p = Path(path)
        if not p.name.lower().endswith(suffix.lower()):
            p = p.with_name(p.name + suffix)
        if p.exists():
            if not dialogs.ask_overwrite(self.window, p):
                return None
            return p, True
        return p, False

    def export_ngs_dialog(self, then: Callable[[], None] | None = None) -> None:
        """Ask where, then write the .ngs in the background; ``then()`` after it was written."""
        self._export("Export .ngs", ".ngs", "NeuralGS (*.ngs)", export_ngs, then)

    def export_ply_dialog(self) -> None:
        self._export("Export decompressed .ply", ".ply", "Gaussian splats (*.ply)", export_ply)

    def _export(self, title: str, suffix: str, file_filter: str, writer,
                then: Callable[[], None] | None = None) -> None:
        cs = self.session.compressed
        if cs is None:
            self.errorRaised.emit(title, "There is no compressed scene yet: run a compression (F5) or open a .ngs "
                                         "file.")
            return
        target = self._ask_target(title, suffix, file_filter)
        if target is None:
            return
        path, overwrite = target
        self.statusMessage.emit(f"Writing {path}…", 0)
        self.tasks.submit(lambda: writer(cs, path, overwrite), lambda n: self._exported(cs, path, n, then),
                          lambda exc: self.errorRaised.emit(f"{title} failed", dialogs.error_message(exc, path)),
                          "export")

    def _exported(self, cs: CompressedScene, path: Path, n_bytes: int,
                  then: Callable[[], None] | None = None) -> None:
        self.session.mark_exported(path, cs)
        self.settings.setValue(EXPORT_FOLDER_KEY, str(path.parent))
        self.statusMessage.emit(f"Wrote {path} ({n_bytes:,} bytes)", 10000)
        self.changed.emit()  # the title's "•" goes
        if then is not None:
            then()

    def spz_source(self) -> tuple[object, str, str] | None:
        """(scene, what, file-name stem) Export as SPZ writes: B as decoded, else A; None when nothing is open."""
        stem = self.session.export_stem()
        if self.session.compressed is not None:
            return self.session.compressed.scene, "compressed scene B, as decoded", f"{stem}-neuralgs"
        if self.session.original is not None:
            return self.session.original.scene, "original scene A", stem
        return None

    def export_spz_dialog(self) -> None:
        """Ask where (never over the input, asking before replacing), then write the SPZ in the background."""
        source = self.spz_source()
        if source is None:
            self.errorRaised.emit("Export as SPZ", "There is no scene to export: open one first (Ctrl+O).")
            return
        scene, what, stem = source
        title = f"Export as SPZ: {what}"
        target = self._ask_target(title, ".spz", "SPZ splats (*.spz)", stem)
        if target is None:
            return
        path, overwrite = target
        self.statusMessage.emit(f"Writing {path}…", 0)
        self.tasks.submit(lambda: write_spz_scene(scene, path, overwrite),
                          lambda n: self._spz_written(path, n, what),
                          lambda exc: self.errorRaised.emit("Export as SPZ failed", dialogs.error_message(exc, path)),
                          "export")

    def _spz_written(self, path: Path, n_bytes: int, what: str) -> None:
        self.settings.setValue(EXPORT_FOLDER_KEY, str(path.parent))
        self.statusMessage.emit(f"Wrote {path} ({what}, SPZ v{SPZ_VERSION}, {n_bytes:,} bytes)", 10000)

    # -- render-only stills ----------------------------------------------------------------------
    def render_sides(self) -> dict[str, str]:
        """The stills Save render can make now: {key of STILL_SIDES: name}."""
        have = set(self.viewport.sides())
        return {k: SIDE_NAMES[k] for k, sides in STILL_SIDES.items() if set(sides) <= have}

    def save_render_dialog(self) -> None:
        """Ask the size and side, then where; then render in the background (:meth:`start_render`)."""
        if self.render_progress is not None:
            self.statusMessage.emit("A render is already being saved", 5000)
            return
        sides = self.render_sides()
        if not sides:
            self.errorRaised.emit("Save render", "There is nothing to render: open a scene first (Ctrl+O).")
            return
        view = self.viewport.view
        choice = dialogs.ask_render_options(self.window, (view.width(), view.height()), sides, MAX_STILL_SIZE)
        if choice is None:
            return
        width, height, side = choice
        target = self._ask_target("Save render", ".png", "PNG images (*.png)",
                                  f"{self.session.export_stem()}-{side}-{width}x{height}")
        if target is not None:
            self.start_render(width, height, side, *target)

    def start_render(self, width: int, height: int, side: str, path: str | Path, overwrite: bool = False) -> bool:
        """Render the view's camera at ``width`` x ``height`` (``side``: "A", "B" or "AB") in the background and
        write the PNG atomically; a progress dialog (after a moment) can cancel it. False when it cannot start."""
        from core.images import save_png

        path = Path(path)
        try:
            steps, work = self.viewport.still_job(width, height, side)
        except ValueError as exc:
            self.errorRaised.emit("Save render", str(exc))
            return False
        progress = Progress(steps + 1, self)
        self.render_progress = progress
        dialog = QProgressDialog(f"Rendering {width}×{height}…", "Cancel", 0, progress.total, self.window)
        dialog.setObjectName("renderProgress")
        dialog.setWindowTitle("Save render")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(RENDER_PROGRESS_DELAY_MS)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.canceled.connect(progress.cancel)
        dialog.setValue(0)
        self.progress_dialog = dialog
        progress.changed.connect(self._render_progressed)

        def run():
            image = work(progress)
            progress.step(f"Writing {path.name}…")
            save_png(path, image, overwrite=overwrite)
            return image.shape

        self.statusMessage.emit(f"Rendering {width}×{height} ({SIDE_NAMES[side]})…", 0)
        self.tasks.submit(run, lambda shape: self._render_saved(path, shape, side),
                          lambda exc: self._render_failed(path, exc), "render")
        return True

    @Slot(int, int, str)
    def _render_progressed(self, done: int, total: int, text: str) -> None:
        if self.progress_dialog is not None:
            self.progress_dialog.setLabelText(text)
            self.progress_dialog.setValue(done)

    def cancel_render(self) -> None:
        """Stop the render being saved (before its next step; nothing is written)."""
        if self.render_progress is not None:
            self.render_progress.cancel()

    def _render_ended(self) -> None:
        self.render_progress = None
        if self.progress_dialog is not None:
            self.progress_dialog.canceled.disconnect()
            self.progress_dialog.close()
            self.progress_dialog.deleteLater()
            self.progress_dialog = None

    def _render_saved(self, path: Path, shape, side: str) -> None:
        self._render_ended()
        self.statusMessage.emit(f"Saved {path} ({shape[1]}×{shape[0]}, {SIDE_NAMES[side]})", 10000)

    def _render_failed(self, path: Path, exc: BaseException) -> None:
        self._render_ended()
        if isinstance(exc, Cancelled):
            self.statusMessage.emit("Render cancelled: nothing written", 5000)
            return
        self.errorRaised.emit("Cannot save the render", dialogs.error_message(exc, path))

    def screenshot_dialog(self) -> None:
        target = self._ask_target("Save screenshot", ".png", "PNG images (*.png)")
        if target is not None:
            try:
                self.save_screenshot(*target)
            except OSError as exc:
                self.errorRaised.emit("Cannot save the screenshot", dialogs.error_message(exc, target[0]))

    def save_screenshot(self, path: str | Path, overwrite: bool = False) -> int:
        """Write a PNG of the whole window, atomically; returns its size in bytes."""
        from core.io import atomic_write_bytes

        data = QByteArray()
        buf = QBuffer(data)
        buf.open(QIODevice.OpenModeFlag.WriteOnly)
        self.window.grab().save(buf, "PNG")
        buf.close()
        atomic_write_bytes(Path(path), bytes(data), overwrite=overwrite)
        self.statusMessage.emit(f"Saved {path}", 5000)
        return len(data)
