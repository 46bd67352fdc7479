"""The File side of the main window: opening scenes, .ngs files, datasets and cameras, exporting, screenshots.

:class:`FileActions` is a part of :class:`~app.main_window.MainWindow` (a mixin: it uses the window's
``tasks``, ``viewport``, ``view``, ``table``, ``loss``, ``settings`` and status bar). Every file is read and
written off the GUI thread through ``tasks``; errors become a dialog naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QBuffer, QIODevice

from app import dialogs
from app.documents import OriginalScene, export_ngs, export_ply, load_any
from app.menus import add_recent, fill_recent_menu


class FileActions:
    """Open, export and screenshot (part of MainWindow)."""

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
