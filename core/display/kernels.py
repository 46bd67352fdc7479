"""numba kernels of the display renderer (imported lazily by ``core.display.frame``).

``project``: per-splat projection, culling and SH colour (the maths of ``frame.project_numpy``, one
splat per iteration, parallel over splats); ``argsort_u32``: stable LSD radix argsort; ``gather_reversed``:
rows of the instance table in reversed sort order (far to near). All are ``nogil`` so a GUI thread
keeps running while a worker renders.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from core.display.frame import (ALPHA_THRESHOLD, EPS2D, FAR_PLANE, MAX_EXTEND, NEAR_PLANE, SH_C0, SH_C1)

SH_C2 = np.array([1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
                  0.5462742152960396])
SH_C3 = np.array([-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
                  -0.4570457994644658, 1.445305721320277, -0.5900435899266435])


@njit(parallel=True, nogil=True, cache=True)
def project(means, cov, opacity, sh, k, n, cam, inst, depth, vis):
    r00, r01, r02, r10, r11, r12, r20, r21, r22 = cam[0], cam[1], cam[2], cam[3], cam[4], cam[5], cam[6], cam[7], cam[8]
    fx, fy, cx, cy, w, h = cam[12], cam[13], cam[14], cam[15], cam[16], cam[17]
    tan_fovx = 0.5 * w / fx
    tan_fovy = 0.5 * h / fy
    lxp = (w - cx) / fx + 0.3 * tan_fovx
    lxn = cx / fx + 0.3 * tan_fovx
    lyp = (h - cy) / fy + 0.3 * tan_fovy
    lyn = cy / fy + 0.3 * tan_fovy
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
        inst[i, 11] = 0.0
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

