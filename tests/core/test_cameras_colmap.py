"""COLMAP sparse models (.bin and .txt): a small writer following COLMAP's format, round trips,
a hand-checked projection, folder layouts, images on disk and malformed files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from core.cameras import load_cameras
from core.cameras.colmap import MODEL_IDS, qvec_to_rotation
from core.errors import InputFileError

# -- a minimal COLMAP writer (format of colmap/src/colmap/scene/reconstruction_io.cc) -----------------
# camera: (camera_id, model_name, width, height, params); image: (image_id, qvec wxyz, tvec, camera_id,
# name, points2D [(x, y, point3D_id), ...])


def write_cameras_bin(path: Path, cameras) -> None:
    out = [struct.pack("<Q", len(cameras))]
    for cam_id, model, w, h, params in cameras:
        out.append(struct.pack("<iiQQ", cam_id, MODEL_IDS[model], w, h))
        out.append(struct.pack("<" + "d" * len(params), *params))
    path.write_bytes(b"".join(out))


def write_images_bin(path: Path, images) -> None:
    out = [struct.pack("<Q", len(images))]
    for image_id, q, t, cam_id, name, points in images:
        out.append(struct.pack("<idddddddi", image_id, *q, *t, cam_id))
        out.append(name.encode("utf-8") + b"\0")
        out.append(struct.pack("<Q", len(points)))
        for x, y, pid in points:
            out.append(struct.pack("<ddq", x, y, pid))
    path.write_bytes(b"".join(out))


def write_cameras_txt(path: Path, cameras) -> None:
    lines = ["# Camera list with one line of data per camera:", "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
             f"# Number of cameras: {len(cameras)}"]
    lines += [" ".join(map(str, [cam_id, model, w, h, *map(repr, params)])) for cam_id, model, w, h, params in cameras]
    path.write_text("\n".join(lines) + "\n")


def write_images_txt(path: Path, images, points_lines: bool = True) -> None:
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
             "#   POINTS2D[] as (X, Y, POINT3D_ID)", f"# Number of images: {len(images)}, mean observations: 0"]
    for image_id, q, t, cam_id, name, points in images:
        lines.append(" ".join([str(image_id), *map(repr, map(float, q)), *map(repr, map(float, t)), str(cam_id), name]))
        if points_lines:
            lines.append(" ".join(f"{x!r} {y!r} {pid}" for x, y, pid in points))
    path.write_text("\n".join(lines) + "\n")


def write_model(folder: Path, cameras, images, kind: str = "bin", points_lines: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "bin":
        write_cameras_bin(folder / "cameras.bin", cameras)
        write_images_bin(folder / "images.bin", images)
    else:
        write_cameras_txt(folder / "cameras.txt", cameras)
        write_images_txt(folder / "images.txt", images, points_lines)
    return folder


def project(cam, x):
    p = cam.world_to_camera @ np.append(np.asarray(x, dtype=np.float64), 1.0)
    return cam.fx * p[0] / p[2] + cam.cx, cam.fy * p[1] / p[2] + cam.cy, p[2]


def random_images(rng, n, cam_ids):
    images = []
    for k in range(n):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q *= np.sign(q[0])
        t = rng.normal(size=3) * 3
        pts = [(float(rng.uniform(0, 600)), float(rng.uniform(0, 400)), int(rng.integers(-1, 1000)))
               for _ in range(int(rng.integers(0, 4)))]
        images.append((k + 1, tuple(q), tuple(t), cam_ids[k % len(cam_ids)], f"img_{n - k:03d}.jpg", pts))
    return images


CAMS = [(1, "PINHOLE", 640, 480, (500.0, 510.0, 320.5, 239.25)), (2, "SIMPLE_PINHOLE", 800, 600, (700.0, 400.0, 300.0))]
HAND_Q = (np.sqrt(0.5), 0.0, np.sqrt(0.5), 0.0)  # 90 degrees about y: R = [[0,0,1],[0,1,0],[-1,0,0]]
HAND_IMAGES = [(7, HAND_Q, (0.5, -1.0, 6.0), 3, "hand.png", [(1.0, 2.0, -1)])]
HAND_CAMS = [(3, "PINHOLE", 640, 480, (100.0, 120.0, 320.0, 240.0))]


# -- round trips and the hand-checked camera --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bin", "txt"])
def test_hand_checked_camera_projects_known_point(tmp_path, kind):
    write_model(tmp_path / "sparse" / "0", HAND_CAMS, HAND_IMAGES, kind)
    cs = load_cameras(tmp_path)
    assert cs.format == f"colmap_{kind}" and len(cs.cameras) == 1 and cs.skipped == [] and cs.warnings == []
    cam = cs.cameras[0]
    # R @ (1,2,3) = (3, 2, -1); + t = (3.5, 1, 5): u = 100*3.5/5 + 320 = 390, v = 120*1/5 + 240 = 264
    u, v, z = project(cam, (1.0, 2.0, 3.0))
    assert (u, v, z) == pytest.approx((390.0, 264.0, 5.0), abs=1e-9)
    assert (cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height) == (100.0, 120.0, 320.0, 240.0, 640, 480)
    np.testing.assert_allclose(cam.world_to_camera[:3, :3], [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-12)
    # camera centre C = -R^T t, R^T = [[0,0,-1],[0,1,0],[1,0,0]]
    np.testing.assert_allclose(cam.position, [6.0, 1.0, -0.5], atol=1e-12)
    assert cam.name == "hand" and cam.extra["image_id"] == 7 and cam.extra["colmap_model"] == "PINHOLE"


@pytest.mark.parametrize("kind", ["bin", "txt"])
def test_round_trip_random_poses(tmp_path, kind):
    rng = np.random.default_rng(5)
    images = random_images(rng, 12, [1, 2])
    write_model(tmp_path, CAMS, images, kind)
    cs = load_cameras(tmp_path)
    assert len(cs.cameras) == 12
    by_name = {im[4]: im for im in images}
    assert [c.extra["image_name"] for c in cs.cameras] == sorted(by_name)  # sorted by name
    intr = {c[0]: c for c in CAMS}
    for cam in cs.cameras:
        image_id, q, t, cam_id, name, _ = by_name[cam.extra["image_name"]]
        np.testing.assert_allclose(cam.world_to_camera[:3, :3], qvec_to_rotation(np.array(q)), atol=1e-12)
        np.testing.assert_allclose(cam.world_to_camera[:3, 3], t, atol=1e-12)
        _, model, w, h, params = intr[cam_id]
        expected = params if model == "PINHOLE" else (params[0], params[0], params[1], params[2])
        assert (cam.fx, cam.fy, cam.cx, cam.cy) == pytest.approx(expected, abs=0)
        assert (cam.width, cam.height) == (w, h)
        assert cam.image_path is None  # no images folder: cameras kept without images


def test_bin_and_txt_agree_and_bin_is_preferred(tmp_path):
    rng = np.random.default_rng(1)
    images = random_images(rng, 5, [1, 2])
    a = load_cameras(write_model(tmp_path / "a", CAMS, images, "bin"))
    b = load_cameras(write_model(tmp_path / "b", CAMS, images, "txt"))
    for ca, cb in zip(a.cameras, b.cameras):
        np.testing.assert_allclose(ca.world_to_camera, cb.world_to_camera, atol=1e-15)
        assert (ca.fx, ca.fy, ca.cx, ca.cy) == (cb.fx, cb.fy, cb.cx, cb.cy)
    both = tmp_path / "both"
    write_model(both, CAMS, images[:2], "bin")
    write_model(both, CAMS, images, "txt")
    cs = load_cameras(both)
    assert cs.format == "colmap_bin" and len(cs.cameras) == 2


def test_rotation_matrix_matches_colmap_quaternion_convention():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        r = qvec_to_rotation(q)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        # rotating vector v by q equals q * v * conj(q) (Hamilton product, w first)
        v = rng.normal(size=3)
        w, x, y, z = q
        qv = np.array([w, x, y, z])

        def mul(a, b):
            return np.array([a[0] * b[0] - a[1:] @ b[1:], *(a[0] * b[1:] + b[0] * a[1:] + np.cross(a[1:], b[1:]))])

        rotated = mul(mul(qv, np.array([0.0, *v])), qv * np.array([1, -1, -1, -1]))[1:]
        np.testing.assert_allclose(r @ v, rotated, atol=1e-12)


def test_text_images_without_points_lines_and_with_empty_points_lines(tmp_path):
    rng = np.random.default_rng(2)
    images = random_images(rng, 4, [1])
    images = [(i, q, t, c, n, []) for i, q, t, c, n, _ in images]  # empty points lines
    a = load_cameras(write_model(tmp_path / "a", CAMS, images, "txt"))
    b = load_cameras(write_model(tmp_path / "b", CAMS, images, "txt", points_lines=False))
    assert len(a.cameras) == len(b.cameras) == 4
    for ca, cb in zip(a.cameras, b.cameras):
        np.testing.assert_array_equal(ca.world_to_camera, cb.world_to_camera)


# -- distortion models ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("model,params,expected,warns", [
    ("SIMPLE_RADIAL", (600.0, 320.0, 240.0, 0.01), (600.0, 600.0, 320.0, 240.0), "SIMPLE_RADIAL"),
    ("SIMPLE_RADIAL", (600.0, 320.0, 240.0, 0.0), (600.0, 600.0, 320.0, 240.0), None),
    ("RADIAL", (600.0, 320.0, 240.0, 0.01, -0.002), (600.0, 600.0, 320.0, 240.0), "RADIAL"),
    ("OPENCV", (600.0, 610.0, 321.0, 241.0, 0.1, -0.01, 0.001, 0.0), (600.0, 610.0, 321.0, 241.0), "OPENCV"),
    ("OPENCV_FISHEYE", (300.0, 301.0, 320.0, 240.0, 0.0, 0.0, 0.0, 0.0), (300.0, 301.0, 320.0, 240.0), "fisheye"),
])
@pytest.mark.parametrize("kind", ["bin", "txt"])
def test_distorted_models_are_kept_with_a_warning(tmp_path, model, params, expected, warns, kind):
    write_model(tmp_path, [(1, model, 640, 480, params)], [(1, (1.0, 0, 0, 0), (0, 0, 0), 1, "a.jpg", [])], kind)
    cs = load_cameras(tmp_path)
    cam = cs.cameras[0]
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == expected
    if warns is None:
        assert cs.warnings == []
    else:
        assert len(cs.warnings) == 1 and warns in cs.warnings[0]


# -- layouts and images ------------------------------------------------------------------------------------------
def test_accepts_dataset_root_model_folder_and_model_files(tmp_path):
    model = write_model(tmp_path / "sparse" / "0", HAND_CAMS, HAND_IMAGES, "bin")
    for p in (tmp_path, model, model / "cameras.bin", model / "images.bin"):
        cs = load_cameras(p)
        assert cs.source == model and len(cs.cameras) == 1
    flat = write_model(tmp_path / "flat" / "sparse", HAND_CAMS, HAND_IMAGES, "txt")
    assert load_cameras(tmp_path / "flat").source == flat


def test_images_resolved_under_dataset_root_and_missing_ones_skipped(tmp_path):
    rng = np.random.default_rng(3)
    images = random_images(rng, 5, [1])
    write_model(tmp_path / "sparse" / "0", CAMS, images, "bin")
    (tmp_path / "images").mkdir()
    present = sorted(im[4] for im in images)[:3]
    for name in present:
        (tmp_path / "images" / name).write_bytes(b"x")
    cs = load_cameras(tmp_path)
    assert [c.image_path for c in cs.cameras] == [tmp_path / "images" / n for n in present]
    assert len(cs.skipped) == 2 and all("image file not found" in s for s in cs.skipped)
    keep = load_cameras(tmp_path, require_images=False)
    assert len(keep.cameras) == 5 and keep.skipped == []
    assert sum(c.image_path is None for c in keep.cameras) == 2


def test_require_images_with_no_images_raises(tmp_path):
    write_model(tmp_path, HAND_CAMS, HAND_IMAGES, "bin")
    assert load_cameras(tmp_path).cameras[0].image_path is None
    with pytest.raises(InputFileError, match="none of the 1 cameras is usable"):
        load_cameras(tmp_path, require_images=True)


# -- malformed files ------------------------------------------------------------------------------------------
def _bin_model(tmp_path):
    return write_model(tmp_path, HAND_CAMS, HAND_IMAGES, "bin")


@pytest.mark.parametrize("file,mutate,problem", [
    ("cameras.bin", lambda b: b"", "file is empty"),
    ("images.bin", lambda b: b"", "file is empty"),
    ("cameras.bin", lambda b: b[:-4], "truncated"),
    ("cameras.bin", lambda b: b[:5], "truncated"),
    ("cameras.bin", lambda b: b + b"\0\0\0", "3 unexpected bytes"),
    ("images.bin", lambda b: b[:-10], "truncated"),
    ("images.bin", lambda b: b[:8 + 64 + 3], "no terminating NUL"),
    ("images.bin", lambda b: b + b"junk", "4 unexpected bytes"),
    ("images.bin", lambda b: struct.pack("<Q", 2) + b[8:], "truncated"),
    ("cameras.bin", lambda b: b[:12] + struct.pack("<i", 42) + b[16:], "unknown camera model id 42"),
    ("cameras.bin", lambda b: b[:16] + struct.pack("<Q", 0) + b[24:], "size 0x480"),
])
def test_malformed_binary_files(tmp_path, file, mutate, problem):
    model = _bin_model(tmp_path)
    p = model / file
    p.write_bytes(mutate(p.read_bytes()))
    with pytest.raises(InputFileError, match=problem) as err:
        load_cameras(model)
    assert err.value.path == p


@pytest.mark.parametrize("images,problem", [
    ([(1, (float("nan"), 0, 0, 0), (0, 0, 0), 3, "a.jpg", [])], "NaN or Inf"),
    ([(1, (1.0, 0, 0, 0), (0, float("inf"), 0), 3, "a.jpg", [])], "NaN or Inf"),
    ([(1, (2.0, 0, 0, 0), (0, 0, 0), 3, "a.jpg", [])], "unit quaternion"),
    ([(1, (0.0, 0, 0, 0), (0, 0, 0), 3, "a.jpg", [])], "unit quaternion"),
    ([(1, (1.0, 0, 0, 0), (0, 0, 0), 9, "a.jpg", [])], "refers to camera 9"),
    ([], "has no images"),
])
@pytest.mark.parametrize("kind", ["bin", "txt"])
def test_bad_poses_and_references(tmp_path, images, problem, kind):
    write_model(tmp_path, HAND_CAMS, images, kind)
    with pytest.raises(InputFileError, match=problem) as err:
        load_cameras(tmp_path)
    assert err.value.path.name == f"images.{kind}"


@pytest.mark.parametrize("cameras_text,problem", [
    ("", "file is empty"),
    ("# only a comment\n", "has no images|refers to camera"),
    ("3 PINHOLE 640\n", "expected CAMERA_ID MODEL WIDTH HEIGHT"),
    ("3 BANANA 640 480 1 2 3\n", "unknown camera model 'BANANA'"),
    ("3 PINHOLE 640 480 100 120 320\n", "PINHOLE takes 4 parameters, got 3"),
    ("3 PINHOLE 640 480 100 abc 320 240\n", "line 1: camera parameters must be numbers"),
    ("x PINHOLE 640 480 100 120 320 240\n", "line 1: CAMERA_ID, WIDTH, HEIGHT must be numbers"),
    ("3 PINHOLE 640 480 -100 120 320 240\n", "focal length must be positive"),
    ("3 PINHOLE 640 480 nan 120 320 240\n", "NaN or Inf"),
])
def test_malformed_cameras_txt(tmp_path, cameras_text, problem):
    write_model(tmp_path, HAND_CAMS, HAND_IMAGES, "txt")
    (tmp_path / "cameras.txt").write_text(cameras_text)
    with pytest.raises(InputFileError, match=problem):
        load_cameras(tmp_path)


@pytest.mark.parametrize("images_text,problem", [
    ("", "file is empty"),
    ("\n# c\n", "has no images"),
    ("1 1 0 0 0 0 0 0 3\n\n", "expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME"),
    ("1 1 0 0 zero 0 0 0 3 a.jpg\n\n", "line 1: QW QX QY QZ TX TY TZ must be numbers"),
    (b"\xff\xfe\x00garbage", "not a text file"),
])
def test_malformed_images_txt(tmp_path, images_text, problem):
    write_model(tmp_path, HAND_CAMS, HAND_IMAGES, "txt")
    p = tmp_path / "images.txt"
    p.write_bytes(images_text if isinstance(images_text, bytes) else images_text.encode())
    with pytest.raises(InputFileError, match=problem) as err:
        load_cameras(tmp_path)
    assert err.value.path == p


def test_incomplete_model_is_reported(tmp_path):
    write_cameras_bin(tmp_path / "cameras.bin", HAND_CAMS)
    with pytest.raises(InputFileError, match="cameras and images files are both needed"):
        load_cameras(tmp_path / "cameras.bin")
    with pytest.raises(InputFileError, match="no camera file found"):
        load_cameras(tmp_path)
