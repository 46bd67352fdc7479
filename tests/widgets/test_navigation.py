"""CameraRig: the viewport's orbit / pan / zoom / fly state agrees with the core's orbit cameras."""

from __future__ import annotations

import numpy as np
import pytest

from widgets.navigation import FRAME_MARGIN, FRAME_PAD, CameraRig


def rig_at(up=(0.0, 0.0, 1.0)) -> CameraRig:
    rig = CameraRig(up=np.array(up))
    rig.frame(np.array([-1.0, -1.0, -0.5]), np.array([1.0, 1.0, 0.5]), aspect=4 / 3)
    return rig


@pytest.mark.parametrize("up", [(0.0, 0.0, 1.0), (0.0, -1.0, 0.0)])
@pytest.mark.parametrize("az, el", [(30.0, 20.0), (200.0, -40.0)])
def test_rig_matches_core_orbit_camera(up, az, el):
    from core.cameras import orbit_camera

    rng = np.random.default_rng(0)
    means = rng.uniform(-1, 1, size=(500, 3)) * np.array([2.0, 1.0, 0.5])
    cam = orbit_camera(means, az, el, 320, 240, up=up)
    from core.cameras import robust_bounds

    rig = CameraRig(up=np.array(up), azimuth_deg=az, elevation_deg=el)
    rig.frame(*robust_bounds(means), aspect=320 / 240)
    rig.azimuth_deg, rig.elevation_deg = az, el
    # the same view direction and centre; the viewport fits the box itself (not its bounding sphere)
    np.testing.assert_allclose(rig.world_to_camera()[:3, :3], cam.world_to_camera[:3, :3], atol=1e-9)
    np.testing.assert_allclose(rig.target, cam.extra["orbit_centre"], atol=1e-12)
    rig.distance = cam.extra["orbit_distance"]
    np.testing.assert_allclose(rig.world_to_camera(), cam.world_to_camera, atol=1e-9)
    fx, fy, cx, cy = rig.intrinsics(320, 240)
    assert (fx, fy, cx, cy) == pytest.approx((cam.fx, cam.fy, cam.cx, cam.cy))


