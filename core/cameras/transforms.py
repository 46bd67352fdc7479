"""NeRF-synthetic (Blender) and instant-ngp ``transforms*.json`` camera files.

Poses: each frame's ``transform_matrix`` is a 4x4 (or 3x4) camera-to-world matrix in OpenGL
camera axes (x right, y up, looking down -z). Converted to ours (OpenCV: y down, z forward) by
``c2w_cv = c2w @ diag(1, -1, -1, 1)``; ``world_to_camera = inv(c2w_cv)``. Poses are used exactly
as given: instant-ngp's ``scale``/``offset``/``aabb_scale`` (which instant-ngp applies inside its
own loader, together with an axis swap) are *not* applied, so cameras live in the file's world
frame, the frame a splat trained on the same file by a graphdeco-style trainer uses.

Intrinsics, each looked up on the frame first, then at the top level (instant-ngp allows
per-frame intrinsics):

- size: the image file's own size (read from the header); else ``w``/``h``. When both exist and
  differ (downscaled images), intrinsics given in pixels are scaled to the image, with a warning.
- fx: ``fl_x``, else ``0.5 * W / tan(0.5 * camera_angle_x)`` (Blender); fy: ``fl_y``, else from
  ``camera_angle_y``, else fx.
- cx, cy: ``cx``/``cy`` as stored (same pixel-centre convention as COLMAP and us), else W/2, H/2.
- distortion (``k1``, ``k2``, ``k3``, ``k4``, ``p1``, ``p2``): ignored, with a warning.

Image paths: ``file_path`` relative to the JSON's folder (absolute paths are used as is,
backslashes are accepted); when that file does not exist, ``.png``, ``.jpg`` and ``.jpeg`` (also
upper-case) are tried appended to it (Blender lego writes ``./train/r_0``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.camera import Camera
from core.cameras.camera_set import (CameraSet, as_array, as_file_name, as_number, as_size, build_set,
                                     checked_rotation, is_file, make_camera, read_json, rigid_world_to_camera)
from core.errors import InputFileError

TRANSFORMS_NAMES = ("transforms_train.json", "transforms.json")
"""File names looked for in a dataset folder, in order of preference."""

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")
_DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
_OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


class _ImageFinder:
    """Resolves frame image paths, listing each folder once (fast on slow or network drives)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[Path, set[str]] = {}

    def _exists(self, p: Path) -> bool:
        folder = p.parent
        if folder not in self._listings:
            try:
                self._listings[folder] = set(os.listdir(folder))
            except (OSError, ValueError):
                self._listings[folder] = set()
        return p.name in self._listings[folder] and is_file(p)

    def find(self, file_path: str) -> Path | None:
        for text in dict.fromkeys((file_path, file_path.replace("\\", "/"))):
            p = Path(text)
            p = p if p.is_absolute() else self.root / p
            p = Path(os.path.normpath(p))
            if self._exists(p):
                return p
            for ext in IMAGE_EXTENSIONS:
                c = p.with_name(p.name + ext)
                if self._exists(c):
                    return c
        return None


def _image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the image header, or None when the file is not a readable image."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return None


def _pose(frame: dict, path: Path, what: str, warnings: list[str]) -> np.ndarray:
    """[4, 4] world-to-camera (OpenCV axes) from the frame's OpenGL camera-to-world matrix."""
    raw = frame.get("transform_matrix")
    if raw is None:
        raise InputFileError(path, f"{what}: missing 'transform_matrix'")
    try:
        rows = len(raw)  # type: ignore[arg-type]
    except TypeError:
        rows = 0
    m = as_array(raw, (3, 4) if rows == 3 else (4, 4), path, f"{what}: transform_matrix")
    if rows == 3:
        m = np.vstack([m, [0.0, 0.0, 0.0, 1.0]])
    if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise InputFileError(path, f"{what}: transform_matrix last row is {m[3].tolist()}, expected [0, 0, 0, 1]")
    c2w = m @ _OPENGL_TO_OPENCV
    r = checked_rotation(c2w[:3, :3], path, what, warnings)
    return rigid_world_to_camera(r, c2w[:3, 3])


