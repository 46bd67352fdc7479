"""Cluster colours and the image helpers (QImage conversion, difference heat map)."""

from __future__ import annotations

import numpy as np
import pytest

from widgets.images import difference_heatmap, heat_colors, to_qimage
from widgets.palette import cluster_color, cluster_color_255, cluster_colors


def test_cluster_colours_are_stable_distinct_and_in_range():
    cols = cluster_colors(40)
    assert cols.shape == (40, 3) and (cols >= 0).all() and (cols <= 1).all()
    np.testing.assert_array_equal(cols, cluster_colors(40))
    assert tuple(cols[3]) == cluster_color(3)
    dists = np.linalg.norm(cols[:, None] - cols[None], axis=-1) + np.eye(40)
    assert dists[:10, :10].min() > 0.15  # the first ten are clearly different
    assert len({cluster_color_255(i) for i in range(40)}) == 40
    with pytest.raises(ValueError):
        cluster_color(-1)


def test_to_qimage_keeps_pixels(qapp):
    img = np.zeros((3, 5, 3), np.uint8)
    img[1, 4] = (10, 200, 30)
    q = to_qimage(img)
    assert (q.width(), q.height()) == (5, 3)
    c = q.pixelColor(4, 1)
    assert (c.red(), c.green(), c.blue()) == (10, 200, 30)
    with pytest.raises(ValueError):
        to_qimage(np.zeros((3, 5), np.uint8))


def test_difference_heatmap_is_dark_where_equal_and_bright_where_different():
    a = np.full((4, 4, 3), 100, np.uint8)
    b = a.copy()
    b[0, 0] = 255
    heat = difference_heatmap(a, b)
    assert heat.shape == (4, 4, 3) and heat.dtype == np.uint8
    assert heat[1, 1].sum() < 20  # no difference: near black
    assert heat[0, 0].sum() > 500  # a large difference: top of the ramp
    np.testing.assert_array_equal(heat_colors(np.array([2.0])), heat_colors(np.array([1.0])))  # clipped
    with pytest.raises(ValueError):
        difference_heatmap(a, b[:2])
