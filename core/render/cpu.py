"""CPU backend: torch projection and SH, numba tile blending inside a ``torch.autograd.Function``."""

from __future__ import annotations

import numpy as np
import torch

from core.raster.tiles import bin_footprints, tile_grid
from core.render import cpu_kernels
from core.render.projection import Projected


def _np32(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())


def tile_lists(proj: Projected, width: int, height: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(tile_offsets [T+1] int64, tile_gaussians [P] int32, tiles_x) for the visible Gaussians: tile t's
    Gaussians, front to back (stable in camera z), are tile_gaussians[tile_offsets[t]:tile_offsets[t + 1]].

    A Gaussian enters every tile its radii box ``means2d +- radii`` (pixels) overlaps, gsplat's rule
    (``core.raster.tiles.bin_footprints`` with ``inclusive_end=False``).
    """
    tiles_x, tiles_y = tile_grid(width, height)
    vis = proj.visible.detach().cpu().numpy()
    idx = np.nonzero(vis)[0]
    depths = proj.depths.detach().cpu().numpy()[idx]
    order = idx[np.argsort(depths, kind="stable")].astype(np.int64)
    means2d, radii = _np32(proj.means2d.T), np.ascontiguousarray(proj.radii.cpu().numpy().T)  # [2, N] each
    offsets, gaussians = bin_footprints(means2d[0], means2d[1], radii[0], radii[1], order, tiles_x, tiles_y, False)
    return offsets, gaussians, tiles_x


class _BlendFunction(torch.autograd.Function):
    """Differentiable blending: (means2d, conics, opacities, feats) -> (out [H,W,C], alpha [H,W])."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, feats, background, tiles, width, height):
        offsets, gaussians, tiles_x = tiles
        arrays = (_np32(means2d), _np32(conics), _np32(opacities), _np32(feats), _np32(background))
        out, t_final, last = cpu_kernels.blend_forward(*arrays, offsets, gaussians, width, height, tiles_x)
        ctx.arrays = arrays
        ctx.tiles = tiles
        ctx.size = (width, height)
        ctx.t_final, ctx.last = t_final, last
        ctx.device, ctx.dtype = means2d.device, means2d.dtype
        alpha = torch.from_numpy(1.0 - t_final)
        return torch.from_numpy(out).to(ctx.device, ctx.dtype), alpha.to(ctx.device, ctx.dtype)

    @staticmethod
    def backward(ctx, grad_out, grad_alpha):
        offsets, gaussians, tiles_x = ctx.tiles
        width, height = ctx.size
        g_out = (_np32(grad_out) if grad_out is not None
                 else np.zeros((height, width, ctx.arrays[3].shape[1]), np.float32))
        g_alpha = _np32(grad_alpha) if grad_alpha is not None else np.zeros((height, width), np.float32)
        g_means, g_conics, g_op, g_feats = cpu_kernels.blend_backward(
            *ctx.arrays, offsets, gaussians, width, height, tiles_x, ctx.t_final, ctx.last, g_out, g_alpha
        )
        conv = lambda a: torch.from_numpy(a).to(ctx.device, ctx.dtype)
        return conv(g_means), conv(g_conics), conv(g_op), conv(g_feats), None, None, None, None


def blend(proj: Projected, feats: torch.Tensor, background: torch.Tensor, width: int, height: int):
    """Blend projected Gaussians' features [N, C] over ``background`` [C]: (out [H,W,C], alpha [H,W])."""
    tiles = tile_lists(proj, width, height)
    return _BlendFunction.apply(proj.means2d, proj.conics, proj.opacities, feats, background, tiles, width, height)
