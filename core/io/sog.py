"""PlayCanvas SOG reader ("Spatially Ordered Gaussians": ``.sog`` bundles and ``meta.json`` + WebP).

Format: PlayCanvas splat-transform 3.7.0, whose decoders this follows value for value
(``src/lib/readers/read-sog.ts`` for version 2, ``read-sog-v1.ts`` for the legacy layout; the
writer is ``src/lib/writers/write-sog.ts``), and the PlayCanvas engine's SOG loader.

A scene is ``meta.json`` plus lossless WebP images, either as files beside ``meta.json`` or as the
members of one zip (the ``.sog`` bundle). Every image but the SH palette has (at least) one RGBA
texel per splat, texel ``i`` (row-major) being splat ``i``; the writer sorts splats in Morton
(Z-curve) order of their positions so neighbouring texels hold neighbouring splats, which is what
makes the images compress. The scene comes back in that order (the original order is not stored).

Version 2 (``"version": 2``), all arithmetic in float64 then rounded to float32 as the JavaScript:

- ``means_l.webp`` / ``means_u.webp``: low and high bytes of 16-bit x y z ``v``; with ``mins`` /
  ``maxs`` of the log-transformed positions, ``p = invlog(min + (max - min or 1) * v / 65535)``,
  ``invlog(t) = sign(t) * (exp(|t|) - 1)``;
- ``quats.webp``: "smallest three": alpha ``252 + k`` names the largest component k of (w, x, y, z);
  the other three, in order, are ``(b / 255 * 2 - 1) / sqrt(2)``, the largest
  ``sqrt(max(0, 1 - sum of squares))``; another alpha means identity;
- ``scales.webp``: RGB index the 256-entry ``scales.codebook`` of log scales;
- ``sh0.webp``: RGB index ``sh0.codebook`` (the DC coefficients f_dc); alpha is the opacity,
  ``logit(clamp(a / 255, 1e-6, 1 - 1e-6))``;
- ``shN`` (optional, ``bands`` 1-3, ``count`` palette entries): ``shN_labels.webp`` holds a 16-bit
  palette index per splat (R low byte, G high byte); ``shN_centroids.webp`` is the palette, 64
  entries per row, each ``M`` texels wide (M = 3, 8 or 15 coefficients; width ``64 * M``), whose
  R G B bytes index ``shN.codebook``. A label at or past ``count`` gives zero SH (as splat-transform).

Version 1 (no ``version``; ``means.shape``): the same images, but scales, sh0 (including the
opacity, stored as a logit) and shN are linear between ``mins`` and ``maxs`` (``min + (max - min) *
b / 255``; shN's are scalars); the SH degree comes from the palette width (192, 512, 960).

Validation: every count, name and image size is checked against ``meta.json`` before anything large
is decoded; images must have at least ``count`` texels and at most :func:`_max_texels`; zip members
may not declare more bytes than their image could need, and are read with a bound. Problems raise
:class:`~core.errors.InputFileError`.
"""

from __future__ import annotations

import io
import json
import logging
import lzma
import math
import os
import struct
import warnings as _warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image

from core.errors import InputFileError, os_error_problem
from core.io.bounded import DEFLATE_MAX_RATIO, check_splat_count
from core.scene import GaussianScene

logger = logging.getLogger(__name__)

MAX_META_BYTES = 16 << 20
"""meta.json is a few KiB (three 256-entry codebooks and file names); refuse anything past 16 MiB."""
MAX_WEBP_SIDE = 16383
"""WebP's largest width or height."""
OPACITY_EPS = 1e-6
SH_COEFFS = {1: 3, 2: 8, 3: 15}
V1_BANDS_BY_WIDTH = {192: 1, 512: 2, 960: 3}
MAX_PALETTE = 1 << 16
"""Palette labels are 16-bit."""
CODEBOOK_SIZE = 256
V2_IMAGES = ("means", "quats", "scales", "sh0")


def _max_texels(count: int) -> int:
    """Most texels a per-splat image may have: splat-transform's layout (width a multiple of 4 near
    sqrt(count), height a multiple of 4) has about ``count + 8 sqrt(count) + 16``; allow 4x + 64Ki."""
    return 4 * count + (1 << 16)


def _max_webp_bytes(texels: int) -> int:
    """Largest encoded size accepted for an image of ``texels`` RGBA texels (lossless WebP stays below
    the raw 4 bytes per texel; twice that plus 1 MiB of slack)."""
    return 8 * texels + (1 << 20)


