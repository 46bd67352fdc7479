"""Robust bounds and generated orbit views: framing, orientation (image up = world up), determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.cameras import DEFAULT_UP, estimate_up, load_cameras, orbit_camera, orbit_cameras, robust_bounds
from tests.conftest import shared_path


def project(cam, x):
    p = cam.world_to_camera @ np.append(np.asarray(x, dtype=np.float64), 1.0)
    return cam.fx * p[0] / p[2] + cam.cx, cam.fy * p[1] / p[2] + cam.cy, p[2]


def scene_with_floaters(seed=0, n=5000):
    rng = np.random.default_rng(seed)
    pts = rng.uniform([-1.0, -2.0, 0.0], [1.0, 2.0, 0.5], size=(n, 3)) + np.array([10.0, 0.0, -3.0])
    floaters = rng.normal(size=(40, 3)) * 1e4
    return np.concatenate([pts, floaters]).astype(np.float32)


def corners(lo, hi):
    return np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])


# -- robust_bounds --------------------------------------------------------------------------------------
def test_robust_bounds_ignore_floaters():
    means = scene_with_floaters()
    lo, hi = robust_bounds(means)
    assert lo.dtype == hi.dtype == np.float64 and lo.shape == hi.shape == (3,)
    np.testing.assert_allclose(lo, [9.0, -2.0, -3.0], atol=0.1)
    np.testing.assert_allclose(hi, [11.0, 2.0, -2.5], atol=0.1)
    assert np.abs(means).max() > 1000  # min/max would be useless


def test_robust_bounds_torch_nan_and_errors():
    means = scene_with_floaters()
    lo, hi = robust_bounds(means)
    tlo, thi = robust_bounds(torch.from_numpy(means))
    np.testing.assert_allclose(tlo, lo, rtol=1e-6)
    np.testing.assert_allclose(thi, hi, rtol=1e-6)
    with_nan = np.concatenate([means, np.full((3, 3), np.nan, np.float32)])
    np.testing.assert_allclose(robust_bounds(with_nan)[0], lo, rtol=1e-6, atol=1e-4)
    assert robust_bounds(means, 0, 100)[1].max() == pytest.approx(float(means.max()))
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        robust_bounds(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="finite point"):
        robust_bounds(np.full((4, 3), np.inf))
    with pytest.raises(ValueError):
        robust_bounds(means, 60, 40)


# -- orbit views ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("up", [None, (0.0, 0.0, 1.0), (1.0, 1.0, 0.0)])
@pytest.mark.parametrize("size", [(64, 48), (48, 96)])
def test_orbit_frames_the_robust_box_and_looks_at_its_centre(up, size):
    means = scene_with_floaters()
    w, h = size
    views = orbit_cameras(means, 12, w, h, up=up, elevations_deg=(-30, 45))
    assert len(views) == 12 and [v.name for v in views] == [f"orbit_{k:03d}" for k in range(12)]
    lo, hi = robust_bounds(means)
    centre = 0.5 * (lo + hi)
    for cam in views:
        assert (cam.width, cam.height, cam.cx, cam.cy) == (w, h, w / 2, h / 2)
        u, v, z = project(cam, centre)
        assert z > 0 and u == pytest.approx(w / 2) and v == pytest.approx(h / 2)
        for c in corners(lo, hi):
            u, v, z = project(cam, c)
            assert z > 0 and 0 <= u <= w and 0 <= v <= h
    # the bounding sphere just fits: some corner direction reaches near the narrower half-angle
    fov_y = 2 * np.degrees(np.arctan(0.5 * h / views[0].fy))
    assert fov_y == pytest.approx(50.0)


@pytest.mark.parametrize("up", [(0.0, 0.0, 1.0), (0.0, -1.0, 0.0), (0.3, -1.0, 0.2)])
def test_world_up_appears_up_in_every_view(up):
    means = scene_with_floaters()
    u_vec = np.asarray(up) / np.linalg.norm(up)
    lo, hi = robust_bounds(means)
    centre = 0.5 * (lo + hi)
    for cam in orbit_cameras(means, 16, 64, 64, up=up, elevations_deg=(-60, 60)):
        _, v_centre, _ = project(cam, centre)
        u_above, v_above, _ = project(cam, centre + 0.3 * u_vec)
        assert v_above < v_centre - 1  # image y points down
        assert u_above == pytest.approx(32.0, abs=1e-6)  # no roll
        # camera x (right) is horizontal, camera y (down) has a negative up component
        assert abs(cam.world_to_camera[0, :3] @ u_vec) < 1e-9
        assert cam.world_to_camera[1, :3] @ u_vec < 0


def test_elevation_and_azimuth_geometry():
    means = scene_with_floaters()
    lo, hi = robust_bounds(means)
    centre = 0.5 * (lo + hi)
    up = np.array([0.0, 0.0, 1.0])
    views = orbit_cameras(means, 8, 32, 32, up=up, elevations_deg=20.0, start_azimuth_deg=0.0)
    offsets = [c.position - centre for c in views]
    dists = [np.linalg.norm(o) for o in offsets]
    assert max(dists) == pytest.approx(min(dists))
    for o in offsets:  # flat orbit at 20 degrees above the horizontal
        assert np.degrees(np.arcsin(o @ up / np.linalg.norm(o))) == pytest.approx(20.0)
    # up = +z: e1 = +x, e2 = up x e1 = +y; azimuth 0 on +x, 90 on +y (counter-clockwise from above)
    assert offsets[0][0] > 0 and abs(offsets[0][1]) < 1e-9
    assert offsets[2][1] > 0 and abs(offsets[2][0]) < 1e-9
    azimuths = [c.extra["azimuth_deg"] for c in views]
    assert azimuths == pytest.approx([45.0 * k for k in range(8)])
    # the elevation swing stays within (low, high) and reaches both ends
    swing = orbit_cameras(means, 40, 32, 32, up=up, elevations_deg=(-20, 40))
    els = [c.extra["elevation_deg"] for c in swing]
    assert min(els) == pytest.approx(-20.0) and max(els) == pytest.approx(40.0) and els[0] == pytest.approx(10.0)


def test_poles_and_single_view_are_valid():
    means = scene_with_floaters()
    for el in (90.0, -90.0, 89.999):
        cam = orbit_camera(means, 30.0, el, 40, 30)
        lo, hi = robust_bounds(means)
        u, v, z = project(cam, 0.5 * (lo + hi))
        assert z > 0 and (u, v) == pytest.approx((20.0, 15.0))
    # the pole view continues the nearby views without a flip
    near, at = orbit_camera(means, 30.0, 89.9, 40, 30), orbit_camera(means, 30.0, 90.0, 40, 30)
    assert near.world_to_camera[0, :3] @ at.world_to_camera[0, :3] > 0.999


def test_orbit_camera_matches_orbit_cameras_and_is_deterministic():
    means = scene_with_floaters()
    a = orbit_cameras(means, 6, 50, 40, elevations_deg=15.0, start_azimuth_deg=10.0, fov_y_deg=40.0)
    b = orbit_cameras(torch.from_numpy(means), 6, 50, 40, elevations_deg=15.0, start_azimuth_deg=10.0,
                      fov_y_deg=40.0)
    for ca, cb in zip(a, b):
        np.testing.assert_allclose(ca.world_to_camera, cb.world_to_camera, atol=1e-9)
    single = orbit_camera(means, 70.0, 15.0, 50, 40, fov_y_deg=40.0)
    np.testing.assert_allclose(single.world_to_camera, a[1].world_to_camera, atol=1e-12)
    assert single.name == "orbit_az70_el15"
    farther = orbit_camera(means, 70.0, 15.0, 50, 40, fov_y_deg=40.0, distance_scale=2.0)
    lo, hi = robust_bounds(means)
    c = 0.5 * (lo + hi)
    assert np.linalg.norm(farther.position - c) == pytest.approx(2 * np.linalg.norm(single.position - c))


def test_default_up_and_estimated_up():
    means = scene_with_floaters()
    np.testing.assert_array_equal(DEFAULT_UP, [0.0, -1.0, 0.0])
    default = orbit_cameras(means, 4, 32, 32)
    explicit = orbit_cameras(means, 4, 32, 32, up=(0.0, -1.0, 0.0))
    for a, b in zip(default, explicit):
        np.testing.assert_array_equal(a.world_to_camera, b.world_to_camera)
    # cameras of a z-up scene (all around it, image up tilted symmetrically) give z-up orbits
    z_up = orbit_cameras(means, 8, 32, 32, up=(0.0, 0.0, 1.0), elevations_deg=30.0)
    np.testing.assert_allclose(estimate_up(z_up), [0.0, 0.0, 1.0], atol=1e-12)
    from_cams = orbit_cameras(means, 8, 32, 32, cameras=z_up, elevations_deg=30.0)
    for a, b in zip(z_up, from_cams):
        np.testing.assert_allclose(a.world_to_camera, b.world_to_camera, atol=1e-9)
    assert estimate_up([]) @ DEFAULT_UP == 1.0
    with pytest.raises(ValueError, match="up must be"):
        orbit_cameras(means, 4, 32, 32, up=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="n_views"):
        orbit_cameras(means, 0, 32, 32)
    with pytest.raises(ValueError, match="fov_y_deg"):
        orbit_camera(means, 0.0, 0.0, 32, 32, fov_y_deg=180.0)


def test_estimated_up_of_real_datasets():
    lego = load_cameras(shared_path("datasets", "lego", "transforms_train.json"))
    assert estimate_up(lego) @ np.array([0.0, 0.0, 1.0]) > 0.99  # Blender: z up
    snow = load_cameras(shared_path("cameras", "snowmiku-cameras.json"))
    assert estimate_up(snow) @ DEFAULT_UP > 0.9  # a COLMAP capture: roughly -y up


def test_degenerate_scene_still_gives_valid_views():
    views = orbit_cameras(np.ones((10, 3)), 3, 16, 16)
    for cam in views:
        u, v, z = project(cam, (1.0, 1.0, 1.0))
        assert z > 0 and (u, v) == pytest.approx((8.0, 8.0))
