"""Menus, toolbar, recent files and the shortcut list of the main window.

The controllers create their actions (:func:`make_action`); :func:`build_menus` arranges them, with the
widgets' own, into the menus and the toolbar and returns them by name. It sets nothing on the window.

Buttons that carry their own shortcut (Run F5, Pause F6, Cancel Shift+F5, Solo Alt+S, Show all Alt+A,
Colour by cluster C, Log scale L) appear in the menus as actions that click them, with the key shown
after a tab: one shortcut, one owner, no ambiguity.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QToolBar, QWidget

if TYPE_CHECKING:
    from app.main_window import MainWindow

RECENT_KEY = "recent_files"
MAX_RECENT = 8
UP_AXES = {"-y (COLMAP / 3DGS captures)": (0.0, -1.0, 0.0), "+z (Blender, NeRF-synthetic)": (0.0, 0.0, 1.0),
           "+y": (0.0, 1.0, 0.0), "-z": (0.0, 0.0, -1.0)}

SHORTCUTS = [
    ("Ctrl+O", "Open a scene (.ply, .compressed.ply, .splat, .spz, .sog, .ngs)"),
    ("Ctrl+Shift+O", "Open a dataset folder or a cameras file"),
    ("Ctrl+E / Ctrl+Shift+E", "Export the compressed scene as .ngs / as a decompressed .ply"),
    ("Ctrl+Alt+E", "Export as SPZ: the compressed scene as decoded, or the original when there is no result"),
    ("F12 / Shift+F12", "Save a screenshot of the window / a render alone at a chosen resolution (A, B or both)"),
    ("F5 / F6 / Shift+F5", "Run / pause-resume / cancel the compression"),
    ("1 2 3 4", "Compare mode: side by side, split, A/B flip, difference heat map"),
    ("B", "Flip between A (original) and B (compressed)"),
    ("F", "Frame the scene"),
    ("G", "Fly mode (left drag looks around instead of orbiting)"),
    ("Left drag / right or middle drag / wheel", "Orbit / pan / zoom (Shift+left drag pans too)"),
    ("W A S D Q E (Shift: faster)", "Fly forward, left, back, right, down, up"),
    ("Arrow keys, + / -", "Orbit in 5° steps, zoom"),
    ("] / [", "Next / previous training camera"),
    ("Space, Alt+S, Alt+A", "Toggle the selected cluster, solo it, show all clusters"),
    ("C", "Colour by cluster"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Undo / redo a change of the clusters shown (toggle, solo, show all)"),
    ("L", "Log scale of the loss plot"),
    ("F1", "This list"),
    ("Ctrl+Q", "Quit"),
]


def make_action(widget: QWidget, text: str, slot, shortcut: str | None = None, tip: str = "") -> QAction:
    """An action of ``widget`` (its shortcut works wherever the window has focus) that calls ``slot()``."""
    act = QAction(text, widget)
    if shortcut:
        act.setShortcut(QKeySequence(shortcut))
    act.setToolTip(tip or text)
    act.setStatusTip(tip or text)
    act.triggered.connect(lambda _=False: slot())
    widget.addAction(act)
    return act


def _clicker(win, text: str, button, key: str) -> QAction:
    """A menu entry that clicks ``button`` (which owns the shortcut ``key``)."""
    act = QAction(f"{text}\t{key}", win)
    act.setToolTip(button.toolTip())
    act.triggered.connect(lambda _=False: button.click())
    return act


def build_menus(win: MainWindow) -> dict[str, QAction]:
    """Create the menus and the toolbar of ``win`` from its controllers' actions (``win.files``,
    ``win.cameras``) and its widgets' (``view``, ``loss``, ``panel``, ``table``), plus Quit and the
    shortcut list; returns every named action (the controllers' and those two) by name."""
    files, cameras = win.files, win.cameras
    acts: dict[str, QAction] = {**files.actions, **cameras.actions}
    acts["quit"] = make_action(win, "&Quit", win.close, "Ctrl+Q", "Quit (Ctrl+Q)")
    acts["shortcuts"] = make_action(win, "&Keyboard shortcuts", win.show_shortcuts, "F1",
                                    "All keyboard shortcuts (F1)")
    mb = win.menuBar()

    file_menu = mb.addMenu("&File")
    file_menu.addActions([acts["open"], acts["open_cameras"]])
    file_menu.addMenu(files.recent_menu)
    file_menu.addSeparator()
    file_menu.addActions([acts["export_ngs"], acts["export_ply"], acts["export_spz"]])
    file_menu.addSeparator()
    file_menu.addActions([acts["screenshot"], acts["save_render"]])
    file_menu.addSeparator()
    file_menu.addAction(acts["quit"])

    view_menu = mb.addMenu("&View")
    view_menu.addActions(win.view.view_actions)
    view_menu.addSeparator()
    view_menu.addActions([acts["prev_camera"], acts["next_camera"]])
    up_menu = view_menu.addMenu("World &up axis")
    up_menu.addActions(cameras.up_group.actions())
    view_menu.addAction(_clicker(win, "Log scale (loss plot)", win.loss.log_box, "L"))
    bg_menu = view_menu.addMenu("&Background")
    bg_menu.setToolTipsVisible(True)
    bg_menu.addActions(win.background_group.actions())

    run_menu = mb.addMenu("&Compression")
    run_menu.addAction(_clicker(win, "Run", win.panel.run_button, "F5"))
    run_menu.addAction(_clicker(win, "Pause / resume", win.panel.pause_button, "F6"))
    run_menu.addAction(_clicker(win, "Cancel", win.panel.cancel_button, "Shift+F5"))

    cl_menu = mb.addMenu("C&lusters")
    cl_menu.addAction(_clicker(win, "Solo the selected cluster", win.table.solo_button, "Alt+S"))
    cl_menu.addAction(_clicker(win, "Show all clusters", win.table.all_button, "Alt+A"))
    cl_menu.addAction(_clicker(win, "Colour by cluster", win.table.color_box, "C"))
    prediction = QAction("B: NeuralGS prediction only", win)  # the table's switch, greyed out as it is
    prediction.setToolTip(win.table.prediction_box.toolTip())
    prediction.triggered.connect(lambda _=False: win.table.prediction_box.click())
    cl_menu.aboutToShow.connect(lambda: prediction.setEnabled(win.table.prediction_box.isEnabled()))
    cl_menu.addAction(prediction)
    cl_menu.addSeparator()
    acts.update(win.clusters.actions)  # Undo / Redo own Ctrl+Z / Ctrl+Shift+Z
    cl_menu.addActions([acts["undo_clusters"], acts["redo_clusters"]])

    help_menu = mb.addMenu("&Help")
    help_menu.addAction(acts["shortcuts"])
    help_menu.addAction(make_action(win, "&About NeuralGS Studio", win.show_about, None, "Versions of the app and of "
                                    "what it runs on, the renderer, the demo scene's licence"))  # no key: unnamed

    tb = QToolBar("View", win)
    tb.setObjectName("viewToolbar")
    tb.addActions(list(win.view.mode_actions.values()))
    tb.addSeparator()
    tb.addActions([win.view.flip_action, win.view.frame_action, win.view.fly_action])
    tb.addSeparator()
    tb.addAction(acts["prev_camera"])
    tb.addWidget(cameras.box)
    tb.addAction(acts["next_camera"])
    win.addToolBar(tb)
    return acts


# -- recent files ---------------------------------------------------------------------------------------
def recent_files(settings: QSettings) -> list[str]:
    value = settings.value(RECENT_KEY, [])
    if isinstance(value, str):  # QSettings returns a lone string for a one-element list
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent(settings: QSettings, path: str | Path) -> list[str]:
    """Put ``path`` first in the recent list (at most MAX_RECENT, no duplicates); returns the list."""
    p = str(Path(path).resolve())
    items = [p] + [q for q in recent_files(settings) if q != p]
    settings.setValue(RECENT_KEY, items[:MAX_RECENT])
    settings.sync()
    return items[:MAX_RECENT]
