"""PlayCanvas / SuperSplat ``.compressed.ply`` reader.

Layout: a ``chunk`` element (one record per 256 splats: float ``min_/max_`` x y z, ``min_/max_scale_``
x y z and optionally ``min_/max_`` r g b), a ``vertex`` element of four packed uint32 per splat
(``packed_position``, ``packed_rotation``, ``packed_scale``, ``packed_color``) and an optional ``sh``
element of uchar ``f_rest_0..(3M-1)`` (graphdeco channel-major order).

The decoding follows PlayCanvas' own decoders, which agree with each other on everything but the
SH bytes and the opacity end points:

- playcanvas/splat-transform ``src/lib/readers/decompress-ply.ts`` (``decompressPly``),
- playcanvas/engine ``src/scene/gsplat/gsplat-compressed-data.js`` (``SplatCompressedIterator``).

* position 11-10-11 bits (x from bit 21, y from bit 11, z from bit 0), each ``v / (2^bits - 1)``
  lerped ``a * (1 - t) + b * t`` between the chunk's min and max;
* scale 11-10-11 bits the same way between ``min_scale``/``max_scale``, which are log scales;
* rotation 2+10-10-10 "smallest three": the top 2 bits say which of (w, x, y, z) = rot_0..3 is the
  largest component; the three others, in order, are ``(v / 1023 - 0.5) * sqrt(2)`` and the largest
  is ``sqrt(max(0, 1 - a^2 - b^2 - c^2))``;
* colour 8-8-8-8 (r from bit 24 ... alpha in bits 0-7), ``v / 255``, lerped between the chunk's
  ``min_/max_`` r g b when present; ``f_dc = (c - 0.5) / 0.28209479177387814``; opacity logit
  ``-log(1/a - 1)``, with a = 0 and a = 1 mapped to -40 and +40 as the engine does (splat-transform
  gives -inf/+inf there);
* SH byte b: splat-transform's ``n = 0 if b == 0, 1 if b == 255, else (b + 0.5) / 256`` and
  ``f_rest = (n - 0.5) * 8``, the inverse of its writer (``write-compressed-ply.ts``:
  ``b = clamp(trunc((v / 8 + 0.5) * 256), 0, 255)``). The engine uses ``b * 8 / 255 - 4`` instead,
  which differs by at most 4/255 (half a quantisation step).

Arithmetic is float64 then rounded to float32, as in the JavaScript, so results match
splat-transform bit for bit (or to a float32 ulp).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from core.errors import InputFileError
from core.io.ply import (
    F_REST_COUNTS,
    GRAPHDECO_REQUIRED,
    PlyHeader,
    check_finite,
    read_elements,
    rest_names_coefficient_major,
    scalar_property_problems,
    scene_from_columns,
)
from core.scene import SH_C0, GaussianScene

logger = logging.getLogger(__name__)

CHUNK_SIZE = 256
OPACITY_LIMIT = 40.0
PACKED = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
CHUNK_BOUNDS = tuple(f"{m}_{a}" for m in ("min", "max") for a in "xyz") + tuple(
    f"{m}_scale_{a}" for m in ("min", "max") for a in "xyz"
)
CHUNK_COLORS = tuple(f"{m}_{c}" for m in ("min", "max") for c in "rgb")


def is_compressed_ply(header: PlyHeader) -> bool:
    """True when the header looks like a PlayCanvas compressed PLY (chunk element + packed_position)."""
    vertex = header.element("vertex")
    return header.element("chunk") is not None and vertex is not None and vertex.prop("packed_position") is not None


def _validate(header: PlyHeader, path) -> tuple[int, bool, int, list[str]]:
    """Check the header; returns (n splats, has chunk colours, f_rest count, warnings)."""
    vertex, chunk, sh = header.element("vertex"), header.element("chunk"), header.element("sh")
    missing = [n for n in PACKED if vertex.prop(n) is None]
    missing += [f"chunk {n}" for n in CHUNK_BOUNDS if chunk.prop(n) is None]
    if missing:
        raise InputFileError(path, f"compressed PLY lacks properties: {', '.join(missing)}")
    has_color = chunk.prop("min_r") is not None
    if has_color and any(chunk.prop(n) is None for n in CHUNK_COLORS):
        raise InputFileError(path, f"compressed PLY chunk has some but not all of {', '.join(CHUNK_COLORS)}")
    problems = scalar_property_problems(vertex, list(PACKED))
    problems += scalar_property_problems(chunk, list(CHUNK_BOUNDS + (CHUNK_COLORS if has_color else ())))
    problems += [f"'{n}' is {vertex.prop(n).type_name}, expected uint" for n in PACKED
                 if vertex.prop(n).type_name not in ("uint", "uint32", "int", "int32")]
    n_rest = 0
    if sh is not None:
        n_rest = len(sh.properties)
        if n_rest not in F_REST_COUNTS[1:] or sh.names() != [f"f_rest_{i}" for i in range(n_rest)]:
            raise InputFileError(
                path, f"compressed PLY 'sh' element has {n_rest} properties; expected f_rest_0.. 9, 24 or 45"
            )
        problems += [f"sh '{p.name}' is {p.describe()}, expected uchar" for p in sh.properties
                     if p.is_list or p.type_name not in ("uchar", "uint8")]
        if sh.count != vertex.count:
            raise InputFileError(path, f"compressed PLY has {sh.count} 'sh' records for {vertex.count} splats")
    if problems:
        raise InputFileError(path, "wrong compressed PLY property types: " + "; ".join(problems))
    n = vertex.count
    n_chunks = -(-n // CHUNK_SIZE)
    if chunk.count != n_chunks:
        raise InputFileError(
            path, f"compressed PLY has {chunk.count} chunks for {n} splats; expected {n_chunks} (256 per chunk)"
        )
    warnings = []
    extra = [e.name for e in header.elements if e.name not in ("chunk", "vertex", "sh")]
    extra += [f"vertex {p}" for p in vertex.names() if p not in PACKED]
    extra += [f"chunk {p}" for p in chunk.names() if p not in CHUNK_BOUNDS + CHUNK_COLORS]
    if extra:
        warnings.append(f"ignored unknown compressed PLY elements/properties: {', '.join(extra)}")
    return n, has_color, n_rest, warnings


def _unorm(v: np.ndarray, shift: int, bits: int) -> np.ndarray:
    mask = (1 << bits) - 1
    return ((v >> np.uint32(shift)) & np.uint32(mask)).astype(np.float64) / mask


def _lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return lo * (1.0 - t) + hi * t


def decode_compressed(
    chunks: np.ndarray, vertices: np.ndarray, sh: np.ndarray | None
) -> tuple[np.ndarray, list[str]]:
    """Decode structured ``chunk``/``vertex``/``sh`` records to float32 graphdeco columns [N, 14 + 3M].

    Returns the table (columns in ``GRAPHDECO_REQUIRED`` + ``rest_names_coefficient_major`` order, as
    :func:`core.io.ply.scene_from_columns` takes them) and its column names.
    """
    n = len(vertices)
    ci = np.arange(n) // CHUNK_SIZE

    def chunk(name: str) -> np.ndarray:
        return chunks[name].astype(np.float64)[ci]

    pos, rot, scl, col = (vertices[name].astype(np.uint32) for name in PACKED)
    out = np.empty((n, 14), dtype=np.float64)
    for i, (axis, shift, bits) in enumerate((("x", 21, 11), ("y", 11, 10), ("z", 0, 11))):
        out[:, i] = _lerp(chunk(f"min_{axis}"), chunk(f"max_{axis}"), _unorm(pos, shift, bits))
        out[:, 7 + i] = _lerp(chunk(f"min_scale_{axis}"), chunk(f"max_scale_{axis}"), _unorm(scl, shift, bits))
    has_color = "min_r" in chunks.dtype.names
    for i, (c, shift) in enumerate((("r", 24), ("g", 16), ("b", 8))):
        v = _unorm(col, shift, 8)
        if has_color:
            v = _lerp(chunk(f"min_{c}"), chunk(f"max_{c}"), v)
        out[:, 3 + i] = (v - 0.5) / SH_C0
    alpha = _unorm(col, 0, 8)
    with np.errstate(divide="ignore"):
        logit = -np.log(1.0 / alpha - 1.0)
    out[:, 6] = np.where(alpha <= 0, -OPACITY_LIMIT, np.where(alpha >= 1, OPACITY_LIMIT, logit))

    norm = 1.0 / (np.sqrt(2.0) * 0.5)
    abc = [(_unorm(rot, shift, 10) - 0.5) * norm for shift in (20, 10, 0)]
    largest = np.sqrt(np.maximum(0.0, 1.0 - (abc[0] * abc[0] + abc[1] * abc[1] + abc[2] * abc[2])))
    which = (rot >> np.uint32(30)).astype(np.int64)
    for k in range(4):  # rot_k: the largest if which == k, else the next of a, b, c in order
        after_largest = abc[max(k - 1, 0)]  # used where which < k
        before_largest = abc[min(k, 2)]  # used where which > k
        out[:, 10 + k] = np.where(which == k, largest, np.where(which < k, after_largest, before_largest))

    names = list(GRAPHDECO_REQUIRED)
    table = out.astype(np.float32)
    if sh is not None and len(sh.dtype.names or ()):
        rest_names = rest_names_coefficient_major(len(sh.dtype.names))
        b = np.stack([sh[name] for name in rest_names], axis=1).astype(np.float64)
        nrm = np.where(b == 0, 0.0, np.where(b == 255, 1.0, (b + 0.5) / 256.0))
        table = np.concatenate([table, ((nrm - 0.5) * 8.0).astype(np.float32)], axis=1)
        names += rest_names
    return table, names


def read_compressed_ply(
    data: bytes, path: str | os.PathLike[str], header: PlyHeader
) -> tuple[GaussianScene, str, list[str]]:
    """Read a PlayCanvas compressed PLY; returns ``(scene, encoding, warnings)``."""
    n, _, n_rest, warnings = _validate(header, path)
    arrays, more = read_elements(data, header, path, {"chunk", "vertex", "sh"})
    warnings += more
    table, names = decode_compressed(arrays["chunk"], arrays["vertex"], arrays.get("sh"))
    check_finite(table, names, path)
    logger.debug("%s: decoded %d compressed splats (%d f_rest)", path, n, n_rest)
    return scene_from_columns(table, n_rest), header.format, warnings
