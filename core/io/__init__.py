"""Scene file readers and writers.

- :func:`read_scene` / :func:`read_scene_with_info` read graphdeco 3DGS ``.ply`` (binary little or
  big endian, ascii), PlayCanvas ``.compressed.ply`` (recognised by content) and antimatter15
  ``.splat`` (recognised by extension) into a :class:`~core.scene.GaussianScene` of float32 CPU
  tensors in raw pre-activation form.
- :func:`write_ply` writes the graphdeco layout, atomically.
- :func:`atomic_write` is the atomic-output context manager every writer of the project uses.

Any problem with an input file raises :class:`~core.errors.InputFileError` (``"<path>: <problem>"``),
never another exception type.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from core.camera import CameraValidationError
from core.errors import InputFileError, os_error_problem
from core.io.atomic import atomic_write, atomic_write_bytes
from core.io.compressed_ply import is_compressed_ply, read_compressed_ply
from core.io.input_file import check_input_file
from core.io.ply import parse_header, read_graphdeco_ply, write_ply
from core.io.splat import read_splat
from core.scene import GaussianScene, SceneValidationError

logger = logging.getLogger(__name__)

__all__ = [
    "SceneFileInfo",
    "atomic_write",
    "check_input_file",
    "atomic_write_bytes",
    "read_scene",
    "read_scene_with_info",
    "write_ply",
]


@dataclass(frozen=True)
class SceneFileInfo:
    """What was read.

    ``format`` is "ply", "compressed_ply" or "splat"; ``bytes`` the file size; ``encoding`` the PLY
    format ("binary_little_endian", "binary_big_endian" or "ascii"), "" for .splat; ``warnings``
    what was ignored or repaired (trailing bytes, unknown properties, type conversions, ...).
    """

    path: Path
    format: str
    bytes: int
    n_gaussians: int
    sh_degree: int
    warnings: list[str]
    encoding: str


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputFileError(path, os_error_problem(exc, "a scene file")) from None


def _looks_like_ply(data: bytes) -> bool:
    return data.startswith((b"ply\n", b"ply\r\n")) or data == b"ply"


def read_scene_with_info(path: str | os.PathLike[str]) -> tuple[GaussianScene, SceneFileInfo]:
    """Read a scene file; returns the scene and a :class:`SceneFileInfo` (warnings are also logged).

    Dispatch: content starting with ``ply`` is a PLY, compressed when it has a ``chunk`` element and
    ``packed_position``; otherwise a ``.splat`` extension means antimatter15 splat. Raises
    InputFileError for any missing, unreadable, malformed or truncated file. The one function that
    opens a scene file for every command, the benchmarks and the app.
    """
    path = check_input_file(path)
    start = time.perf_counter()
    data = _read_bytes(path)
    try:
        if not _looks_like_ply(data) and path.suffix.lower() == ".splat":
            fmt = "splat"
            scene, encoding, warnings = read_splat(data, path)
        else:
            header = parse_header(data, path)
            if is_compressed_ply(header):
                fmt = "compressed_ply"
                scene, encoding, warnings = read_compressed_ply(data, path, header)
            else:
                fmt = "ply"
                scene, encoding, warnings = read_graphdeco_ply(data, path, header)
    except InputFileError:
        raise
    except (SceneValidationError, CameraValidationError) as exc:
        raise InputFileError(path, str(exc)) from exc
    except (UnicodeDecodeError, EOFError) as exc:
        raise InputFileError(path, f"not a readable scene file ({exc})") from exc
    except MemoryError:
        raise InputFileError(path, "not enough memory to read this file") from None
    except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as exc:
        # Safety net: every known problem is reported above; this only keeps the API promise.
        logger.exception("unexpected error reading %s", path)
        raise InputFileError(path, f"unexpected error while reading: {exc}") from exc
    if scene.num_gaussians == 0:  # nothing to show, render or compress: refused here, at the boundary
        raise InputFileError(path, f"holds no Gaussians (a {fmt.replace('_', ' ')} file with 0 splats)")
    info = SceneFileInfo(
        path=path,
        format=fmt,
        bytes=len(data),
        n_gaussians=scene.num_gaussians,
        sh_degree=scene.sh_degree,
        warnings=list(warnings),
        encoding=encoding,
    )
    for w in warnings:
        logger.warning("%s: %s", path, w)
    logger.info(
        "read %s (%s, %s): %d Gaussians, SH degree %d, in %.3f s",
        path, fmt, encoding, info.n_gaussians, info.sh_degree, time.perf_counter() - start,
    )  # fmt: skip
    return scene, info


def read_scene(path: str | os.PathLike[str]) -> GaussianScene:
    """Read a scene file (see :func:`read_scene_with_info`)."""
    return read_scene_with_info(path)[0]
