"""Every modal question the window asks, in one place (tests replace these functions).

File dialogs, the overwrite question and error messages. Errors name the file and the problem:
``core.errors.InputFileError`` (and its subclass ``NgsFormatError``) already read ``"<path>: <problem>"``.
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
