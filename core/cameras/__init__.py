"""Camera sources: every supported camera file, converted to :class:`core.camera.Camera`.

Supported inputs (see :func:`load_cameras`):

- graphdeco ``cameras.json`` (written by the official 3DGS trainer), format ``"cameras_json"``;
- a COLMAP sparse model (``cameras.bin``/``images.bin`` or ``cameras.txt``/``images.txt``),
  formats ``"colmap_bin"`` / ``"colmap_txt"``;
- NeRF-synthetic / instant-ngp ``transforms*.json``, format ``"transforms"``.

Every loader converts at load time to the project's single convention (``core/camera.py``):
world-to-camera 4x4, OpenCV axes (x right, y down, z forward), principal point in pixels with
pixel centres at (j + 0.5, i + 0.5). Poses are taken as the file gives them: no recentering,
rescaling or re-orientation of the world frame.

Malformed files raise :class:`core.errors.InputFileError` naming the file and the problem.
Frames that are fine but unusable (an image file that does not exist) are skipped and reported
one message per frame in :attr:`CameraSet.skipped`; non-fatal caveats (lens distortion that the
pinhole renderer ignores) go to :attr:`CameraSet.warnings`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.camera import Camera, CameraValidationError
from core.errors import InputFileError, os_error_problem

log = logging.getLogger(__name__)

FORMATS = ("cameras_json", "colmap_bin", "colmap_txt", "transforms")
"""Values of :attr:`CameraSet.format`."""

_ROTATION_REPAIR_TOL = 1e-2
"""Max |R R^T - I| that is silently-with-a-warning re-orthonormalised (rounded values in a file)."""


@dataclass
class CameraSet:
    """Cameras loaded from one file, plus what was left out and why.

    ``cameras``: usable cameras in file order (COLMAP: sorted by image name, as graphdeco does).
    ``skipped``: one human-readable message per frame left out, e.g.
    ``"frame 12 (images/0012.jpg): image file not found"``.
    ``source``: the camera file that was read (COLMAP: the model folder, e.g. ``.../sparse/0``).
    ``format``: one of :data:`FORMATS`.
    ``warnings``: non-fatal caveats (ignored distortion, rescaled intrinsics, ...), each once.
    """

    cameras: list[Camera]
    skipped: list[str]
    source: Path
    format: str
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.cameras)


# -- helpers shared by the loaders (defined before the loader imports below) -----------------------


def read_json(path: Path) -> object:
    """Parse a JSON file, raising InputFileError for missing, empty, non-UTF-8 or invalid files."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputFileError(path, "not a text file (not UTF-8): expected JSON") from None
    except OSError as exc:
        raise InputFileError(path, os_error_problem(exc, "a JSON file")) from None
    if not text.strip():
        raise InputFileError(path, "file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def as_array(value: object, shape: tuple[int, ...], path: Path, what: str) -> np.ndarray:
    """``value`` as a finite float64 array of ``shape``, else InputFileError naming ``what``."""
    if value is None:
        raise InputFileError(path, f"{what} is missing")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputFileError(path, f"{what} is not a {'x'.join(map(str, shape))} array of numbers") from None
    if arr.shape != shape:
        raise InputFileError(path, f"{what} has shape {arr.shape}, expected {shape}")
    if not np.isfinite(arr).all():
        raise InputFileError(path, f"{what} holds NaN or Inf")
    return arr


def as_number(value: object, path: Path, what: str, *, positive: bool = False) -> float:
    """``value`` as a finite float (optionally > 0), else InputFileError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputFileError(path, f"{what} is {'missing' if value is None else 'not a number'}")
    v = float(value)
    if not np.isfinite(v):
        raise InputFileError(path, f"{what} is not finite")
    if positive and v <= 0:
        raise InputFileError(path, f"{what} must be positive, got {v:g}")
    return v


def as_size(value: object, path: Path, what: str) -> int:
    """A positive integer pixel count (``1080`` or ``1080.0``), else InputFileError."""
    v = as_number(value, path, what, positive=True)
    if v != int(v):
        raise InputFileError(path, f"{what} must be a whole number of pixels, got {v:g}")
    return int(v)


def checked_rotation(r: np.ndarray, path: Path, what: str, warnings: list[str]) -> np.ndarray:
    """A proper rotation from ``r`` [3, 3]. Returned unchanged when orthonormal to 1e-4 (float32
    files); re-orthonormalised by SVD with a warning when off by up to 1e-2 (values rounded in
    the file); anything else is an InputFileError (scaled, sheared or reflected "rotations")."""
    err = float(np.abs(r @ r.T - np.eye(3)).max())
    det = float(np.linalg.det(r))
    if det < 0:
        raise InputFileError(path, f"{what}: rotation is a reflection (determinant {det:.3g}), not a rotation")
    if err > _ROTATION_REPAIR_TOL:
        raise InputFileError(path, f"{what}: rotation is not orthonormal (max |R R^T - I| = {err:.3g}); "
                                   "scaled or sheared camera poses are not supported")
    if err > 1e-4:  # Camera's own tolerance; below it the file's values are used untouched
        u, _, vt = np.linalg.svd(r)
        r = u @ vt
        note = "some camera rotations were slightly non-orthonormal (rounded values) and were re-orthonormalised"
        if note not in warnings:
            warnings.append(note)
    return r


def make_camera(path: Path, what: str, **kwargs) -> Camera:
    """``Camera(**kwargs)``, turning CameraValidationError into InputFileError naming the frame."""
    try:
        return Camera(**kwargs)
    except CameraValidationError as exc:
        raise InputFileError(path, f"{what}: {exc}") from None


def rigid_world_to_camera(r_c2w: np.ndarray, position: np.ndarray) -> np.ndarray:
    """[4, 4] world-to-camera: the inverse of the camera-to-world matrix made of a rotation [3, 3]
    (columns: camera axes in world coordinates) and the camera centre [3]."""
    c2w = np.eye(4)
    c2w[:3, :3] = r_c2w
    c2w[:3, 3] = position
    w2c = np.linalg.inv(c2w)
    w2c[3] = [0.0, 0.0, 0.0, 1.0]
    return w2c


def build_set(cameras: list[Camera], skipped: list[str], path: Path, fmt: str, warnings: list[str],
              total: int) -> CameraSet:
    """The CameraSet, or InputFileError when none of the ``total`` frames is usable."""
    if not cameras:
        first = f" (first: {skipped[0]})" if skipped else ""
        raise InputFileError(path, f"none of the {total} cameras is usable{first}")
    return CameraSet(cameras, skipped, Path(path), fmt, warnings)


# -- loaders ---------------------------------------------------------------------------------------
from core.cameras.bounds import robust_bounds  # noqa: E402
from core.cameras.cameras_json import find_cameras_beside, load_cameras_json  # noqa: E402
from core.cameras.colmap import COLMAP_FILE_NAMES, find_colmap_model, load_colmap  # noqa: E402
from core.cameras.orbit import DEFAULT_UP, estimate_up, orbit_camera, orbit_cameras  # noqa: E402
from core.cameras.transforms import TRANSFORMS_NAMES, load_transforms  # noqa: E402


def load_cameras(path: str | Path, *, require_images: bool | None = None) -> CameraSet:
    """Load cameras from a camera file or a dataset folder.

    ``path`` may be:

    - a graphdeco ``cameras.json`` (or a folder holding one, e.g. a 3DGS model output folder);
    - a COLMAP model folder holding ``cameras``/``images`` ``.bin`` (preferred) or ``.txt``, the
      dataset root holding ``sparse/0`` (or ``sparse/``), or one of the model files itself;
    - a NeRF/instant-ngp ``transforms*.json``, or a folder holding ``transforms_train.json``
      (preferred: the training split) or ``transforms.json``.

    A folder is searched in that order: COLMAP model, transforms, cameras.json.

    ``require_images``: True skips (and reports in ``skipped``) every frame whose image file is
    missing; False keeps such frames (``image_path=None``) when their size is known from the
    file. None (default): True for COLMAP and transforms files when at least one image file
    exists, else False; cameras.json never names image files, so its cameras always have
    ``image_path=None``. Raises InputFileError when nothing usable is left.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(p, "file or folder not found")
    if p.is_dir():
        model = find_colmap_model(p)
        if model is not None:
            result = load_colmap(model, require_images)
        elif any((p / n).is_file() for n in TRANSFORMS_NAMES):
            result = load_transforms(next(p / n for n in TRANSFORMS_NAMES if (p / n).is_file()), require_images)
        elif (p / "cameras.json").is_file():
            result = load_cameras_json(p / "cameras.json", require_images)
        else:
            raise InputFileError(p, "no camera file found: expected a COLMAP model (sparse/0/cameras.bin and "
                                    "images.bin, or .txt), transforms_train.json, transforms.json or cameras.json")
    elif p.name in COLMAP_FILE_NAMES:
        model = find_colmap_model(p.parent)
        if model is None:
            raise InputFileError(p, "COLMAP model is incomplete: cameras and images files are both needed")
        result = load_colmap(model, require_images)
    elif p.suffix.lower() == ".json":
        data = read_json(p)
        if isinstance(data, list):
            result = load_cameras_json(p, require_images, data=data)
        elif isinstance(data, dict) and "frames" in data:
            result = load_transforms(p, require_images, data=data)
        else:
            raise InputFileError(p, "unrecognised camera JSON: expected a graphdeco cameras.json (a list of "
                                    "cameras) or a transforms.json (an object with 'frames')")
    else:
        raise InputFileError(p, "unrecognised camera file: expected cameras.json, transforms*.json or a "
                                "COLMAP model (cameras/images .bin or .txt)")
    for msg in result.skipped:
        log.info("%s: skipped %s", result.source, msg)
    for msg in result.warnings:
        log.warning("%s: %s", result.source, msg)
    return result


__all__ = [
    "CameraSet", "FORMATS", "load_cameras", "find_cameras_beside", "robust_bounds", "orbit_cameras",
    "orbit_camera", "estimate_up", "DEFAULT_UP",
]
