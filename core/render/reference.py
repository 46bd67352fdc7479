"""Brute-force reference renderer, for tests only: every pixel against every Gaussian, in float64.

Written independently of the fast backends from the same specification (gsplat 1.5.3 classic
mode): EWA projection with the clamped Jacobian, eps2d = 0.3, opacity-aware 3.33-sigma footprint
rounded out to 8x8 tiles, alpha = min(0.999, o exp(-sigma)) skipped below 1/255, stop before
transmittance <= 1e-4 (the constants: ``core.raster.conventions``). Memory is O(H * W * N): keep
scenes and images tiny.
"""

from __future__ import annotations

import math

import torch

from core.camera import Camera
from core.raster.conventions import (ALPHA_MAX, ALPHA_THRESHOLD, EPS2D, FAR_PLANE, FOV_CLAMP_MARGIN, MAX_EXTEND,
                                     NEAR_PLANE, T_MIN, TILE)
from core.render.output import RenderOutput
from core.render.sh import eval_sh_colors
from core.scene import GaussianScene


def _rotation(q: torch.Tensor) -> torch.Tensor:
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    rows = [
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
    ]
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def render_reference(scene: GaussianScene, camera: Camera, background=(0.0, 0.0, 0.0), sh_degree=None,
                     with_depth: bool = True):
    """Same contract as :func:`core.render.api.render` (returns a RenderOutput), computed densely."""
    dt = torch.float64
    means = scene.means.to(dt)
    w2c = torch.tensor(camera.world_to_camera, dtype=dt)
    p_cam = torch.cat([means, torch.ones_like(means[:, :1])], 1) @ w2c.T
    x, y, z = p_cam[:, 0], p_cam[:, 1], p_cam[:, 2]
    good_z = (z >= NEAR_PLANE) & (z <= FAR_PLANE)
    zs = torch.where(good_z, z, torch.ones_like(z))

    scales = torch.exp(scene.log_scales.to(dt))
    rs = _rotation(scene.quats.to(dt)) @ torch.diag_embed(scales)
    sigma3 = w2c[:3, :3] @ (rs @ rs.transpose(1, 2)) @ w2c[:3, :3].T

    width, height = camera.width, camera.height
    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    half_margin = FOV_CLAMP_MARGIN * 0.5  # the margin times tan(half FOV) is half_margin * width / fx
    ux = torch.minimum(torch.maximum(x / zs, torch.tensor(-(cx / fx + half_margin * width / fx), dtype=dt)),
                       torch.tensor((width - cx) / fx + half_margin * width / fx, dtype=dt))
    uy = torch.minimum(torch.maximum(y / zs, torch.tensor(-(cy / fy + half_margin * height / fy), dtype=dt)),
                       torch.tensor((height - cy) / fy + half_margin * height / fy, dtype=dt))
    jac = torch.zeros(means.shape[0], 2, 3, dtype=dt)
    jac[:, 0, 0] = fx / zs
    jac[:, 1, 1] = fy / zs
    jac[:, 0, 2] = -fx * ux / zs
    jac[:, 1, 2] = -fy * uy / zs
    cov2 = jac @ sigma3 @ jac.transpose(1, 2) + EPS2D * torch.eye(2, dtype=dt)
    det = torch.linalg.det(cov2)
    good_det = det > 0
    inv = torch.linalg.inv(torch.where(good_det[:, None, None], cov2, torch.eye(2, dtype=dt)))
    mean2 = torch.stack([fx * x / zs + cx, fy * y / zs + cy], -1)
    opac = torch.sigmoid(scene.opacity_logits.to(dt))

    with torch.no_grad():
        ext = torch.tensor([min(MAX_EXTEND, math.sqrt(2 * math.log(o * 255))) if o * 255 > 1 else 0.0
                            for o in opac.tolist()], dtype=dt)
        rad = torch.ceil(ext[:, None] * torch.sqrt(torch.diagonal(cov2, dim1=1, dim2=2).clamp_min(0)))
        m2 = mean2.detach()
        on = ((m2 + rad > 0) & (m2 - rad < torch.tensor([width, height], dtype=dt))).all(-1)
        keep = good_z & good_det & (opac >= ALPHA_THRESHOLD) & (rad > 0).any(-1) & on
        t0 = torch.clamp(torch.floor((m2 - rad) / TILE), min=0)
        t1 = torch.ceil((m2 + rad) / TILE)

    jj, ii = torch.meshgrid(torch.arange(width, dtype=dt), torch.arange(height, dtype=dt), indexing="xy")
    pix = torch.stack([jj + 0.5, ii + 0.5], -1).reshape(-1, 2)  # [P, 2]
    tile_xy = torch.floor(pix / TILE)
    in_rect = ((tile_xy[:, None, :] >= t0[None]) & (tile_xy[:, None, :] < t1[None])).all(-1)  # [P, N]
    mask = in_rect & keep[None]

    d = mean2[None] - pix[:, None]  # [P, N, 2]
    sig = 0.5 * torch.einsum("pni,nij,pnj->pn", d, inv, d)
    a_raw = opac[None] * torch.exp(-sig)
    alpha = torch.clamp(a_raw, max=ALPHA_MAX)
    use = mask & (sig >= 0) & (alpha >= ALPHA_THRESHOLD)
    alpha = torch.where(use, alpha, torch.zeros_like(alpha))

    order = torch.argsort(z.detach().to(torch.float32), stable=True)
    alpha = alpha[:, order]
    t_after = torch.cumprod(1 - alpha, dim=1)
    alive = t_after > T_MIN
    alpha = torch.where(alive, alpha, torch.zeros_like(alpha))
    t_before = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
    weights = alpha * t_before  # [P, N]
    t_final = t_before[:, -1] * (1 - alpha[:, -1]) if alpha.shape[1] else torch.ones(pix.shape[0], dtype=dt)

    campos = torch.tensor(camera.position, dtype=dt)
    colors = eval_sh_colors(scene.sh_coeffs().to(dt), means - campos, sh_degree)[order]
    bg = torch.as_tensor(background, dtype=dt)
    rgb = weights @ colors + t_final[:, None] * bg
    alpha_img = 1 - t_final
    depth = weights @ z[order]
    depth = torch.where(alpha_img > 0, depth / alpha_img.clamp_min(1e-10), torch.zeros_like(depth))
    dtype = scene.means.dtype
    return RenderOutput(rgb.reshape(height, width, 3).to(dtype), alpha_img.reshape(height, width).to(dtype),
                        depth.reshape(height, width).to(dtype) if with_depth
                        else torch.zeros(height, width, dtype=dtype),
                        "reference", int(keep.sum()))
