"""Every modal question the window asks, in one place (tests replace these functions).

File dialogs, the overwrite question, the questions before work is thrown away (:func:`ask_discard`) and
before a ``.ngs`` of another scene is opened (:func:`ask_foreign_ngs`), the size and side of a render-only still
(:func:`ask_render_options`), the custom background colour (:func:`ask_color`), the About box and error messages.
Errors name the file and the problem: ``core.errors.InputFileError`` (and its subclass ``NgsFormatError``) already read
``"<path>: <problem>"``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QColorDialog, QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QMessageBox, QSpinBox, QWidget)

from core.errors import InputFileError

log = logging.getLogger(__name__)

SCENE_FILTER = ("Scenes (*.ply *.splat *.spz *.sog meta.json *.ngs);;Gaussian splats (*.ply *.splat *.spz *.sog "
                "meta.json);;NeuralGS (*.ngs);;All files (*)")
CAMERAS_FILTER = "Cameras (cameras.json transforms*.json *.json cameras.bin cameras.txt);;All files (*)"


def ask_open_scene(parent: QWidget, folder: str = "") -> str:
    """A scene file to open ('' when cancelled)."""
    return QFileDialog.getOpenFileName(parent, "Open scene", folder, SCENE_FILTER)[0]


def ask_open_cameras(parent: QWidget, folder: str = "") -> str:
    """A dataset folder or a cameras file ('' when cancelled). Folders: a dataset or a COLMAP model."""
    box = QMessageBox(QMessageBox.Icon.Question, "Open dataset or cameras",
                      "Open a dataset folder (its images become the fine-tuning targets) or a cameras file?",
                      parent=parent)
    folder_button = box.addButton("Dataset folder…", QMessageBox.ButtonRole.AcceptRole)
    file_button = box.addButton("Cameras file…", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    if box.clickedButton() is folder_button:
        return QFileDialog.getExistingDirectory(parent, "Open dataset folder", folder)
    if box.clickedButton() is file_button:
        return QFileDialog.getOpenFileName(parent, "Open cameras file", folder, CAMERAS_FILTER)[0]
    return ""


def ask_save_path(parent: QWidget, title: str, suggested: str, file_filter: str) -> str:
    """Where to save ('' when cancelled). Overwriting is asked separately (:func:`ask_overwrite`)."""
    return QFileDialog.getSaveFileName(parent, title, suggested, file_filter,
                                       options=QFileDialog.Option.DontConfirmOverwrite)[0]


def ask_overwrite(parent: QWidget, path: Path) -> bool:
    """Whether to replace an existing file."""
    answer = QMessageBox.question(parent, "Replace file?", f"{path} already exists.\nReplace it?",
                                  QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                  QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_discard(parent: QWidget, title: str, text: str, can_export: bool = True) -> str:
    """Before work is thrown away (an unexported result, a run in progress): "export" (Export…, then go on),
    "discard" (go on) or "cancel" (do nothing). ``can_export`` False: no Export… button (nothing to export)."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, parent=parent)
    box.setObjectName("discardDialog")
    export = box.addButton("Export…", QMessageBox.ButtonRole.AcceptRole) if can_export else None
    discard = box.addButton(QMessageBox.StandardButton.Discard)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(export or cancel)
    box.setEscapeButton(cancel)
    box.exec()
    clicked = box.clickedButton()
    if export is not None and clicked is export:
        return "export"
    return "discard" if clicked is discard else "cancel"


