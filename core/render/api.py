"""The renderer interface shared by every backend."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import torch

from core.camera import Camera
from core.render.projection import project, view_directions
from core.render.sh import eval_sh_colors
from core.scene import GaussianScene

log = logging.getLogger(__name__)

BACKENDS = ("auto", "cpu", "gsplat", "reference")


@dataclass
class RenderOutput:
    """One rendered view. color [H, W, 3] (background composited, not clamped), alpha [H, W] in [0, 1],
    depth [H, W]: expected camera-space depth of the visible surface (0 where alpha is 0)."""

    color: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    backend: str
    n_visible: int = -1


def _background_tensor(background, n_channels: int, device, dtype) -> torch.Tensor:
    bg = torch.as_tensor(background, dtype=dtype, device=device).reshape(-1)
    if bg.numel() != 3:
        raise ValueError(f"background must have 3 values (RGB), got {bg.numel()}")
    if n_channels > 3:
        bg = torch.cat([bg, bg.new_zeros(n_channels - 3)])
    return bg


def resolve_backend(backend: str, device: torch.device | str = "cpu") -> str:
    """The concrete backend for a request: "auto" becomes "gsplat" when usable for ``device``, else "cpu"."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown render backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        from core.render import gsplat_backend

        return "gsplat" if torch.device(device).type == "cuda" and gsplat_backend.available() else "cpu"
    return backend


def render(
    scene: GaussianScene,
    camera: Camera,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    backend: str = "auto",
    sh_degree: int | None = None,
    with_depth: bool = True,
) -> RenderOutput:
    """Render ``scene`` from ``camera``; differentiable with respect to the scene's tensors.

    background: RGB in [0, 1]; sh_degree: evaluate SH only up to this degree (default: all);
    backend: see ``BACKENDS``. The "gsplat" backend needs CUDA; "auto" falls back to "cpu".
    """
    which = resolve_backend(backend, scene.device)
    if which == "gsplat":
        from core.render import gsplat_backend

        out = gsplat_backend.render(scene, camera, background, sh_degree, with_depth)
        if out is not None:
            return out
        if backend == "gsplat":
            raise RuntimeError(f"gsplat backend unavailable: {gsplat_backend.unavailable_reason()}")
        which = "cpu"
    if which == "reference":
        from core.render.reference import render_reference

        return render_reference(scene, camera, background, sh_degree, with_depth)
    return _render_cpu(scene, camera, background, sh_degree, with_depth)


def _render_cpu(scene, camera, background, sh_degree, with_depth) -> RenderOutput:
    from core.render.cpu import blend

    proj = project(scene, camera)
    colors = eval_sh_colors(scene.sh_coeffs(), view_directions(scene, camera), sh_degree)
    feats = torch.cat([colors, proj.depths[:, None]], dim=1) if with_depth else colors
    bg = _background_tensor(background, feats.shape[1], scene.device, scene.means.dtype)
    out, alpha = blend(proj, feats, bg, camera.width, camera.height)
    return _finish(out, alpha, with_depth, "cpu", int(proj.visible.sum()))


def _finish(out: torch.Tensor, alpha: torch.Tensor, with_depth: bool, backend: str, n_visible: int) -> RenderOutput:
    """Split blended features [H, W, 3 (+1)] into colour and expected depth."""
    color = out[..., :3]
    if with_depth:
        depth = torch.where(alpha > 0, out[..., 3] / alpha.clamp_min(1e-10), torch.zeros_like(alpha))
    else:
        depth = torch.zeros_like(alpha)
    return RenderOutput(color, alpha, depth, backend, n_visible)


def contribution_weights(scene: GaussianScene, camera: Camera, backend: str = "auto") -> torch.Tensor:
    """Per-Gaussian sum over this view's pixels of its blending weight alpha_i * T_i, [N] (no grad).

    This is the inner sum of NeuralGS Eq. 2 for one view: the gradient of the rendered image's sum
    with respect to a per-Gaussian colour of ones.
    """
    which = resolve_backend(backend, scene.device)
    s = scene.detach()
    ones = torch.ones(s.num_gaussians, 1, device=s.device, dtype=s.means.dtype, requires_grad=True)
    if which == "gsplat":
        from core.render import gsplat_backend

        out = gsplat_backend.render_features(s, camera, ones)
        if out is None:
            if backend == "gsplat":
                raise RuntimeError(f"gsplat backend unavailable: {gsplat_backend.unavailable_reason()}")
            which = "cpu"
    if which in ("cpu", "reference"):
        from core.render.cpu import blend

        proj = project(s, camera)
        out, _ = blend(proj, ones, ones.new_zeros(1), camera.width, camera.height)
    out.sum().backward()
    return ones.grad[:, 0].detach()
