"""Lossless coding of 16-bit grid positions for ``.ngs`` v2 (DESIGN.md §7, "Positions").

A block holds one or more groups of positions (one cluster's importance levels). Within each group the
positions are sorted by their 48-bit Morton code and the gaps between consecutive codes are coded
(the first gap is the code itself): each gap g as its bit length c = bit_length(g) (0..48), entropy-coded
under the block's own histogram of lengths, plus the c - 1 bits below its leading one, stored raw
(they are close to uniform). The decoder gets the group sizes from the header.

Block layout (little-endian)::

    u8 cmin, u8 cmax                         range of bit lengths used (cmin > cmax: no positions)
    u32 counts[cmax - cmin + 1]              histogram of bit lengths (the categorical model)
    u32 A                                    bytes of the rANS stream of the lengths
    A bytes                                  rANS stream (uint32 words)
    rest                                     raw low bits, MSB first, padded to a byte

Sorting changes the order of the Gaussians; :func:`morton_order` gives it, and callers store every
other per-Gaussian quantity in that order too.
"""

from __future__ import annotations

import struct

import numpy as np

from core.codec.entropy import (
    EntropyError,
    decode_categorical,
    encode_categorical,
    morton_decode,
    morton_encode,
    pack_low_bits,
    unpack_low_bits,
)

_U32 = struct.Struct("<I")
MAX_BITS = 48


def morton_order(q: np.ndarray) -> np.ndarray:
    """Indices [n] that sort uint16 positions [n, 3] by Morton code (stable)."""
    return np.argsort(morton_encode(q), kind="stable")


def _bit_length(g: np.ndarray) -> np.ndarray:
    """bit_length of uint64 values (0 for 0), exact for values < 2^53."""
    out = np.zeros(g.shape, dtype=np.int64)
    nz = g > 0
    out[nz] = np.floor(np.log2(g[nz].astype(np.float64))).astype(np.int64) + 1
    # float64 log2 can round up just below a power of two: fix both directions exactly
    too_big = nz & ((np.uint64(1) << (out.clip(1) - 1).astype(np.uint64)) > g)
    out[too_big] -= 1
    too_small = nz & ((g >> out.astype(np.uint64)) > 0)
    out[too_small] += 1
    return out


def encode_position_groups(groups: list[np.ndarray]) -> bytes:
    """uint16 [n_i, 3] arrays, each already in Morton order (see :func:`morton_order`) -> one block."""
    gaps = []
    for q in groups:
        m = morton_encode(q)
        if m.size and (np.diff(m.astype(np.int64)) < 0).any():
            raise ValueError("positions must be in Morton order within each group")
        gaps.append(np.diff(m, prepend=np.uint64(0)))
    g = np.concatenate(gaps) if gaps else np.zeros(0, dtype=np.uint64)
    if g.size == 0:
        return bytes([1, 0]) + _U32.pack(0)
    c = _bit_length(g)
    cmin, cmax = int(c.min()), int(c.max())
    counts = np.bincount(c - cmin, minlength=cmax - cmin + 1).astype("<u4")
    stream = encode_categorical(c - cmin, counts)
    low = g - (np.uint64(1) << (c.clip(1) - 1).astype(np.uint64)) * (c > 0)
    raw = pack_low_bits(low, np.maximum(c - 1, 0))
    return bytes([cmin, cmax]) + counts.tobytes() + _U32.pack(len(stream)) + stream + raw


def decode_position_groups(block: bytes | memoryview, sizes: list[int]) -> list[np.ndarray]:
    """Inverse of :func:`encode_position_groups` for groups of the given sizes. EntropyError if damaged."""
    data = bytes(block)
    n = sum(sizes)
    if len(data) < 2:
        raise EntropyError("position block shorter than its 2-byte prelude")
    cmin, cmax = data[0], data[1]
    if n == 0:
        if data != bytes([1, 0]) + _U32.pack(0):
            raise EntropyError("position block of an empty cluster is not empty")
        return [np.zeros((0, 3), dtype="<u2") for _ in sizes]
    if cmin > cmax or cmax > MAX_BITS:
        raise EntropyError(f"position block: invalid bit-length range {cmin}..{cmax}")
    nc = cmax - cmin + 1
    off = 2 + 4 * nc
    if len(data) < off + 4:
        raise EntropyError("position block truncated in its histogram")
    counts = np.frombuffer(data[2:off], dtype="<u4").astype(np.int64)
    if int(counts.sum()) != n:
        raise EntropyError(f"position block: histogram counts {int(counts.sum())} positions, the header {n}")
    (alen,) = _U32.unpack_from(data, off)
    off += 4
    if alen > len(data) - off:
        raise EntropyError(f"position block: stream of {alen} bytes overruns the block")
    c = decode_categorical(data[off: off + alen], counts, n).astype(np.int64) + cmin
    if c.min() < cmin or c.max() > cmax:
        raise EntropyError("position block: decoded bit length out of range")
    low = unpack_low_bits(data[off + alen:], np.maximum(c - 1, 0))
    g = low + (np.uint64(1) << (c.clip(1) - 1).astype(np.uint64)) * (c > 0).astype(np.uint64)
    out, start = [], 0
    for s in sizes:
        m = np.cumsum(g[start: start + s], dtype=np.uint64)
        if s and (m[-1] >= np.uint64(1) << np.uint64(MAX_BITS) or (np.diff(m) < g[start + 1: start + s]).any()):
            raise EntropyError("position block: Morton codes overflow 48 bits (damaged)")
        out.append(morton_decode(m))
        start += s
    return out
