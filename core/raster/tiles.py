"""Tile binning shared by the CPU rasterisers of ``core.render`` (``cpu``) and ``core.display`` (``frame``).

The image is cut into ``TILE`` x ``TILE`` pixel tiles, row-major (tile ``t = ty * tiles_x + tx``
covers pixels x in ``[tx * TILE, (tx + 1) * TILE)``, y likewise; the last row and column may be cut
by the image edge). Each footprint (an axis-aligned box in pixels) is listed in every tile it
touches, and every tile's list keeps the order in which the footprints are given (depth order).
Releases the GIL (``nogil=True``) so a GUI thread keeps running while a worker renders.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from core.raster.conventions import TILE


def tile_grid(width: int, height: int) -> tuple[int, int]:
    """(tiles_x, tiles_y): the number of ``TILE``-pixel tiles covering ``width`` x ``height`` pixels."""
    return (width + TILE - 1) // TILE, (height + TILE - 1) // TILE


@njit(cache=True, nogil=True)
def bin_footprints(cx, cy, hx, hy, order, tiles_x, tiles_y, inclusive_end):
    """Per-tile lists of the footprints ``order`` names, each list in ``order``'s order.

    cx, cy [N]: footprint centres in pixels; hx, hy [N]: half-sizes in pixels (float or int); the
    footprint of item i is the box ``[cx - hx, cx + hx] x [cy - hy, cy + hy]``. order [M] int64:
    indices into those arrays, the items to bin in list order (e.g. front to back). Along x the box
    spans the tiles ``floor(lo / TILE)`` up to ``ceil(hi / TILE)`` exclusive when ``inclusive_end`` is
    False (gsplat's rule), or up to ``floor(hi / TILE)`` inclusive when True (also the tile whose left
    edge the box only touches), lo = cx - hx, hi = cx + hx, clamped to the grid; y likewise. The
    arithmetic follows the arrays' dtypes (float32 centres and half-sizes subtract in float32).

    Returns (offsets [tiles_x * tiles_y + 1] int64, items [P] int32): tile t holds
    ``items[offsets[t]:offsets[t + 1]]``, indices into the input arrays.
    """
    m = order.shape[0]
    n_tiles = tiles_x * tiles_y
    rect = np.zeros((m, 4), dtype=np.int64)  # x0, x1, y0, y1 (exclusive ends), per position in order
    offsets = np.zeros(n_tiles + 1, dtype=np.int64)
    for k in range(m):
        i = order[k]
        lo_x, hi_x = (cx[i] - hx[i]) / TILE, (cx[i] + hx[i]) / TILE
        lo_y, hi_y = (cy[i] - hy[i]) / TILE, (cy[i] + hy[i]) / TILE
        # clamp in floating point first: huge footprints must not overflow the int conversion
        x0 = int(math.floor(min(max(lo_x, 0.0), tiles_x)))
        y0 = int(math.floor(min(max(lo_y, 0.0), tiles_y)))
        if inclusive_end:
            x1 = int(math.floor(min(max(hi_x, -1.0), tiles_x - 1.0))) + 1
            y1 = int(math.floor(min(max(hi_y, -1.0), tiles_y - 1.0))) + 1
        else:
            x1 = int(math.ceil(min(max(hi_x, 0.0), tiles_x)))
            y1 = int(math.ceil(min(max(hi_y, 0.0), tiles_y)))
        rect[k, 0], rect[k, 1], rect[k, 2], rect[k, 3] = x0, x1, y0, y1
        for ty in range(y0, y1):
            for tx in range(x0, x1):
                offsets[ty * tiles_x + tx + 1] += 1
    for t in range(n_tiles):
        offsets[t + 1] += offsets[t]
    fill = offsets[:-1].copy()
    items = np.empty(offsets[n_tiles], dtype=np.int32)
    for k in range(m):
        i = order[k]
        for ty in range(rect[k, 2], rect[k, 3]):
            for tx in range(rect[k, 0], rect[k, 1]):
                t = ty * tiles_x + tx
                items[fill[t]] = i
                fill[t] += 1
    return offsets, items
