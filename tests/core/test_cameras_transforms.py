"""NeRF-synthetic / instant-ngp transforms.json: the real lego and fox datasets, a hand-checked
OpenGL -> OpenCV conversion, image path resolution, intrinsics rules and malformed files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cameras import load_cameras
from core.errors import InputFileError
from tests.conftest import shared_path

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def project(cam, x):
    p = cam.world_to_camera @ np.append(np.asarray(x, dtype=np.float64), 1.0)
    return cam.fx * p[0] / p[2] + cam.cx, cam.fy * p[1] / p[2] + cam.cy, p[2]


def nearest_point_to_axes(cams) -> np.ndarray:
    """Least-squares point closest to every camera's optical axis."""
    a, b = np.zeros((3, 3)), np.zeros(3)
    for c in cams:
        m = np.eye(3) - np.outer(c.forward, c.forward)
        a += m
        b += m @ c.position
    return np.linalg.solve(a, b)


# -- lego (Blender, NeRF-synthetic) ---------------------------------------------------------------
def test_lego_loads_100_frames_800x800():
    path = shared_path("datasets", "lego", "transforms_train.json")
    cs = load_cameras(path)
    assert cs.format == "transforms" and cs.source == path
    assert len(cs.cameras) == 100 and cs.skipped == [] and cs.warnings == []
    angle = json.loads(path.read_text())["camera_angle_x"]
    f = 0.5 * 800 / math.tan(0.5 * angle)
    for k, cam in enumerate(cs.cameras):
        assert (cam.width, cam.height, cam.cx, cam.cy) == (800, 800, 400.0, 400.0)
        assert cam.fx == pytest.approx(f) and cam.fy == pytest.approx(f)
        assert cam.name == f"r_{k}" and cam.image_path == path.parent / "train" / f"r_{k}.png"
        assert cam.extra == {"frame_index": k, "file_path": f"./train/r_{k}"}
    # the focal length the lego-3dgs.ply evaluation used at 400x400 (scenes/lego-3dgs.json)
    assert cs.cameras[0].resized(400, 400).fx == pytest.approx(555.5555419921875, rel=1e-7)


def test_lego_dataset_folder_picks_transforms_train():
    folder = shared_path("datasets", "lego")
    cs = load_cameras(folder)
    assert cs.source == folder / "transforms_train.json" and len(cs.cameras) == 100


def test_lego_frame0_origin_projects_to_image_centre_in_front():
    path = shared_path("datasets", "lego", "transforms_train.json")
    cs = load_cameras(path)
    cam = cs.cameras[0]
    u, v, z = project(cam, (0.0, 0.0, 0.0))
    assert z > 0
    assert abs(u - 400.0) < 8 and abs(v - 400.0) < 8  # the lego sits around the origin
    # exactly the conversion the evaluation renders used: viewmat = inv(c2w_blender @ diag(1,-1,-1,1))
    c2w = np.array(json.loads(path.read_text())["frames"][0]["transform_matrix"])
    np.testing.assert_allclose(cam.world_to_camera, np.linalg.inv(c2w @ GL_TO_CV), atol=1e-12)
    # world +z is up in Blender: a point above the origin appears above the image centre
    assert project(cam, (0.0, 0.0, 0.5))[1] < v


def test_lego_all_cameras_look_at_the_origin():
    cs = load_cameras(shared_path("datasets", "lego", "transforms_train.json"))
    for cam in cs.cameras:
        to_origin = -cam.position / np.linalg.norm(cam.position)
        assert cam.forward @ to_origin > 0.99
        u, v, z = project(cam, (0.0, 0.0, 0.0))
        assert z > 0 and 0 < u < 800 and 0 < v < 800


# -- fox (instant-ngp) ------------------------------------------------------------------------------------
def test_fox_loads_50_and_reports_17_missing():
    path = shared_path("datasets", "fox", "transforms.json")
    cs = load_cameras(path)
    assert len(cs.cameras) == 50
    assert len(cs.skipped) == 17
    assert all(s.endswith(": image file not found") for s in cs.skipped)
    assert cs.skipped[0] == "frame 4 (images/0005.jpg): image file not found"
    assert {c.image_path.name for c in cs.cameras} == {p.name for p in (path.parent / "images").glob("*.jpg")}
    raw = json.loads(path.read_text())
    for cam in cs.cameras:
        assert (cam.width, cam.height) == (1080, 1920)
        assert (cam.fx, cam.fy, cam.cx, cam.cy) == (raw["fl_x"], raw["fl_y"], raw["cx"], raw["cy"])
    assert len(cs.warnings) == 1 and "k1, k2, p1, p2" in cs.warnings[0]


