"""Real spherical harmonics up to degree 3, with graphdeco 3DGS / gsplat basis and signs.

Colour of a Gaussian seen along unit direction d (from the camera centre to the Gaussian):
``rgb = max(sum_k  Y_k(d) * coeffs[k] + 0.5, 0)`` (graphdeco's ``SH2RGB`` offset; gsplat's
``rasterization`` clamps at 0 the same way).
"""

from __future__ import annotations

import torch

from core.scene import SH_C0, SH_C1, SH_C2, SH_C3



def sh_basis(degree: int, dirs: torch.Tensor) -> torch.Tensor:
    """SH basis values at unit directions ``dirs`` [..., 3] -> [..., (degree+1)^2]."""
    if degree not in (0, 1, 2, 3):
        raise ValueError(f"SH degree must be 0-3, got {degree}")
    ones = torch.ones_like(dirs[..., 0])
    out = [SH_C0 * ones]
    if degree >= 1:
        x, y, z = dirs.unbind(-1)
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
        if degree >= 2:
            xx, yy, zz = x * x, y * y, z * z
            xy, yz, xz = x * y, y * z, x * z
            out += [
                SH_C2[0] * xy,
                SH_C2[1] * yz,
                SH_C2[2] * (2.0 * zz - xx - yy),
                SH_C2[3] * xz,
                SH_C2[4] * (xx - yy),
            ]
            if degree >= 3:
                out += [
                    SH_C3[0] * y * (3 * xx - yy),
                    SH_C3[1] * xy * z,
                    SH_C3[2] * y * (4 * zz - xx - yy),
                    SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
                    SH_C3[4] * x * (4 * zz - xx - yy),
                    SH_C3[5] * z * (xx - yy),
                    SH_C3[6] * x * (xx - 3 * yy),
                ]
    return torch.stack(out, dim=-1)


def eval_sh_colors(coeffs: torch.Tensor, dirs: torch.Tensor, degree: int | None = None) -> torch.Tensor:
    """View-dependent RGB from SH.

    coeffs: [N, K, 3] with K = (d+1)^2 (DC first); dirs: [N, 3] (need not be unit length);
    degree: evaluate only up to this degree (default: all of ``coeffs``). Returns [N, 3] >= 0.
    """
    k = coeffs.shape[1]
    full_degree = {1: 0, 4: 1, 9: 2, 16: 3}.get(k)
    if full_degree is None:
        raise ValueError(f"SH coefficient count {k} is not (d+1)^2 for d in 0-3")
    degree = full_degree if degree is None else min(degree, full_degree)
    nk = (degree + 1) ** 2
    unit = torch.nn.functional.normalize(dirs, dim=-1)
    basis = sh_basis(degree, unit)  # [N, nk]
    rgb = (basis[..., None] * coeffs[:, :nk, :]).sum(dim=1)
    return torch.clamp_min(rgb + 0.5, 0.0)