def ask_foreign_ngs(parent: QWidget, text: str) -> str:
    """A ``.ngs`` made from another scene than the open one (``text`` names both): "own" (open it as its own
    scene, closing the original) or "cancel"."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Compressed file of another scene", text, parent=parent)
    box.setObjectName("foreignNgsDialog")
    box.setInformativeText("Comparing them would measure the wrong thing. Open the compressed file as a scene of "
                           "its own (the open original closes), or cancel?")
    own = box.addButton("Open as its own scene", QMessageBox.ButtonRole.AcceptRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setEscapeButton(cancel)
    box.exec()
    return "own" if box.clickedButton() is own else "cancel"


RENDER_PRESETS = [("Full HD", 1920, 1080), ("4K UHD", 3840, 2160)]


class RenderOptionsDialog(QDialog):
    """Size (presets, the view's size, custom up to ``max_size``) and side (``sides``: keys of
    ``app.viewport.SIDE_NAMES``) of a render-only still; ``choice()`` = (width, height, side)."""

    def __init__(self, parent: QWidget | None, view_size: tuple[int, int], sides: dict[str, str],
                 max_size: int) -> None:
        super().__init__(parent)
        self.setObjectName("renderOptionsDialog")
        self.setWindowTitle("Save render")
        form = QFormLayout(self)
        self.preset = QComboBox()
        for name, w, h in RENDER_PRESETS:
            self.preset.addItem(f"{w} × {h} ({name})", (w, h))
        self.preset.addItem(f"{view_size[0]} × {view_size[1]} (the view's size)", tuple(view_size))
        self.preset.addItem("Custom…", None)
        self.preset.setToolTip("The size of the PNG in pixels (side by side: both halves together)")
        form.addRow("Resolution", self.preset)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box, value in ((self.width_box, 1920), (self.height_box, 1080)):
            box.setRange(1, max_size)
            box.setValue(value)
            box.setSuffix(" px")
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_box)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_box)
        form.addRow("Custom size", size_row)
        self.side = QComboBox()
        for key, name in sides.items():
            self.side.addItem(name, key)
        self.side.setCurrentIndex(self.side.count() - 1)
        self.side.setToolTip("Which render: the original A, the compressed B, or both side by side (A left)")
        form.addRow("Show", self.side)
        note = QLabel("The view's camera at this size: same pose and vertical field of view, the width follows the "
                      "size's aspect. Rendered in the background; Cancel stops it.")
        note.setWordWrap(True)
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.preset.currentIndexChanged.connect(self._preset_changed)
        self._preset_changed()

    def _preset_changed(self) -> None:
        size = self.preset.currentData()
        for box in (self.width_box, self.height_box):
            box.setEnabled(size is None)
        if size is not None:
            self.width_box.setValue(size[0])
            self.height_box.setValue(size[1])

    def choice(self) -> tuple[int, int, str]:
        return self.width_box.value(), self.height_box.value(), self.side.currentData()


def ask_render_options(parent: QWidget, view_size: tuple[int, int], sides: dict[str, str],
                       max_size: int = 16384) -> tuple[int, int, str] | None:
    """(width, height, side) of a render-only still, None when cancelled; ``sides``: {key: name} offered."""
    dialog = RenderOptionsDialog(parent, view_size, sides, max_size)
    return dialog.choice() if dialog.exec() == QDialog.DialogCode.Accepted else None


def ask_color(parent: QWidget, initial: tuple[float, float, float]) -> tuple[float, float, float] | None:
    """A colour (RGB in [0, 1]) from the colour dialog, starting at ``initial``; None when cancelled."""
    color = QColorDialog.getColor(QColor.fromRgbF(*initial), parent, "Background colour")
    return (color.redF(), color.greenF(), color.blueF()) if color.isValid() else None


def show_about(parent: QWidget, title: str, html: str) -> None:
    """The About box (rich text)."""
    box = QMessageBox(QMessageBox.Icon.NoIcon, title, html, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("aboutDialog")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.exec()


def show_error(parent: QWidget, title: str, message: str) -> None:
    """A modal error message (also logged)."""
    log.error("%s: %s", title, message)
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.exec()


def show_info(parent: QWidget, title: str, message: str) -> None:
    QMessageBox.information(parent, title, message)


def error_message(exc: BaseException, path: str | Path | None = None) -> str:
    """One readable sentence for an exception, naming the file when the exception does not already."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, InputFileError):
        return text  # "<path>: <problem>"
    if path is not None and str(path) not in text:
        return f"{path}: {text}"
    return text
