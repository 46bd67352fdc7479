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
from core.errors import InputFileError
from core.io.atomic import atomic_write, atomic_write_bytes
from core.io.compressed_ply import is_compressed_ply, read_compressed_ply
from core.io.formats import MAGIC as FORMAT_MAGIC
from core.io.formats import describe_unsupported
from core.io.input_file import check_input_file, read_input_bytes
from core.io.sog import looks_like_sog, read_sog
from core.io.spz import looks_like_spz, read_spz
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

    ``format`` is "ply", "compressed_ply", "splat", "spz" or "sog" ("ngs" from
    :func:`core.io.scene_files.load_scene_file`); ``bytes`` the file size (SOG meta.json: the JSON only);
    ``encoding`` the PLY format ("binary_little_endian", "binary_big_endian" or "ascii"), the SPZ/SOG
    version ("spz v4", "sog v2 (bundled)"), "" for .splat; ``warnings``
    what was ignored or repaired (trailing bytes, unknown properties, type conversions, ...).
    """

    path: Path
    format: str
    bytes: int
    n_gaussians: int
    sh_degree: int
    warnings: list[str]
    encoding: str


MAX_SCENE_BYTES = 2**36
"""Largest scene file read (64 GiB: more than this machine's memory; the bound is for special files)."""

KNOWN_NOT_PLY = {magic[:4] for magic, _ in FORMAT_MAGIC}
"""First bytes that are plainly another format even when the file is named .ply."""


def _looks_like_ply(data: bytes) -> bool:
    return data.startswith((b"ply\n", b"ply\r\n")) or data == b"ply"


def read_scene_with_info(path: str | os.PathLike[str]) -> tuple[GaussianScene, SceneFileInfo]:
    """Read a scene file; returns the scene and a :class:`SceneFileInfo` (warnings are also logged).

    Dispatch, by content first: ``ply`` is a PLY (compressed when it has a ``chunk`` element and
    ``packed_position``); the SPZ magic (or a gzip stream holding it) or a ``.spz`` name is SPZ; a zip with a
    ``meta.json`` (or a ``meta.json`` file) or a ``.sog`` name is SOG; a ``.splat`` name is antimatter15 splat.
    Anything else is named (:func:`core.io.formats.describe_unsupported`), never called "not a PLY file"
    unless it is named ``.ply``. Raises
    InputFileError for any missing, unreadable, malformed or truncated file. The one function that
    opens a scene file for every command, the benchmarks and the app.
    """
    path = check_input_file(path)
    start = time.perf_counter()
    data = read_input_bytes(path, MAX_SCENE_BYTES, "a scene file")
    suffix = path.suffix.lower()
    try:
        is_ply = _looks_like_ply(data)
        if not is_ply and (looks_like_spz(data) or suffix == ".spz"):
            fmt = "spz"
            scene, encoding, warnings = read_spz(data, path)
        elif not is_ply and (looks_like_sog(data, path) or suffix == ".sog"):
            fmt = "sog"
            scene, encoding, warnings = read_sog(data, path)
        elif not is_ply and suffix == ".splat":
            fmt = "splat"
            scene, encoding, warnings = read_splat(data, path)
        elif not is_ply and (suffix != ".ply" or data[:4] in KNOWN_NOT_PLY):
            raise InputFileError(path, describe_unsupported(data, path))
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
