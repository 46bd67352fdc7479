"""Niantic ``.spz`` reader and writer (versions 2, 3 and 4).

Format: nianticlabs/spz (``src/cc/load-spz.cc``, README "SPZ format"); the independent decoder we
check against is PlayCanvas splat-transform 3.7.0 (``src/lib/readers/read-spz.ts``, pure JS), whose
writer is the Adobe build of Niantic's packer (``@adobe/spz``, WebAssembly).

Containers, told apart by the first bytes:

- legacy (versions 2 and 3): the whole file is one gzip stream (``1f 8b``) inflating to a 16-byte
  header and the attribute blocks back to back;
- version 4: a plain 32-byte header, optional extension records, a table of streams (one
  ``(compressed size, uncompressed size)`` pair of uint64 per stream, at ``toc_offset``), then one
  zstd stream per attribute, in block order.

Header (little endian): ``magic`` u32 = 0x5053474e ("NGSP"), ``version`` u32, ``num_points`` u32,
``sh_degree`` u8, ``fractional_bits`` u8, ``flags`` u8 (bit 0: antialiased, i.e. trained with the
Mip-Splatting 3D filter; bit 1, v4: extensions follow the header), then v2/v3 a reserved u8, v4
``num_streams`` u8, ``toc_offset`` u32 and 12 reserved bytes.

Attribute blocks (N = num_points; decoding as splat-transform's ``read-spz.ts``, in float64, rounded
once to float32 as the JavaScript stores it):

- positions, 9N: x y z as signed 24-bit fixed point, ``v / 2**fractional_bits``;
- alphas, N: ``logit(clamp(b / 255, 1e-6, 1 - 1e-6))`` (so 0 and 255 stay finite, about -/+13.8);
- colours, 3N: the SH DC coefficient, ``(b / 255 - 0.5) / 0.15`` (SPZ's colour scale, not SH_C0);
- scales, 3N: log scales, ``b / 16 - 10``;
- rotations: v2 3N bytes x y z, ``b / 127.5 - 1``, ``w = sqrt(max(0, 1 - x^2 - y^2 - z^2))`` (w >= 0);
  v3+ 4N bytes, one little-endian u32 "smallest three": bits 30-31 the index (in x y z w order) of
  the largest-magnitude component, dropped and rebuilt as ``sqrt(max(0, 1 - sum of squares))``; the
  other three, highest index in the lowest bits, 10 bits each: a 9-bit magnitude ``m`` and a sign
  bit, ``+/- sqrt(1/2) * m / 511``;
- SH, N * 3 * ((d+1)^2 - 1): coefficient-major with RGB innermost (exactly ``sh_rest [N, M, 3]``),
  ``(b - 128) / 128``. Degree 4 (v4) is read and its fourth band dropped, with a warning.

Axes: the SPZ README says SPZ stores right-up-back (RUB) data, while graphdeco PLY is right-down-
forward (RDF); converting between them flips y and z. But splat-transform 3.7.0 (and with it
SuperSplat) writes SPZ with ``CoordinateSystem.UNSPECIFIED`` and reads it raw: an SPZ it makes from
a PLY holds the PLY's axes unchanged (checked: donut and sh3-capture, positions equal within 2^-13,
not y/z-negated). So both functions take ``coordinate_system``: ``"rdf"`` (the default, what
splat-transform writes and reads: no conversion) or ``"rub"`` (the README's convention: y and z
negated on load and on save, the quaternion's y/z parts and the SH coefficients odd in y+z with
them). This module is the one place that knows.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.errors import InputFileError
from core.io.atomic import atomic_write_bytes
from core.io.bounded import (
    DEFLATE_MAX_RATIO,
    MAX_SPLATS,
    check_splat_count,
    gunzip_bounded,
    zstd_bounded,
)
from core.scene import GaussianScene

logger = logging.getLogger(__name__)

MAGIC = 0x5053474E  # "NGSP" little endian
LEGACY_HEADER = 16
V4_HEADER = 32
TOC_ENTRY = 16
FLAG_ANTIALIASED = 0x1
FLAG_EXTENSIONS = 0x2
COLOR_SCALE = 0.15
"""SPZ stores the DC colour as ``c * 0.15 + 0.5`` in [0, 1] (load-spz.cc ``colorScale``)."""
OPACITY_EPS = 1e-6
SH_COMPONENTS = {0: 0, 1: 9, 2: 24, 3: 45, 4: 72}
"""Bytes of SH per splat for each degree (3 channels x ((d+1)^2 - 1) coefficients)."""
FRACTIONAL_BITS = 12
"""What Niantic's packer writes (about 0.25 mm when units are metres); ours too, unless the scene is
too large for 24 bits, then fewer."""
SH1_BITS, SH_REST_BITS = 5, 4
"""Niantic's (and splat-transform's) SH quantisation: degree-1 coefficients to 5 bits, higher to 4."""
ZSTD_LEVEL = 12
GZIP_LEVEL = 9
COORDINATE_SYSTEMS = ("rdf", "rub")

# SH coefficient signs under (x, y, z) -> (x, -y, -z), graphdeco basis order (core/render/sh.py):
# band 1 (y, z, x), band 2 (xy, yz, 3z^2-1, xz, x^2-y^2), band 3 (y(3x^2-y^2), xyz, y(4z^2-x^2-y^2),
# z(2z^2-3x^2-3y^2), x(4z^2-x^2-y^2), z(x^2-y^2), x(x^2-3y^2)).
_SH_FLIP_YZ = np.array([-1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], dtype=np.float64)


@dataclass(frozen=True)
class _Header:
    version: int
    n: int
    sh_degree: int
    fractional_bits: int
    flags: int
    num_streams: int = 0
    toc_offset: int = 0


def _block_sizes(h: _Header) -> list[int]:
    """Byte sizes of the attribute blocks, in file order: positions, alphas, colours, scales, rotations[, SH]."""
    sizes = [9 * h.n, h.n, 3 * h.n, 3 * h.n, (3 if h.version == 2 else 4) * h.n]
    if h.sh_degree:
        sizes.append(SH_COMPONENTS[h.sh_degree] * h.n)
    return sizes


def _parse_header(head: bytes, path, container: str, file_bytes: int) -> _Header:
    if len(head) < LEGACY_HEADER:
        raise InputFileError(
            path, f"SPZ file too short for its header ({len(head)} of {LEGACY_HEADER} bytes{container})"
        )
    magic, version, n, sh_degree, fb, flags = struct.unpack_from("<IIIBBB", head)
    if magic != MAGIC:
        raise InputFileError(path, f"not an SPZ file: magic 0x{magic:08x}{container}, expected 0x{MAGIC:08x} ('NGSP')")
    if version == 1:
        raise InputFileError(path, "SPZ version 1 (float16 positions) is not supported; versions 2-4 are")
    if version not in (2, 3, 4):
        raise InputFileError(path, f"unsupported SPZ version {version} (this reader knows 2, 3 and 4)")
    check_splat_count(n, file_bytes, path, "SPZ")
    if sh_degree not in SH_COMPONENTS:
        raise InputFileError(path, f"SPZ header says SH degree {sh_degree}; SPZ has degrees 0-4")
    if fb > 30:
        raise InputFileError(path, f"SPZ header says {fb} fractional bits for positions; expected 0-30 (usually 12)")
    if version < 4:
        return _Header(version, n, sh_degree, fb, flags)
    if len(head) < V4_HEADER:
        raise InputFileError(path, f"SPZ v4 file too short for its {V4_HEADER}-byte header ({len(head)} bytes)")
    num_streams, toc_offset = struct.unpack_from("<BI", head, 15)
    return _Header(version, n, sh_degree, fb, flags, num_streams, toc_offset)


def _read_legacy_gzip(data: bytes, path) -> tuple[_Header, list[bytes], list[str]]:
    head, _ = gunzip_bounded(data, LEGACY_HEADER, path, "SPZ gzip stream")
    h = _parse_header(head, path, " in the gzip stream", len(data))
    if h.version == 4:
        raise InputFileError(path, "SPZ version 4 inside a gzip stream: v4 files are not gzipped (corrupt or not SPZ)")
    sizes = _block_sizes(h)
    expected = LEGACY_HEADER + sum(sizes)
    if expected > len(data) * DEFLATE_MAX_RATIO + 64:
        raise InputFileError(path, f"SPZ header says {h.n:,} splats ({expected:,} bytes once inflated), more than "
                                   f"this {len(data):,}-byte gzip file can hold (deflate expands at most "
                                   f"{DEFLATE_MAX_RATIO}:1)")
    body, more = gunzip_bounded(data, expected, path, "SPZ gzip stream")
    if len(body) < expected:
        raise InputFileError(path, f"SPZ data truncated: the gzip stream inflates to {len(body):,} bytes, the "
                                   f"header's {h.n:,} splats need {expected:,}")
    warnings = ["data after the splats in the gzip stream ignored"] if more else []
    return h, _split(body, LEGACY_HEADER, sizes), warnings


def _split(body: bytes, offset: int, sizes: list[int]) -> list[bytes]:
    blocks = []
    for size in sizes:
        blocks.append(body[offset : offset + size])
        offset += size
    return blocks


def _read_plain(data: bytes, path) -> tuple[_Header, list[bytes], list[str]]:
    h = _parse_header(data[:V4_HEADER], path, "", len(data))
    sizes = _block_sizes(h)
    if h.version < 4:  # an un-gzipped legacy file: splat-transform accepts it, so do we
        expected = LEGACY_HEADER + sum(sizes)
        if len(data) < expected:
            raise InputFileError(path, f"SPZ v{h.version} file truncated: {len(data):,} bytes, the header's "
                                       f"{h.n:,} splats need {expected:,}")
        warnings = [f"SPZ v{h.version} file is not gzip-compressed (read as is)"]
        if len(data) > expected:
            warnings.append(f"{len(data) - expected:,} bytes after the splats ignored")
        return h, _split(data, LEGACY_HEADER, sizes), warnings
    return _read_v4(data, path, h, sizes)


def _read_v4(data: bytes, path, h: _Header, sizes: list[int]) -> tuple[_Header, list[bytes], list[str]]:
    warnings = []
    if h.num_streams != len(sizes):
        raise InputFileError(path, f"SPZ v4 header says {h.num_streams} streams; SH degree {h.sh_degree} needs "
                                   f"{len(sizes)}")
    toc_end = h.toc_offset + TOC_ENTRY * h.num_streams
    if h.toc_offset < V4_HEADER or toc_end > len(data):
        raise InputFileError(path, f"SPZ v4 stream table at byte {h.toc_offset:,} ({TOC_ENTRY * h.num_streams} "
                                   f"bytes) lies outside the {len(data):,}-byte file")
    if h.toc_offset > V4_HEADER:
        what = "extensions" if h.flags & FLAG_EXTENSIONS else "bytes between header and stream table"
        warnings.append(f"{h.toc_offset - V4_HEADER:,} bytes of SPZ {what} ignored")
    table = [struct.unpack_from("<QQ", data, h.toc_offset + TOC_ENTRY * i) for i in range(h.num_streams)]
    names = ("positions", "alphas", "colors", "scales", "rotations", "sh")
    offset = toc_end
    for i, ((compressed, uncompressed), want) in enumerate(zip(table, sizes)):
        if uncompressed != want:
            raise InputFileError(path, f"SPZ v4 {names[i]} stream says {uncompressed:,} bytes uncompressed; "
                                       f"{h.n:,} splats need {want:,}")
        if compressed > len(data) - offset:
            raise InputFileError(path, f"SPZ v4 {names[i]} stream ({compressed:,} bytes at {offset:,}) runs past "
                                       f"the end of the {len(data):,}-byte file")
        offset += compressed
    if offset < len(data):
        warnings.append(f"{len(data) - offset:,} bytes after the last SPZ stream ignored")
    blocks = []
    offset = toc_end
    for i, ((compressed, _), want) in enumerate(zip(table, sizes)):
        out, more = zstd_bounded(data[offset : offset + compressed], want, path, f"SPZ {names[i]} stream")
        if len(out) != want or more:
            raise InputFileError(path, f"SPZ v4 {names[i]} stream decompresses to "
                                       f"{'more than ' if more else ''}{len(out):,} bytes; expected {want:,}")
        blocks.append(out)
        offset += compressed
    return h, blocks, warnings


def _decode_quats(rot: np.ndarray, version: int) -> np.ndarray:
    """Quaternions (w, x, y, z) float64 [N, 4] from the rotation block (v2 [N, 3] u8, v3+ [N, 4] u8)."""
    n = len(rot)
    if version == 2:
        xyz = rot.astype(np.float64) / 127.5 - 1.0
        w = np.sqrt(np.maximum(0.0, 1.0 - (xyz[:, 0] * xyz[:, 0] + xyz[:, 1] * xyz[:, 1] + xyz[:, 2] * xyz[:, 2])))
        return np.concatenate([w[:, None], xyz], axis=1)
    packed = rot.view("<u4").reshape(n).astype(np.int64)
    largest = packed >> 30
    q = np.zeros((n, 4), np.float64)  # x y z w, as stored
    sum_sq = np.zeros(n, np.float64)
    for j in (3, 2, 1, 0):  # the reader's order, so the sum of squares rounds as in read-spz.ts
        shift = 10 * (3 - j - (j < largest).astype(np.int64))
        mag = ((packed >> shift) & 511).astype(np.float64)
        neg = (packed >> (shift + 9)) & 1
        v = math.sqrt(0.5) * mag / 511.0
        v = np.where(neg == 1, -v, v)
        v = np.where(largest == j, 0.0, v)
        q[:, j] = v
        sum_sq = sum_sq + v * v
    q[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1.0 - sum_sq))
    return q[:, [3, 0, 1, 2]]


def _flip_rub_rdf(means: np.ndarray, quats: np.ndarray, sh: np.ndarray) -> None:
    """In place: (x, y, z) -> (x, -y, -z) (a 180-degree turn about x; its own inverse)."""
    means[:, 1:] *= -1.0
    quats[:, 2:] *= -1.0  # w x y z: conjugating by the turn negates the y and z parts
    if sh.shape[1]:
        sh *= _SH_FLIP_YZ[: sh.shape[1], None]


def _check_coordinate_system(coordinate_system: str) -> None:
    if coordinate_system not in COORDINATE_SYSTEMS:
        raise ValueError(f"coordinate_system must be one of {COORDINATE_SYSTEMS}, got {coordinate_system!r}")


def looks_like_spz(data: bytes) -> bool:
    """True when ``data`` starts like an SPZ file: the 'NGSP' magic (v4, or an un-gzipped legacy file), or a
    gzip stream whose first inflated bytes are 'NGSP' (v2/v3). Never raises; inflates at most 4 bytes."""
    magic = struct.pack("<I", MAGIC)
    if data[:4] == magic:
        return True
    if data[:2] != b"\x1f\x8b":
        return False
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:65536], 4) == magic
    except zlib.error:
        return False


def read_spz(
    data: bytes, path: str | os.PathLike[str], coordinate_system: str = "rdf"
) -> tuple[GaussianScene, str, list[str]]:
    """Read an SPZ file's bytes; returns ``(scene, encoding, warnings)``.

    ``encoding`` is e.g. ``"spz v4"``, ``"spz v3 (gzip)"``, with ``", antialiased"`` appended when the
    header's antialiased flag is set (also reported in ``warnings``). Scene tensors, float32: means
    [N, 3], quats [N, 4] (w, x, y, z), log_scales [N, 3], opacity_logits [N], sh_dc [N, 3], sh_rest
    [N, M, 3] (M = 0, 3, 8 or 15). ``coordinate_system``: see the module docstring. Raises
    InputFileError for anything malformed, before allocating for counts the file cannot hold.
    """
    _check_coordinate_system(coordinate_system)
    if not data:
        raise InputFileError(path, "file is empty (0 bytes)")
    if data[:2] == b"\x1f\x8b":
        h, blocks, warnings = _read_legacy_gzip(data, path)
        encoding = f"spz v{h.version} (gzip)"
    elif data[:4] == struct.pack("<I", MAGIC):
        h, blocks, warnings = _read_plain(data, path)
        encoding = f"spz v{h.version}"
    else:
        raise InputFileError(path, f"not an SPZ file: starts with {data[:4].hex(' ')}, expected gzip (1f 8b) "
                                   f"or 'NGSP'")
    n = h.n
    if n == 0:
        warnings.append("the file holds no splats")
    known = FLAG_ANTIALIASED | (FLAG_EXTENSIONS if h.version >= 4 else 0)
    if h.flags & ~known:
        warnings.append(f"unknown SPZ header flags 0x{h.flags & ~known:02x} ignored")
    if h.flags & FLAG_ANTIALIASED:
        encoding += ", antialiased"
        warnings.append("SPZ antialiased flag set: the scene was trained with a 3D smoothing filter "
                        "(Mip-Splatting); read as plain Gaussians")

    pos24 = np.frombuffer(blocks[0], np.uint8).reshape(n, 3, 3).astype(np.int32)
    fixed = pos24[..., 0] | (pos24[..., 1] << 8) | (pos24[..., 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    means = fixed.astype(np.float64) * (1.0 / (1 << h.fractional_bits))
    alpha = np.clip(np.frombuffer(blocks[1], np.uint8).astype(np.float64) / 255.0, OPACITY_EPS, 1.0 - OPACITY_EPS)
    logit = np.log(alpha / (1.0 - alpha))
    dc = (np.frombuffer(blocks[2], np.uint8).reshape(n, 3).astype(np.float64) / 255.0 - 0.5) / COLOR_SCALE
    log_scales = np.frombuffer(blocks[3], np.uint8).reshape(n, 3).astype(np.float64) / 16.0 - 10.0
    quats = _decode_quats(np.frombuffer(blocks[4], np.uint8).reshape(n, 3 if h.version == 2 else 4), h.version)
    m_file = SH_COMPONENTS[h.sh_degree] // 3
    sh = np.zeros((n, 0, 3))
    if m_file:
        sh = (np.frombuffer(blocks[5], np.uint8).reshape(n, m_file, 3).astype(np.float64) - 128.0) / 128.0
        if h.sh_degree == 4:
            sh = sh[:, :15]
            warnings.append("SPZ SH degree 4: the fourth band dropped (this project stops at degree 3)")
    if coordinate_system == "rub":
        _flip_rub_rdf(means, quats, sh)

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    scene = GaussianScene(t(means), t(quats), t(log_scales), t(logit), t(dc), t(sh))
    logger.debug("%s: %s, %d splats, SH degree %d, %d fractional bits", path, encoding, n, h.sh_degree,
                 h.fractional_bits)
    return scene, encoding, warnings


# -- writer -----------------------------------------------------------------------------------------
def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's ``round``: halves away from zero (numpy's ``round`` goes to even), exact in float32."""
    r = np.trunc(x)
    frac = x - r
    return r + np.where(np.abs(frac) >= 0.5, np.sign(x), 0).astype(x.dtype)


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(_round_half_away(x), 0, 255).astype(np.uint8)


