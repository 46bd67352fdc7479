"""numba kernels of the display renderer (imported lazily by ``core.display.frame``).

``project``: per-splat projection, culling and SH colour (the maths of ``frame.project_numpy``, one
splat per iteration, parallel over splats); ``argsort_u32``: stable LSD radix argsort; ``gather_reversed``:
rows of the instance table in reversed sort order (far to near); ``bin_tiles`` (tile lists, with
``core.raster.tiles``) and ``raster_tiles``: the CPU tile rasteriser. All are ``nogil`` so a GUI
thread keeps running while a worker renders. The constants are ``core.raster.conventions``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from core.raster.conventions import (ALPHA_MAX, ALPHA_THRESHOLD, EPS2D, FAR_PLANE, FOV_CLAMP_MARGIN, MAX_EXTEND,
                                     NEAR_PLANE, T_MIN, TILE)
from core.raster.tiles import bin_footprints, tile_grid
from core import scene
from core.scene import SH_C0

SH_C1 = scene.SH_C1
SH_C2 = np.array(scene.SH_C2)  # numba reads module-level arrays as constants
SH_C3 = np.array(scene.SH_C3)


@njit(parallel=True, nogil=True, cache=True)
def project(means, cov, opacity, sh, k, n, cam, inst, depth, vis):
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = cam[0], cam[1], cam[2], cam[3], cam[4], cam[5], cam[6], cam[7], cam[8]
    fx, fy, cx, cy, w, h = cam[12], cam[13], cam[14], cam[15], cam[16], cam[17]
    tan_fovx = 0.5 * w / fx
    tan_fovy = 0.5 * h / fy
    lxp = (w - cx) / fx + FOV_CLAMP_MARGIN * tan_fovx
    lxn = cx / fx + FOV_CLAMP_MARGIN * tan_fovx
    lyp = (h - cy) / fy + FOV_CLAMP_MARGIN * tan_fovy
    lyn = cy / fy + FOV_CLAMP_MARGIN * tan_fovy
    for i in prange(n):
        px = np.float64(means[i, 0])
        py = np.float64(means[i, 1])
        pz = np.float64(means[i, 2])
        x = r00 * px + r01 * py + r02 * pz + cam[9]
        y = r10 * px + r11 * py + r12 * pz + cam[10]
        z = r20 * px + r21 * py + r22 * pz + cam[11]
        depth[i] = z
        vis[i] = False
        if not (z >= NEAR_PLANE and z <= FAR_PLANE):
            continue
        # camera-space covariance R Σ R^T
        s00, s01, s02, s11, s12, s22 = cov[i, 0], cov[i, 1], cov[i, 2], cov[i, 3], cov[i, 4], cov[i, 5]
        m00 = r00 * s00 + r01 * s01 + r02 * s02
        m01 = r00 * s01 + r01 * s11 + r02 * s12
        m02 = r00 * s02 + r01 * s12 + r02 * s22
        m10 = r10 * s00 + r11 * s01 + r12 * s02
        m11 = r10 * s01 + r11 * s11 + r12 * s12
        m12 = r10 * s02 + r11 * s12 + r12 * s22
        m20 = r20 * s00 + r21 * s01 + r22 * s02
        m21 = r20 * s01 + r21 * s11 + r22 * s12
        m22 = r20 * s02 + r21 * s12 + r22 * s22
        c00 = m00 * r00 + m01 * r01 + m02 * r02
        c01 = m00 * r10 + m01 * r11 + m02 * r12
        c02 = m00 * r20 + m01 * r21 + m02 * r22
        c11 = m10 * r10 + m11 * r11 + m12 * r12
        c12 = m10 * r20 + m11 * r21 + m12 * r22
        c22 = m20 * r20 + m21 * r21 + m22 * r22
        rz = 1.0 / z
        tx = z * min(lxp, max(-lxn, x * rz))
        ty = z * min(lyp, max(-lyn, y * rz))
        j00 = fx * rz
        j02 = -fx * tx * rz * rz
        j11 = fy * rz
        j12 = -fy * ty * rz * rz
        a = j00 * j00 * c00 + 2.0 * j00 * j02 * c02 + j02 * j02 * c22 + EPS2D
        b = j00 * (c01 * j11 + c02 * j12) + j02 * (c12 * j11 + c22 * j12)
        c = j11 * j11 * c11 + 2.0 * j11 * j12 * c12 + j12 * j12 * c22 + EPS2D
        det = a * c - b * b
        if not det > 0.0:
            continue
        op = np.float64(opacity[i])
        ext = min(MAX_EXTEND, math.sqrt(2.0 * math.log(max(op / ALPHA_THRESHOLD, 1.0))))
        rx = np.ceil(ext * math.sqrt(a))
        ry = np.ceil(ext * math.sqrt(c))
        if rx <= 0.0 and ry <= 0.0:
            continue
        mx = fx * x * rz + cx
        my = fy * y * rz + cy
        if mx + rx <= 0.0 or mx - rx >= w or my + ry <= 0.0 or my - ry >= h:
            continue
        mid = 0.5 * (a + c)
        dd = math.sqrt(max(0.25 * (a - c) * (a - c) + b * b, 0.0))
        l1 = mid + dd
        l2 = max(mid - dd, 1e-12)
        if abs(b) > 1e-12 * mid:
            v1x = b
            v1y = l1 - a
        elif a >= c:
            v1x = 1.0
            v1y = 0.0
        else:
            v1x = 0.0
            v1y = 1.0
        nrm = math.sqrt(v1x * v1x + v1y * v1y)
        v1x /= nrm
        v1y /= nrm
        s1 = ext * math.sqrt(l1)
        s2 = ext * math.sqrt(l2)
        # SH colour along the normalised direction camera centre -> mean
        dx = px - cam[18]
        dy = py - cam[19]
        dz = pz - cam[20]
        dn = math.sqrt(dx * dx + dy * dy + dz * dz)
        if dn > 0.0:
            dx /= dn
            dy /= dn
            dz /= dn
        for ch in range(3):
            v = SH_C0 * sh[i, ch]
            if k > 1:
                v += SH_C1 * (-dy * sh[i, 3 + ch] + dz * sh[i, 6 + ch] - dx * sh[i, 9 + ch])
            if k > 4:
                xx, yy, zz = dx * dx, dy * dy, dz * dz
                v += (SH_C2[0] * dx * dy * sh[i, 12 + ch] + SH_C2[1] * dy * dz * sh[i, 15 + ch]
                      + SH_C2[2] * (2.0 * zz - xx - yy) * sh[i, 18 + ch] + SH_C2[3] * dx * dz * sh[i, 21 + ch]
                      + SH_C2[4] * (xx - yy) * sh[i, 24 + ch])
                if k > 9:
                    v += (SH_C3[0] * dy * (3.0 * xx - yy) * sh[i, 27 + ch] + SH_C3[1] * dx * dy * dz * sh[i, 30 + ch]
                          + SH_C3[2] * dy * (4.0 * zz - xx - yy) * sh[i, 33 + ch]
                          + SH_C3[3] * dz * (2.0 * zz - 3.0 * xx - 3.0 * yy) * sh[i, 36 + ch]
                          + SH_C3[4] * dx * (4.0 * zz - xx - yy) * sh[i, 39 + ch]
                          + SH_C3[5] * dz * (xx - yy) * sh[i, 42 + ch]
                          + SH_C3[6] * dx * (xx - 3.0 * yy) * sh[i, 45 + ch])
            inst[i, 8 + ch] = max(v + 0.5, 0.0)
        inst[i, 0] = mx
        inst[i, 1] = my
        inst[i, 2] = v1x * s1
        inst[i, 3] = v1y * s1
        inst[i, 4] = -v1y * s2
        inst[i, 5] = v1x * s2
        inst[i, 6] = ext
        inst[i, 7] = op
        inst[i, 11] = ext * math.sqrt(a)
        inst[i, 12] = c / det
        inst[i, 13] = -b / det
        inst[i, 14] = a / det
        inst[i, 15] = ext * math.sqrt(c)
        vis[i] = True


@njit(nogil=True, cache=True)
def argsort_u32(keys):
    """Stable LSD radix argsort of uint32 keys: 3 passes of 11 bits."""
    n = keys.shape[0]
    idx = np.arange(n).astype(np.uint32)
    tmp = np.empty(n, dtype=np.uint32)
    counts = np.zeros(2048, dtype=np.int64)
    for shift in (0, 11, 22):
        counts[:] = 0
        for i in range(n):
            counts[(keys[idx[i]] >> shift) & 2047] += 1
        total = 0
        for bkt in range(2048):
            cnt = counts[bkt]
            counts[bkt] = total
            total += cnt
        for i in range(n):
            j = idx[i]
            bkt = (keys[j] >> shift) & 2047
            tmp[counts[bkt]] = j
            counts[bkt] += 1
        idx, tmp = tmp, idx
    return idx

@njit(parallel=True, nogil=True, cache=True)
def gather_reversed(src, order, out):
    m = order.shape[0]
    for r in prange(m):
        j = order[m - 1 - r]
        for c in range(src.shape[1]):
            out[r, c] = src[j, c]



# -- CPU tile rasteriser (the fast path on software OpenGL) -----------------------------------------

def bin_tiles(inst, width, height):
    """Tile lists for the TILE x TILE tiles of a ``width`` x ``height`` image: (start [n_tiles + 1] int64,
    splat index per entry int32); tile t's splats are entries[start[t]:start[t + 1]].

    ``inst`` [m, INSTANCE_FLOATS] float32 is far to near; each tile's list is near to far. A splat
    enters every tile that its 1/255 ellipse's bounding box (centre inst[:, 0:2], half-sizes
    inst[:, 11], inst[:, 15], pixels) touches, the tile its right or bottom edge only touches included.
    """
    m = inst.shape[0]
    tiles_x, tiles_y = tile_grid(width, height)
    near_to_far = np.arange(m - 1, -1, -1, dtype=np.int64)
    # contiguous columns: one compiled signature whatever m (a column of a 1-row table is contiguous)
    cx, cy, hx, hy = (np.ascontiguousarray(inst[:, j]) for j in (0, 1, 11, 15))
    return bin_footprints(cx, cy, hx, hy, near_to_far, tiles_x, tiles_y, True)


@njit(nogil=True, fastmath=True, boundscheck=False, inline="always")
def _blend_tile(tr, act, cr, cg, cbl, pxc, pyc, n, mx, my, ca, cb, cc, op, r, g, b):  # pragma: no cover
    """Blend one splat into the first ``n`` pixels of a tile, front to back; written to vectorise.

    Per pixel: transmittance ``tr``, ``act`` (1 until T would fall to 1e-4, then 0; gsplat's stop),
    premultiplied colour ``cr, cg, cbl``; pixel centres ``pxc, pyc``. Plain 1D arrays indexed from 0
    (offsets or 2D indexing keep LLVM from vectorising). exp(-s) for s in [0, 8] is
    (Taylor-5(-s/64))^64: relative error below 1e-6 and no libm call.
    """
    one = np.float32(1.0)
    for j in range(n):
        t0 = tr[j]
        a0 = act[j]
        dx = mx - pxc[j]
        dy = my - pyc[j]
        sigma = np.float32(0.5) * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
        u = min(max(sigma, np.float32(0.0)), np.float32(8.0)) * np.float32(1.0 / 64.0)
        e = one - u * (one - u * (np.float32(0.5) - u * (np.float32(1.0 / 6.0)
                                                        - u * (np.float32(1.0 / 24.0) - u * np.float32(1.0 / 120.0)))))
        e = e * e
        e = e * e
        e = e * e
        e = e * e
        e = e * e
        e = e * e
        alpha = min(op * e, np.float32(ALPHA_MAX))
        alpha = alpha * a0 if sigma >= np.float32(0.0) else np.float32(0.0)
        alpha = alpha if alpha >= np.float32(ALPHA_THRESHOLD) else np.float32(0.0)
        t1 = t0 * (one - alpha)
        live = t1 > np.float32(T_MIN)
        w = alpha * t0 if live else np.float32(0.0)
        cr[j] += w * r
        cg[j] += w * g
        cbl[j] += w * b
        tr[j] = t1 if live else t0
        act[j] = a0 if live else np.float32(0.0)


@njit(parallel=True, nogil=True, cache=True, fastmath=True, boundscheck=False)
def raster_tiles(inst, start, entries, width, height, background, out_rgba, out_rgb8, to_uint8):
    """Front-to-back blending per 8x8 tile (gsplat's rules, its T <= 1e-4 stop included).

    Writes ``out_rgba`` [H, W, 4] float32 (premultiplied colour, alpha = 1 - T) or, when ``to_uint8``,
    ``out_rgb8`` [H, W, 3] uint8 = round(255 * clamp(colour + T * background, 0, 1)).
    """
    ntx = (width + TILE - 1) // TILE
    nty = (height + TILE - 1) // TILE
    n_tiles = ntx * nty
    for q in prange(n_tiles):
        t = (q * 7919) % n_tiles  # interleave tiles between threads (balance)
        tx0 = (t % ntx) * TILE
        ty0 = (t // ntx) * TILE
        tx1 = min(tx0 + TILE, width)
        ty1 = min(ty0 + TILE, height)
        tr = np.ones(TILE * TILE, np.float32)
        act = np.ones(TILE * TILE, np.float32)
        cr = np.zeros(TILE * TILE, np.float32)
        cg = np.zeros(TILE * TILE, np.float32)
        cbl = np.zeros(TILE * TILE, np.float32)
        pxc = np.empty(TILE * TILE, np.float32)
        pyc = np.empty(TILE * TILE, np.float32)
        for i in range(TILE):
            for j in range(TILE):
                pxc[i * TILE + j] = tx0 + j + 0.5
                pyc[i * TILE + j] = ty0 + i + 0.5
        since_check = 0
        for k in range(start[t], start[t + 1]):
            s = entries[k]
            my = inst[s, 1]
            hy = inst[s, 15]
            if my - hy >= ty1 or my + hy < ty0:
                continue
            # whole-tile loops vectorise; the pixels outside the splat's rows cost less than offsets
            _blend_tile(tr, act, cr, cg, cbl, pxc, pyc, TILE * TILE, inst[s, 0], my, inst[s, 12],
                        inst[s, 13], inst[s, 14], inst[s, 7], inst[s, 8], inst[s, 9], inst[s, 10])
            since_check += 1
            if since_check == 16:
                since_check = 0
                if act.sum() == 0.0:
                    break
        for y in range(ty0, ty1):
            for x in range(tx0, tx1):
                p = (y - ty0) * TILE + (x - tx0)
                if to_uint8:
                    for ch, col in enumerate((cr[p], cg[p], cbl[p])):
                        v = min(max(col + tr[p] * background[ch], 0.0), 1.0)
                        out_rgb8[y, x, ch] = np.uint8(int(v * 255.0 + 0.5))
                else:
                    out_rgba[y, x, 0] = cr[p]
                    out_rgba[y, x, 1] = cg[p]
                    out_rgba[y, x, 2] = cbl[p]
                    out_rgba[y, x, 3] = 1.0 - tr[p]
