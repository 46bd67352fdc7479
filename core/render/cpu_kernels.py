"""Numba kernels of the CPU tile rasteriser: blending forward and backward.

Blending follows 3DGS (Kerbl et al. 2023, Eq. 3) front to back, per pixel centre p:
``alpha_i = min(0.999, o_i * exp(-sigma_i))``, ``sigma_i = 0.5 d^T Σ'^-1 d`` with d = mean2d_i - p;
Gaussians with ``sigma < 0`` or ``alpha < 1/255`` are skipped; a pixel stops before the Gaussian
that would bring its transmittance to ``<= 1e-4`` (exclusive, as gsplat). Output
``out = Σ_i f_i α_i T_i + T_final * background``.

Backward, per pixel, walks the same list back to front (T_i recovered as T_{i+1} / (1 - α_i)), with
``S_i = Σ_{j>i} f_j α_j T_j``:
``d out/d α_i = f_i T_i - (S_i + T_final bg) / (1 - α_i)`` and ``d(1 - T_final)/d α_i = T_final / (1 - α_i)``.
Gradients are accumulated per (tile, Gaussian) pair, so tiles run in parallel without atomics,
then reduced per Gaussian.

The constants (1/255, 0.999, 1e-4, TILE) come from ``core.raster.conventions``, the per-tile,
depth-sorted lists of Gaussians from ``core.raster.tiles.bin_footprints``. Tiles are TILE x TILE
pixels; all kernels release the GIL (``nogil=True``) so a GUI thread keeps running while a worker
thread renders.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from core.raster.conventions import ALPHA_MAX, ALPHA_THRESHOLD, T_MIN, TILE


@njit(cache=True, nogil=True, parallel=True, fastmath=False)
def blend_forward(means2d, conics, opacities, feats, background, tile_offsets, tile_gaussians,
                  width, height, tiles_x):
    """Front-to-back alpha blending of per-Gaussian features.

    means2d [N, 2], conics [N, 3], opacities [N], feats [N, C], background [C] (f32).
    Returns out [H, W, C] f32, final transmittance [H, W] f32 and, per pixel, the index into
    tile_gaussians one past the last Gaussian that contributed (``last`` [H, W] i64; the tile's
    start when none did).
    """
    n_ch = feats.shape[1]
    n_tiles = tile_offsets.shape[0] - 1
    out = np.empty((height, width, n_ch), dtype=np.float32)
    t_final = np.empty((height, width), dtype=np.float32)
    last = np.empty((height, width), dtype=np.int64)
    for t in prange(n_tiles):
        ty, tx = t // tiles_x, t % tiles_x
        start, end = tile_offsets[t], tile_offsets[t + 1]
        px0, py0 = tx * TILE, ty * TILE
        pw, ph = min(TILE, width - px0), min(TILE, height - py0)
        n_pix = pw * ph
        trans = np.ones(n_pix, dtype=np.float64)
        acc = np.zeros((n_pix, n_ch), dtype=np.float64)
        done = np.zeros(n_pix, dtype=np.bool_)
        lst = np.full(n_pix, start, dtype=np.int64)
        n_done = 0
        for k in range(start, end):
            if n_done == n_pix:
                break
            g = tile_gaussians[k]
            mx, my = means2d[g, 0], means2d[g, 1]
            ca, cb, cc = conics[g, 0], conics[g, 1], conics[g, 2]
            op = opacities[g]
            sigma_cut = math.log(op / ALPHA_THRESHOLD) + 1e-4  # beyond: alpha < threshold for sure, skip the exp
            for p in range(n_pix):
                if done[p]:
                    continue
                dx = mx - (px0 + p % pw + 0.5)
                dy = my - (py0 + p // pw + 0.5)
                sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                if sigma < 0.0 or sigma > sigma_cut:
                    continue
                alpha = min(ALPHA_MAX, op * math.exp(-sigma))
                if alpha < ALPHA_THRESHOLD:
                    continue
                next_t = trans[p] * (1.0 - alpha)
                if next_t <= T_MIN:
                    done[p] = True
                    n_done += 1
                    continue
                w = alpha * trans[p]
                for ch in range(n_ch):
                    acc[p, ch] += w * feats[g, ch]
                trans[p] = next_t
                lst[p] = k + 1
        for p in range(n_pix):
            yy, xx = py0 + p // pw, px0 + p % pw
            for ch in range(n_ch):
                out[yy, xx, ch] = acc[p, ch] + trans[p] * background[ch]
            t_final[yy, xx] = trans[p]
            last[yy, xx] = lst[p]
    return out, t_final, last


@njit(cache=True, nogil=True, parallel=True)
def blend_backward(means2d, conics, opacities, feats, background, tile_offsets, tile_gaussians,
                   width, height, tiles_x, t_final, last, grad_out, grad_alpha):
    """Gradients of a scalar loss through :func:`blend_forward`.

    grad_out [H, W, C] = dL/d out, grad_alpha [H, W] = dL/d(1 - T_final). Returns per-Gaussian
    gradients: means2d [N, 2], conics [N, 3], opacities [N], feats [N, C] (f32).
    """
    n = means2d.shape[0]
    n_ch = feats.shape[1]
    n_tiles = tile_offsets.shape[0] - 1
    n_pairs = tile_gaussians.shape[0]
    pair_grad = np.zeros((n_pairs, 6 + n_ch), dtype=np.float64)  # mean xy, conic abc, opacity, feats
    for t in prange(n_tiles):
        ty, tx = t // tiles_x, t % tiles_x
        start = tile_offsets[t]
        px0, py0 = tx * TILE, ty * TILE
        pw, ph = min(TILE, width - px0), min(TILE, height - py0)
        n_pix = pw * ph
        trans = np.empty(n_pix, dtype=np.float64)
        tfin = np.empty(n_pix, dtype=np.float64)
        lst = np.empty(n_pix, dtype=np.int64)
        gout = np.empty((n_pix, n_ch), dtype=np.float64)
        galpha = np.empty(n_pix, dtype=np.float64)
        bg_dot = np.empty(n_pix, dtype=np.float64)
        behind = np.zeros((n_pix, n_ch), dtype=np.float64)
        k_end = start
        for p in range(n_pix):
            yy, xx = py0 + p // pw, px0 + p % pw
            trans[p] = t_final[yy, xx]
            tfin[p] = t_final[yy, xx]
            lst[p] = last[yy, xx]
            k_end = max(k_end, lst[p])
            galpha[p] = grad_alpha[yy, xx]
            s = 0.0
            for ch in range(n_ch):
                gout[p, ch] = grad_out[yy, xx, ch]
                s += background[ch] * gout[p, ch]
            bg_dot[p] = s
        for k in range(k_end - 1, start - 1, -1):
            g = tile_gaussians[k]
            mx, my = means2d[g, 0], means2d[g, 1]
            ca, cb, cc = conics[g, 0], conics[g, 1], conics[g, 2]
            op = opacities[g]
            sigma_cut = math.log(op / ALPHA_THRESHOLD) + 1e-4
            for p in range(n_pix):
                if k >= lst[p]:
                    continue
                dx = mx - (px0 + p % pw + 0.5)
                dy = my - (py0 + p // pw + 0.5)
                sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                if sigma < 0.0 or sigma > sigma_cut:
                    continue
                gauss = math.exp(-sigma)
                vis = op * gauss
                alpha = min(ALPHA_MAX, vis)
                if alpha < ALPHA_THRESHOLD:
                    continue
                one_minus = 1.0 - alpha
                trans[p] /= one_minus  # transmittance in front of this Gaussian
                t_i = trans[p]
                w = alpha * t_i
                d_alpha = 0.0
                for ch in range(n_ch):
                    fc = feats[g, ch]
                    pair_grad[k, 6 + ch] += w * gout[p, ch]
                    d_alpha += (fc * t_i - behind[p, ch] / one_minus) * gout[p, ch]
                    behind[p, ch] += fc * w
                d_alpha += (galpha[p] - bg_dot[p]) * tfin[p] / one_minus
                if vis <= ALPHA_MAX:
                    d_sigma = -vis * d_alpha
                    pair_grad[k, 0] += (ca * dx + cb * dy) * d_sigma
                    pair_grad[k, 1] += (cb * dx + cc * dy) * d_sigma
                    pair_grad[k, 2] += 0.5 * dx * dx * d_sigma
                    pair_grad[k, 3] += dx * dy * d_sigma
                    pair_grad[k, 4] += 0.5 * dy * dy * d_sigma
                    pair_grad[k, 5] += gauss * d_alpha
    grads = np.zeros((n, 6 + n_ch), dtype=np.float64)
    for k in range(n_pairs):
        g = tile_gaussians[k]
        for j in range(6 + n_ch):
            grads[g, j] += pair_grad[k, j]
    return (grads[:, 0:2].astype(np.float32), grads[:, 2:5].astype(np.float32),
            grads[:, 5].astype(np.float32), grads[:, 6:].astype(np.float32))
