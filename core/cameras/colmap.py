"""COLMAP sparse models: ``cameras``/``images`` as ``.bin`` or ``.txt`` (points3D is not read).

Format (COLMAP ``src/colmap/scene/reconstruction_io``; ``scripts/python/read_write_model.py``),
little-endian binary:

- ``cameras.bin``: uint64 count, then per camera int32 camera_id, int32 model_id, uint64 width,
  uint64 height, float64 params[n(model)].
- ``images.bin``: uint64 count, then per image int32 image_id, float64 qw qx qy qz tx ty tz,
  int32 camera_id, NUL-terminated UTF-8 name, uint64 n_points2D, n x (float64 x, float64 y,
  int64 point3D_id).
- ``cameras.txt``: ``CAMERA_ID MODEL WIDTH HEIGHT PARAMS...`` per line, ``#`` comments.
- ``images.txt``: two lines per image: ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` then the
  (possibly empty) ``X Y POINT3D_ID ...`` line.

(qw, qx, qy, qz) and t are the world-to-camera rotation and translation in OpenCV axes, which is
this project's convention. COLMAP puts the centre of the upper-left pixel at (0.5, 0.5), as we
do, so cx, cy are used as stored. Distortion parameters are ignored (the renderer is a pinhole):
the cameras are kept and a warning is recorded. Image files are looked up as
``<dataset root>/images/<name>`` where the dataset root holds ``sparse/``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from core.camera import Camera
from core.cameras.camera_set import CameraSet, build_set, is_file, make_camera
from core.errors import InputFileError
from core.io.input_file import read_input_bytes

# model_id: (name, number of params, params hold a single focal length f)
MODELS: dict[int, tuple[str, int, bool]] = {
    0: ("SIMPLE_PINHOLE", 3, True),
    1: ("PINHOLE", 4, False),
    2: ("SIMPLE_RADIAL", 4, True),
    3: ("RADIAL", 5, True),
    4: ("OPENCV", 8, False),
    5: ("OPENCV_FISHEYE", 8, False),
    6: ("FULL_OPENCV", 12, False),
    7: ("FOV", 5, False),
    8: ("SIMPLE_RADIAL_FISHEYE", 4, True),
    9: ("RADIAL_FISHEYE", 5, True),
    10: ("THIN_PRISM_FISHEYE", 12, False),
    11: ("RAD_TAN_THIN_PRISM_FISHEYE", 16, False),
}
MODEL_IDS = {name: mid for mid, (name, _, _) in MODELS.items()}
COLMAP_FILE_NAMES = {f"{stem}.{ext}" for stem in ("cameras", "images", "points3D") for ext in ("bin", "txt")}


class _Intrinsics:
    __slots__ = ("model", "width", "height", "params")

    def __init__(self, model: str, width: int, height: int, params: tuple[float, ...]) -> None:
        self.model, self.width, self.height, self.params = model, width, height, params


def _check_intrinsics(path: Path, cam_id: int, cam: _Intrinsics) -> None:
    if cam.width <= 0 or cam.height <= 0:
        raise InputFileError(path, f"camera {cam_id}: size {cam.width}x{cam.height} is not positive")
    if not np.isfinite(cam.params).all():
        raise InputFileError(path, f"camera {cam_id}: parameters hold NaN or Inf")
    fx, fy, _, _, _ = _intrinsics(cam)
    if fx <= 0 or fy <= 0:
        raise InputFileError(path, f"camera {cam_id}: focal length must be positive, got fx={fx:g}, fy={fy:g}")


def _has_model(folder: Path) -> str | None:
    for ext in ("bin", "txt"):
        if (folder / f"cameras.{ext}").is_file() and (folder / f"images.{ext}").is_file():
            return ext
    return None


def find_colmap_model(folder: Path) -> Path | None:
    """The COLMAP model folder for ``folder``: itself, ``sparse/0``, ``sparse`` or ``sparse/<n>``."""
    folder = Path(folder)
    candidates = [folder, folder / "sparse" / "0", folder / "sparse"]
    sparse = folder / "sparse"
    if sparse.is_dir():
        candidates += sorted((d for d in sparse.iterdir() if d.is_dir() and d.name.isdigit()),
                             key=lambda d: int(d.name))
    for c in candidates:
        if _has_model(c):
            return c
    return None


MAX_MODEL_BYTES = 2**31
"""Largest COLMAP cameras/images file read (images.bin of a 10k-image model with its 2D points: ~1 GB)."""


# -- binary ----------------------------------------------------------------------------------------
class _Reader:
    """Bounds-checked little-endian reader over a whole file's bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = read_input_bytes(path, MAX_MODEL_BYTES, "a COLMAP model file")
        if not self.data:
            raise InputFileError(path, "file is empty")
        self.pos = 0

    def unpack(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise InputFileError(self.path, f"file is truncated: {what} needs {size} bytes at offset {self.pos}, "
                                            f"only {len(self.data) - self.pos} left")
        out = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return out

    def skip(self, size: int, what: str) -> None:
        if self.pos + size > len(self.data):
            raise InputFileError(self.path, f"file is truncated: {what} needs {size} bytes at offset {self.pos}, "
                                            f"only {len(self.data) - self.pos} left")
        self.pos += size

    def cstring(self, what: str) -> str:
        end = self.data.find(b"\0", self.pos)
        if end < 0:
            raise InputFileError(self.path, f"file is truncated: {what} has no terminating NUL byte")
        raw = self.data[self.pos:end]
        self.pos = end + 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InputFileError(self.path, f"{what} is not valid UTF-8") from None

    def finish(self, what: str) -> None:
        if self.pos != len(self.data):
            raise InputFileError(self.path, f"{len(self.data) - self.pos} unexpected bytes after the last {what} "
                                            "(wrong count or corrupt file)")


def _read_cameras_bin(path: Path) -> dict[int, _Intrinsics]:
    r = _Reader(path)
    (count,) = r.unpack("Q", "camera count")
    out: dict[int, _Intrinsics] = {}
    for k in range(count):
        cam_id, model_id, width, height = r.unpack("iiQQ", f"camera {k}")
        if model_id not in MODELS:
            raise InputFileError(path, f"camera {cam_id}: unknown camera model id {model_id}")
        name, n, _ = MODELS[model_id]
        params = r.unpack("d" * n, f"camera {cam_id} ({name}) parameters")
        out[cam_id] = _Intrinsics(name, width, height, params)
        _check_intrinsics(path, cam_id, out[cam_id])
    r.finish("camera")
    return out


def _read_images_bin(path: Path) -> list[tuple[int, tuple, tuple, int, str]]:
    r = _Reader(path)
    (count,) = r.unpack("Q", "image count")
    out = []
    for k in range(count):
        image_id, qw, qx, qy, qz, tx, ty, tz, cam_id = r.unpack("idddddddi", f"image {k}")
        name = r.cstring(f"image {image_id} name")
        (n_points,) = r.unpack("Q", f"image {image_id} point count")
        if n_points > len(r.data):
            raise InputFileError(path, f"image {image_id} claims {n_points} 2D points: corrupt file")
        r.skip(24 * n_points, f"image {image_id} 2D points")
        out.append((image_id, (qw, qx, qy, qz), (tx, ty, tz), cam_id, name))
    r.finish("image")
    return out


# -- text ------------------------------------------------------------------------------------------
def _text_lines(path: Path) -> list[str]:
    try:
        text = read_input_bytes(path, MAX_MODEL_BYTES, "a COLMAP model file").decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError(path, "not a text file (not UTF-8)") from None
    if not text.strip():
        raise InputFileError(path, "file is empty")
    return text.splitlines()


def _numbers(path: Path, lineno: int, tokens: list[str], kind: type, what: str) -> list:
    try:
        return [kind(t) for t in tokens]
    except ValueError:
        raise InputFileError(path, f"line {lineno}: {what} must be numbers, got {' '.join(tokens)!r}") from None


def _read_cameras_txt(path: Path) -> dict[int, _Intrinsics]:
    out: dict[int, _Intrinsics] = {}
    for lineno, line in enumerate(_text_lines(path), start=1):
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) < 4:
            raise InputFileError(path, f"line {lineno}: expected CAMERA_ID MODEL WIDTH HEIGHT PARAMS...")
        model = tokens[1]
        if model not in MODEL_IDS:
            raise InputFileError(path, f"line {lineno}: unknown camera model {model!r}")
        cam_id, width, height = _numbers(path, lineno, [tokens[0], tokens[2], tokens[3]], int,
                                         "CAMERA_ID, WIDTH, HEIGHT")
        params = tuple(_numbers(path, lineno, tokens[4:], float, "camera parameters"))
        n = MODELS[MODEL_IDS[model]][1]
        if len(params) != n:
            raise InputFileError(path, f"line {lineno}: {model} takes {n} parameters, got {len(params)}")
        out[cam_id] = _Intrinsics(model, width, height, params)
        _check_intrinsics(path, cam_id, out[cam_id])
    return out


