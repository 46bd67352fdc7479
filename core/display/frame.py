"""CPU side of the display renderer: scene activation (once) and per-frame projection and depth sort.

Per frame, every splat is projected exactly as gsplat 1.5.3's classic rasterisation does (EWA with
the clamped Jacobian, eps2d = 0.3 on the diagonal, opacity-aware 3.33-sigma radii, near plane 0.01,
the same culling; the constants are ``core.raster.conventions``), its SH colour evaluated
(``max(SH(dir) + 0.5, 0)``, ``dir`` from the camera centre to the mean), and the survivors sorted back
to front by camera-space z. The result is one instance record per splat (``INSTANCE_FLOATS`` float32
each, see ``project_frame``) for the GL quads or the CPU tile rasteriser (``rasterize_cpu``).

The footprint is not gsplat's axis-aligned rectangle but the oriented rectangle of the ellipse
``d^T cov2d^-1 d = extend^2`` (25-35 % fewer fragments). Outside that ellipse alpha is below 1/255,
which gsplat discards too, and the ellipse lies inside gsplat's rectangle, so the image is the same.

The fast path is ``core.display.kernels`` (numba, ``parallel=True, nogil=True, cache=True``); a vectorised numpy
version of the same maths is the fallback without numba and the oracle in the tests.
"""

from __future__ import annotations

import logging

import numpy as np

from core.camera import Camera
from core.raster.conventions import ALPHA_THRESHOLD, EPS2D, FAR_PLANE, FOV_CLAMP_MARGIN, MAX_EXTEND, NEAR_PLANE
from core.scene import SH_C0, SH_C1, SH_C2, SH_C3, GaussianScene

log = logging.getLogger(__name__)

INSTANCE_FLOATS = 16
"""Per-splat instance record, float32 (pixels; x right, y down):
0-3 centre x, y, axis1 x, y; 4-7 axis2 x, y, extend (sigmas), opacity; 8-11 r, g, b, half-width;
12-15 conic a, b, c (inverse 2D covariance [[a, b], [b, c]]), half-height.
The GL quad is centre + s*axis1 + t*axis2 for s, t in [-1, 1], where the Mahalanobis distance is
extend * |(s, t)|; half-width/height (extend * sqrt(cov2d diagonal)) bound the ellipse for tiling."""


# -- scene activation ------------------------------------------------------------------------------

def _quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """Rotation matrices [N, 3, 3] from unit quaternions [N, 4] (w, x, y, z)."""
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


class DisplayScene:
    """Activated attributes of a GaussianScene in display order (most significant first).

    ``means`` [N, 3] float32 (world units), ``cov`` [N, 6] float32 (world covariance c00 c01 c02 c11
    c12 c22), ``opacity`` [N] float32 in [1/255, 1), ``sh`` [N, K*3] float32 (K = (degree+1)^2,
    coefficient-major then channel), ``source_index`` [N] int64 (row -> index in the original scene).
    Rows are sorted by decreasing opacity x (product of the two largest scales), a proxy for screen
    coverage, so a prefix is the best subset to draw while the camera moves. Gaussians that can never
    be drawn (opacity < 1/255, zero quaternion, non-finite values) are dropped.
    """

    def __init__(self, scene: GaussianScene):
        s = scene.detach().to("cpu")
        means = s.means.double().numpy()
        log_scales = s.log_scales.double().numpy()
        logits = s.opacity_logits.double().numpy()
        quats = s.quats.double().numpy()
        sh = s.sh_coeffs().double().numpy()
        n = means.shape[0]
        with np.errstate(over="ignore", invalid="ignore"):
            opacity = 1.0 / (1.0 + np.exp(-logits))
            qn = np.linalg.norm(quats, axis=1)
            keep = (opacity >= ALPHA_THRESHOLD) & (qn > 0)
            keep &= np.isfinite(means).all(1) & np.isfinite(log_scales).all(1) & np.isfinite(logits)
            keep &= np.isfinite(quats).all(1) & np.isfinite(sh).all(axis=(1, 2))
            scales = np.exp(np.clip(np.nan_to_num(log_scales), -80.0, 80.0))
        size = np.sort(scales, axis=1)
        significance = np.where(keep, opacity * size[:, 2] * size[:, 1], -1.0)
        order = np.argsort(-significance, kind="stable")[: int(keep.sum())]

        rot = _quat_to_rotmat(quats[order] / qn[order, None])
        m = rot * scales[order][:, None, :]
        cov = m @ m.transpose(0, 2, 1)
        self.means = np.ascontiguousarray(means[order], dtype=np.float32)
        self.cov = np.ascontiguousarray(cov[:, [0, 0, 0, 1, 1, 2], [0, 1, 2, 1, 2, 2]], dtype=np.float32)
        self.opacity = np.ascontiguousarray(opacity[order], dtype=np.float32)
        self.sh = np.ascontiguousarray(sh[order].reshape(order.size, sh.shape[1] * 3), dtype=np.float32)
        self.sh_k = (scene.sh_degree + 1) ** 2
        self.source_index = order.astype(np.int64)
        self.num_input = n
        if order.size < n:
            log.info("display: %d of %d Gaussians can never be drawn (opacity < 1/255 or invalid values)",
                     n - order.size, n)

    def __len__(self) -> int:
        return int(self.means.shape[0])


