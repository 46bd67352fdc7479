"""The ``.ngs`` container: the framing every version shares (DESIGN.md §7).

Prelude, header JSON + CRC, framed sections, position quantisation, the byte sources the readers read
from, the checks of the header keys both versions share, and :class:`NgsFormatError`. What a version's
header holds and its sections mean is in :mod:`core.codec.ngs_format_v1` and
:mod:`core.codec.ngs_format_v2`; :mod:`core.codec.ngs_layout` reads a file of either version.

This module knows bytes, JSON and numpy only (no torch), so reading a header is cheap enough for
``info`` and the package ``core.codec`` stays light.

Byte layout (all integers little-endian)::

    offset      size   field
    0           4      magic b"NGS\\x00"
    4           2      u16 version        (1 or 2)
    6           2      u16 flags          (v1: 0; v2: bit 0 = the header JSON is zlib-deflated; other bits rejected)
    8           4      u32 header_len H   (<= 16 MiB)
    12          H      header JSON, UTF-8 (an object; its keys depend on the version)
    12 + H      4      u32 CRC32 of the H header bytes
    16 + H      ...    sections, in the order the header lists them; each one is
                           4      u32 length L
                           L      payload
                           4      u32 CRC32 of the payload

    file size = 16 + H + sum over sections of (8 + L)      (nothing else: no padding, no trailer)

The header's ``sections`` key lists ``{"name", "length", "crc32"}`` of each section, in file order.

Floats are written as ``repr(float(np.float32(x)))`` so they parse back to the same float32.
JSON ``NaN``/``Infinity``, duplicate keys and values that overflow float32 are rejected.

Reading never trusts a number it has not checked: the header length is capped and checked against
the file size before it is read, every count is range-checked, every section length must equal what
the header's counts imply (and the file size must equal the sum of the parts) before any section is
read or any array allocated. A file shorter than that is "truncated section X (expected N bytes,
found M)", a longer one "trailing bytes" (rejected: a file has no trailer). Each section's
length field must equal the header's and both CRCs (header list, trailer) must match the payload.
Every problem raises :class:`NgsFormatError` naming the file and the problem.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from core.errors import InputFileError, os_error_problem

MAGIC = b"NGS\x00"
SUPPORTED_VERSIONS = (1, 2)  # core.codec.ngs_format_v1, core.codec.ngs_format_v2
PRELUDE = struct.Struct("<4sHHI")  # magic, version, flags, header_len
U32 = struct.Struct("<I")
PRELUDE_BYTES = PRELUDE.size  # 12
SECTION_OVERHEAD = 2 * U32.size  # length field + CRC field

MAX_HEADER_BYTES = 16 * 2**20
MAX_CLUSTERS = 65535
MAX_GAUSSIANS = (2**32 - 1) // 6  # 715_827_882: the positions section length must fit a u32
MAX_HIDDEN = 1024  # the widest MLP a real file needs: the paper's are <= 256, our budget picks <= 128
MIN_LAYERS, MAX_LAYERS = 2, 16
MAX_PE_FREQS = 16
POSITION_BITS = 16
QMAX = 2**POSITION_BITS - 1  # 65535
SH_REST_COUNTS = {0: 0, 1: 3, 2: 8, 3: 15}  # same as core.scene.SH_REST_COUNTS (kept torch-free)
_F32_MAX = float(np.finfo(np.float32).max)


FLAG_DEFLATED_HEADER = 0x0001


def inflate_header(data: bytes | memoryview, path: Path) -> bytes:
    """A deflated header's JSON bytes, at most MAX_HEADER_BYTES (a bomb is refused before it is inflated)."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(bytes(data), MAX_HEADER_BYTES + 1)
    except zlib.error as exc:
        raise NgsFormatError(path, f"header is not valid deflate data ({exc})") from None
    if len(out) > MAX_HEADER_BYTES:
        raise NgsFormatError(path, f"header inflates to more than the {MAX_HEADER_BYTES}-byte limit")
    if not d.eof or d.unused_data:
        raise NgsFormatError(path, "header deflate stream is truncated or followed by extra bytes")
    return out


class NgsFormatError(InputFileError):
    """A ``.ngs`` file (or byte string) is not a valid file: ``str(err)`` is ``"<path>: <problem>"``."""


def crc32(data: bytes | memoryview) -> int:
    """CRC-32 (zlib / IEEE 802.3) of ``data`` as an unsigned 32-bit int."""
    return zlib.crc32(data) & 0xFFFFFFFF


def attribute_dim(sh_degree: int) -> int:
    """D = 10 + 3 M for an SH degree (mirrors core.neural_field.attribute_dim)."""
    return 10 + 3 * SH_REST_COUNTS[sh_degree]