def _is_image_line(tokens: list[str]) -> bool:
    """An image line has >= 10 tokens and a NAME that is not a number; 2D-point lines are numeric."""
    if len(tokens) < 10:
        return False
    try:
        float(tokens[9])
    except ValueError:
        return True
    return len(tokens) % 3 != 0


def _read_images_txt(path: Path) -> list[tuple[int, tuple, tuple, int, str]]:
    lines = _text_lines(path)
    out = []
    i = 0
    while i < len(lines):
        tokens = lines[i].split()
        lineno = i + 1
        i += 1
        if not tokens or tokens[0].startswith("#"):
            continue
        if len(tokens) < 10:
            raise InputFileError(path, f"line {lineno}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME")
        image_id, cam_id = _numbers(path, lineno, [tokens[0], tokens[8]], int, "IMAGE_ID and CAMERA_ID")
        pose = _numbers(path, lineno, tokens[1:8], float, "QW QX QY QZ TX TY TZ")
        out.append((image_id, tuple(pose[:4]), tuple(pose[4:]), cam_id, " ".join(tokens[9:])))
        # The next line lists the image's 2D points (possibly empty); tolerate files that omit it.
        if i < len(lines) and not _is_image_line(lines[i].split()) and not lines[i].lstrip().startswith("#"):
            i += 1
    return out


