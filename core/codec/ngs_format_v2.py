"""The ``.ngs`` version 2 header: keys, checks and the section layout (torch-free; DESIGN.md §7).

Version 2 keeps version 1's container (prelude, header JSON + CRC, framed sections with CRCs; see
:mod:`core.codec.ngs_format`) and changes what the sections hold. There is one section per cluster,
``cluster_0`` ... ``cluster_{K-1}``, largest cluster first, each self-contained so that a reader can
show the first clusters before the rest arrive (progressive loading). A cluster section is three
parts, their lengths listed in the header:

1. positions: the cluster's 16-bit grid positions in Morton order, gap- and entropy-coded
   (:mod:`core.codec.positions`);
2. predictor: ``"mlp"`` (int8 weights with float16 per-row scales, entropy-coded;
   :mod:`core.codec.weights`) or ``"constant"`` (the cluster's mean normalised attributes, float16 [D]);
3. residuals: target minus prediction in the normalised attribute space, uniformly quantised with step
   ``steps[d] * level_steps[level_j]`` and entropy-coded under zero-mean Laplace models
   (:mod:`core.codec.residuals`). Empty when every step is null (the paper's pure NeuralGS).

Header keys beyond version 1's (``pos_lo/hi``, ``attr_lo/hi``, ``arch``,
``sh_degree``, ``n_gaussians``, ``n_clusters``, ``cluster_sizes``, ``meta``, ``sections``;
``weight_dtype`` is absent)::

    position_bits  8..16: positions on a grid of 2^bits - 1 steps per axis of the pos_lo..pos_hi box
    codec  {"steps": {group: step or null},      groups opacity, log_scales, rotation, sh_dc, sh_band1..3
            "level_steps": [L floats >= 1],       step multiplier of each importance level (L 1..16)
            "level_counts": [L ints >= 0],        the categorical model of the per-Gaussian levels
            "weight_bits": 8}
    clusters [{"predictor": "mlp" | "constant", "parts": [positions, predictor, residuals]}] x K

Every length is checked before any part is read: the parts of a cluster must sum to its section
length, a constant predictor is exactly 2 D bytes, an MLP predictor at least its fixed scales, and a
cluster's positions part must hold at least one byte per 8 Gaussians (encoders refuse scenes that
would not), which bounds what a decoder allocates by the file's size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.codec.ngs_format import (
    MAX_GAUSSIANS,
    POSITION_BITS,
    PRELUDE_BYTES,
    SECTION_OVERHEAD,
    U32,
    HeaderChecker,
    Section,
    attribute_dim,
    check_boxes_and_meta,
    check_cluster_sizes,
    check_counts_and_arch,
    json_type,
    layer_shapes,
    layout_size,
    n_params,
    short_repr,
)

VERSION2 = 2
GROUP_NAMES = ("opacity", "log_scales", "rotation", "sh_dc", "sh_band1", "sh_band2", "sh_band3")
"""Attribute groups with a residual step each; the higher SH split by band (3, 5 and 7 coefficients x RGB),
so that rate control can leave the highest bands to the predictor."""
PREDICTORS = ("mlp", "constant")
MAX_LEVELS = 16
WEIGHT_BITS = 8
MAX_GAUSSIANS_PER_POSITION_BYTE = 8
MIN_POSITION_BITS = 8
MAX_WEIGHTS_PER_PREDICTOR_BYTE = 64  # int8 weights cost about 2-6 bits each; 1/8 bit is far below any real MLP


def group_slices(sh_degree: int) -> dict[str, slice]:
    """Columns of each attribute group in the normalised attribute vector [D]."""
    out = {"opacity": slice(0, 1), "log_scales": slice(1, 4), "rotation": slice(4, 7), "sh_dc": slice(7, 10)}
    for b in (1, 2, 3):  # coefficients b^2 - 1 .. (b + 1)^2 - 2 of sh_rest, 3 values each (coefficient-major)
        out[f"sh_band{b}"] = slice(10 + 3 * (b * b - 1), 10 + 3 * ((b + 1) ** 2 - 1)) if b <= sh_degree else slice(0, 0)
    return out


def steps_per_dim(steps: dict[str, float | None], sh_degree: int) -> np.ndarray:
    """Per-dimension float32 steps [D] from per-group steps (inf where a group is not coded)."""
    out = np.full(attribute_dim(sh_degree), np.inf, dtype=np.float64)
    for name, sl in group_slices(sh_degree).items():
        v = steps.get(name)
        if v is not None:
            out[sl] = float(np.float32(v))
    return out


def mlp_fixed_bytes(sh_degree: int, hidden: int, layers: int, pe_freqs: int) -> int:
    """Bytes of an MLP predictor before its weight stream: f16 row scales and biases, one u8 code per layer."""
    return sum(4 * o + 1 for o, _ in layer_shapes(sh_degree, hidden, layers, pe_freqs))


@dataclass(frozen=True)
class ClusterEntry:
    n: int
    predictor: str
    positions_len: int
    predictor_len: int
    residuals_len: int


@dataclass(frozen=True)
class NgsHeaderV2:
    """A validated v2 header plus the section layout. Arrays are float32 numpy."""

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
    position_bits: int
    steps: dict
    level_steps: np.ndarray
    level_counts: np.ndarray
    clusters: tuple[ClusterEntry, ...]
    sections: tuple[Section, ...]
    meta: dict
    raw: dict = field(repr=False)

    @property
    def file_size(self) -> int:
        return layout_size(self.header_len, self.sections)

    @property
    def coded_dims(self) -> np.ndarray:
        """Indices of the attribute dimensions that carry residuals."""
        return np.flatnonzero(np.isfinite(steps_per_dim(self.steps, self.sh_degree)))


def validate_header_v2(obj: dict, version: int, header_len: int, path: Path) -> NgsHeaderV2:
    """Check every key, type, range and count of a parsed v2 header; compute the section layout."""
    c = HeaderChecker(path)
    n, k, sh, hidden, layers, pe = check_counts_and_arch(c, obj)
    bits = c.int_in(obj, "position_bits", MIN_POSITION_BITS, POSITION_BITS)
    d = attribute_dim(sh)
    pos_lo, pos_hi, attr_lo, attr_hi, meta = check_boxes_and_meta(c, obj, sh)

    codec = c.get(obj, "codec")
    if not isinstance(codec, dict):
        raise c.fail(f"header key 'codec' has the wrong type (expected an object, got {json_type(codec)})")
    wb = c.int_in(codec, "weight_bits", 0, 64, "header 'codec'")
    if wb != WEIGHT_BITS:
        raise c.fail(f"unsupported weight_bits {wb} (version 2 stores {WEIGHT_BITS}-bit weights)")
    steps_obj = c.get(codec, "steps", "header 'codec'")
    if not isinstance(steps_obj, dict):
        raise c.fail(f"header 'codec' key 'steps' has the wrong type (expected an object, got {json_type(steps_obj)})")
    steps: dict[str, float | None] = {}
    for g in GROUP_NAMES:
        v = c.get(steps_obj, g, "header 'codec' 'steps'")
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                              or not 0 < v < 1e6 or not np.float32(v) > 0):
            raise c.fail(f"header 'codec' step of group {g} = {short_repr(v)} is not null or a positive finite number")
        steps[g] = None if v is None else float(v)
    lsteps = c.get(codec, "level_steps", "header 'codec'")
    if not isinstance(lsteps, list) or not 1 <= len(lsteps) <= MAX_LEVELS:
        raise c.fail(f"header 'codec' key 'level_steps' must be a list of 1..{MAX_LEVELS} numbers")
    level_steps = c.floats(codec, "level_steps", len(lsteps), "importance levels")
    if not ((level_steps >= 1.0) & (level_steps <= 1e6)).all():
        raise c.fail("header 'codec' level_steps must lie in 1..1e6")
    lcounts = c.get(codec, "level_counts", "header 'codec'")
    if not isinstance(lcounts, list) or len(lcounts) != len(lsteps):
        raise c.fail("header 'codec' key 'level_counts' must list one count per level")
    for i, v in enumerate(lcounts):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_GAUSSIANS:
            raise c.fail(f"header 'codec' level_counts[{i}] = {short_repr(v)} is not an integer in 0..{MAX_GAUSSIANS}")
    level_counts = np.asarray(lcounts, dtype=np.int64)
    coded = bool(np.isfinite(steps_per_dim(steps, sh)).any())
    if coded and len(lcounts) > 1 and level_counts.sum() <= 0:
        raise c.fail("header 'codec' level_counts are all zero")

    sizes = check_cluster_sizes(c, obj, n, k)
    clusters_obj = c.get(obj, "clusters")
    if not isinstance(clusters_obj, list) or len(clusters_obj) != k:
        raise c.fail(f"counts inconsistent: header key 'clusters' must list n_clusters = {k} entries")
    fixed_mlp = mlp_fixed_bytes(sh, hidden, layers, pe)
    secs = c.get(obj, "sections")
    if not isinstance(secs, list) or len(secs) != k:
        raise c.fail(f"counts inconsistent: the header must list {k} sections (one per cluster)")
    entries, sections = [], []
    offset = PRELUDE_BYTES + header_len + U32.size
    for i, (e, s) in enumerate(zip(clusters_obj, secs)):
        where = f"header 'clusters'[{i}]"
        if not isinstance(e, dict):
            raise c.fail(f"{where} has the wrong type (expected an object, got {json_type(e)})")
        pred = c.get(e, "predictor", where)
        if pred not in PREDICTORS:
            raise c.fail(f"{where} predictor {short_repr(pred)} is not one of {', '.join(PREDICTORS)}")
        parts = c.get(e, "parts", where)
        if not isinstance(parts, list) or len(parts) != 3:
            raise c.fail(f"{where} key 'parts' must list 3 lengths (positions, predictor, residuals)")
        for j, v in enumerate(parts):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
                raise c.fail(f"{where} parts[{j}] = {short_repr(v)} is not a length")
        npos = sizes[i]
        if parts[0] < 6 or parts[0] * MAX_GAUSSIANS_PER_POSITION_BYTE < npos:
            raise c.fail(f"counts inconsistent: {where} holds {npos} Gaussians in a {parts[0]}-byte positions part")
        if pred == "constant" and parts[1] != 2 * d:
            raise c.fail(f"counts inconsistent: {where} constant predictor of {parts[1]} bytes, expected {2 * d}")
        if pred == "mlp" and n_params(sh, hidden, layers, pe) > MAX_WEIGHTS_PER_PREDICTOR_BYTE * parts[1]:
            raise c.fail(f"counts inconsistent: {where} MLP predictor of {parts[1]} bytes cannot hold "
                         f"{n_params(sh, hidden, layers, pe)} weights")  # bounds what decoding allocates
        if pred == "mlp" and parts[1] < fixed_mlp:
            raise c.fail(f"counts inconsistent: {where} MLP predictor of {parts[1]} bytes, at least {fixed_mlp} "
                         f"expected")
        if not coded and parts[2] != 0:
            raise c.fail(f"counts inconsistent: {where} has {parts[2]} residual bytes but no group is coded")
        length = sum(parts)
        sw = f"header 'sections'[{i}]"
        if not isinstance(s, dict):
            raise c.fail(f"{sw} has the wrong type (expected an object, got {json_type(s)})")
        if s.get("name") != f"cluster_{i}":
            raise c.fail(f"{sw} is named {short_repr(s.get('name'))}, expected 'cluster_{i}'")
        slen = c.int_in(s, "length", 0, 0xFFFFFFFF, sw)
        if slen != length:
            raise c.fail(f"counts inconsistent: section cluster_{i} length {slen} does not match its parts "
                         f"({parts[0]} + {parts[1]} + {parts[2]} = {length} bytes)")
        crc = c.int_in(s, "crc32", 0, 0xFFFFFFFF, sw)
        entries.append(ClusterEntry(npos, pred, parts[0], parts[1], parts[2]))
        sections.append(Section(f"cluster_{i}", length, crc, offset))
        offset += SECTION_OVERHEAD + length
    return NgsHeaderV2(version, header_len, n, k, sh, hidden, layers, pe, tuple(sizes), pos_lo, pos_hi, attr_lo,
                       attr_hi, bits, steps, level_steps, level_counts, tuple(entries), tuple(sections), dict(meta),
                       obj)


def describe_codec(raw: dict) -> dict[str, Any]:
    """A short summary of a v2 header's codec settings for ``info`` (predictors, coded groups)."""
    codec = raw.get("codec") or {}
    preds = [e.get("predictor") for e in raw.get("clusters") or []]
    return {"steps": codec.get("steps"), "levels": len(codec.get("level_steps") or []),
            "predictors": {p: preds.count(p) for p in PREDICTORS}}