class _Problem(Exception):
    """A format problem found while decoding; becomes InputFileError(path, message)."""


# -- where the files come from ----------------------------------------------------------------------
class _ZipSource:
    """Members of a ``.sog`` bundle, read with a bound."""

    kind = "bundled"

    def __init__(self, data: bytes) -> None:
        self.size = len(data)
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
            self.infos = {i.filename: i for i in self.zf.infolist()}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, OSError, EOFError,
                struct.error) as exc:
            raise _Problem(f"not a readable .sog bundle (zip): {exc}") from None

    def names(self) -> list[str]:
        return list(self.infos)

    def data_bytes(self, names: list[str]) -> int:
        return self.size

    def load(self, name: str, cap: int) -> bytes:
        info = self.infos.get(name)
        if info is None:
            raise _Problem(f"bundle has no member '{name}' (members: {', '.join(sorted(self.infos)[:12]) or 'none'})")
        if info.flag_bits & 0x1:
            raise _Problem(f"bundle member '{name}' is encrypted")
        if info.file_size > cap:
            raise _Problem(f"bundle member '{name}' says {info.file_size:,} bytes, more than the {cap:,} its "
                           f"contents can need: refusing a possible zip bomb")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise _Problem(f"bundle member '{name}' is stored but says {info.file_size:,} bytes and holds "
                           f"{info.compress_size:,}")
        if info.compress_size > self.size:
            raise _Problem(f"bundle member '{name}' says {info.compress_size:,} compressed bytes, more than the "
                           f"{self.size:,}-byte file")
        if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > info.compress_size * DEFLATE_MAX_RATIO + 64:
            raise _Problem(f"bundle member '{name}' says {info.file_size:,} bytes from {info.compress_size:,} "
                           f"deflated, beyond deflate's {DEFLATE_MAX_RATIO}:1")
        try:
            with self.zf.open(info) as f:
                blob = f.read(cap + 1)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, OSError, EOFError, struct.error,
                zlib.error, lzma.LZMAError) as exc:
            raise _Problem(f"bundle member '{name}' cannot be read: {exc}") from None
        if len(blob) != info.file_size:
            raise _Problem(f"bundle member '{name}' holds {len(blob):,} bytes, its header says {info.file_size:,}")
        return blob


class _FolderSource:
    """Files beside ``meta.json``."""

    kind = "meta.json + webp"

    def __init__(self, meta_path: Path) -> None:
        self.folder = meta_path.parent

    def names(self) -> list[str]:
        return []

    def data_bytes(self, names: list[str]) -> int:
        """Total size of the named files that exist (a missing one is reported when it is read)."""
        total = 0
        for name in names:
            try:
                total += (self.folder / name).stat().st_size
            except (OSError, ValueError):
                pass
        return total

    def load(self, name: str, cap: int) -> bytes:
        p = self.folder / name
        try:
            size = p.stat().st_size
            if size > cap:
                raise _Problem(f"'{name}' is {size:,} bytes, more than the {cap:,} its contents can need")
            with open(p, "rb") as f:
                blob = f.read(cap + 1)
        except OSError as exc:
            raise _Problem(f"image '{name}' beside meta.json: {os_error_problem(exc, 'an image file')}") from None
        if len(blob) > cap:
            raise _Problem(f"'{name}' grew past {cap:,} bytes while being read")
        return blob


# -- meta.json --------------------------------------------------------------------------------------
def _get(obj: dict, key: str, where: str):
    if not isinstance(obj, dict):
        raise _Problem(f"meta.json {where or 'top level'} is not an object")
    if key not in obj:
        raise _Problem(f"meta.json lacks '{where + '.' if where else ''}{key}'")
    return obj[key]


def _int(obj: dict, key: str, where: str, lo: int, hi: int) -> int:
    v = _get(obj, key, where)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _Problem(f"meta.json '{where + '.' if where else ''}{key}' is {v!r}; expected an integer {lo}-{hi:,}")
    return v


