"""Entropy coding for ``.ngs`` v2: thin, checked wrappers around constriction's rANS coder.

Why constriction (pinned in pyproject.toml): a maintained Rust entropy coder with quantised Laplace
and categorical models that take per-symbol parameters, exactly invertible on every platform (its
model quantisation is integer arithmetic on the float64 parameters we pass). We compute those
parameters from integers and float32 values stored in the file with IEEE-exact operations
(products, quotients and ``ldexp`` only), so encoder and decoder give the coder bit-identical models.

Streams are stored as little-endian uint32 words (constriction's native unit). Decoders take the
words they are given and an expected symbol count, never a length read from the stream itself;
a damaged stream raises :class:`EntropyError` (callers turn it into NgsFormatError).

Also here: bit packing of raw (incompressible) low bits, and Morton (Z-order) codes of 16-bit
grid positions (48-bit codes in uint64).
"""

from __future__ import annotations

import numpy as np

# constriction is imported lazily: the format module must stay cheap to import for `info`.

LAPLACE_RANGE = 32767
"""Symbols of Laplace-coded streams lie in [-LAPLACE_RANGE, LAPLACE_RANGE] (encoders clip to it)."""
MIN_SCALE = 0.02
"""Smallest Laplace scale (in symbol units) handed to the coder; smaller fitted scales are raised to it."""

# 2^(i/8) for i = 0..7, as exact float64 literals: scale codes -> scales without libm (see scale_from_code).
_EIGHTH_POWERS = (1.0, 1.0905077326652577, 1.189207115002721, 1.2968395546510096,
                  1.4142135623730951, 1.5422108254079407, 1.681792830507429, 1.8340080864093424)
SCALE_CODE_BIAS = 160
"""scale code k (uint8) means 2^((k - SCALE_CODE_BIAS) / 8): 2^-20 .. 2^11.9."""


class EntropyError(ValueError):
    """An entropy-coded stream could not be decoded (damaged or inconsistent with its side information)."""


def _constriction():
    import constriction

    return constriction


# -- scale codes ------------------------------------------------------------------------------------------
def scale_to_code(scale: np.ndarray) -> np.ndarray:
    """Positive scales -> uint8 codes (nearest on the 2^(1/8) grid, clipped to the code range)."""
    s = np.maximum(np.asarray(scale, dtype=np.float64), 1e-30)
    k = np.rint(np.log2(s) * 8.0) + SCALE_CODE_BIAS
    return np.clip(k, 0, 255).astype(np.uint8)


