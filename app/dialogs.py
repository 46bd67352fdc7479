"""Every modal question the window asks, in one place (tests replace these functions).

File dialogs, the overwrite question, the questions before work is thrown away (:func:`ask_discard`) and
before a ``.ngs`` of another scene is opened (:func:`ask_foreign_ngs`), and error messages. Errors name the
file and the problem: ``core.errors.InputFileError`` (and its subclass ``NgsFormatError``) already read
``"<path>: <problem>"``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

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