def test_fox_poses_are_used_as_given_and_converge_on_the_fox():
    path = shared_path("datasets", "fox", "transforms.json")
    cs = load_cameras(path)
    frames = json.loads(path.read_text())["frames"]
    for cam in cs.cameras:
        c2w = np.array(frames[cam.extra["frame_index"]]["transform_matrix"])
        np.testing.assert_allclose(np.linalg.inv(cam.world_to_camera), c2w @ GL_TO_CV, atol=1e-9)  # as given
    target = nearest_point_to_axes(cs.cameras)
    for cam in cs.cameras:
        d = target - cam.position
        assert cam.forward @ d / np.linalg.norm(d) > np.cos(np.radians(20))
        u, v, z = project(cam, target)
        assert z > 0 and 0 <= u < cam.width and 0 <= v < cam.height


def test_fox_without_requiring_images_keeps_all_67():
    cs = load_cameras(shared_path("datasets", "fox", "transforms.json"), require_images=False)
    assert len(cs.cameras) == 67 and cs.skipped == []
    assert sum(c.image_path is None for c in cs.cameras) == 17
    assert all((c.width, c.height) == (1080, 1920) for c in cs.cameras)


# -- synthetic datasets ---------------------------------------------------------------------------------------
def make_image(path: Path, size=(40, 30), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size).save(path)


def frame(file_path, c2w=None, **extra):
    return {"file_path": file_path, "transform_matrix": (np.eye(4) if c2w is None else np.asarray(c2w)).tolist(),
            **extra}


def write(tmp_path: Path, data, name="transforms.json") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def test_hand_checked_opengl_to_opencv(tmp_path):
    # identity OpenGL camera-to-world: camera at the origin looking down world -z, world +y is image up
    make_image(tmp_path / "a.png", (40, 30))
    cs = load_cameras(write(tmp_path, {"camera_angle_x": 2 * math.atan(0.5), "frames": [frame("a")]}))
    cam = cs.cameras[0]
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == pytest.approx((40.0, 40.0, 20.0, 15.0))
    assert project(cam, (0.0, 0.0, -5.0)) == pytest.approx((20.0, 15.0, 5.0))
    # up and to the right in the world = up (smaller v) and right (larger u) in the image
    assert project(cam, (1.0, 1.0, -5.0)) == pytest.approx((20.0 + 40.0 / 5, 15.0 - 40.0 / 5, 5.0))
    np.testing.assert_allclose(cam.forward, [0, 0, -1], atol=1e-15)


def test_image_path_resolution(tmp_path):
    make_image(tmp_path / "train" / "r_0.png")
    make_image(tmp_path / "train" / "r_1.jpg")
    make_image(tmp_path / "imgs" / "c.PNG")
    make_image(tmp_path / "abs.png")
    frames = [frame("./train/r_0"), frame("train/r_1"), frame("imgs\\c"), frame(str(tmp_path / "abs.png")),
              frame("train/r_0.png"), frame("./train/missing")]
    cs = load_cameras(write(tmp_path, {"camera_angle_x": 1.0, "frames": frames}))
    assert [c.image_path for c in cs.cameras] == [
        tmp_path / "train" / "r_0.png", tmp_path / "train" / "r_1.jpg", tmp_path / "imgs" / "c.PNG",
        tmp_path / "abs.png", tmp_path / "train" / "r_0.png"]
    assert cs.skipped == ["frame 5 (./train/missing): image file not found"]
    assert [c.name for c in cs.cameras] == ["r_0", "r_1", "c", "abs", "r_0"]


def test_instant_ngp_intrinsics_per_frame_and_defaults(tmp_path):
    for n in "abc":
        make_image(tmp_path / f"{n}.jpg", (60, 40))
    data = {"fl_x": 50.0, "fl_y": 52.0, "cx": 29.5, "cy": 20.25, "w": 60, "h": 40, "k1": 0.0, "p1": 0.0,
            "frames": [frame("a.jpg"), frame("b.jpg", fl_x=70.0, cx=31.0), frame("c.jpg", fl_y=None)]}
    data["frames"][2].pop("fl_y")
    cs = load_cameras(write(tmp_path, data))
    got = [(c.fx, c.fy, c.cx, c.cy) for c in cs.cameras]
    assert got == [(50.0, 52.0, 29.5, 20.25), (70.0, 52.0, 31.0, 20.25), (50.0, 52.0, 29.5, 20.25)]
    assert cs.warnings == []  # zero distortion is no distortion
    only_x = load_cameras(write(tmp_path, {"fl_x": 50.0, "frames": [frame("a.jpg")]}, "t2.json")).cameras[0]
    assert (only_x.fx, only_x.fy, only_x.cx, only_x.cy) == (50.0, 50.0, 30.0, 20.0)
    angles = load_cameras(write(tmp_path, {"camera_angle_x": 1.0, "camera_angle_y": 0.8, "frames": [frame("a.jpg")]},
                                "t3.json")).cameras[0]
    assert angles.fx == pytest.approx(30 / math.tan(0.5)) and angles.fy == pytest.approx(20 / math.tan(0.4))


def test_downscaled_images_scale_declared_intrinsics(tmp_path):
    make_image(tmp_path / "a.jpg", (30, 20))  # the file declares 60x40
    data = {"fl_x": 50.0, "fl_y": 52.0, "cx": 29.5, "cy": 20.25, "w": 60, "h": 40, "frames": [frame("a.jpg")]}
    cs = load_cameras(write(tmp_path, data))
    cam = cs.cameras[0]
    assert (cam.width, cam.height, cam.fx, cam.fy, cam.cx, cam.cy) == (30, 20, 25.0, 26.0, 14.75, 10.125)
    assert len(cs.warnings) == 1 and "30x20" in cs.warnings[0] and "60x40" in cs.warnings[0]