def _numbers(obj: dict, key: str, where: str, length: int | None) -> np.ndarray:
    v = _get(obj, key, where)
    name = f"{where}.{key}" if where else key
    if length is None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _Problem(f"meta.json '{name}' is {type(v).__name__}, expected a number")
        v = [v]
    elif not isinstance(v, list) or len(v) != length:
        got = f"{len(v)} entries" if isinstance(v, list) else type(v).__name__
        raise _Problem(f"meta.json '{name}' has {got}, expected a list of {length} numbers")
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise _Problem(f"meta.json '{name}' holds something other than numbers")
    a = np.asarray(v, dtype=np.float64)
    if not np.isfinite(a).all():
        raise _Problem(f"meta.json '{name}' holds non-finite numbers")
    return a


def _files(obj: dict, where: str, n: int) -> list[str]:
    v = _get(obj, "files", where)
    if not isinstance(v, list) or len(v) < n or not all(isinstance(x, str) for x in v[:n]):
        raise _Problem(f"meta.json '{where}.files' should list {n} image file name{'s' if n > 1 else ''}")
    names = v[:n]
    for name in names:
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if not name or name.startswith(("/", "\\")) or ".." in parts or ":" in name:
            raise _Problem(f"meta.json '{where}.files' names '{name}', not a plain relative file name")
    return names