def layer_shapes(sh_degree: int, hidden: int, layers: int, pe_freqs: int) -> list[tuple[int, int]]:
    """(out, in) of each linear layer (mirrors core.neural_field.FieldArch.layer_shapes)."""
    dims = [3 + 6 * pe_freqs] + [hidden] * (layers - 1) + [attribute_dim(sh_degree)]
    return [(dims[i + 1], dims[i]) for i in range(layers)]


def n_params(sh_degree: int, hidden: int, layers: int, pe_freqs: int) -> int:
    """Number of MLP parameters per cluster (weights + biases)."""
    return sum(o * i + o for o, i in layer_shapes(sh_degree, hidden, layers, pe_freqs))


# -- positions ----------------------------------------------------------------------------------------
def quantise_positions(positions: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int = POSITION_BITS) -> np.ndarray:
    """World positions [N, 3] -> uint16 [N, 3], ``round((p - lo) / (hi - lo) * (2^bits - 1))`` per axis
    (``bits`` 16 in v1, 8..16 in v2).

    ``lo``/``hi`` [3] are the float32 box stored in the header. Positions more than half a step
    outside the box raise ``ValueError`` (clipping them would move Gaussians); within half a step
    they are clamped to 0 / 65535. Computed in float64.
    """
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    lo64 = np.asarray(lo, dtype=np.float32).astype(np.float64)
    hi64 = np.asarray(hi, dtype=np.float32).astype(np.float64)
    span = hi64 - lo64
    safe = np.where(span > 0, span, 1.0)
    qmax = 2**bits - 1
    t = (p - lo64) / safe * qmax
    t = np.where(span > 0, t, 0.0)  # degenerate axis (hi == lo): q = 0, and p must equal lo
    if p.size:
        bad = (t < -0.5) | (t > qmax + 0.5) | ((span == 0) & (p != lo64)) | ~np.isfinite(t)
        if bad.any():
            n = int(bad.any(axis=1).sum())
            raise ValueError(
                f"{n} positions lie outside the quantisation box pos_lo..pos_hi "
                f"({lo64.tolist()} .. {hi64.tolist()}) or are non-finite; the box must cover every position"
            )
    return np.clip(np.rint(t), 0, qmax).astype("<u2")


def dequantise_positions(q: np.ndarray, lo: np.ndarray, hi: np.ndarray, bits: int = POSITION_BITS) -> np.ndarray:
    """uint16 [N, 3] -> float32 [N, 3] world positions, ``lo + q / (2^bits - 1) * (hi - lo)`` (float64 math)."""
    lo64 = np.asarray(lo, dtype=np.float32).astype(np.float64)
    hi64 = np.asarray(hi, dtype=np.float32).astype(np.float64)
    out = lo64 + (q.astype(np.float64) / (2**bits - 1)) * (hi64 - lo64)
    return out.astype(np.float32)


# -- writing ------------------------------------------------------------------------------------------
def f32_list(values: Any) -> list[float]:
    """Floats that JSON-round-trip to exactly these float32 values, in the fewest digits: the shortest
    decimal that parses back to the same float32 (numpy's float32 repr), e.g. 0.1 rather than
    0.10000000149011612 (halves a header's floats; readers parse them to float32 as before)."""
    out = []
    for v in np.asarray(values, dtype=np.float32).reshape(-1):
        short = float(np.format_float_positional(v, unique=True, trim="-")) if np.isfinite(v) else float(v)
        # the reader parses a float64 and requires it within float32's range: near float32's max the shortest
        # decimal can lie just beyond it, so keep the exact value there
        out.append(short if abs(short) <= _F32_MAX and np.float32(short) == v else float(v))
    return out


