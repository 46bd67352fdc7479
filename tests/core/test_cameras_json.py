"""graphdeco cameras.json, find_cameras_beside and load_cameras' dispatch on paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.cameras import CameraSet, find_cameras_beside, load_cameras
from core.errors import InputFileError
from tests.conftest import shared_path


def project(cam, x):
    p = cam.world_to_camera @ np.append(np.asarray(x, dtype=np.float64), 1.0)
    return cam.fx * p[0] / p[2] + cam.cx, cam.fy * p[1] / p[2] + cam.cy, p[2]


def entry(i=0, position=(0.0, 0.0, -5.0), rotation=None, **over):
    e = {"id": i, "img_name": f"img_{i:03d}", "width": 640, "height": 480, "position": list(position),
         "rotation": np.eye(3).tolist() if rotation is None else rotation, "fx": 500.0, "fy": 510.0}
    e.update(over)
    return e


def write(tmp_path: Path, data, name="cameras.json") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


# -- the real file -------------------------------------------------------------------------------------
def test_snowmiku_cameras_json():
    path = shared_path("cameras", "snowmiku-cameras.json")
    raw = json.loads(path.read_text())
    cs = load_cameras(path)
    assert isinstance(cs, CameraSet) and cs.format == "cameras_json" and cs.source == path
    assert len(cs.cameras) == 97 and cs.skipped == [] and cs.warnings == []
    for cam, e in zip(cs.cameras, raw):
        assert (cam.width, cam.height) == (3958, 2968)
        assert (cam.cx, cam.cy) == (3958 / 2, 2968 / 2)
        assert (cam.fx, cam.fy) == (e["fx"], e["fy"])
        assert cam.name == e["img_name"] and cam.image_path is None and cam.extra["id"] == e["id"]
        np.testing.assert_allclose(cam.position, e["position"], atol=1e-9)
        # rotation columns are the camera axes in world coordinates: column 2 is the viewing direction
        np.testing.assert_allclose(cam.forward, np.array(e["rotation"])[:, 2], atol=1e-9)
        np.testing.assert_allclose(cam.camera_to_world[:3, :3], e["rotation"], atol=1e-9)


def test_snowmiku_cameras_look_at_a_common_region():
    cs = load_cameras(shared_path("cameras", "snowmiku-cameras.json"))
    pos = np.stack([c.position for c in cs.cameras])
    fwd = np.stack([c.forward for c in cs.cameras])
    # least-squares point nearest to every optical axis
    a = sum(np.eye(3) - np.outer(d, d) for d in fwd)
    b = sum((np.eye(3) - np.outer(d, d)) @ p for d, p in zip(fwd, pos))
    target = np.linalg.solve(a, b)
    in_front = [project(c, target)[2] > 0 for c in cs.cameras]
    assert np.mean(in_front) > 0.95


# -- synthetic files -----------------------------------------------------------------------------------
def test_hand_checked_projection(tmp_path):
    # camera at (0, 0, -5) with identity camera-to-world rotation: looks down world +z, image y = world y
    cs = load_cameras(write(tmp_path, [entry()]))
    cam = cs.cameras[0]
    assert (cam.cx, cam.cy) == (320.0, 240.0)
    assert project(cam, (0.0, 0.0, 0.0)) == pytest.approx((320.0, 240.0, 5.0))
    assert project(cam, (1.0, 2.0, 5.0)) == pytest.approx((320.0 + 500.0 * 1 / 10, 240.0 + 510.0 * 2 / 10, 10.0))


def test_rotated_camera_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    entries, rots, positions = [], [], []
    for i in range(6):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        p = rng.normal(size=3) * 4
        entries.append(entry(i, position=p.tolist(), rotation=q.tolist()))
        rots.append(q)
        positions.append(p)
    cs = load_cameras(write(tmp_path, entries))
    for cam, r, p in zip(cs.cameras, rots, positions):
        np.testing.assert_allclose(cam.world_to_camera[:3, :3], r.T, atol=1e-12)
        np.testing.assert_allclose(cam.world_to_camera[:3, 3], -r.T @ p, atol=1e-12)
        # a point one unit along the camera's +z axis sits on the principal point
        assert project(cam, p + r[:, 2]) == pytest.approx((320.0, 240.0, 1.0))


def test_rounded_rotation_is_repaired_with_a_warning(tmp_path):
    c, s = np.cos(0.3), np.sin(0.3)
    rot = np.round(np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]), 3)
    cs = load_cameras(write(tmp_path, [entry(rotation=rot.tolist())]))
    r = cs.cameras[0].world_to_camera[:3, :3]
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert len(cs.warnings) == 1 and "re-orthonormalised" in cs.warnings[0]


def test_require_images_cannot_be_met_by_cameras_json(tmp_path):
    with pytest.raises(InputFileError, match="none of the 1 cameras is usable.*names no image file"):
        load_cameras(write(tmp_path, [entry()]), require_images=True)


@pytest.mark.parametrize("data,problem", [
    ("", "file is empty"),
    ("   \n", "file is empty"),
    ("[{\"id\": 0,", "not valid JSON"),
    ({"cameras": []}, "unrecognised camera JSON"),
    ([], "the camera list is empty"),
    ([3], "camera 0: expected a JSON object"),
    ([{k: v for k, v in entry().items() if k != "rotation"}], r"camera 0 \(img_000\): missing key\(s\) rotation"),
    ([entry(), {k: v for k, v in entry(1).items() if k not in ("fx", "fy")}], "camera 1 .*missing key.*fx, fy"),
    ([entry(position=[0.0, float("nan"), 1.0])], "position holds NaN or Inf"),
    ([entry(position=[0.0, 1.0])], r"position has shape \(2,\)"),
    ([entry(rotation=[[1, 0, 0], [0, 1, 0]])], r"rotation has shape \(2, 3\)"),
    ([entry(rotation=[["a", 0, 0], [0, 1, 0], [0, 0, 1]])], "rotation is not a 3x3 array of numbers"),
    ([entry(rotation=(2 * np.eye(3)).tolist())], "rotation is not orthonormal"),
    ([entry(rotation=np.diag([1.0, 1.0, -1.0]).tolist())], "reflection"),
    ([entry(fx=-3.0)], "fx must be positive"),
    ([entry(fy="500")], "fy is not a number"),
    ([entry(width=0)], "width must be positive"),
    ([entry(height=480.5)], "whole number of pixels"),
    ([entry(fx=float("inf"))], "fx is not finite"),
])
def test_malformed_cameras_json(tmp_path, data, problem):
    p = write(tmp_path, data)
    with pytest.raises(InputFileError, match=problem) as err:
        load_cameras(p)
    assert err.value.path == p and str(err.value).startswith(str(p))


def test_non_utf8_file(tmp_path):
    p = tmp_path / "cameras.json"
    p.write_bytes(b"\xff\xfe\xfa binary")
    with pytest.raises(InputFileError, match="not UTF-8"):
        load_cameras(p)


# -- dispatch and find_cameras_beside ------------------------------------------------------------------
def test_folder_with_cameras_json_and_unknown_inputs(tmp_path):
    write(tmp_path, [entry()])
    assert load_cameras(tmp_path).format == "cameras_json"
    with pytest.raises(InputFileError, match="file or folder not found"):
        load_cameras(tmp_path / "nope.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no camera file found"):
        load_cameras(tmp_path / "empty")
    other = tmp_path / "cams.yaml"
    other.write_text("x: 1")
    with pytest.raises(InputFileError, match="unrecognised camera file"):
        load_cameras(other)
    with pytest.raises(InputFileError, match="unrecognised camera JSON"):
        load_cameras(write(tmp_path, "42", "odd.json"))


def test_find_cameras_beside(tmp_path):
    model = tmp_path / "output" / "model"
    ply = model / "point_cloud" / "iteration_30000" / "point_cloud.ply"
    ply.parent.mkdir(parents=True)
    ply.write_bytes(b"ply")
    assert find_cameras_beside(ply) is None
    write(model, [entry()])
    assert find_cameras_beside(ply) == model / "cameras.json"
    write(ply.parent, [entry()])  # beside the file wins
    assert find_cameras_beside(ply) == ply.parent / "cameras.json"
    lone = tmp_path / "scene.ply"
    lone.write_bytes(b"ply")
    assert find_cameras_beside(lone) is None
    assert find_cameras_beside(Path("scene.ply")) is None
