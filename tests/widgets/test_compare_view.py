"""CompareView: modes, the A/B flip key, the split divider, navigation input, overlay and messages."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from tests.widgets.conftest import show_active
from widgets.compare_view import MODES, CompareView


def solid(color, w=200, h=150):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = color
    return img


RED, BLUE = (220, 20, 20), (20, 20, 220)


@pytest.fixture
def view(qtbot):
    v = CompareView()
    qtbot.addWidget(v)
    v.resize(400, 300)
    show_active(qtbot, v)
    v.set_scene_bounds(np.array([-1.0, -1.0, -1.0]), np.array([1.0, 1.0, 1.0]), up=(0.0, 0.0, 1.0))
    return v


def pixel(view, x, y):
    img = view.grab().toImage()
    c = img.pixelColor(x, y)
    return c.red(), c.green(), c.blue()


def test_side_by_side_shows_a_left_and_b_right(view):
    assert view.pane_size() == (200, 300)
    view.set_images(solid(RED), solid(BLUE))
    assert pixel(view, 100, 200) == RED
    assert pixel(view, 300, 200) == BLUE


def test_split_mode_divider_drags_with_the_mouse(view, qtbot):
    view.set_images(solid(RED, 400, 300), solid(BLUE, 400, 300))
    view.set_mode("split")
    assert view.pane_size() == (400, 300)
    assert pixel(view, 150, 250) == RED and pixel(view, 250, 250) == BLUE
    moved = []
    view.cameraChanged.connect(lambda: moved.append(1))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(200, 150))
    qtbot.mouseMove(view, QPoint(100, 150))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(100, 150))
    assert view.split == pytest.approx(0.25, abs=0.01)
    assert not moved  # dragging the divider does not move the camera
    assert pixel(view, 80, 250) == RED and pixel(view, 150, 250) == BLUE


def test_b_key_flips_between_a_and_b(view, qtbot):
    view.set_images(solid(RED, 400, 300), solid(BLUE, 400, 300))
    qtbot.keyClick(view, Qt.Key.Key_B)
    assert view.mode == "flip" and pixel(view, 200, 250) == BLUE
    qtbot.keyClick(view, Qt.Key.Key_B)
    assert pixel(view, 200, 250) == RED
    qtbot.keyClick(view, Qt.Key.Key_B)
    assert pixel(view, 200, 250) == BLUE


def test_number_keys_choose_the_mode(view, qtbot):
    seen = []
    view.modeChanged.connect(seen.append)
    for key, mode in zip((Qt.Key.Key_2, Qt.Key.Key_4, Qt.Key.Key_3, Qt.Key.Key_1), ("split", "diff", "flip", "side")):
        qtbot.keyClick(view, key)
        assert view.mode == mode
        assert view.mode_actions[mode].isChecked()
    assert seen == ["split", "diff", "flip", "side"]
    with pytest.raises(ValueError):
        view.set_mode("sideways")
    assert set(MODES) == {"side", "split", "flip", "diff"}


def test_difference_mode_draws_a_heat_map(view):
    a = solid(RED, 400, 300)
    b = a.copy()
    b[:, 200:] = BLUE  # right half differs
    view.set_images(a, b)
    view.set_mode("diff")
    left, right = pixel(view, 100, 250), pixel(view, 300, 250)
    assert sum(left) < 30  # equal: black end of the ramp
    assert sum(right) > 300  # different: bright


def test_missing_images_show_the_message(view):
    view.set_messages("nothing here", "run a compression")
    view.set_images(solid(RED), None)
    img = view.grab().toImage()
    right = [img.pixelColor(x, y).red() for x in range(210, 390, 3) for y in range(100, 200, 3)]
    assert max(right) > 100  # some text pixels are drawn on the dark background
    assert view.image(1) is None


def test_left_drag_orbits_right_drag_pans_wheel_zooms(view, qtbot):
    changes = []
    view.cameraChanged.connect(lambda: changes.append(1))
    rig = view.rig
    az, target = rig.azimuth_deg, rig.target.copy()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(view, QPoint(130, 110))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(130, 110))
    assert rig.azimuth_deg != az and np.allclose(rig.target, target)
    qtbot.mousePress(view, Qt.MouseButton.RightButton, pos=QPoint(100, 100))
    qtbot.mouseMove(view, QPoint(120, 100))
    qtbot.mouseRelease(view, Qt.MouseButton.RightButton, pos=QPoint(120, 100))
    assert not np.allclose(rig.target, target)
    assert changes


def test_wheel_and_keys_navigate(view, qtbot):
    rig = view.rig
    dist = rig.distance
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Plus)
    assert rig.distance == pytest.approx(0.9 * dist)
    eye = rig.eye.copy()
    qtbot.keyClick(view, Qt.Key.Key_W)
    assert np.linalg.norm(rig.eye - eye) == pytest.approx(0.05 * rig.distance)
    el = rig.elevation_deg
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert rig.elevation_deg == pytest.approx(el + 5)
    # F frames the scene again: back to the default orbit angles and distance
    qtbot.keyClick(view, Qt.Key.Key_F)
    assert (rig.azimuth_deg, rig.elevation_deg) == (30.0, 20.0)
    np.testing.assert_allclose(rig.target, 0.0, atol=1e-12)


def test_fly_mode_makes_left_drag_look_around(view, qtbot):
    qtbot.keyClick(view, Qt.Key.Key_G)
    assert view.fly_mode
    eye = view.rig.eye.copy()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(view, QPoint(140, 100))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(140, 100))
    np.testing.assert_allclose(view.rig.eye, eye, atol=1e-9)


def test_overlay_lines_are_drawn(view):
    view.set_images(solid((255, 255, 255), 200, 300), solid((255, 255, 255), 200, 300))
    before = view.grab().toImage()
    view.set_overlay(["PSNR 31.20 dB", "12 fps"], a_lines=["A · 3,042 Gaussians"])
    after = view.grab().toImage()
    assert before.pixelColor(20, 290) != after.pixelColor(20, 290)  # A's box, bottom left of A's pane
    assert before.pixelColor(220, 290) != after.pixelColor(220, 290)  # the others, bottom left of B's pane
    assert view.overlay == ["A · 3,042 Gaussians", "PSNR 31.20 dB", "12 fps"]


def test_overlay_boxes_stay_in_their_panes(view):
    """Issue 14: A's info box spilled over B. Long lines wrap inside the pane (side by side: half the width)."""
    view.set_images(solid((255, 255, 255), 200, 300), solid((255, 255, 255), 200, 300))
    bare = view.grab().toImage()
    long = "A · a-rather-long-file-name.ply: 1,234,567 Gaussians · 55.3 MiB (ply) · and more words to wrap"
    view.set_overlay(["B · NeuralGS: 3 clusters"], a_lines=[long])
    img = view.grab().toImage()
    for x in range(196, 206):  # the few columns each side of the divider: no box reaches them
        for y in range(150, 300):
            assert img.pixelColor(x, y) == bare.pixelColor(x, y), (x, y)
    rows = sum(img.pixelColor(20, y) != bare.pixelColor(20, y) for y in range(0, 300))
    assert rows > 2 * view.fontMetrics().height()  # wrapped: taller than one line
    view.set_mode("flip")  # one pane: one box, the full width available
    assert view.pane_size() == (400, 300)