def camera_params(camera: Camera) -> np.ndarray:
    """Camera as float64 [21]: world-to-camera rotation (9, row-major), translation (3), fx fy cx cy,
    width height, camera centre in world coordinates (3)."""
    w2c = camera.world_to_camera
    p = np.zeros(21)
    p[0:9] = w2c[:3, :3].ravel()
    p[9:12] = w2c[:3, 3]
    p[12:16] = camera.fx, camera.fy, camera.cx, camera.cy
    p[16:18] = camera.width, camera.height
    p[18:21] = camera.position
    return p


# -- numpy version (fallback and test oracle) -----------------------------------------------------

def _sh_color_numpy(sh: np.ndarray, k: int, dirs: np.ndarray) -> np.ndarray:
    """max(SH(dirs) + 0.5, 0): sh [n, k*3], unit dirs [n, 3] -> [n, 3] float64."""
    c = sh.reshape(len(sh), k, 3).astype(np.float64)
    x, y, z = (dirs[:, i:i + 1] for i in range(3))
    rgb = SH_C0 * c[:, 0]
    if k > 1:
        rgb = rgb + SH_C1 * (-y * c[:, 1] + z * c[:, 2] - x * c[:, 3])
    if k > 4:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        rgb = rgb + (SH_C2[0] * xy * c[:, 4] + SH_C2[1] * yz * c[:, 5] + SH_C2[2] * (2 * zz - xx - yy) * c[:, 6]
                     + SH_C2[3] * xz * c[:, 7] + SH_C2[4] * (xx - yy) * c[:, 8])
    if k > 9:
        rgb = rgb + (SH_C3[0] * y * (3 * xx - yy) * c[:, 9] + SH_C3[1] * xy * z * c[:, 10]
                     + SH_C3[2] * y * (4 * zz - xx - yy) * c[:, 11]
                     + SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy) * c[:, 12]
                     + SH_C3[4] * x * (4 * zz - xx - yy) * c[:, 13] + SH_C3[5] * z * (xx - yy) * c[:, 14]
                     + SH_C3[6] * x * (xx - 3 * yy) * c[:, 15])
    return np.maximum(rgb + 0.5, 0.0)