def _fractional_bits(means: np.ndarray) -> int:
    """12 (Niantic's choice) unless some coordinate would overflow 24 bits; then the most that fit."""
    extent = float(np.abs(means).max()) if means.size else 0.0
    for fb in range(FRACTIONAL_BITS, -1, -1):
        if extent * (1 << fb) < (1 << 23) - 1:
            return fb
    raise ValueError(f"scene coordinates reach {extent:g}; SPZ's 24-bit positions hold at most +/-{(1 << 23) - 1}")


def _pack_quats_smallest_three(quats_wxyz: np.ndarray) -> np.ndarray:
    """Niantic's ``packQuaternionSmallestThree`` vectorised: [N, 4] (w, x, y, z) float32 -> [N] uint32."""
    q = quats_wxyz[:, [1, 2, 3, 0]].astype(np.float32)  # x y z w
    sum_sq = q[:, 0] * q[:, 0] + q[:, 1] * q[:, 1] + q[:, 2] * q[:, 2] + q[:, 3] * q[:, 3]  # float32, in order
    norm = np.sqrt(sum_sq)
    zero = norm == 0
    q = np.where(zero[:, None], np.float32([0, 0, 0, 1]), q / np.where(zero, np.float32(1), norm)[:, None])
    largest = np.abs(q).argmax(1)  # first of equals, as the C++ strict '>' loop
    n = len(q)
    negate = q[np.arange(n), largest] < 0
    comp = largest.astype(np.uint32)
    for i in range(4):
        keep = largest != i
        negbit = ((q[:, i] < 0) ^ negate).astype(np.uint32)
        mag = np.float32(511.0) * (np.abs(q[:, i]) / np.float32(math.sqrt(0.5))) + np.float32(0.5)  # float32, as C++
        mag = np.minimum(mag.astype(np.uint32), np.uint32(511))
        comp = np.where(keep, (comp << np.uint32(10)) | (negbit << np.uint32(9)) | mag, comp)
    return comp.astype("<u4")