def scale_from_code(code: np.ndarray) -> np.ndarray:
    """uint8 codes -> float64 scales 2^((k - bias) / 8), computed exactly (table lookup + ldexp)."""
    k = np.asarray(code, dtype=np.int64) - SCALE_CODE_BIAS
    return np.ldexp(np.asarray(_EIGHTH_POWERS)[k % 8], k // 8)


# -- Laplace streams ----------------------------------------------------------------------------------------
def encode_laplace(symbols: np.ndarray, scales: np.ndarray) -> bytes:
    """Integer symbols [n] (|s| <= LAPLACE_RANGE) under zero-mean quantised Laplace models with the given
    per-symbol scales [n] (symbol units, float64) -> bytes of uint32 words. Empty input -> b""."""
    sym = np.ascontiguousarray(symbols, dtype=np.int32).reshape(-1)
    if sym.size == 0:
        return b""
    if np.abs(sym).max() > LAPLACE_RANGE:
        raise ValueError(f"symbol out of range (|s| > {LAPLACE_RANGE})")
    c = _constriction()
    sc = np.maximum(np.ascontiguousarray(scales, dtype=np.float64).reshape(-1), MIN_SCALE)
    model = c.stream.model.QuantizedLaplace(-LAPLACE_RANGE, LAPLACE_RANGE)
    coder = c.stream.stack.AnsCoder()
    coder.encode_reverse(sym, model, np.zeros(sym.size), sc)
    return coder.get_compressed().astype("<u4").tobytes()


def decode_laplace(data: bytes | memoryview, scales: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_laplace`: int32 symbols [n] for the n given scales. EntropyError if damaged."""
    sc = np.maximum(np.ascontiguousarray(scales, dtype=np.float64).reshape(-1), MIN_SCALE)
    if sc.size == 0:
        if len(data):
            raise EntropyError(f"{len(data)} bytes of symbols where none were expected")
        return np.zeros(0, dtype=np.int32)
    c = _constriction()
    model = c.stream.model.QuantizedLaplace(-LAPLACE_RANGE, LAPLACE_RANGE)
    return _decode(c, data, lambda coder: coder.decode(model, np.zeros(sc.size), sc), sc.size)


def _words(data: bytes | memoryview) -> np.ndarray:
    # An empty stream is valid: symbols at the bottom of the model (cdf 0) from an empty coder leave it empty.
    if len(data) % 4:
        raise EntropyError(f"a stream of {len(data)} bytes is not a whole number of 32-bit words")
    return np.frombuffer(bytes(data), dtype="<u4").astype(np.uint32)


def _decode(c, data, run, n: int) -> np.ndarray:
    words = _words(data)
    try:
        coder = c.stream.stack.AnsCoder(words)  # ValueError for a stream ending in a zero word
        out = np.asarray(run(coder), dtype=np.int32)
    except BaseException as exc:  # constriction raises plain exceptions (and panics) for damaged streams
        if isinstance(exc, (KeyboardInterrupt, SystemExit, MemoryError)):
            raise
        raise EntropyError(f"damaged entropy-coded stream ({exc})") from None
    if out.size != n or not coder.is_empty():
        raise EntropyError("entropy-coded stream does not end where its symbols do (damaged)")
    return out


# -- categorical streams (small alphabets, counts as side information) ------------------------------------
def encode_categorical(symbols: np.ndarray, counts: np.ndarray) -> bytes:
    """Symbols [n] in 0..len(counts)-1 under the fixed distribution ``counts`` (every used symbol counted)."""
    sym = np.ascontiguousarray(symbols, dtype=np.int32).reshape(-1)
    if sym.size == 0:
        return b""
    if np.asarray(counts).size == 1:  # one possible symbol: nothing to code (constriction refuses the model)
        if sym.any():
            raise ValueError("symbol out of range for a one-symbol alphabet")
        return b""
    c = _constriction()
    model = c.stream.model.Categorical(np.asarray(counts, dtype=np.float64), perfect=False)
    coder = c.stream.stack.AnsCoder()
    coder.encode_reverse(sym, model)
    return coder.get_compressed().astype("<u4").tobytes()


def decode_categorical(data: bytes | memoryview, counts: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`encode_categorical` for n symbols. EntropyError if damaged."""
    if n == 0:
        if len(data):
            raise EntropyError(f"{len(data)} bytes of symbols where none were expected")
        return np.zeros(0, dtype=np.int32)
    p = np.asarray(counts, dtype=np.float64)
    if p.size == 0 or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
        raise EntropyError("invalid symbol counts")
    if p.size == 1:  # see encode_categorical
        if len(data):
            raise EntropyError(f"{len(data)} bytes of symbols for a one-symbol alphabet (expected none)")
        return np.zeros(n, dtype=np.int32)
    c = _constriction()
    model = c.stream.model.Categorical(p, perfect=False)
    return _decode(c, data, lambda coder: coder.decode(model, n), n)


# -- raw bits -----------------------------------------------------------------------------------------------
def pack_low_bits(values: np.ndarray, nbits: np.ndarray) -> bytes:
    """The low ``nbits[i]`` bits of each uint64 ``values[i]`` (MSB first), concatenated and byte-padded."""
    v = np.asarray(values, dtype=np.uint64).reshape(-1)
    nb = np.asarray(nbits, dtype=np.int64).reshape(-1)
    width = int(nb.max()) if nb.size else 0
    if width == 0:
        return b""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)  # column j holds bit (width-1-j)
    bits = ((v[:, None] >> shifts[None, :]) & np.uint64(1)).astype(np.uint8)
    keep = np.arange(width)[None, :] >= (width - nb)[:, None]
    return np.packbits(bits[keep]).tobytes()


def unpack_low_bits(data: bytes | memoryview, nbits: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_low_bits`: uint64 values [n]. EntropyError if the byte count is wrong."""
    nb = np.asarray(nbits, dtype=np.int64).reshape(-1)
    total = int(nb.sum())
    if len(data) != (total + 7) // 8:
        raise EntropyError(f"raw-bit block has {len(data)} bytes, expected {(total + 7) // 8}")
    if total == 0:
        return np.zeros(nb.size, dtype=np.uint64)
    bits = np.unpackbits(np.frombuffer(bytes(data), dtype=np.uint8))[:total].astype(np.uint64)
    width = int(nb.max())
    grid = np.zeros((nb.size, width), dtype=np.uint64)
    keep = np.arange(width)[None, :] >= (width - nb)[:, None]
    grid[keep] = bits
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    return (grid << shifts[None, :]).sum(axis=1, dtype=np.uint64)


# -- Morton codes ------------------------------------------------------------------------------------------
def _spread16(x: np.ndarray) -> np.ndarray:
    """Bits of 16-bit x moved to positions 3i (uint64)."""
    x = x.astype(np.uint64) & np.uint64(0xFFFF)
    x = (x | (x << np.uint64(16))) & np.uint64(0x0000FF0000FF)
    x = (x | (x << np.uint64(8))) & np.uint64(0x00F00F00F00F)
    x = (x | (x << np.uint64(4))) & np.uint64(0x0C30C30C30C3)
    x = (x | (x << np.uint64(2))) & np.uint64(0x249249249249)
    return x


def _compact16(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_spread16`."""
    x = x & np.uint64(0x249249249249)
    x = (x | (x >> np.uint64(2))) & np.uint64(0x0C30C30C30C3)
    x = (x | (x >> np.uint64(4))) & np.uint64(0x00F00F00F00F)
    x = (x | (x >> np.uint64(8))) & np.uint64(0x0000FF0000FF)
    x = (x | (x >> np.uint64(16))) & np.uint64(0xFFFF)
    return x


def morton_encode(q: np.ndarray) -> np.ndarray:
    """uint16 grid positions [n, 3] -> 48-bit Morton codes [n] uint64 (x in bit 0, y bit 1, z bit 2)."""
    q = np.asarray(q).reshape(-1, 3)
    return _spread16(q[:, 0]) | (_spread16(q[:, 1]) << np.uint64(1)) | (_spread16(q[:, 2]) << np.uint64(2))


def morton_decode(m: np.ndarray) -> np.ndarray:
    """Inverse of :func:`morton_encode`: uint16 [n, 3]."""
    m = np.asarray(m, dtype=np.uint64)
    return np.stack([_compact16(m), _compact16(m >> np.uint64(1)), _compact16(m >> np.uint64(2))], axis=1).astype("<u2")