def _intrinsics(frame: dict, top: dict, actual: tuple[int, int] | None, path: Path, what: str,
                warnings: list[str]) -> tuple[float, float, float, float, int, int] | None:
    """(fx, fy, cx, cy, width, height) in the image's pixels; None when the size is unknown."""

    def get(key: str) -> object:
        return frame[key] if key in frame else top.get(key)

    declared = None
    if get("w") is not None and get("h") is not None:
        declared = (as_size(get("w"), path, f"{what}: w"), as_size(get("h"), path, f"{what}: h"))
    if actual is None and declared is None:
        return None
    width, height = actual if actual is not None else declared
    sx, sy = (1.0, 1.0) if declared is None else (width / declared[0], height / declared[1])
    if (sx, sy) != (1.0, 1.0):
        note = (f"image files are {width}x{height} but the file declares w x h = {declared[0]}x{declared[1]}: "
                "intrinsics were scaled to the image size")
        if note not in warnings:
            warnings.append(note)

    if get("fl_x") is not None:
        fx = as_number(get("fl_x"), path, f"{what}: fl_x", positive=True) * sx
    elif get("camera_angle_x") is not None:
        fx = 0.5 * width / math.tan(0.5 * _angle(get("camera_angle_x"), path, f"{what}: camera_angle_x"))
    else:
        fx = None
    if get("fl_y") is not None:
        fy = as_number(get("fl_y"), path, f"{what}: fl_y", positive=True) * sy
    elif get("camera_angle_y") is not None:
        fy = 0.5 * height / math.tan(0.5 * _angle(get("camera_angle_y"), path, f"{what}: camera_angle_y"))
    else:
        fy = None
    if fx is None and fy is None:
        raise InputFileError(path, f"{what}: no focal length (fl_x, fl_y, camera_angle_x or camera_angle_y)")
    fx = fy if fx is None else fx
    fy = fx if fy is None else fy
    cx = as_number(get("cx"), path, f"{what}: cx") * sx if get("cx") is not None else width / 2.0
    cy = as_number(get("cy"), path, f"{what}: cy") * sy if get("cy") is not None else height / 2.0

    dist = [k for k in _DISTORTION_KEYS if get(k) is not None and as_number(get(k), path, f"{what}: {k}") != 0.0]
    if dist or "fisheye" in str(get("camera_model") or "").lower() or get("is_fisheye"):
        note = (f"lens distortion ({', '.join(dist) or 'fisheye'}) is ignored: views are rendered as an "
                f"undistorted pinhole")
        if note not in warnings:
            warnings.append(note)
    return fx, fy, cx, cy, width, height


def _angle(value: object, path: Path, what: str) -> float:
    a = as_number(value, path, what, positive=True)
    if a >= math.pi:
        raise InputFileError(path, f"{what} is {a:g} radians: a field of view must be below pi")
    return a


def load_transforms(path: Path, require_images: bool | None, *, data: object = None) -> CameraSet:
    """Load a ``transforms*.json`` into a CameraSet (format ``"transforms"``), frames in file order.

    Frames whose image file is missing are skipped and reported (see
    :func:`core.cameras.load_cameras` for ``require_images``); frames whose image exists but is
    not a readable image are skipped too. Malformed frames raise InputFileError.
    """
    path = Path(path)
    if data is None:
        data = read_json(path)
    if not isinstance(data, dict):
        raise InputFileError(path, "expected a JSON object with a 'frames' list (transforms.json)")
    frames = data.get("frames")
    if not isinstance(frames, list):
        raise InputFileError(path, "missing 'frames' list" if frames is None else "'frames' is not a list")
    if not frames:
        raise InputFileError(path, "'frames' is empty")

    finder = _ImageFinder(path.parent)
    warnings: list[str] = []
    parsed = []
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise InputFileError(path, f"frame {i}: expected a JSON object, got {type(frame).__name__}")
        file_path = as_file_name(frame.get("file_path"), path, f"frame {i}: 'file_path'")
        what = f"frame {i} ({file_path})"
        parsed.append((i, what, file_path, _pose(frame, path, what, warnings), finder.find(file_path), frame))

    require = any(p[4] is not None for p in parsed) if require_images is None else require_images
    cameras: list[Camera] = []
    skipped: list[str] = []
    for i, what, file_path, w2c, image, frame in parsed:
        if image is None and require:
            skipped.append(f"{what}: image file not found")
            continue
        actual = None
        if image is not None:
            actual = _image_size(image)
            if actual is None:
                skipped.append(f"{what}: {image.name} is not a readable image")
                continue
        intr = _intrinsics(frame, data, actual, path, what, warnings)
        if intr is None:
            skipped.append(f"{what}: image file not found and the file gives no w/h, so the size is unknown")
            continue
        fx, fy, cx, cy, width, height = intr
        name = image.stem if image is not None else Path(file_path.replace("\\", "/")).name
        cameras.append(make_camera(path, what, world_to_camera=w2c, fx=fx, fy=fy, cx=cx, cy=cy, width=width,
                                   height=height, image_path=image, name=name,
                                   extra={"frame_index": i, "file_path": file_path}))
    return build_set(cameras, skipped, path, "transforms", warnings, len(frames))