def test_3x4_matrices_and_unreadable_images(tmp_path):
    make_image(tmp_path / "a.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    data = {"camera_angle_x": 1.0, "frames": [frame("a.png", np.eye(4)[:3]), frame("bad.png")]}
    cs = load_cameras(write(tmp_path, data))
    assert len(cs.cameras) == 1 and cs.skipped == ["frame 1 (bad.png): bad.png is not a readable image"]


def test_size_unknown_without_images_or_w_h(tmp_path):
    make_image(tmp_path / "a.png")
    data = {"camera_angle_x": 1.0, "frames": [frame("a.png"), frame("b.png")]}
    cs = load_cameras(write(tmp_path, data), require_images=False)
    assert len(cs.cameras) == 1 and "size is unknown" in cs.skipped[0]
    with pytest.raises(InputFileError, match="none of the 1 cameras is usable.*image file not found"):
        load_cameras(write(tmp_path, {"camera_angle_x": 1.0, "frames": [frame("b.png")]}, "t2.json"),
                     require_images=True)


def test_distortion_and_fisheye_warnings(tmp_path):
    make_image(tmp_path / "a.png")
    data = {"fl_x": 10.0, "k1": 0.1, "p2": -0.01, "frames": [frame("a.png"), frame("a.png")]}
    cs = load_cameras(write(tmp_path, data))
    assert cs.warnings == ["lens distortion (k1, p2) is ignored: views are rendered as an undistorted pinhole"]
    cs = load_cameras(write(tmp_path, {"fl_x": 10.0, "camera_model": "OPENCV_FISHEYE", "frames": [frame("a.png")]},
                            "t2.json"))
    assert len(cs.warnings) == 1 and "fisheye" in cs.warnings[0]


@pytest.mark.parametrize("data,problem", [
    ("", "file is empty"),
    ("{\"frames\": [", "not valid JSON"),
    ([1, 2], "camera 0: expected a JSON object"),  # a list is read as a graphdeco cameras.json
    ({"camera_angle_x": 1.0, "frames": []}, "'frames' is empty"),
    ({"camera_angle_x": 1.0, "frames": {"a": 1}}, "'frames' is not a list"),
    ({"camera_angle_x": 1.0, "frames": [7]}, "frame 0: expected a JSON object"),
    ({"camera_angle_x": 1.0, "frames": [{"transform_matrix": np.eye(4).tolist()}]}, "frame 0: 'file_path' is missing"),
    ({"camera_angle_x": 1.0, "frames": [{"file_path": "a.png"}]}, r"frame 0 \(a.png\): missing 'transform_matrix'"),
    ({"camera_angle_x": 1.0, "frames": [frame("a.png", np.full((4, 4), np.nan))]}, "holds NaN or Inf"),
    ({"camera_angle_x": 1.0, "frames": [frame("a.png", np.eye(3))]}, r"has shape \(3, 3\)"),
    ({"camera_angle_x": 1.0, "frames": [frame("a.png", np.diag([2.0, 2.0, 2.0, 1.0]))]}, "not orthonormal"),
    ({"camera_angle_x": 1.0, "frames": [frame("a.png", np.diag([1.0, 1.0, -1.0, 1.0]))]}, "reflection"),
    ({"camera_angle_x": 1.0, "frames": [frame("a.png", [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]])]},
     "last row"),
    ({"frames": [frame("a.png")]}, "no focal length"),
    ({"camera_angle_x": 4.0, "frames": [frame("a.png")]}, "must be below pi"),
    ({"camera_angle_x": -1.0, "frames": [frame("a.png")]}, "camera_angle_x must be positive"),
    ({"fl_x": "big", "frames": [frame("a.png")]}, "fl_x is not a number"),
    ({"fl_x": 10.0, "w": 0, "h": 10, "frames": [frame("a.png")]}, "w must be positive"),
    ({"fl_x": 10.0, "k1": "x", "frames": [frame("a.png")]}, "k1 is not a number"),
])
def test_malformed_transforms(tmp_path, data, problem):
    make_image(tmp_path / "a.png")
    p = write(tmp_path, data)
    with pytest.raises(InputFileError, match=problem) as err:
        load_cameras(p)
    assert err.value.path == p and str(err.value).startswith(str(p))


def test_malformed_frame_without_image_still_raises(tmp_path):
    # a broken pose is a broken file even when its image is missing (it is not a "skipped" frame)
    make_image(tmp_path / "a.png")
    data = {"camera_angle_x": 1.0, "frames": [frame("a.png"), frame("gone.png", np.zeros((4, 4)))]}
    with pytest.raises(InputFileError, match=r"frame 1 \(gone.png\)"):
        load_cameras(write(tmp_path, data))
