"""numpy image helpers for the widgets: QImage conversion and the difference heat map.

Images are uint8 RGB [H, W, 3], row 0 = top (what ``core.display.DisplayRenderer.render`` returns).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

# "inferno"-like ramp (black -> purple -> orange -> pale yellow) as control points; linear in between.
_HEAT_STOPS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
_HEAT_RGB = np.array([
    (0, 0, 4), (87, 16, 110), (188, 55, 84), (249, 142, 9), (252, 255, 164),
], dtype=np.float64)
HEAT_FULL_SCALE = 0.25
"""Mean absolute RGB difference (in [0, 1] units) drawn at the top of the heat map's colour ramp."""


def to_qimage(img: np.ndarray) -> QImage:
    """A QImage (RGB888, owns its pixels) of a uint8 [H, W, 3] array."""
    a = np.ascontiguousarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 [H, W, 3] image, got {a.dtype} {a.shape}")
    h, w, _ = a.shape
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def heat_colors(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] (any shape S) to uint8 RGB [*S, 3] on the heat ramp (clipped)."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    out = np.stack([np.interp(v, _HEAT_STOPS, _HEAT_RGB[:, c]) for c in range(3)], axis=-1)
    return np.round(out).astype(np.uint8)


def difference_heatmap(a: np.ndarray, b: np.ndarray, full_scale: float = HEAT_FULL_SCALE) -> np.ndarray:
    """Heat map uint8 [H, W, 3] of the per-pixel mean absolute RGB difference of two uint8 images.

    A difference of ``full_scale`` (fraction of the 0..255 range) or more is drawn at the top of the ramp.
    """
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=2) / 255.0
    return heat_colors(diff / full_scale)

