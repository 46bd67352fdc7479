"""Residual coding of ``.ngs`` v2: what the predictor got wrong, at importance-scaled steps (DESIGN.md §7).

For the Gaussians j of one cluster (in file order), the coded attribute dimensions d and the residual
``r_jd = y_jd - p_jd`` (target minus prediction, normalised attribute space), the symbol is

    q_jd = round(r_jd / (Δ_d · s_{l_j}))          (clipped to ±LAPLACE_RANGE)

and the decoder reconstructs ``p_jd + q_jd · Δ_d · s_{l_j}``. ``Δ_d`` is the step of d's attribute group;
``l_j`` is the Gaussian's importance level (0 = most important) and ``s_l`` (>= 1, growing with l) its
step multiplier: important Gaussians are coded finely, unimportant ones coarsely, the importance-
weighted rate–distortion of Neural NeRF Compression (`../shared/papers/neural-nerf-compression.md`),
with the importance S_j of NeuralGS Eq. 2 deciding the level.

Entropy model: q_jd ~ zero-mean quantised Laplace with scale ``B_d / s_{l_j}`` in symbol units, where
``B_d = mean_j |r_jd| / Δ_d`` is side information per (cluster, dimension) stored as a uint8 code (the
residual does not depend on the level, so its symbol scale shrinks as the step grows).

Block layout::

    u32 A, then A bytes: rANS stream of the levels l_j (categorical, the header's level_counts);
                         A = 0 and no stream when there is one level
    u8 scale_code[Dc]    one per coded dimension
    rest                 rANS stream of q, dimension-major (all j of the first coded dimension, ...)
"""

from __future__ import annotations

import struct

import numpy as np

from core.codec.entropy import (
    LAPLACE_RANGE,
    EntropyError,
    decode_categorical,
    decode_laplace,
    encode_categorical,
    encode_laplace,
    scale_from_code,
    scale_to_code,
)

_U32 = struct.Struct("<I")


def _symbol_scales(codes: np.ndarray, level_mult: np.ndarray) -> np.ndarray:
    """Per-symbol Laplace scales [Dc * n], dimension-major: B_d / s_{l_j} (exact float64 division)."""
    b = scale_from_code(codes)  # [Dc]
    return (b[:, None] / level_mult[None, :]).reshape(-1)


def encode_residuals(residual: np.ndarray, steps: np.ndarray, levels: np.ndarray, level_steps: np.ndarray,
                     level_counts: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Quantise and code one cluster's residuals.

    residual [n, Dc] float (coded dimensions only); steps [Dc] float64 (Δ_d, finite); levels [n] int;
    level_steps [L] float64 (s_l); level_counts [L] (the level model). Returns (block bytes, the
    dequantised residual [n, Dc] float32 that the decoder reconstructs).
    """
    n, dc = residual.shape
    levels = np.asarray(levels, dtype=np.int64)
    mult = np.asarray(level_steps, dtype=np.float64)[levels] if n else np.zeros(0)
    step = steps[None, :] * mult[:, None]  # [n, Dc]
    q = np.clip(np.rint(residual / step), -LAPLACE_RANGE, LAPLACE_RANGE).astype(np.int32)
    b = np.abs(residual).mean(axis=0) / steps if n else np.ones(dc)
    codes = scale_to_code(b)
    lev = encode_categorical(levels, level_counts) if len(level_steps) > 1 else b""
    stream = encode_laplace(q.T.reshape(-1), _symbol_scales(codes, mult))
    deq = (q * step).astype(np.float32)
    return _U32.pack(len(lev)) + lev + codes.tobytes() + stream, deq


def decode_residuals(block: bytes | memoryview, n: int, steps: np.ndarray, level_steps: np.ndarray,
                     level_counts: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_residuals`: the dequantised residual [n, Dc] float32. EntropyError if damaged."""
    data = bytes(block)
    dc = steps.shape[0]
    if len(data) < 4:
        raise EntropyError("residual block shorter than its 4-byte prelude")
    (alen,) = _U32.unpack_from(data, 0)
    if alen > len(data) - 4 - dc:
        raise EntropyError(f"residual block: level stream of {alen} bytes overruns the block")
    if len(level_steps) > 1:
        levels = decode_categorical(data[4: 4 + alen], level_counts, n).astype(np.int64)
        if n and (levels.min() < 0 or levels.max() >= len(level_steps)):
            raise EntropyError("residual block: importance level out of range")
    else:
        if alen:
            raise EntropyError("residual block: level stream present with a single level")
        levels = np.zeros(n, dtype=np.int64)
    off = 4 + alen
    codes = np.frombuffer(data, dtype=np.uint8, count=dc, offset=off)
    mult = np.asarray(level_steps, dtype=np.float64)[levels]
    q = decode_laplace(data[off + dc:], _symbol_scales(codes, mult)).reshape(dc, n).T
    return (q * (steps[None, :] * mult[:, None])).astype(np.float32)


def estimate_bits(residual: np.ndarray, steps: np.ndarray, level_mult: np.ndarray) -> float:
    """Approximate bits of :func:`encode_residuals`'s symbol stream (quantised-Laplace entropy), for search."""
    n, dc = residual.shape
    if n == 0 or dc == 0:
        return 0.0
    step = steps[None, :] * level_mult[:, None]
    q = np.rint(residual / step)
    b = np.maximum(np.abs(residual).mean(axis=0) / steps, 1e-9)[None, :] / level_mult[:, None]
    b = np.maximum(b, 0.02)
    # P(q) for a Laplace(0, b) quantised to unit bins: q = 0 -> 1 - e^{-1/(2b)}; else 0.5 e^{-(|q|-0.5)/b}(1 - e^{-1/b})
    a = np.abs(q)
    p0 = -np.expm1(-0.5 / b)
    lp = np.where(a == 0, np.log2(np.maximum(p0, 1e-300)),
                  np.log2(0.5) - (a - 0.5) / b / np.log(2) + np.log2(np.maximum(-np.expm1(-1.0 / b), 1e-300)))
    return float(-lp.sum())