def _quantize_sh(x: np.ndarray, bits: int) -> np.ndarray:
    """Niantic's ``quantizeSH``: 8-bit ``round(x * 128) + 128``, snapped to buckets of ``2**(8-bits)``."""
    bucket = 1 << (8 - bits)
    q = (_round_half_away(x * np.float32(128.0)) + np.float32(128.0)).astype(np.int64)
    q = np.fix((q + bucket // 2) / bucket).astype(np.int64) * bucket  # C integer division truncates
    return np.clip(q, 0, 255).astype(np.uint8)


def encode_spz_blocks(
    scene: GaussianScene, version: int = 4, coordinate_system: str = "rdf"
) -> tuple[int, list[bytes]]:
    """The uncompressed attribute blocks of ``scene`` and the fractional bits used.

    Quantisation as Niantic's ``packGaussians`` (float32 arithmetic, C rounding), so blocks agree
    byte for byte with splat-transform's writer apart from float32 ``exp``/``sqrt`` ulps.
    """
    _check_coordinate_system(coordinate_system)
    s = scene.detach().to("cpu", torch.float32)
    means = s.means.numpy().astype(np.float32)
    quats = s.quats.numpy().astype(np.float32)
    sh = s.sh_rest.numpy().astype(np.float32)
    if coordinate_system == "rub":
        means, quats, sh = means.copy(), quats.copy(), sh.copy()
        _flip_rub_rdf(means, quats, sh)
    fb = _fractional_bits(means)
    fixed = _round_half_away(means * np.float32(1 << fb)).astype(np.int64) & 0xFFFFFF
    positions = np.stack([fixed & 0xFF, (fixed >> 8) & 0xFF, fixed >> 16], axis=-1).astype(np.uint8)
    alphas = _to_u8(np.float32(1.0) / (np.float32(1.0) + np.exp(-s.opacity_logits.numpy())) * np.float32(255.0))
    colors = _to_u8(s.sh_dc.numpy() * np.float32(COLOR_SCALE * 255.0) + np.float32(0.5 * 255.0))
    scales = _to_u8((s.log_scales.numpy() + np.float32(10.0)) * np.float32(16.0))
    if version == 2:
        q = quats[:, [1, 2, 3, 0]] / np.linalg.norm(quats, axis=1, keepdims=True).astype(np.float32)
        q = np.where(q[:, 3:4] < 0, -q, q)
        rotations = _to_u8(q[:, :3] * np.float32(127.5) + np.float32(127.5))
    else:
        rotations = _pack_quats_smallest_three(quats)
    blocks = [positions.tobytes(), alphas.tobytes(), colors.tobytes(), scales.tobytes(), rotations.tobytes()]
    if sh.shape[1]:
        flat = sh.reshape(len(sh), 3 * sh.shape[1])
        packed = np.concatenate([_quantize_sh(flat[:, :9], SH1_BITS), _quantize_sh(flat[:, 9:], SH_REST_BITS)], 1)
        blocks.append(packed.tobytes())
    return fb, blocks


def spz_bytes(
    scene: GaussianScene, version: int = 4, antialiased: bool = False, coordinate_system: str = "rdf"
) -> bytes:
    """The bytes of ``scene`` as an SPZ file (see :func:`write_spz`)."""
    if version not in (2, 3, 4):
        raise ValueError(f"SPZ version must be 2, 3 or 4, got {version}")
    if scene.num_gaussians > MAX_SPLATS:
        raise ValueError(f"{scene.num_gaussians:,} splats: SPZ readers refuse more than {MAX_SPLATS:,}")
    bad = scene.non_finite_fields()
    if bad:
        raise ValueError(f"scene has non-finite values in {', '.join(bad)}; SPZ cannot store them")
    fb, blocks = encode_spz_blocks(scene, version, coordinate_system)
    flags = FLAG_ANTIALIASED if antialiased else 0
    if version < 4:
        header = struct.pack("<IIIBBBB", MAGIC, version, scene.num_gaussians, scene.sh_degree, fb, flags, 0)
        z = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return z.compress(header + b"".join(blocks)) + z.flush()
    import zstandard

    cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    streams = [cctx.compress(b) for b in blocks]
    header = struct.pack("<IIIBBBBI12x", MAGIC, 4, scene.num_gaussians, scene.sh_degree, fb, flags, len(blocks),
                         V4_HEADER)
    toc = b"".join(struct.pack("<QQ", len(c), len(b)) for c, b in zip(streams, blocks))
    return header + toc + b"".join(streams)


def write_spz(
    scene: GaussianScene,
    path: str | os.PathLike[str],
    version: int = 4,
    overwrite: bool = False,
    *,
    antialiased: bool = False,
    coordinate_system: str = "rdf",
) -> int:
    """Write ``scene`` as an SPZ file, atomically; returns the number of bytes written.

    ``version`` 4 (zstd streams, the default, as splat-transform) or 3 (one gzip stream; 2 writes
    the older 3-byte rotations). Quantisation steps (round to nearest, so errors are half of them):
    positions 2^-12 (fewer fractional bits only for scenes beyond +/-2047 units), log-scales 1/16
    in [-10, 5.94], opacity 1/255 after the sigmoid, DC colour 1/(255 * 0.15) in [-3.33, 3.33],
    rotation components sqrt(1/2)/511 (v3+), SH 8/128 for degree 1 and 16/128 above, in [-1, 1).
    Values beyond a range are clamped to it. Raises ValueError for non-finite values or a scene
    SPZ cannot hold, FileExistsError if ``path`` exists and ``overwrite`` is false.
    """
    data = spz_bytes(scene, version, antialiased, coordinate_system)
    atomic_write_bytes(Path(path), data, overwrite=overwrite)
    logger.info("wrote %s: SPZ v%d, %d splats, SH degree %d, %d bytes", path, version, scene.num_gaussians,
                scene.sh_degree, len(data))
    return len(data)
