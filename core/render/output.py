"""What every render backend returns: :class:`RenderOutput` (its own module, so that the backends and
the dispatcher ``core.render.api`` import it without importing each other)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class RenderOutput:
    """One rendered view. color [H, W, 3] (background composited, not clamped), alpha [H, W] in [0, 1],
    depth [H, W]: expected camera-space depth of the visible surface (0 where alpha is 0).
    ``backend``: the backend that rendered it ("cpu", "gsplat", "reference"); ``n_visible``: the
    number of Gaussians that passed culling (-1 when unknown)."""

    color: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    backend: str
    n_visible: int = -1