def test_world_to_camera_is_rigid_and_looks_at_the_target():
    rig = rig_at()
    rig.orbit(47.0, 13.0)
    m = rig.world_to_camera()
    r = m[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    target_cam = r @ rig.target + m[:3, 3]
    np.testing.assert_allclose(target_cam[:2], 0.0, atol=1e-9)  # on the optical axis
    assert target_cam[2] == pytest.approx(rig.distance)


def test_orbit_keeps_the_target_and_distance_and_clamps_elevation():
    rig = rig_at()
    target, dist = rig.target.copy(), rig.distance
    rig.orbit(30.0, 500.0)
    np.testing.assert_allclose(rig.target, target)
    assert rig.elevation_deg == 89.0
    assert np.linalg.norm(rig.eye - rig.target) == pytest.approx(dist)


def test_pan_moves_the_target_with_the_mouse():
    rig = rig_at()
    before = rig.world_to_camera()
    p_world = rig.target.copy()
    rig.pan(50.0, 0.0, viewport_height=400)
    after = rig.world_to_camera()
    u = lambda m: (m[:3, :3] @ p_world + m[:3, 3])
    fx = rig.intrinsics(400, 400)[0]
    # a point at the target's depth moves 50 px right on screen
    assert fx * (u(after)[0] / u(after)[2] - u(before)[0] / u(before)[2]) == pytest.approx(50.0, rel=1e-6)


def test_zoom_scales_the_distance_and_rejects_nonsense():
    rig = rig_at()
    d = rig.distance
    rig.zoom(0.5)
    assert rig.distance == pytest.approx(d / 2)
    with pytest.raises(ValueError):
        rig.zoom(0.0)


def test_fly_moves_eye_and_target_together_along_the_view():
    rig = rig_at()
    eye, target = rig.eye.copy(), rig.target.copy()
    fwd = rig.world_to_camera()[2, :3]
    rig.fly(0.1, 0.0, 0.0)
    np.testing.assert_allclose(rig.eye - eye, 0.1 * rig.distance * fwd, atol=1e-12)
    np.testing.assert_allclose(rig.target - target, 0.1 * rig.distance * fwd, atol=1e-12)


def test_look_turns_in_place():
    rig = rig_at()
    eye = rig.eye.copy()
    rig.look(25.0, -10.0)
    np.testing.assert_allclose(rig.eye, eye, atol=1e-9)


def test_set_pose_shows_the_exact_camera_then_navigation_continues_from_it():
    from core.camera import Camera

    cam = Camera.look_at([3.0, -2.0, 1.5], [0.1, 0.2, 0.0], [0.0, 0.0, 1.0], 40.0, 200, 100)
    rig = rig_at()
    rig.set_pose(cam.world_to_camera, fov_y_deg=40.0)
    np.testing.assert_allclose(rig.world_to_camera(), cam.world_to_camera)
    np.testing.assert_allclose(rig.eye, cam.position, atol=1e-9)
    rig.orbit(0.0, 0.0)  # leaves the exact pose for the equivalent orbit state (no roll here)
    assert rig.pose_override is None
    np.testing.assert_allclose(rig.world_to_camera(), cam.world_to_camera, atol=1e-9)


def _corners_px(rig, lo, hi, w, h, pad=FRAME_PAD):
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    c, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * (1 + 2 * pad)
    pts = np.array([c + half * np.array([sx, sy, sz]) for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    m = rig.world_to_camera()
    pc = pts @ m[:3, :3].T + m[:3, 3]
    fx, fy, cx, cy = rig.intrinsics(w, h)
    return fx * pc[:, 0] / pc[:, 2] + cx, fy * pc[:, 1] / pc[:, 2] + cy


@pytest.mark.parametrize("w, h", [(400, 400), (1074, 477), (300, 700)])
@pytest.mark.parametrize("lo, hi", [((0, 0, 0), (2, 2, 2)), ((-0.2, -0.9, -0.13), (0.2, 0.9, 0.13)),
                                    ((-3, -3, -0.1), (3, 3, 0.1))])
def test_frame_fits_the_padded_box_in_width_and_height(w, h, lo, hi):
    """Every corner of the box (padded by FRAME_PAD) lies inside the image, FRAME_MARGIN clear of the edges, and
    the fit is tight: one corner sits on that margin. A standing person (the second box, -y up) is not cut."""
    rig = CameraRig(up=np.array([0.0, -1.0, 0.0]))
    rig.frame(np.array(lo, float), np.array(hi, float), aspect=w / h)
    np.testing.assert_allclose(rig.target, 0.5 * (np.array(lo, float) + np.array(hi, float)))
    u, v = _corners_px(rig, lo, hi, w, h)
    du, dv = np.abs(u - w / 2) / (w / 2), np.abs(v - h / 2) / (h / 2)
    assert du.max() <= 1 - FRAME_MARGIN + 1e-9 and dv.max() <= 1 - FRAME_MARGIN + 1e-9
    assert max(du.max(), dv.max()) == pytest.approx(1 - FRAME_MARGIN)
    with pytest.raises(ValueError):
        rig.set_up((0.0, 0.0, 0.0))


def test_frame_of_a_flat_or_empty_box_stays_in_front():
    rig = CameraRig(up=np.array([0.0, 0.0, 1.0]), elevation_deg=0.0)
    rig.frame(np.array([1.0, 1.0, 1.0]), np.array([1.0, 1.0, 1.0]), aspect=1.5)  # one point
    assert 0 < rig.distance < 1e-3 and np.isfinite(rig.world_to_camera()).all()


def rolled_camera():
    """A camera looking at the origin from the side, rolled 25 degrees about its optical axis."""
    from core.camera import Camera

    cam = Camera.look_at([3.0, -2.0, 1.5], [0.1, 0.2, 0.0], [0.0, 0.0, 1.0], 40.0, 200, 100)
    a = np.radians(25.0)
    roll = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    w2c = cam.world_to_camera.copy()
    w2c[:3, :] = roll @ w2c[:3, :]
    return w2c


def image_up(w2c) -> np.ndarray:
    return -np.asarray(w2c)[1, :3]


def test_navigation_from_a_rolled_training_camera_keeps_its_roll_until_frame():
    w2c = rolled_camera()
    rig = rig_at()
    rig.set_pose(w2c, fov_y_deg=40.0)
    np.testing.assert_allclose(rig.world_to_camera(), w2c)
    rig.orbit(0.0, 0.0)  # the first step does not jump: same view, roll included
    assert rig.pose_override is None
    np.testing.assert_allclose(rig.world_to_camera(), w2c, atol=1e-9)
    rig.orbit(20.0, 0.0)  # turning around the camera's own up keeps the image up
    np.testing.assert_allclose(image_up(rig.world_to_camera()), image_up(w2c), atol=1e-9)
    rig.zoom(0.8)
    rig.pan(10.0, -5.0, 400)
    np.testing.assert_allclose(image_up(rig.world_to_camera()), image_up(w2c), atol=1e-9)
    assert rig.world_up.tolist() == [0.0, 0.0, 1.0]
    rig.frame(np.array([-1.0, -1.0, -0.5]), np.array([1.0, 1.0, 0.5]), aspect=4 / 3)  # F: level again
    m = rig.world_to_camera()
    assert abs(m[0, :3] @ rig.world_up) < 1e-9  # image x is horizontal: no roll
    np.testing.assert_allclose(rig.up, rig.world_up)


def test_reframe_follows_the_aspect_only_while_the_view_is_framed():
    rig = CameraRig(up=np.array([0.0, 0.0, 1.0]))
    lo, hi = np.array([-2.0, -1.0, -0.5]), np.array([2.0, 1.0, 0.5])
    rig.frame(lo, hi, aspect=0.7)  # a half-width pane: the width limits the distance
    narrow = rig.distance
    assert rig.reframe(1.6) and rig.distance < narrow
    wide = rig.distance
    rig.orbit(40.0, 15.0)
    assert rig.reframe(0.7)
    assert (rig.azimuth_deg, rig.elevation_deg) == pytest.approx((70.0, 35.0))  # angles kept
    ref = CameraRig(up=np.array([0.0, 0.0, 1.0]), azimuth_deg=70.0, elevation_deg=35.0)
    ref.frame(lo, hi, aspect=0.7)
    assert rig.distance == pytest.approx(ref.distance)  # fitted again, at the new angles
    narrow = rig.distance
    rig.zoom(0.5)
    assert not rig.reframe(1.6) and rig.distance == pytest.approx(narrow / 2)
    rig.azimuth_deg, rig.elevation_deg = 30.0, 20.0
    rig.frame(lo, hi, aspect=1.6)
    assert rig.distance == pytest.approx(wide)
    rig.set_pose(rolled_camera())
    assert not rig.reframe(0.7)