def _parse_meta(blob: bytes) -> dict:
    def reject_constant(c: str):
        raise _Problem(f"meta.json holds {c}, which JSON does not allow")

    try:
        meta = json.loads(blob.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Problem(f"meta.json is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _Problem("meta.json is not a JSON object")
    return meta


# -- images -----------------------------------------------------------------------------------------
def _webp_is_lossy(blob: bytes) -> bool:
    """True when the WebP's image data is a lossy 'VP8 ' chunk (SOG needs lossless 'VP8L')."""
    pos = 12
    while pos + 8 <= len(blob):
        fourcc, size = blob[pos : pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        if fourcc == b"VP8 ":
            return True
        if fourcc == b"VP8L":
            return False
        pos += 8 + size + (size & 1)
    return False


def _decode_image(source, name: str, min_texels: int, max_texels: int, warnings: list[str],
                  width: int | None = None) -> tuple[np.ndarray, int, int]:
    """Decode one WebP to RGBA uint8 [h * w, 4] after checking its size; returns (texels, w, h)."""
    blob = source.load(name, _max_webp_bytes(max_texels))
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WEBP":
        raise _Problem(f"image '{name}' is not a WebP file")
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(blob), formats=["WEBP"]) as im:
                w, h = im.size
                if getattr(im, "n_frames", 1) != 1:
                    raise _Problem(f"image '{name}' is animated ({im.n_frames} frames); SOG images are still")
                if not (1 <= w <= MAX_WEBP_SIDE and 1 <= h <= MAX_WEBP_SIDE):
                    raise _Problem(f"image '{name}' is {w}x{h}; WebP images are 1-{MAX_WEBP_SIDE} on a side")
                if width is not None and w != width:
                    raise _Problem(f"image '{name}' is {w} wide; expected {width}")
                if w * h < min_texels:
                    raise _Problem(f"image '{name}' is {w}x{h} = {w * h:,} texels, fewer than the {min_texels:,} "
                                   f"meta.json needs")
                if w * h > max_texels:
                    raise _Problem(f"image '{name}' is {w}x{h} = {w * h:,} texels, far more than the {min_texels:,} "
                                   f"meta.json needs: refusing a possible decompression bomb")
                im.load()
                rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
    except _Problem:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Image.DecompressionBombError,
            Image.DecompressionBombWarning, struct.error) as exc:
        raise _Problem(f"image '{name}' cannot be decoded as WebP: {exc}") from None
    if rgba.shape != (h, w, 4):
        raise _Problem(f"image '{name}' decoded to shape {rgba.shape}, expected ({h}, {w}, 4)")
    if _webp_is_lossy(blob):
        warnings.append(f"image '{name}' is lossy WebP: SOG expects lossless, so values are approximate")
    return rgba.reshape(-1, 4), w, h


# -- decoding ---------------------------------------------------------------------------------------
def _inv_log(v: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        e = np.exp(np.abs(v)) - 1.0
    return np.where(v < 0, -e, e)


def _means(lo: np.ndarray, hi: np.ndarray, mins: np.ndarray, maxs: np.ndarray, n: int) -> np.ndarray:
    v = (lo[:n, :3].astype(np.int64) | (hi[:n, :3].astype(np.int64) << 8)).astype(np.float64)
    span = maxs - mins
    span = np.where(span == 0, 1.0, span)
    with np.errstate(over="ignore", invalid="ignore"):
        return _inv_log(mins + span * (v / 65535.0))


def _quats(q: np.ndarray, n: int, warnings: list[str]) -> np.ndarray:
    """(w, x, y, z) float64 [n, 4] from the quats texels (both versions)."""
    tag = q[:n, 3].astype(np.int64)
    abc = (q[:n, :3].astype(np.float64) / 255.0 * 2.0 - 1.0) / math.sqrt(2.0)
    valid = (tag >= 252) & (tag <= 255)
    largest = np.where(valid, tag - 252, 0)
    out = np.zeros((n, 4), np.float64)
    cols = np.arange(4)[None, :]
    # component k (k != largest) takes abc[k - (k > largest)]
    src = cols - (cols > largest[:, None])
    fill = np.take_along_axis(abc, np.clip(src, 0, 2), axis=1)
    out = np.where(cols == largest[:, None], 0.0, fill)
    sum_sq = out[:, 0] * out[:, 0] + out[:, 1] * out[:, 1] + out[:, 2] * out[:, 2] + out[:, 3] * out[:, 3]
    out[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1.0 - sum_sq))
    if not valid.all():
        out[~valid] = (1.0, 0.0, 0.0, 0.0)
        warnings.append(f"{int((~valid).sum()):,} splats have an invalid rotation tag (not 252-255); set to identity")
    return out


def _logit(a: np.ndarray) -> np.ndarray:
    e = np.clip(a.astype(np.float64) / 255.0, OPACITY_EPS, 1.0 - OPACITY_EPS)
    return np.log(e / (1.0 - e))


def _palette_indices(centroids: np.ndarray, cw: int, ch: int, m: int, entries: int) -> np.ndarray:
    """Byte triples of each palette entry's M coefficients: [entries, M, 3] uint8, zeros past the image."""
    grid = centroids.reshape(ch, cw, 4)[:, :, :3].reshape(ch * 64, m, 3)  # 64 entries per row
    out = np.zeros((entries, m, 3), np.uint8)
    k = min(entries, len(grid))
    out[:k] = grid[:k]
    return out


def _decode_v2(meta: dict, source, n: int, warnings: list[str]):
    means_meta = _get(meta, "means", "")
    mins = _numbers(means_meta, "mins", "means", 3)
    maxs = _numbers(means_meta, "maxs", "means", 3)
    scale_cb = _numbers(_get(meta, "scales", ""), "codebook", "scales", CODEBOOK_SIZE)
    sh0_cb = _numbers(_get(meta, "sh0", ""), "codebook", "sh0", CODEBOOK_SIZE)
    names = {k: _files(_get(meta, k, ""), k, 2 if k == "means" else 1) for k in V2_IMAGES}
    shn = meta.get("shN")
    bands = 0
    if shn is not None:
        bands = _int(shn, "bands", "shN", 0, 3)
        if bands:
            palette = _int(shn, "count", "shN", 1, MAX_PALETTE)
            sh_cb = _numbers(shn, "codebook", "shN", CODEBOOK_SIZE)
            names["shN"] = _files(shn, "shN", 2)
    top = _max_texels(n)
    means, quats = _decode_means_quats(source, names, mins, maxs, n, top, warnings)
    s, _, _ = _decode_image(source, names["scales"][0], n, top, warnings)
    log_scales = scale_cb[s[:n, :3]]
    del s
    c0, _, _ = _decode_image(source, names["sh0"][0], n, top, warnings)
    dc = sh0_cb[c0[:n, :3]]
    logit = _logit(c0[:n, 3])
    del c0
    sh = np.zeros((n, 0, 3))
    if bands:
        m = SH_COEFFS[bands]
        rows = -(-palette // 64)
        cen, cw, ch = _decode_image(source, names["shN"][0], 1, 64 * m * max(rows, 1), warnings, width=64 * m)
        labels_img, _, _ = _decode_image(source, names["shN"][1], n, top, warnings)
        labels = labels_img[:n, 0].astype(np.int64) | (labels_img[:n, 1].astype(np.int64) << 8)
        del labels_img
        table = _palette_indices(cen, cw, ch, m, palette)
        if palette > ch * 64:
            warnings.append(f"SH palette says {palette:,} entries but its image holds {ch * 64:,}; the rest "
                            f"decode as codebook entry 0 (as splat-transform)")
        ok = labels < palette
        sh = np.zeros((n, m, 3), np.float64)
        sh[ok] = sh_cb[table[labels[ok]]]
        if not ok.all():
            warnings.append(f"{int((~ok).sum()):,} splats have an SH palette label past its {palette:,} entries; "
                            f"their higher SH set to zero")
    return means, quats, log_scales, logit, dc, sh


def _decode_means_quats(source, names: dict, mins, maxs, n: int, top: int, warnings: list[str]):
    """Positions [n, 3] (the two 16-bit halves of the log-domain means) and quaternions [n, 4]: the same in
    versions 1 and 2."""
    lo, _, _ = _decode_image(source, names["means"][0], n, top, warnings)
    hi, _, _ = _decode_image(source, names["means"][1], n, top, warnings)
    means = _means(lo, hi, mins, maxs, n)
    del lo, hi
    q, _, _ = _decode_image(source, names["quats"][0], n, top, warnings)
    return means, _quats(q, n, warnings)


def _count_v1(meta: dict) -> int:
    shape = _get(_get(meta, "means", ""), "shape", "means")
    if not isinstance(shape, list) or not shape or isinstance(shape[0], bool) or not isinstance(shape[0], int) \
            or not 0 <= shape[0] <= 2**31:
        raise _Problem(f"meta.json 'means.shape' is {shape!r}; expected [count, ...]")
    return shape[0]


def _decode_v1(meta: dict, source, n: int, warnings: list[str]):
    means_meta = _get(meta, "means", "")
    mins, maxs = _numbers(means_meta, "mins", "means", 3), _numbers(means_meta, "maxs", "means", 3)
    scales_meta, sh0_meta = _get(meta, "scales", ""), _get(meta, "sh0", "")
    s_min, s_max = _numbers(scales_meta, "mins", "scales", 3), _numbers(scales_meta, "maxs", "scales", 3)
    c_min, c_max = _numbers(sh0_meta, "mins", "sh0", 4), _numbers(sh0_meta, "maxs", "sh0", 4)
    names = {k: _files(_get(meta, k, ""), k, 2 if k == "means" else 1) for k in V2_IMAGES}
    shn = meta.get("shN")
    if shn is not None:
        sh_min, sh_max = _numbers(shn, "mins", "shN", None)[0], _numbers(shn, "maxs", "shN", None)[0]
        names["shN"] = _files(shn, "shN", 2)
    top = _max_texels(n)
    means, quats = _decode_means_quats(source, names, mins, maxs, n, top, warnings)
    s, _, _ = _decode_image(source, names["scales"][0], n, top, warnings)
    log_scales = s_min + (s_max - s_min) * (s[:n, :3] / 255.0)
    del s
    c0, _, _ = _decode_image(source, names["sh0"][0], n, top, warnings)
    lerped = c_min + (c_max - c_min) * (c0[:n].astype(np.float64) / 255.0)
    dc, logit = lerped[:, :3], lerped[:, 3]
    del c0
    sh = np.zeros((n, 0, 3))
    if shn is not None:
        cen, cw, ch = _decode_image(source, names["shN"][0], 1, 960 * (MAX_PALETTE // 64), warnings)
        bands = V1_BANDS_BY_WIDTH.get(cw)
        if bands is None:
            raise _Problem(f"SH palette image is {cw} wide; a version 1 palette is 192, 512 or 960 (SH degree 1-3)")
        m = SH_COEFFS[bands]
        labels_img, _, _ = _decode_image(source, names["shN"][1], n, top, warnings)
        labels = labels_img[:n, 0].astype(np.int64) | (labels_img[:n, 1].astype(np.int64) << 8)
        del labels_img
        palette = 64 * ch
        table = _palette_indices(cen, cw, ch, m, palette)
        ok = labels < palette
        sh = np.zeros((n, m, 3), np.float64)
        sh[ok] = sh_min + (sh_max - sh_min) * (table[labels[ok]] / 255.0)
        if not ok.all():
            warnings.append(f"{int((~ok).sum()):,} splats have an SH palette label past its {palette:,} entries; "
                            f"their higher SH set to zero")
    return means, quats, log_scales, logit, dc, sh


def looks_like_sog(data: bytes, path: str | os.PathLike[str]) -> bool:
    """True when ``data`` (the content of ``path``) is a SOG scene: a zip holding ``meta.json``, or a file
    named ``meta.json`` (or ``*.meta.json``) holding a JSON object. Never raises."""
    if data[:4] == b"PK\x03\x04":
        try:
            return "meta.json" in zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, OSError, EOFError,
                struct.error):
            return False
    return Path(path).name.lower().endswith("meta.json") and data.lstrip()[:1] == b"{"


def read_sog(data: bytes, path: str | os.PathLike[str]) -> tuple[GaussianScene, str, list[str]]:
    """Read a SOG scene; returns ``(scene, encoding, warnings)``.

    ``data`` is the content of ``path``: a ``.sog`` bundle (a zip, ``PK``) or a ``meta.json`` whose
    images are read from ``path``'s folder. ``encoding`` is e.g. ``"sog v2 (bundled)"`` or
    ``"sog v1 (meta.json + webp)"``, with ``", antialiased"`` when meta.json's ``model`` says so.
    Scene tensors, float32, in the file's (Morton) order: means [N, 3], quats [N, 4] (w, x, y, z),
    log_scales [N, 3], opacity_logits [N], sh_dc [N, 3], sh_rest [N, M, 3] (M = 0, 3, 8 or 15).
    Raises InputFileError for anything malformed or implausible, before decoding large images.
    """
    path = Path(path)
    if not data:
        raise InputFileError(path, "file is empty (0 bytes)")
    warnings: list[str] = []
    try:
        if data[:2] == b"PK":
            source = _ZipSource(data)
            meta = _parse_meta(source.load("meta.json", MAX_META_BYTES))
        elif data.lstrip()[:1] == b"{":
            if len(data) > MAX_META_BYTES:
                raise _Problem(f"meta.json is {len(data):,} bytes; refusing more than {MAX_META_BYTES:,}")
            source = _FolderSource(path)
            meta = _parse_meta(data)
        else:
            raise _Problem(f"not a SOG file: starts with {data[:4].hex(' ')}, expected a zip bundle (PK) or "
                           f"meta.json")
        version = meta.get("version")
        if version == 2:
            n, decode = _int(meta, "count", "", 0, 2**31), _decode_v2
        elif version is None and isinstance(meta.get("means"), dict) and "shape" in meta["means"]:
            version = 1
            n, decode = _count_v1(meta), _decode_v1
        elif version is None:
            raise _Problem("meta.json has no 'version' and is not the version 1 layout (no 'means.shape'): "
                           "not a SOG meta.json")
        else:
            raise _Problem(f"SOG version {version!r} is not supported (this reader knows versions 1 and 2)")
        check_splat_count(n, source.data_bytes(_referenced(meta)), path, "SOG")
        means, quats, log_scales, logit, dc, sh = decode(meta, source, n, warnings)
        if n == 0:
            warnings.append("the file holds no splats")
    except _Problem as exc:
        raise InputFileError(path, str(exc)) from None
    encoding = f"sog v{version} ({source.kind})"
    model = meta.get("model")
    if model not in (None, "default"):
        encoding += f", {model}" if isinstance(model, str) else ""
        warnings.append(f"meta.json model {model!r}: read as plain 3D Gaussians")
    unused = sorted(set(source.names()) - {"meta.json"} - set(_referenced(meta)))
    if unused:
        warnings.append(f"bundle members not used: {', '.join(unused[:8])}{' ...' if len(unused) > 8 else ''}")

    arrays = {"means": means, "quats": quats, "log_scales": log_scales, "opacity_logits": logit, "sh_dc": dc,
              "sh_rest": sh}
    tensors = {}
    for name, a in arrays.items():
        with np.errstate(over="ignore", invalid="ignore"):
            f32 = np.ascontiguousarray(a, dtype=np.float32)
        bad = ~np.isfinite(f32.reshape(len(f32), -1)).all(axis=1) if f32.size else np.zeros(0, bool)
        if bad.any():
            raise InputFileError(path, f"non-finite values in {name} ({int(bad.sum()):,} splats): the ranges in "
                                       f"meta.json overflow float32")
        tensors[name] = torch.from_numpy(f32)
    scene = GaussianScene(**tensors)
    logger.debug("%s: %s, %d splats, SH degree %d", path, encoding, n, scene.sh_degree)
    return scene, encoding, warnings


def _referenced(meta: dict) -> list[str]:
    out = []
    for key in (*V2_IMAGES, "shN"):
        entry = meta.get(key)
        if isinstance(entry, dict) and isinstance(entry.get("files"), list):
            out += [f for f in entry["files"] if isinstance(f, str)]
    return out
