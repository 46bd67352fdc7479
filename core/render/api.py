"""The renderer interface shared by every backend: ``render``, ``contribution_weights`` and the
backend choice (``resolve_backend``, with one gsplat -> CPU fallback rule, ``_dispatch``)."""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import torch

from core.camera import Camera
from core.render.output import RenderOutput
from core.render.projection import project, view_directions
from core.render.sh import eval_sh_colors
from core.scene import GaussianScene

log = logging.getLogger(__name__)

BACKENDS = ("auto", "cpu", "gsplat", "reference")

__all__ = ["BACKENDS", "RenderOutput", "contribution_weights", "render", "resolve_backend"]


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


def _dispatch(backend: str, device, gsplat_call: Callable, cpu_call: Callable, reference_call: Callable | None = None):
    """Run the request on the backend ``backend`` resolves to (see ``resolve_backend``), the one place
    that falls back from gsplat to the CPU backend.

    ``gsplat_call(gsplat_backend_module)`` returns None when gsplat cannot run here: then, for
    ``backend="auto"``, ``cpu_call()`` runs instead; for ``backend="gsplat"`` it is a RuntimeError with
    the reason. "reference" runs ``reference_call()``, or ``cpu_call()`` when there is none.
    """
    which = resolve_backend(backend, device)
    if which == "gsplat":
        from core.render import gsplat_backend

        out = gsplat_call(gsplat_backend)
        if out is not None:
            return out
        if backend == "gsplat":
            raise RuntimeError(f"gsplat backend unavailable: {gsplat_backend.unavailable_reason()}")
    elif which == "reference" and reference_call is not None:
        return reference_call()
    return cpu_call()


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
    def reference() -> RenderOutput:
        from core.render.reference import render_reference

        return render_reference(scene, camera, background, sh_degree, with_depth)

    return _dispatch(backend, scene.device,
                     lambda gsplat: gsplat.render(scene, camera, background, sh_degree, with_depth),
                     lambda: _render_cpu(scene, camera, background, sh_degree, with_depth), reference)


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
    s = scene.detach()
    ones = torch.ones(s.num_gaussians, 1, device=s.device, dtype=s.means.dtype, requires_grad=True)

    def cpu() -> torch.Tensor:
        from core.render.cpu import blend

        return blend(project(s, camera), ones, ones.new_zeros(1), camera.width, camera.height)[0]

    out = _dispatch(backend, scene.device, lambda gsplat: gsplat.render_features(s, camera, ones), cpu)
    out.sum().backward()
    return ones.grad[:, 0].detach()
