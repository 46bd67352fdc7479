"""The main keyboard shortcuts, pressed on the real window (qtbot.keyClick): F5 / Shift+F5 run and cancel,
B flips A/B, 1-4 choose the compare mode, F frames the scene, L toggles the loss plot's log scale,
] / [ step through training cameras, F1 lists the shortcuts. A button's own shortcut (F5, Shift+F5, L)
animates a click that lands about 100 ms later, hence the waits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.app.conftest import open_and_settle


@pytest.fixture
def active(window, qtbot, small_scene_file):
    """The window with the small scene open, active (window shortcuts need an active window)."""
    open_and_settle(qtbot, window, small_scene_file)
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    return window


def test_f5_runs_and_shift_f5_cancels(active, qtbot):
    win = active
    win.panel.set_values(dict(fit_iters=100_000))  # long enough to cancel mid-run
    qtbot.keyClick(win, Qt.Key.Key_F5)
    qtbot.waitUntil(lambda: win.compression.worker is not None, timeout=2000)
    assert win.panel.cancel_button.isEnabled() and not win.panel.run_button.isEnabled()
    worker = win.compression.worker
    qtbot.keyClick(win, Qt.Key.Key_F5)  # a second F5 while running starts nothing
    qtbot.wait(300)
    assert win.compression.worker is worker
    qtbot.keyClick(win, Qt.Key.Key_F5, Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: win.compression.worker is None, timeout=10000)
    assert worker.outcome == "cancelled" and win.session.compressed is None


def test_b_flips_and_number_keys_choose_the_mode(active, qtbot):
    view = active.view
    assert view.mode == "side"
    qtbot.keyClick(active, Qt.Key.Key_B)
    assert view.mode == "flip" and view.show_b
    qtbot.keyClick(active, Qt.Key.Key_B)
    assert view.mode == "flip" and not view.show_b
    for key, mode in ((Qt.Key.Key_2, "split"), (Qt.Key.Key_4, "diff"), (Qt.Key.Key_1, "side")):
        qtbot.keyClick(active, key)
        assert view.mode == mode


def test_f_frames_the_scene(active, qtbot):
    rig = active.view.rig
    framed = rig.state()
    rig.zoom(0.3)
    rig.pan(40.0, 10.0, 300)
    active.view.cameraChanged.emit()
    assert rig.state()["distance"] == pytest.approx(0.3 * framed["distance"]) and not rig.state()["framed"]
    qtbot.keyClick(active, Qt.Key.Key_F)
    after = rig.state()
    assert after["framed"] and after["distance"] == pytest.approx(framed["distance"])
    np.testing.assert_allclose(after["target"], framed["target"])


def test_l_toggles_the_log_scale(active, qtbot):
    loss = active.loss
    assert loss.log_box.isChecked() and loss.fit_plot.getAxis("left").logMode
    qtbot.keyClick(active, Qt.Key.Key_L)
    qtbot.waitUntil(lambda: not loss.log_box.isChecked(), timeout=2000)
    assert not loss.fit_plot.getAxis("left").logMode and not loss.tune_plot.getAxis("left").logMode
    qtbot.keyClick(active, Qt.Key.Key_L)
    qtbot.waitUntil(lambda: loss.log_box.isChecked(), timeout=2000)
    assert loss.fit_plot.getAxis("left").logMode and loss.tune_plot.getAxis("left").logMode


def test_brackets_step_through_training_cameras(active, qtbot, tmp_path):
    from core.camera import Camera

    frames = []
    for x in (-4.0, 4.0):
        c2w = Camera.look_at([x, -4.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], 40.0, 64, 48).camera_to_world.copy()
        c2w[:3, 1:3] *= -1  # OpenCV -> OpenGL/Blender axes, as transforms.json stores them
        frames.append({"file_path": f"./r_{len(frames)}", "transform_matrix": c2w.tolist()})
    (tmp_path / "transforms.json").write_text(json.dumps({"camera_angle_x": 0.9, "w": 64, "h": 48,
                                                          "frames": frames}))
    active.files.open_cameras(tmp_path / "transforms.json")
    qtbot.waitUntil(lambda: active.session.camera_set is not None or bool(active.errors), timeout=30000)
    assert active.session.camera_set is not None, active.errors
    cams = active.session.training_cameras()
    qtbot.keyClick(active, Qt.Key.Key_BracketRight)
    assert active.cameras.box.currentIndex() == 1
    np.testing.assert_allclose(active.view.rig.world_to_camera(), cams[0].world_to_camera)
    qtbot.keyClick(active, Qt.Key.Key_BracketRight)
    np.testing.assert_allclose(active.view.rig.world_to_camera(), cams[1].world_to_camera)
    qtbot.keyClick(active, Qt.Key.Key_BracketLeft)
    assert active.cameras.box.currentIndex() == 1


def test_f1_lists_the_shortcuts(active, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "information", lambda parent, title, text: shown.append((title, text)))
    qtbot.keyClick(active, Qt.Key.Key_F1)
    assert shown and shown[0][0] == "Keyboard shortcuts" and "F5" in shown[0][1]


def test_f12_saves_the_window_and_shift_f12_asks_for_a_render(active, qtbot, monkeypatch, tmp_path):
    from app import dialogs

    asked = []
    monkeypatch.setattr(dialogs, "ask_render_options", lambda *a: asked.append("render") or None)
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *a: asked.append("window") or "")
    qtbot.keyClick(active, Qt.Key.Key_F12, Qt.KeyboardModifier.ShiftModifier)
    assert asked == ["render"]  # the render's size and side first; cancelled: nothing else
    qtbot.keyClick(active, Qt.Key.Key_F12)
    assert asked == ["render", "window"]
    assert active.files.render_progress is None