# -- conversion ------------------------------------------------------------------------------------
def qvec_to_rotation(q: np.ndarray) -> np.ndarray:
    """[3, 3] rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def _intrinsics(cam: _Intrinsics) -> tuple[float, float, float, float, tuple[float, ...]]:
    """(fx, fy, cx, cy, distortion params) for any COLMAP model."""
    _, _, single_f = MODELS[MODEL_IDS[cam.model]]
    p = cam.params
    if single_f:
        return p[0], p[0], p[1], p[2], p[3:]
    return p[0], p[1], p[2], p[3], p[4:]


def load_colmap(model_dir: Path, require_images: bool | None) -> CameraSet:
    """Load a COLMAP model folder (``.bin`` preferred over ``.txt``) into a CameraSet.

    Cameras are sorted by image name. See :func:`core.cameras.load_cameras` for ``require_images``.
    """
    model_dir = Path(model_dir)
    ext = _has_model(model_dir)
    if ext is None:
        raise InputFileError(model_dir, "no COLMAP model here: cameras and images (.bin or .txt) are both needed")
    cam_path, img_path = model_dir / f"cameras.{ext}", model_dir / f"images.{ext}"
    if ext == "bin":
        intrinsics, images = _read_cameras_bin(cam_path), _read_images_bin(img_path)
    else:
        intrinsics, images = _read_cameras_txt(cam_path), _read_images_txt(img_path)
    if not images:
        raise InputFileError(img_path, "the model has no images")
    if model_dir.parent.name == "sparse":
        root = model_dir.parent.parent
    elif model_dir.name == "sparse":
        root = model_dir.parent
    else:
        root = model_dir.parent

    def find_image(name: str) -> Path | None:
        for c in (root / "images" / name, model_dir.parent / "images" / name, root / name):
            if is_file(c):
                return c
        return None

    found = {name: find_image(name) for (_, _, _, _, name) in images}
    require = any(v is not None for v in found.values()) if require_images is None else require_images
    warnings: list[str] = []
    cameras: list[Camera] = []
    skipped: list[str] = []
    for image_id, qvec, tvec, cam_id, name in sorted(images, key=lambda im: im[4]):
        what = f"image {image_id} ({name})"
        cam = intrinsics.get(cam_id)
        if cam is None:
            raise InputFileError(img_path, f"{what} refers to camera {cam_id}, which {cam_path.name} does not define")
        q = np.asarray(qvec, dtype=np.float64)
        t = np.asarray(tvec, dtype=np.float64)
        if not (np.isfinite(q).all() and np.isfinite(t).all()):
            raise InputFileError(img_path, f"{what}: pose holds NaN or Inf")
        norm = float(np.linalg.norm(q))
        if abs(norm - 1.0) > 1e-2:
            raise InputFileError(img_path, f"{what}: quaternion has norm {norm:.4g}, expected a unit quaternion")
        fx, fy, cx, cy, dist = _intrinsics(cam)
        if "FISHEYE" in cam.model or (cam.model == "FOV" and any(dist)):
            note = f"camera model {cam.model} is rendered as a pinhole: views will not match the fisheye images"
        elif any(dist):
            note = f"lens distortion of {cam.model} cameras is ignored (rendered as an undistorted pinhole)"
        else:
            note = None
        if note and note not in warnings:
            warnings.append(note)
        image = found[name]
        if image is None and require:
            skipped.append(f"{what}: image file not found")
            continue
        w2c = np.eye(4)
        w2c[:3, :3] = qvec_to_rotation(q / norm)
        w2c[:3, 3] = t
        cameras.append(make_camera(
            img_path, what, world_to_camera=w2c, fx=fx, fy=fy, cx=cx, cy=cy, width=cam.width,
            height=cam.height, image_path=image, name=Path(name).stem,
            extra={"image_id": image_id, "camera_id": cam_id, "colmap_model": cam.model, "image_name": name}))
    return build_set(cameras, skipped, model_dir, f"colmap_{ext}", warnings, len(images))