def test_a_frame_of_another_shape_is_not_stretched(view):
    """Issue 14: switching modes showed the last frame stretched until the new one came; it is drawn at its own
    shape, centred, the rest of the pane in the background colour."""
    view.set_images(solid(RED, 200, 300), solid(BLUE, 200, 300))  # frames for the half-width panes
    view.set_mode("flip")  # the pane is now 400 x 300
    assert pixel(view, 200, 150) == BLUE
    assert pixel(view, 20, 150) == pixel(view, 380, 150) == (24, 24, 28)  # not stretched: bars left and right
    view.set_images(solid(RED, 400, 300), solid(BLUE, 400, 300))  # the new frame fills the pane
    assert pixel(view, 20, 150) == BLUE


def test_every_action_has_a_shortcut_and_a_tooltip(view):
    for act in view.view_actions:
        assert not act.shortcut().isEmpty(), act.text()
        assert act.toolTip(), act.text()
    assert view.toolTip()


def test_switching_to_a_full_width_mode_frames_the_scene_for_it(view, qtbot):
    """Framed for two half-width panes (side by side), the scene is framed again for the full width of the split
    and flip views: it does not stay small."""
    side = view.rig.distance
    view.set_mode("split")
    assert view.rig.distance < 0.8 * side
    from widgets.navigation import CameraRig

    def ref(aspect):
        r = CameraRig(up=np.array([0.0, 0.0, 1.0]), azimuth_deg=view.rig.azimuth_deg,
                      elevation_deg=view.rig.elevation_deg)
        r.frame(*view.bounds, aspect=aspect)
        return r.distance

    assert view.rig.distance == pytest.approx(ref(400 / 300))
    view.rig.orbit(30.0, 10.0)  # orbiting keeps the framed box: a new pane shape fits it again, at the new angles
    view.set_mode("side")
    assert view.rig.distance == pytest.approx(ref(200 / 300))
    view.set_mode("flip")
    assert view.rig.distance == pytest.approx(ref(400 / 300))


def test_a_zoomed_view_keeps_its_distance_across_mode_changes(view, qtbot):
    view.set_mode("split")
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Plus)  # zoom in: the user chose this distance
    zoomed = view.rig.distance
    view.set_mode("side")
    assert view.rig.distance == pytest.approx(zoomed)
    view.resize(300, 300)
    assert view.rig.distance == pytest.approx(zoomed)
    view.frame_scene()
    assert view.rig.distance != pytest.approx(zoomed)
