"""Projection of 3D Gaussians to screen-space 2D Gaussians (EWA splatting), gsplat 1.5.3 compatible.

Zwicker et al. EWA splatting as used by 3DGS (Kerbl et al. 2023, Eq. 5-6): the camera-space
covariance ``W Σ W^T`` is pushed through the Jacobian of the perspective projection,
``Σ' = J W Σ W^T J^T``, then ``eps2d`` is added to its diagonal (a one-pixel low-pass filter).
The constants (near plane, eps2d, the Jacobian's FOV clamp, 3.33-sigma radii) are ``core.raster.conventions``.
Everything here is plain differentiable torch; culling decisions and radii are not differentiated.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.camera import Camera
from core.raster.conventions import ALPHA_THRESHOLD, EPS2D, FAR_PLANE, FOV_CLAMP_MARGIN, MAX_EXTEND, NEAR_PLANE
from core.scene import GaussianScene


@dataclass
class Projected:
    """Screen-space Gaussians for one camera. All tensors have leading dimension N.

    means2d [N, 2] pixels (x right, y down; pixel j's centre at j + 0.5); conics [N, 3] = (a, b, c)
    of the inverse 2D covariance [[a, b], [b, c]]; opacities [N] in (0, 1); depths [N] camera z;
    radii [N, 2] int32 footprint half-sizes in pixels (0 where culled); visible [N] bool.
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    opacities: torch.Tensor
    depths: torch.Tensor
    radii: torch.Tensor
    visible: torch.Tensor


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [N, 3, 3] from quaternions (w, x, y, z) [N, 4] (normalised here)."""
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(quats.shape[:-1] + (3, 3))


def covariances(quats: torch.Tensor, log_scales: torch.Tensor) -> torch.Tensor:
    """World-space covariances Σ = R S S^T R^T, [N, 3, 3]."""
    m = quat_to_rotmat(quats) * torch.exp(log_scales)[:, None, :]
    return m @ m.transpose(1, 2)


def camera_tensors(camera: Camera, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(rotation [3, 3], translation [3]) of the camera's world-to-camera transform."""
    w2c = torch.as_tensor(camera.world_to_camera, device=device, dtype=dtype)
    return w2c[:3, :3], w2c[:3, 3]


def project(scene: GaussianScene, camera: Camera, eps2d: float = EPS2D) -> Projected:
    """Project every Gaussian of ``scene`` into ``camera``; differentiable in the scene tensors."""
    rot, trans = camera_tensors(camera, scene.device, scene.means.dtype)
    mc = scene.means @ rot.T + trans  # [N, 3]
    x, y, z = mc.unbind(-1)
    in_depth = (z >= NEAR_PLANE) & (z <= FAR_PLANE)
    z_safe = torch.where(in_depth, z, torch.ones_like(z))
    rz = 1.0 / z_safe

    cov_c = rot @ covariances(scene.quats, scene.log_scales) @ rot.T  # [N, 3, 3]

    fx, fy, cx, cy = camera.fx, camera.fy, camera.cx, camera.cy
    w, h = camera.width, camera.height
    tan_fovx, tan_fovy = 0.5 * w / fx, 0.5 * h / fy
    lim_x_pos, lim_x_neg = (w - cx) / fx + FOV_CLAMP_MARGIN * tan_fovx, cx / fx + FOV_CLAMP_MARGIN * tan_fovx
    lim_y_pos, lim_y_neg = (h - cy) / fy + FOV_CLAMP_MARGIN * tan_fovy, cy / fy + FOV_CLAMP_MARGIN * tan_fovy
    tx = z_safe * torch.clamp(x * rz, -lim_x_neg, lim_x_pos)
    ty = z_safe * torch.clamp(y * rz, -lim_y_neg, lim_y_pos)
    zeros = torch.zeros_like(z)
    jac = torch.stack(
        [fx * rz, zeros, -fx * tx * rz * rz, zeros, fy * rz, -fy * ty * rz * rz], dim=-1
    ).reshape(-1, 2, 3)
    cov2d = jac @ cov_c @ jac.transpose(1, 2)  # [N, 2, 2]
    a = cov2d[:, 0, 0] + eps2d
    b = cov2d[:, 0, 1]
    c = cov2d[:, 1, 1] + eps2d
    det = a * c - b * b
    ok_det = det > 0
    det_safe = torch.where(ok_det, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)
    opacities = torch.sigmoid(scene.opacity_logits)

    with torch.no_grad():
        op = opacities.detach()
        extend = torch.clamp(torch.sqrt(2.0 * torch.log(torch.clamp_min(op / ALPHA_THRESHOLD, 1.0))), max=MAX_EXTEND)
        rx = torch.ceil(extend * torch.sqrt(torch.clamp_min(a.detach(), 0.0)))
        ry = torch.ceil(extend * torch.sqrt(torch.clamp_min(c.detach(), 0.0)))
        mx, my = means2d.detach().unbind(-1)
        on_screen = (mx + rx > 0) & (mx - rx < w) & (my + ry > 0) & (my - ry < h)
        visible = in_depth & ok_det & (op >= ALPHA_THRESHOLD) & ((rx > 0) | (ry > 0)) & on_screen
        visible &= torch.isfinite(means2d.detach()).all(-1) & torch.isfinite(conics.detach()).all(-1)
        radii = torch.where(visible[:, None], torch.stack([rx, ry], -1), torch.zeros_like(means2d)).to(torch.int32)

    return Projected(means2d, conics, opacities, z, radii, visible)


def view_directions(scene: GaussianScene, camera: Camera) -> torch.Tensor:
    """Unnormalised directions from the camera centre to each Gaussian, [N, 3]."""
    campos = torch.as_tensor(camera.position, device=scene.device, dtype=scene.means.dtype)
    return scene.means - campos
