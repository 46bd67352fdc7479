"""Bounded decompression for the readers of compressed scene formats (SPZ, SOG).

A reader asks for at most the number of bytes the file's header implies (plus one, to notice
extra data); it never lets a stream inflate further, so a "zip bomb" (a small input that
inflates to gigabytes) costs at most what the header promised, and output buffers grow only with
data that actually arrives. Every problem becomes :class:`~core.errors.InputFileError`.

- gzip / deflate: Python's ``zlib`` with ``max_length``; deflate cannot expand more than about
  1032:1 (RFC 1951: a 258-byte match costs at least 2 bits), :data:`DEFLATE_MAX_RATIO`.
- zstd: the ``zstandard`` package's ``stream_reader``, read in chunks of :data:`CHUNK`.
"""

from __future__ import annotations

import os
import zlib

from core.errors import InputFileError

CHUNK = 1 << 22
"""Output bytes decompressed per step (4 MiB): output memory grows only as real data arrives."""
DEFLATE_MAX_RATIO = 1032
"""Deflate's largest possible expansion (a 258-byte match in two bits is 1032:1)."""
MAX_SPLATS = 10_000_000
"""The most splats a compressed-format reader accepts: nianticlabs/spz's ``loadSpz`` refuses more
than 10,000,000 points (``maxPointsToRead``); the SOG reader uses the same limit."""


def gunzip_bounded(
    data: bytes, limit: int, path: str | os.PathLike[str], what: str = "gzip stream"
) -> tuple[bytes, bool]:
    """Inflate the first gzip member of ``data``, keeping at most ``limit`` bytes of output.

    Returns ``(out, more)``: ``out`` has ``min(limit, inflated size)`` bytes, ``more`` says the
    stream held more than ``limit`` bytes (or another member follows). The gzip CRC is checked
    whenever the stream is read to its end. Corrupt or truncated streams raise InputFileError
    (a truncated stream is reported only if fewer than ``limit`` bytes came out).
    """
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    have = 0
    pending = data
    try:
        while have < limit + 1 and not d.eof:
            out = d.decompress(pending, min(CHUNK, limit + 1 - have))
            parts.append(out)
            have += len(out)
            pending = d.unconsumed_tail
            if not out and not pending:
                break
        if have <= limit and not d.eof:
            out = d.flush()  # no more input: whatever zlib still holds
            parts.append(out[: limit + 1 - have])
            have += len(parts[-1])
    except zlib.error as exc:
        raise InputFileError(path, f"corrupt {what} ({exc})") from None
    blob = b"".join(parts)
    if len(blob) <= limit and not d.eof:
        raise InputFileError(path, f"{what} is truncated (it ends after {len(blob):,} inflated bytes)")
    more = len(blob) > limit or bool(d.eof and d.unused_data)
    return blob[:limit], more


def zstd_bounded(
    data: bytes, limit: int, path: str | os.PathLike[str], what: str = "zstd stream"
) -> tuple[bytes, bool]:
    """Decompress the zstd frames in ``data``, keeping at most ``limit`` bytes of output.

    Returns ``(out, more)`` as :func:`gunzip_bounded`. Frame headers that declare a content size
    are not trusted for allocation: output is read in :data:`CHUNK`-sized steps.
    """
    import zstandard  # imported here: only SPZ v4 needs it

    parts: list[bytes] = []
    have = 0
    try:
        with zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True) as reader:
            while have < limit + 1:
                out = reader.read(min(CHUNK, limit + 1 - have))
                if not out:
                    break
                parts.append(out)
                have += len(out)
    except zstandard.ZstdError as exc:
        raise InputFileError(path, f"corrupt {what} ({exc})") from None
    blob = b"".join(parts)
    return blob[:limit], len(blob) > limit


PLAUSIBLE_SPLATS = 1_000_000
"""Up to this many splats any file size is believed (decoding them costs well under a second)."""
MAX_SPLATS_PER_BYTE = 64
"""Beyond :data:`PLAUSIBLE_SPLATS`, a file must have at least one byte per 64 splats. Real SPZ and SOG
files hold 10-50 bytes per splat (positions alone are close to incompressible): a file claiming far
more splats than that is a decompression bomb, not a scene."""


def check_splat_count(n: int, file_bytes: int, path: str | os.PathLike[str], fmt: str) -> None:
    """Raise InputFileError when a header's splat count is over :data:`MAX_SPLATS` or implausible for
    a ``file_bytes``-byte file (see :data:`MAX_SPLATS_PER_BYTE`); called before anything is allocated."""
    if n > MAX_SPLATS:
        raise InputFileError(path, f"{fmt} header says {n:,} splats, more than this reader's limit of {MAX_SPLATS:,}")
    if n > PLAUSIBLE_SPLATS and n > MAX_SPLATS_PER_BYTE * file_bytes:
        raise InputFileError(path, f"{fmt} header says {n:,} splats, implausibly many for {file_bytes:,} bytes of "
                                   f"data (real files hold 10-50 bytes per splat): refusing a likely "
                                   f"decompression bomb")