def assemble(header: dict, payloads: list[tuple[str, bytes]], version: int = 1) -> list[bytes]:
    """The file as a list of byte chunks, given the header (without ``sections``) and the payloads.

    Adds ``header["sections"]`` (name, length, CRC32 of each payload). Raises ValueError if the
    header is not JSON-serialisable (NaN included) or longer than the 16 MiB limit.
    """
    crcs = [crc32(p) for _, p in payloads]
    head = dict(header)
    head["sections"] = [{"name": n, "length": len(p), "crc32": c} for (n, p), c in zip(payloads, crcs)]
    try:
        text = json.dumps(head, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the .ngs header (meta included) is not JSON-serialisable: {exc}") from exc
    hbytes = text.encode("utf-8")
    if len(hbytes) > MAX_HEADER_BYTES:
        raise ValueError(f"the .ngs header is {len(hbytes)} bytes, over the {MAX_HEADER_BYTES}-byte limit "
                         f"(large meta?)")
    flags = 0
    if version >= 2:  # v2 deflates its header: half the bytes of a small file's header (2.9 -> 1.4 KB measured)
        hbytes, flags = zlib.compress(hbytes, 9), FLAG_DEFLATED_HEADER
    chunks = [PRELUDE.pack(MAGIC, version, flags, len(hbytes)), hbytes, U32.pack(crc32(hbytes))]
    for (_, p), c in zip(payloads, crcs):
        if len(p) > 0xFFFFFFFF:
            raise ValueError(f"section of {len(p)} bytes does not fit a u32 length")
        chunks += [U32.pack(len(p)), p, U32.pack(c)]
    return chunks


# -- reading: byte sources ----------------------------------------------------------------------------
class ByteSource:
    """Bytes in memory; ``read(offset, n)`` returns a zero-copy memoryview (caller checked the range)."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._view = memoryview(data).cast("B")
        self.size = len(self._view)

    def read(self, offset: int, n: int) -> memoryview:
        assert 0 <= offset and 0 <= n and offset + n <= self.size
        return self._view[offset: offset + n]


class FileSource:
    """An open binary file of known size: reads only the ranges asked for (progressive loading)."""

    def __init__(self, f: BinaryIO, path: Path) -> None:
        self._f = f
        self._path = path
        self.size = os.fstat(f.fileno()).st_size

    def read(self, offset: int, n: int) -> bytes:
        assert 0 <= offset and 0 <= n and offset + n <= self.size
        self._f.seek(offset)
        data = self._f.read(n)
        if len(data) != n:  # the file shrank under us
            raise NgsFormatError(self._path, f"file changed while reading (expected {n} bytes at offset {offset}, "
                                             f"got {len(data)})")
        return data


def open_file(path: Path) -> BinaryIO:
    """Open ``path`` for reading; OS problems become NgsFormatError."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise NgsFormatError(path, os_error_problem(exc, "an .ngs file")) from None


# -- reading: the header ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Section:
    name: str
    length: int
    crc32: int
    offset: int  # file offset of the section's u32 length field


def layout_size(header_len: int, sections: tuple[Section, ...]) -> int:
    """The exact size of a file with a header of ``header_len`` bytes and these sections."""
    last = sections[-1] if sections else None
    end = PRELUDE_BYTES + header_len + U32.size
    return last.offset + SECTION_OVERHEAD + last.length if last else end


class HeaderChecker:
    """Typed access to the parsed header JSON; every failure is an NgsFormatError naming the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, problem: str) -> NgsFormatError:
        return NgsFormatError(self.path, problem)

    def get(self, obj: dict, key: str, where: str = "header") -> Any:
        if key not in obj:
            raise self.fail(f"{where} is missing key '{key}'")
        return obj[key]

    def int_in(self, obj: dict, key: str, lo: int, hi: int, where: str = "header") -> int:
        v = self.get(obj, key, where)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.fail(f"{where} key '{key}' has the wrong type (expected an integer, got {json_type(v)})")
        if not lo <= v <= hi:
            raise self.fail(f"{where} value {key} = {short_repr(v)} is out of range (allowed {lo}..{hi})")
        return v

    def floats(self, obj: dict, key: str, n: int, what: str) -> np.ndarray:
        v = self.get(obj, key)
        if not isinstance(v, list):
            raise self.fail(f"header key '{key}' has the wrong type (expected a list of {n} numbers, "
                            f"got {json_type(v)})")
        if len(v) != n:
            raise self.fail(f"header key '{key}' has {len(v)} values, expected {n} ({what})")
        for i, x in enumerate(v):
            if not isinstance(x, (int, float)) or isinstance(x, bool):
                raise self.fail(f"header key '{key}'[{i}] has the wrong type (expected a number, got {json_type(x)})")
            if abs(x) > _F32_MAX or not math.isfinite(x):  # abs first: float(10**400) would overflow
                raise self.fail(f"non-finite range: header key '{key}'[{i}] = {short_repr(x)} is not a finite float32")
        return np.asarray([float(x) for x in v], dtype=np.float64).astype(np.float32)


def json_type(v: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null",
            int: "integer", float: "number"}.get(type(v), type(v).__name__)


def short_repr(v: Any, n: int = 40) -> str:
    s = repr(v) if not isinstance(v, int) or abs(v) < 10**30 else f"a {len(str(abs(v)))}-digit integer"
    return s if len(s) <= n else s[: n - 3] + "..."


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def parse_header_json(hbytes: bytes, path: Path) -> dict:
    """The header JSON object; NgsFormatError for invalid UTF-8, invalid JSON, NaN/Infinity, duplicates."""
    try:
        obj = json.loads(bytes(hbytes).decode("utf-8"), parse_constant=_reject_constant,
                         object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise NgsFormatError(path, f"header JSON is invalid: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        raise NgsFormatError(path, "header JSON is invalid: nested too deeply") from None
    except ValueError as exc:
        raise NgsFormatError(path, f"header JSON is invalid: {str(exc)[:200]}") from None
    if not isinstance(obj, dict):
        raise NgsFormatError(path, f"header JSON is invalid: expected an object, got {json_type(obj)}")
    return obj


def check_counts_and_arch(c: HeaderChecker, obj: dict) -> tuple[int, int, int, int, int, int]:
    """(n_gaussians, n_clusters, sh_degree, hidden, layers, pe_freqs) of a header (v1 and v2), checked."""
    n = c.int_in(obj, "n_gaussians", 0, MAX_GAUSSIANS)
    k = c.int_in(obj, "n_clusters", 0, MAX_CLUSTERS)
    sh = c.int_in(obj, "sh_degree", 0, 3)
    arch = c.get(obj, "arch")
    if not isinstance(arch, dict):
        raise c.fail(f"header key 'arch' has the wrong type (expected an object, got {json_type(arch)})")
    hidden = c.int_in(arch, "hidden", 1, MAX_HIDDEN, "header 'arch'")
    layers = c.int_in(arch, "layers", MIN_LAYERS, MAX_LAYERS, "header 'arch'")
    pe = c.int_in(arch, "pe_freqs", 0, MAX_PE_FREQS, "header 'arch'")
    return n, k, sh, hidden, layers, pe


def check_cluster_sizes(c: HeaderChecker, obj: dict, n: int, k: int) -> list[int]:
    """``cluster_sizes``: k integers, non-increasing (largest cluster first), summing to n."""
    sizes = c.get(obj, "cluster_sizes")
    if not isinstance(sizes, list):
        raise c.fail(f"header key 'cluster_sizes' has the wrong type (expected a list, got {json_type(sizes)})")
    if len(sizes) != k:
        raise c.fail(f"counts inconsistent: cluster_sizes has {len(sizes)} entries but n_clusters is {k}")
    total = 0
    for i, s in enumerate(sizes):
        if not isinstance(s, int) or isinstance(s, bool):
            raise c.fail(f"header key 'cluster_sizes'[{i}] has the wrong type (expected an integer, "
                         f"got {json_type(s)})")
        if not 0 <= s <= MAX_GAUSSIANS:
            raise c.fail(f"header value cluster_sizes[{i}] = {short_repr(s)} is out of range "
                         f"(allowed 0..{MAX_GAUSSIANS})")
        if i and s > sizes[i - 1]:
            raise c.fail(f"counts inconsistent: cluster sizes must be non-increasing (largest first), "
                         f"but cluster {i} has {s} > cluster {i - 1}'s {sizes[i - 1]}")
        total += s
    if total != n:
        raise c.fail(f"counts inconsistent: cluster sizes sum to {total} but n_gaussians is {n}")
    return sizes


def check_boxes_and_meta(c: HeaderChecker, obj: dict, sh: int):
    """(pos_lo, pos_hi, attr_lo, attr_hi, meta) of a header (v1 and v2): finite float32 boxes with hi >= lo."""
    d = attribute_dim(sh)
    pos_lo = c.floats(obj, "pos_lo", 3, "x, y, z")
    pos_hi = c.floats(obj, "pos_hi", 3, "x, y, z")
    attr_lo = c.floats(obj, "attr_lo", d, f"D = 10 + 3 * {SH_REST_COUNTS[sh]} attributes for SH degree {sh}")
    attr_hi = c.floats(obj, "attr_hi", d, f"D = 10 + 3 * {SH_REST_COUNTS[sh]} attributes for SH degree {sh}")
    for name, lo, hi in (("pos", pos_lo, pos_hi), ("attr", attr_lo, attr_hi)):
        bad = np.flatnonzero(hi < lo)
        if bad.size:
            i = int(bad[0])
            raise c.fail(f"invalid range: {name}_hi[{i}] = {hi[i]!r} is below {name}_lo[{i}] = {lo[i]!r}")
    meta = c.get(obj, "meta")
    if not isinstance(meta, dict):
        raise c.fail(f"header key 'meta' has the wrong type (expected an object, got {json_type(meta)})")
    return pos_lo, pos_hi, attr_lo, attr_hi, meta


def read_header(src: ByteSource | FileSource, path: Path) -> tuple[int, int, dict]:
    """(version, header_len, header JSON object) of a file: the prelude read and checked (magic, version, flags,
    header length), the header's CRC verified, the header inflated (v2) and parsed. The keys are not checked:
    a version's ``validate_header_v*`` does that."""
    size = src.size
    if size == 0:
        raise NgsFormatError(path, "empty file (0 bytes), not an .ngs file")
    head = bytes(src.read(0, min(PRELUDE_BYTES, size)))
    if head[:4] != MAGIC[: len(head[:4])]:
        raise NgsFormatError(path, f"not an .ngs file (bad magic {head[:4]!r}, expected {MAGIC!r})")
    if size < PRELUDE_BYTES:
        raise NgsFormatError(path, f"truncated prelude (expected {PRELUDE_BYTES} bytes, found {size})")
    _, version, flags, hlen = PRELUDE.unpack(head)
    if version not in SUPPORTED_VERSIONS:
        raise NgsFormatError(path, f"unsupported .ngs version {version} (this reader supports version "
                                   f"{', '.join(map(str, SUPPORTED_VERSIONS))})")
    allowed = 0 if version == 1 else FLAG_DEFLATED_HEADER
    if flags & ~allowed:
        raise NgsFormatError(path, f"unsupported flags 0x{flags:04x} (version {version} defines "
                                   f"{'none; expected 0' if not allowed else f'0x{allowed:04x}'})")
    if hlen > MAX_HEADER_BYTES:
        raise NgsFormatError(path, f"header length {hlen} exceeds the {MAX_HEADER_BYTES}-byte (16 MiB) limit")
    avail = size - PRELUDE_BYTES
    if avail < hlen:
        raise NgsFormatError(path, f"truncated header JSON (expected {hlen} bytes, found {avail})")
    if avail < hlen + U32.size:
        raise NgsFormatError(path, f"truncated header CRC (expected 4 bytes, found {avail - hlen})")
    hbytes = src.read(PRELUDE_BYTES, hlen)
    (stored,) = U32.unpack(bytes(src.read(PRELUDE_BYTES + hlen, U32.size)))
    computed = crc32(hbytes)
    if stored != computed:
        raise NgsFormatError(path, f"CRC mismatch in the header JSON (stored 0x{stored:08x}, "
                                   f"computed 0x{computed:08x})")
    if flags & FLAG_DEFLATED_HEADER:
        hbytes = inflate_header(hbytes, path)
    return version, hlen, parse_header_json(hbytes, path)


def check_file_size(size: int, sections: tuple[Section, ...], file_size: int, path: Path) -> None:
    """That a file of ``size`` bytes holds every section a validated header lists (``file_size``: the size
    the header implies) and nothing after them."""
    for s in sections:
        need = SECTION_OVERHEAD + s.length
        if size - s.offset < need:
            raise NgsFormatError(path, f"truncated section {s.name} (expected {need} bytes: 4 length + {s.length} "
                                       f"data + 4 CRC, found {max(0, size - s.offset)})")
    if size > file_size:
        last = sections[-1].name if sections else "header"
        raise NgsFormatError(path, f"{size - file_size} trailing bytes after the last section ({last}): "
                                   f"a valid file with this header is {file_size} bytes")


def read_section(src: ByteSource | FileSource, sec: Section, path: Path) -> bytes | memoryview:
    """The payload of a section whose range check_file_size has checked; verifies length field and CRCs."""
    (length,) = U32.unpack(bytes(src.read(sec.offset, U32.size)))
    if length != sec.length:
        raise NgsFormatError(path, f"section {sec.name} length field says {length} bytes but the header says "
                                   f"{sec.length}")
    payload = src.read(sec.offset + U32.size, sec.length)
    (stored,) = U32.unpack(bytes(src.read(sec.offset + U32.size + sec.length, U32.size)))
    computed = crc32(payload)
    if stored != sec.crc32:
        raise NgsFormatError(path, f"CRC mismatch in section {sec.name}: the CRC field 0x{stored:08x} disagrees "
                                   f"with the header's 0x{sec.crc32:08x}")
    if computed != stored:
        raise NgsFormatError(path, f"CRC mismatch in section {sec.name} (stored 0x{stored:08x}, "
                                   f"computed 0x{computed:08x})")
    return payload


def is_ngs_file(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` starts with the ``.ngs`` magic (whatever its name).

    Raises InputFileError naming the file when it cannot be opened or read.
    """
    p = Path(path)
    try:
        with open(p, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError as exc:
        raise InputFileError(p, os_error_problem(exc, "a scene file")) from None
