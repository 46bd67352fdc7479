"""MLP weights of ``.ngs`` v2: int8 with a float16 scale per output row, entropy-coded (DESIGN.md §7).

For each linear layer, weight [out, in] -> ``q = round(w / s_row)`` with ``s_row = f16(max|w_row| / 127)``
(q in -127..127), decoded as ``q * s_row``; the bias stays float16. The int8 symbols are coded under a
zero-mean Laplace model with one scale per layer (a uint8 scale code). Measured on the prototype: about
half the bytes of float16 at -0.1 to -0.4 dB before any quantisation-aware fine-tuning.

Block layout::

    for each layer: f16 row_scale[out], f16 bias[out]
    u8 scale_code[layers]
    rest: rANS stream of every layer's symbols, layer by layer, row-major

Works on flat numpy arrays (weight then bias of each layer, as :class:`~core.neural_field.ClusterField`
orders its parameters) so that this module needs no torch.
"""

from __future__ import annotations

import numpy as np

from core.codec.entropy import EntropyError, decode_laplace, encode_laplace, scale_from_code, scale_to_code

QMAX = 127


def quantise_layer(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """weight [out, in] float32 -> (int32 symbols [out, in], float16 row scales [out])."""
    amax = np.abs(w).max(axis=1) if w.size else np.zeros(w.shape[0])
    with np.errstate(over="ignore"):
        scale = (amax / QMAX).astype(np.float16)
    if not np.isfinite(scale).all():
        raise ValueError("MLP weights beyond float16 range cannot be stored")
    safe = np.where(scale > 0, scale.astype(np.float32), 1.0)
    q = np.clip(np.rint(w / safe[:, None]), -QMAX, QMAX).astype(np.int32)
    q[scale == 0] = 0
    return q, scale


def encode_mlp(layers: list[tuple[np.ndarray, np.ndarray]]) -> tuple[bytes, list[tuple[np.ndarray, np.ndarray]]]:
    """[(weight [o, i], bias [o])] float32 -> (block bytes, the dequantised [(weight, bias)] a decoder gets)."""
    head, syms, scales, codes, deq = [], [], [], [], []
    for w, b in layers:
        q, s = quantise_layer(np.asarray(w, dtype=np.float32))
        with np.errstate(over="ignore"):
            b16 = np.asarray(b, dtype=np.float32).astype(np.float16)
        if not np.isfinite(b16).all():
            raise ValueError("MLP biases beyond float16 range cannot be stored")
        code = scale_to_code(np.array([max(np.abs(q).mean(), 0.05)]))[0] if q.size else np.uint8(0)
        head += [s.astype("<f2").tobytes(), b16.astype("<f2").tobytes()]
        codes.append(code)
        syms.append(q.reshape(-1))
        scales.append(np.full(q.size, scale_from_code(np.array([code]))[0]))
        deq.append((q.astype(np.float32) * s.astype(np.float32)[:, None], b16.astype(np.float32)))
    stream = encode_laplace(np.concatenate(syms), np.concatenate(scales))
    return b"".join(head) + np.asarray(codes, dtype=np.uint8).tobytes() + stream, deq


def decode_mlp(block: bytes | memoryview, shapes: list[tuple[int, int]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Inverse of :func:`encode_mlp` for layers of the given (out, in) shapes. EntropyError if damaged."""
    data = bytes(block)
    off, heads = 0, []
    for o, _ in shapes:
        if len(data) < off + 4 * o:
            raise EntropyError("MLP block truncated in its scales")
        s = np.frombuffer(data, dtype="<f2", count=o, offset=off).astype(np.float32)
        b = np.frombuffer(data, dtype="<f2", count=o, offset=off + 2 * o).astype(np.float32)
        if not (np.isfinite(s).all() and np.isfinite(b).all()):
            raise EntropyError("non-finite MLP scales or biases (float16 Inf/NaN)")
        heads.append((s, b))
        off += 4 * o
    if len(data) < off + len(shapes):
        raise EntropyError("MLP block truncated in its scale codes")
    codes = np.frombuffer(data, dtype=np.uint8, count=len(shapes), offset=off)
    off += len(shapes)
    scales = np.concatenate([np.full(o * i, scale_from_code(codes[j: j + 1])[0]) for j, (o, i) in enumerate(shapes)])
    q = decode_laplace(data[off:], scales)
    if q.size and np.abs(q).max() > QMAX:
        raise EntropyError(f"MLP weight symbol beyond +-{QMAX} (damaged)")
    out, start = [], 0
    for (o, i), (s, b) in zip(shapes, heads):
        w = q[start: start + o * i].reshape(o, i).astype(np.float32) * s[:, None]
        out.append((w, b))
        start += o * i
    return out
