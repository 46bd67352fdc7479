"""What every camera loader returns (:class:`CameraSet`) and the value checks they share.

The loaders (``cameras_json``, ``colmap``, ``transforms``) import these; :func:`core.cameras.load_cameras`
(``core.cameras.load``) picks the loader for a path. Malformed values raise
:class:`core.errors.InputFileError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.camera import Camera, CameraValidationError
from core.errors import InputFileError, os_error_problem

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


# -- helpers shared by the loaders ---------------------------------------------------------------


MAX_JSON_BYTES = 256 * 2**20
"""Largest camera JSON file read (a 100k-frame transforms.json is about 60 MB)."""


def read_json(path: Path) -> object:
    """Parse a JSON file, raising InputFileError for missing, special (FIFO, device), oversized, empty,
    non-UTF-8, invalid or absurdly nested files."""
    from core.io.input_file import read_input_bytes

    try:
        text = read_input_bytes(path, MAX_JSON_BYTES, "a JSON file").decode("utf-8-sig")
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
    except RecursionError:
        raise InputFileError(path, "JSON nested too deeply to be a camera file") from None


def as_array(value: object, shape: tuple[int, ...], path: Path, what: str) -> np.ndarray:
    """``value`` as a finite float64 array of ``shape``, else InputFileError naming ``what``."""
    if value is None:
        raise InputFileError(path, f"{what} is missing")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise InputFileError(path, f"{what} holds a number too large for a float") from None
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
    try:
        v = float(value)
    except OverflowError:
        raise InputFileError(path, f"{what} is too large ({len(str(value))} digits)") from None
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


def as_file_name(value: object, path: Path, what: str) -> str:
    """A non-empty string usable as a file name or relative path (no NUL, encodable: no lone surrogates),
    else InputFileError naming ``what``. Every image name a camera file gives passes through here."""
    if not isinstance(value, str) or not value:
        raise InputFileError(path, f"{what} is {'missing' if not value else 'not a string'}")
    if "\0" in value:
        raise InputFileError(path, f"{what} contains a NUL character")
    try:
        os.fsencode(value)
    except UnicodeEncodeError:
        raise InputFileError(path, f"{what} is not valid text (an unpaired surrogate)") from None
    return value


def is_file(p: Path) -> bool:
    """Whether ``p`` is an existing regular file; False (not an exception) for a name the file system
    refuses (too long, a NUL, not encodable): such an image is simply not found."""
    try:
        return p.is_file()
    except (OSError, ValueError):
        return False


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