def project_numpy(ds: DisplayScene, n: int, cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project the first ``n`` splats: (instances [n, 12] float32, depth [n] float32, visible [n] bool)."""
    rot = cam[0:9].reshape(3, 3)
    fx, fy, cx, cy, w, h = cam[12:18]
    means = ds.means[:n].astype(np.float64)
    t = means @ rot.T + cam[9:12]
    x, y, z = t[:, 0], t[:, 1], t[:, 2]
    inst = np.zeros((n, INSTANCE_FLOATS), dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        rz = 1.0 / z
        tan_fovx, tan_fovy = 0.5 * w / fx, 0.5 * h / fy
        margin_x, margin_y = FOV_CLAMP_MARGIN * tan_fovx, FOV_CLAMP_MARGIN * tan_fovy
        tx = z * np.clip(x * rz, -(cx / fx + margin_x), (w - cx) / fx + margin_x)
        ty = z * np.clip(y * rz, -(cy / fy + margin_y), (h - cy) / fy + margin_y)
        c6 = ds.cov[:n].astype(np.float64)
        sigma = c6[:, [0, 1, 2, 1, 3, 4, 2, 4, 5]].reshape(n, 3, 3)
        cc = rot @ sigma @ rot.T
        zero = np.zeros_like(z)
        jac = np.stack([fx * rz, zero, -fx * tx * rz * rz, zero, fy * rz, -fy * ty * rz * rz], -1).reshape(n, 2, 3)
        cov2d = jac @ cc @ jac.transpose(0, 2, 1)
        a = cov2d[:, 0, 0] + EPS2D
        b = cov2d[:, 0, 1]
        c = cov2d[:, 1, 1] + EPS2D
        det = a * c - b * b
        op = ds.opacity[:n].astype(np.float64)
        ext = np.minimum(MAX_EXTEND, np.sqrt(2.0 * np.log(np.maximum(op / ALPHA_THRESHOLD, 1.0))))
        rx = np.ceil(ext * np.sqrt(np.maximum(a, 0)))
        ry = np.ceil(ext * np.sqrt(np.maximum(c, 0)))
        mx, my = fx * x * rz + cx, fy * y * rz + cy
        vis = (z >= NEAR_PLANE) & (z <= FAR_PLANE) & (det > 0) & ((rx > 0) | (ry > 0))
        vis &= (mx + rx > 0) & (mx - rx < w) & (my + ry > 0) & (my - ry < h)
        vis &= np.isfinite(mx) & np.isfinite(my) & np.isfinite(det)
        mid = 0.5 * (a + c)
        dd = np.sqrt(np.maximum(0.25 * (a - c) ** 2 + b * b, 0.0))
        l1, l2 = mid + dd, np.maximum(mid - dd, 1e-12)
        # eigenvector of the larger eigenvalue
        use_b = np.abs(b) > 1e-12 * mid
        v1x = np.where(use_b, b, np.where(a >= c, 1.0, 0.0))
        v1y = np.where(use_b, l1 - a, np.where(a >= c, 0.0, 1.0))
        norm = np.hypot(v1x, v1y)
        v1x, v1y = v1x / norm, v1y / norm
        s1, s2 = ext * np.sqrt(l1), ext * np.sqrt(l2)
        campos = cam[18:21]
        d = means - campos
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        rgb = _sh_color_numpy(ds.sh[:n], ds.sh_k, d)
        cols = [mx, my, v1x * s1, v1y * s1, -v1y * s2, v1x * s2, ext, op, rgb[:, 0], rgb[:, 1], rgb[:, 2],
                ext * np.sqrt(a), c / det, -b / det, a / det, ext * np.sqrt(c)]
        for j, col in enumerate(cols):
            inst[:, j] = col
    inst[~vis] = 0.0
    return inst, z.astype(np.float32), vis


# -- numba version --------------------------------------------------------------------------------

_kernels = None


def _numba_kernels():
    """The compiled kernels module (``core.display.kernels``), or None without numba."""
    global _kernels
    if _kernels is None:
        try:
            from core.display import kernels
        except ImportError:  # pragma: no cover - numba is a project dependency
            log.warning("numba is not available: the display renderer projects with numpy (slower)")
            kernels = False
        _kernels = kernels
    return _kernels or None


def back_to_front(depth: np.ndarray) -> np.ndarray:
    """Indices [n] (int64) ordering positive float32 ``depth`` [n] from far to near.

    Positive IEEE floats order like their bit patterns read as uint32; ties keep the reverse of the
    input order (the front-to-back order is stable, as gsplat's radix sort).
    """
    depth = np.ascontiguousarray(depth, dtype=np.float32)
    k = _numba_kernels()
    if k is not None:
        order = k.argsort_u32(depth.view(np.uint32))
    else:
        order = np.argsort(depth, kind="stable")
    return order[::-1].astype(np.int64)


def project_frame(ds: DisplayScene, camera: Camera, n: int | None = None,
                  use_numba: bool = True) -> np.ndarray:
    """Instance records [m, INSTANCE_FLOATS] float32 of the visible splats among the first ``n``, far to near.

    See ``INSTANCE_FLOATS`` for the record layout. ``use_numba=False`` forces the numpy path.
    """
    n = len(ds) if n is None else max(0, min(len(ds), int(n)))
    cam = camera_params(camera)
    k = _numba_kernels() if use_numba else None
    if n == 0:
        return np.zeros((0, INSTANCE_FLOATS), dtype=np.float32)
    if k is None:
        inst, depth, vis = project_numpy(ds, n, cam)
        idx = np.flatnonzero(vis)
        order = idx[np.argsort(depth[idx], kind="stable")[::-1]]
        return np.ascontiguousarray(inst[order])
    inst = np.empty((n, INSTANCE_FLOATS), dtype=np.float32)
    depth = np.empty(n, dtype=np.float32)
    vis = np.empty(n, dtype=np.bool_)
    k.project(ds.means, ds.cov, ds.opacity, ds.sh, ds.sh_k, n, cam, inst, depth, vis)
    idx = np.flatnonzero(vis).astype(np.uint32)
    order = idx[k.argsort_u32(depth[idx].view(np.uint32))]  # near to far
    out = np.empty((order.size, INSTANCE_FLOATS), dtype=np.float32)
    k.gather_reversed(inst, order, out)
    return out


def rasterize_cpu(inst: np.ndarray, width: int, height: int, background=(0.0, 0.0, 0.0),
                  to_uint8: bool = False) -> np.ndarray:
    """Blend instance records (far to near, from ``project_frame``) on the CPU with numba, 8x8 tiles.

    Returns uint8 [H, W, 3] composited on ``background`` when ``to_uint8``, else float32 [H, W, 4]
    (premultiplied colour, alpha = 1 - T). Raises RuntimeError without numba.
    """
    k = _numba_kernels()
    if k is None:
        raise RuntimeError("the CPU display backend needs numba")
    inst = np.ascontiguousarray(inst, dtype=np.float32)
    start, entries = k.bin_tiles(inst, int(width), int(height))
    bg = np.asarray(background, dtype=np.float32).reshape(3)
    if to_uint8:
        out8 = np.empty((height, width, 3), np.uint8)
        k.raster_tiles(inst, start, entries, int(width), int(height), bg, np.empty((1, 1, 4), np.float32), out8, True)
        return out8
    out = np.empty((height, width, 4), np.float32)
    k.raster_tiles(inst, start, entries, int(width), int(height), bg, out, np.empty((1, 1, 3), np.uint8), False)
    return out


def warm_up() -> float:
    """Compile (first run: about 14 s on the 2-core machine) or load from numba's on-disk cache (about
    0.6 s) every display kernel, by drawing a one-splat scene. Returns the seconds it took. Call it
    from a worker thread at application start so that the first viewport frame does not stall."""
    import time

    import torch

    t0 = time.perf_counter()
    if _numba_kernels() is None:
        return 0.0
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    scene = GaussianScene(t([[0.0, 0.0, 2.0]]), t([[1.0, 0.0, 0.0, 0.0]]), t([[-2.0, -2.0, -2.0]]), t([2.0]),
                          t([[0.5, 0.5, 0.5]]), torch.zeros(1, 15, 3))
    cam = Camera(np.eye(4), 20.0, 20.0, 8.0, 8.0, 16, 16)
    inst = project_frame(DisplayScene(scene), cam)
    rasterize_cpu(inst, 16, 16, to_uint8=True)
    rasterize_cpu(inst, 16, 16)
    back_to_front(np.ones(3, np.float32))
    return time.perf_counter() - t0
