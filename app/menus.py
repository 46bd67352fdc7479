"""Menus, toolbar, recent files and the shortcut list of the main window.

Buttons that carry their own shortcut (Run F5, Pause F6, Cancel Shift+F5, Solo Alt+S, Show all Alt+A,
Colour by cluster C, Log scale L) appear in the menus as actions that click them, with the key shown
after a tab: one shortcut, one owner, no ambiguity.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QToolBar

if TYPE_CHECKING:
    from app.main_window import MainWindow

RECENT_KEY = "recent_files"
MAX_RECENT = 8
UP_AXES = {"-y (COLMAP / 3DGS captures)": (0.0, -1.0, 0.0), "+z (Blender, NeRF-synthetic)": (0.0, 0.0, 1.0),
           "+y": (0.0, 1.0, 0.0), "-z": (0.0, 0.0, -1.0)}

SHORTCUTS = [
    ("Ctrl+O", "Open a scene (.ply, .compressed.ply, .splat, .ngs)"),
    ("Ctrl+Shift+O", "Open a dataset folder or a cameras file"),
    ("Ctrl+E / Ctrl+Shift+E", "Export the compressed scene as .ngs / as a decompressed .ply"),
    ("F12", "Save a screenshot of the window"),
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
    ("L", "Log scale of the loss plot"),
    ("F1", "This list"),
    ("Ctrl+Q", "Quit"),
]


def _action(win, text: str, slot, shortcut: str | None = None, tip: str = "") -> QAction:
    act = QAction(text, win)
    if shortcut:
        act.setShortcut(QKeySequence(shortcut))
    act.setToolTip(tip or text)
    act.setStatusTip(tip or text)
    act.triggered.connect(lambda _=False: slot())
    win.addAction(act)
    return act


def _clicker(win, text: str, button, key: str) -> QAction:
    """A menu entry that clicks ``button`` (which owns the shortcut ``key``)."""
    act = QAction(f"{text}\t{key}", win)
    act.setToolTip(button.toolTip())
    act.triggered.connect(lambda _=False: button.click())
    return act


def build_menus(win: "MainWindow") -> dict[str, QAction]:
    """Create the menus and the toolbar of ``win``; returns the actions by name."""
    acts: dict[str, QAction] = {}
    mb = win.menuBar()

    file_menu = mb.addMenu("&File")
    acts["open"] = _action(win, "&Open scene…", win.open_scene_dialog, "Ctrl+O",
                           "Open a .ply, .compressed.ply, .splat or .ngs file (Ctrl+O)")
    acts["open_cameras"] = _action(win, "Open &dataset or cameras…", win.open_cameras_dialog, "Ctrl+Shift+O",
                                   "A dataset folder (images become the targets) or a cameras file (Ctrl+Shift+O)")
    win.recent_menu = file_menu.addMenu("Open &recent")
    acts["export_ngs"] = _action(win, "&Export .ngs…", win.export_ngs_dialog, "Ctrl+E",
                                 "Save the compressed scene as a .ngs file (Ctrl+E)")
    acts["export_ply"] = _action(win, "Export decompressed .&ply…", win.export_ply_dialog, "Ctrl+Shift+E",
                                 "Save the decoded compressed scene as a standard .ply (Ctrl+Shift+E)")
    acts["screenshot"] = _action(win, "Save &screenshot…", win.screenshot_dialog, "F12",
                                 "Save a PNG of the window (F12)")
    acts["quit"] = _action(win, "&Quit", win.close, "Ctrl+Q", "Quit (Ctrl+Q)")
    file_menu.addActions([acts["open"], acts["open_cameras"]])
    file_menu.addMenu(win.recent_menu)
    file_menu.addSeparator()
    file_menu.addActions([acts["export_ngs"], acts["export_ply"], acts["screenshot"]])
    file_menu.addSeparator()
    file_menu.addAction(acts["quit"])

    view_menu = mb.addMenu("&View")
    view_menu.addActions(win.view.view_actions)
    view_menu.addSeparator()
    acts["next_camera"] = _action(win, "Next training camera", lambda: win.step_camera(1), "]",
                                  "Jump to the next training camera (])")
    acts["prev_camera"] = _action(win, "Previous training camera", lambda: win.step_camera(-1), "[",
                                  "Jump to the previous training camera ([)")
    acts["prev_camera"].setIconText("◀")  # the toolbar shows these beside the camera list
    acts["next_camera"].setIconText("▶")
    view_menu.addActions([acts["prev_camera"], acts["next_camera"]])
    up_menu = view_menu.addMenu("World &up axis")
    win.up_group = QActionGroup(win)
    for label, vec in UP_AXES.items():
        act = QAction(label, win, checkable=True)
        act.setData(vec)
        act.triggered.connect(lambda _=False, v=vec: win.set_up_axis(v))
        win.up_group.addAction(act)
        up_menu.addAction(act)
    view_menu.addAction(_clicker(win, "Log scale (loss plot)", win.loss.log_box, "L"))

    run_menu = mb.addMenu("&Compression")
    run_menu.addAction(_clicker(win, "Run", win.panel.run_button, "F5"))
    run_menu.addAction(_clicker(win, "Pause / resume", win.panel.pause_button, "F6"))
    run_menu.addAction(_clicker(win, "Cancel", win.panel.cancel_button, "Shift+F5"))

    cl_menu = mb.addMenu("C&lusters")
    cl_menu.addAction(_clicker(win, "Solo the selected cluster", win.table.solo_button, "Alt+S"))
    cl_menu.addAction(_clicker(win, "Show all clusters", win.table.all_button, "Alt+A"))
    cl_menu.addAction(_clicker(win, "Colour by cluster", win.table.color_box, "C"))

    help_menu = mb.addMenu("&Help")
    acts["shortcuts"] = _action(win, "&Keyboard shortcuts", win.show_shortcuts, "F1", "All keyboard shortcuts (F1)")
    help_menu.addAction(acts["shortcuts"])

    tb = QToolBar("View", win)
    tb.setObjectName("viewToolbar")
    tb.addActions(list(win.view.mode_actions.values()))
    tb.addSeparator()
    tb.addActions([win.view.flip_action, win.view.frame_action, win.view.fly_action])
    tb.addSeparator()
    tb.addAction(acts["prev_camera"])
    win.camera_box = QComboBox(toolTip="Jump to a training camera (from the dataset or cameras file, else the "
                                       "views of the last compression); [ and ] step through them. Navigating "
                                       "from a camera keeps its roll (the orbit turns around its up) until "
                                       "Frame scene (F) levels the view again")
    win.camera_box.setMinimumContentsLength(18)
    tb.addWidget(win.camera_box)
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


def fill_recent_menu(win: "MainWindow") -> None:
    win.recent_menu.clear()
    items = recent_files(win.settings)
    for i, p in enumerate(items):
        act = win.recent_menu.addAction(f"&{i + 1} {Path(p).name}", lambda p=p: win.open_path(p))
        act.setToolTip(p)
    win.recent_menu.setEnabled(bool(items))
