"""Dataset images: load as float RGB in [0, 1] (alpha composited, optionally downsampled), save PNG.

The evaluation images of ``lego-3dgs.ply`` were made exactly the way :func:`load_image` does it:
RGBA composited onto white in float at full resolution (straight alpha), then a 2x2 box (area)
average from 800x800 to 400x400.

EXIF orientation is *not* applied: COLMAP and instant-ngp compute poses on the stored pixel
grid, so the raw pixel order is the one that matches the cameras.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import InputFileError
from core.io.atomic import atomic_write_bytes

log = logging.getLogger(__name__)


def _decode(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(rgb float32 [H, W, 3], alpha float32 [H, W] or None), both in [0, 1]."""
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                gray = np.asarray(im, dtype=np.float32)
                scale = 65535.0 if mode.startswith("I;16") or gray.max(initial=0) > 255 else 255.0
                gray = np.clip(gray / scale, 0.0, 1.0)
                return np.repeat(gray[:, :, None], 3, axis=2), None
            if mode == "F":
                gray = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
                return np.repeat(gray[:, :, None], 3, axis=2), None
            has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in im.info)
            if mode in ("RGBa", "La"):  # premultiplied: un-premultiply through PIL
                im = im.convert("RGBA")
            arr = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    except FileNotFoundError:
        raise InputFileError(path, "image file not found") from None
    except UnidentifiedImageError:
        raise InputFileError(path, "not an image file PIL can read") from None
    except Image.DecompressionBombError as exc:
        raise InputFileError(path, f"image is too large: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputFileError(path, f"image data is truncated or corrupt: {exc}") from None
    if has_alpha:
        return arr[:, :, :3], arr[:, :, 3]
    return arr, None


def load_image(path: str | Path, *, size: tuple[int, int] | None = None,
               background: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """An image as float32 [H, W, 3] RGB in [0, 1].

    Alpha (RGBA, LA, transparent palettes) is composited onto ``background`` (RGB in [0, 1]) as
    straight alpha, ``rgb * a + background * (1 - a)``, in float32 at full resolution. Grey
    images are repeated to 3 channels; 16-bit grey is scaled by 1/65535.

    ``size`` is ``(width, height)`` in pixels, like :attr:`core.camera.Camera.size` and PIL (not
    numpy's (H, W)). When it divides the full size exactly (per axis), the result is the exact
    box (area) average over each block, e.g. 800x800 -> 400x400 averages 2x2 blocks; otherwise
    PIL's BOX filter resizes each channel in float. Raises InputFileError for a missing or
    unreadable file.
    """
    path = Path(path)
    rgb, alpha = _decode(path)
    if alpha is not None:
        bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3)
        a = alpha[:, :, None]
        rgb = rgb * a + bg * (np.float32(1.0) - a)
    h, w = rgb.shape[:2]
    if size is None or tuple(size) == (w, h):
        return np.ascontiguousarray(rgb, dtype=np.float32)
    tw, th = (int(v) for v in size)
    if tw <= 0 or th <= 0:
        raise ValueError(f"size must be positive (width, height), got {size}")
    if w % tw == 0 and h % th == 0:
        fy, fx = h // th, w // tw
        out = rgb.reshape(th, fy, tw, fx, 3).mean(axis=(1, 3), dtype=np.float64)
        return out.astype(np.float32)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(rgb[:, :, c])).resize((tw, th), Image.BOX))
                for c in range(3)]
    return np.stack(channels, axis=2).astype(np.float32)


def to_uint8(image) -> np.ndarray:
    """An 8-bit image, numpy uint8 of the same shape (nominally [H, W, 3]), from a float one.

    ``image``: a torch tensor (any device, gradients ignored) or a numpy array, float, nominally in
    [0, 1]. NaN becomes 0, values are clamped to [0, 1] (+Inf -> 255, -Inf -> 0) and rounded half up,
    ``floor(255 x + 0.5)``, computed in the input's precision (float32 at least). uint8 input is
    returned unchanged; any other dtype is a ValueError.
    """
    if hasattr(image, "detach"):  # torch.Tensor, without importing torch here
        t = image.detach().cpu()
        if t.is_floating_point() and t.element_size() < 4:  # float16 / bfloat16: numpy has no bfloat16
            t = t.float()
        image = t.numpy()
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"image must be float in [0, 1] or uint8, got dtype {arr.dtype}")
    arr = np.nan_to_num(arr.astype(np.result_type(arr.dtype, np.float32), copy=False), nan=0.0)
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_png(path: str | Path, image: np.ndarray, *, overwrite: bool = False) -> None:
    """Save ``image`` ([H, W, 3] RGB, [H, W, 4] RGBA or [H, W] grey; float in [0, 1] or uint8) as
    a PNG, atomically (:func:`core.io.atomic.atomic_write`): readers never see a half-written
    file. Float is clipped and rounded to 8 bits.

    Like every output of the project, an existing file is only replaced with ``overwrite=True``
    (else FileExistsError). Raises ValueError for bad shapes, dtypes or non-finite values (unlike
    :func:`to_uint8`, which maps NaN to 0: a file should not silently hide broken pixels).
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8 and np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise ValueError("image holds NaN or Inf")
    arr = to_uint8(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise ValueError(f"image must be [H, W], [H, W, 3] or [H, W, 4], got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"image is empty: {arr.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)
    log.debug("wrote %s (%dx%d)", path, arr.shape[1], arr.shape[0])
