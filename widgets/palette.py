"""Cluster colours shared by the loss plot, the cluster table and the colour-by-cluster render (Qt-free).

``cluster_colors(k)`` is deterministic: the same cluster index always gets the same colour in every
view, so a curve, its table swatch and its Gaussians in the viewport match.
"""

from __future__ import annotations

import colorsys

import numpy as np

# Tableau 10 (distinct on white and black backgrounds); beyond 10, golden-ratio hues.
_BASE = np.array([
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
], dtype=np.float64) / 255.0
_GOLDEN = 0.618033988749895


def cluster_color(index: int) -> tuple[float, float, float]:
    """RGB in [0, 1] of cluster ``index`` (>= 0)."""
    if index < 0:
        raise ValueError(f"cluster index must be >= 0, got {index}")
    if index < len(_BASE):
        return tuple(float(v) for v in _BASE[index])  # type: ignore[return-value]
    hue = (0.11 + index * _GOLDEN) % 1.0
    sat = 0.55 + 0.35 * ((index * 7) % 3) / 2.0
    return colorsys.hsv_to_rgb(hue, sat, 0.85)


def cluster_colors(k: int) -> np.ndarray:
    """[k, 3] float64 RGB in [0, 1], one row per cluster."""
    return np.array([cluster_color(i) for i in range(int(k))], dtype=np.float64).reshape(-1, 3)


def cluster_color_255(index: int) -> tuple[int, int, int]:
    """Cluster colour as 8-bit RGB (for QColor)."""
    return tuple(int(round(255 * v)) for v in cluster_color(index))  # type: ignore[return-value]
