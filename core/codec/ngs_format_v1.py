"""The ``.ngs`` version 1 header: keys, checks and the section layout (torch-free; DESIGN.md §7).

Version 1 uses the container of :mod:`core.codec.ngs_format` (prelude with u16 version 1 and u16 flags 0,
header JSON not deflated, framed sections) and stores the model as it is, positions on a 16-bit grid
and float16 MLP weights; :mod:`core.codec.ngs` encodes and decodes it.

Sections, in order:

- ``positions``: uint16 [N, 3] row-major (x, y, z of Gaussian 0, then 1, ...), grouped by
  cluster, cluster 0 (the largest) first, so the first n clusters' positions are a prefix.
  ``q = round((p - lo) / (hi - lo) * 65535)`` per axis with ``lo = pos_lo``, ``hi = pos_hi``;
  decoded as float32 ``lo + q / 65535 * (hi - lo)`` (computed in float64, then rounded):
  error at most half a step, ``(hi - lo) / 131070`` per axis (plus float32 rounding).
  An axis with ``hi == lo`` stores q = 0 and decodes to lo. L = 6 N.
- ``mlp_0`` ... ``mlp_{K-1}``: float16, for each linear layer in order its weight [out, in]
  (row-major, torch's layout) then its bias [out]. L = 2 * FieldArch.n_params().

Header JSON keys (all required; unknown extra keys are ignored)::

    n_gaussians   int N, 0 <= N <= 715_827_882 (the positions section, 6 N bytes, fits a u32)
    n_clusters    int K, 0 <= K <= 65535
    sh_degree     int 0..3 (D = 10 + 3 M attributes, M = 0, 3, 8, 15)
    arch          {"hidden": 1..1024, "layers": 2..16, "pe_freqs": 0..16}
    cluster_sizes [K] ints >= 0, non-increasing, summing to N
    pos_lo, pos_hi    [3] floats, finite, hi >= lo: the normalisation and quantisation box
    attr_lo, attr_hi  [D] floats, finite, hi >= lo: the attribute normalisation ranges
    position_bits 16
    weight_dtype  "float16"
    sections      [{"name", "length", "crc32"}] x (K + 1): "positions", "mlp_0", ...
    meta          object: creation parameters, free-form

Every section length must equal what the header's counts imply. MLP payloads holding float16 Inf/NaN are
rejected by the decoder even with a valid CRC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.codec.ngs_format import (
    POSITION_BITS,
    PRELUDE_BYTES,
    SECTION_OVERHEAD,
    U32,
    HeaderChecker,
    Section,
    check_boxes_and_meta,
    check_cluster_sizes,
    check_counts_and_arch,
    json_type,
    layout_size,
    n_params,
    short_repr,
)

VERSION1 = 1
WEIGHT_DTYPE = "float16"


@dataclass(frozen=True)
class NgsHeader:
    """A validated v1 header plus the section layout. Arrays are float32 numpy."""

    version: int
    header_len: int
    n_gaussians: int
    n_clusters: int
    sh_degree: int
    hidden: int
    layers: int
    pe_freqs: int
    cluster_sizes: tuple[int, ...]
    pos_lo: np.ndarray
    pos_hi: np.ndarray
    attr_lo: np.ndarray
    attr_hi: np.ndarray
    sections: tuple[Section, ...]
    meta: dict
    raw: dict = field(repr=False)

    @property
    def n_params(self) -> int:
        return n_params(self.sh_degree, self.hidden, self.layers, self.pe_freqs)

    @property
    def file_size(self) -> int:
        """The exact size a valid file with this header has."""
        return layout_size(self.header_len, self.sections)


def validate_header_v1(obj: dict, version: int, header_len: int, path: Path) -> NgsHeader:
    """Check every key, type, range and count of a parsed v1 header; compute the section layout."""
    c = HeaderChecker(path)
    n, k, sh, hidden, layers, pe = check_counts_and_arch(c, obj)
    bits = c.int_in(obj, "position_bits", 0, 2**31)
    if bits != POSITION_BITS:
        raise c.fail(f"unsupported position_bits {bits} (version 1 stores {POSITION_BITS}-bit positions)")
    wd = c.get(obj, "weight_dtype")
    if wd != WEIGHT_DTYPE:
        raise c.fail(f"unsupported weight_dtype {short_repr(wd)} (version 1 stores {WEIGHT_DTYPE!r} weights)")
    sizes = check_cluster_sizes(c, obj, n, k)
    pos_lo, pos_hi, attr_lo, attr_hi, meta = check_boxes_and_meta(c, obj, sh)

    mlp_len = 2 * n_params(sh, hidden, layers, pe)
    expected = [("positions", 6 * n)] + [(f"mlp_{i}", mlp_len) for i in range(k)]
    secs = c.get(obj, "sections")
    if not isinstance(secs, list):
        raise c.fail(f"header key 'sections' has the wrong type (expected a list, got {json_type(secs)})")
    if len(secs) != len(expected):
        raise c.fail(f"counts inconsistent: the header lists {len(secs)} sections, expected {len(expected)} "
                     f"(positions + one MLP per cluster, K = {k})")
    sections = []
    offset = PRELUDE_BYTES + header_len + U32.size
    for i, (s, (want_name, want_len)) in enumerate(zip(secs, expected)):
        if not (type(s) is dict and s.get("name") == want_name and type(s.get("length")) is int  # fast path
                and s["length"] == want_len and type(s.get("crc32")) is int and 0 <= s["crc32"] <= 0xFFFFFFFF):
            _section_entry_problem(c, i, s, want_name, want_len, n, sh, hidden, layers, pe)
        sections.append(Section(want_name, want_len, s["crc32"], offset))
        offset += SECTION_OVERHEAD + want_len
    return NgsHeader(version, header_len, n, k, sh, hidden, layers, pe, tuple(sizes), pos_lo, pos_hi,
                     attr_lo, attr_hi, tuple(sections), dict(meta), obj)


def _section_entry_problem(c: HeaderChecker, i: int, s: Any, want_name: str, want_len: int, n: int, sh: int,
                           hidden: int, layers: int, pe: int) -> None:
    """Raise the NgsFormatError describing what is wrong with header ``sections[i]``."""
    where = f"header 'sections'[{i}]"
    if not isinstance(s, dict):
        raise c.fail(f"{where} has the wrong type (expected an object, got {json_type(s)})")
    name = c.get(s, "name", where)
    if name != want_name:
        raise c.fail(f"{where} is named {short_repr(name)}, expected {want_name!r}")
    length = c.int_in(s, "length", 0, 0xFFFFFFFF, where)
    if length != want_len:
        why = (f"n_gaussians ({n} x 6 bytes)" if i == 0 else
               f"the architecture (2 bytes x {want_len // 2} parameters: SH {sh}, hidden {hidden}, "
               f"{layers} layers, {pe} frequencies)")
        raise c.fail(f"counts inconsistent: section {name} length {length} does not match {why} = {want_len} bytes")
    c.int_in(s, "crc32", 0, 0xFFFFFFFF, where)
    raise c.fail(f"{where} is invalid")  # pragma: no cover (the checks above cover the fast path's tests)
