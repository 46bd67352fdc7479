"""Global importance (paper §3.3, Eq. 2-3) and importance-based pruning (DESIGN §5, stages 2-3).

S_j = V_norm(j)^beta * sum over training views and pixels of alpha_j * T_j (Eq. 2), with
V = product of the activated scales and V_norm = clip(V / V_90, 0, 1) (Eq. 3), V_90 the 90th
percentile of the volumes (DESIGN: "normalised by the 90th-percentile volume"; LightGaussian's
"90% largest"). Units of S: pixels (summed blending weight), scaled by a factor in [0, 1].
"""

from __future__ import annotations

import logging
from typing import Generator, Sequence

import torch

from core.camera import Camera
from core.pipeline.progress import ProgressRecord, StageClock
from core.render.api import contribution_weights
from core.scene import GaussianScene

log = logging.getLogger(__name__)


def volume_factor(log_scales: torch.Tensor, beta: float, percentile: float = 90.0) -> torch.Tensor:
    """V_norm^beta [N] (Eq. 3) from log-scales [N, 3], computed in log space (volumes underflow float32)."""
    log_v = log_scales.sum(dim=1)  # log of the product of the three standard deviations
    if log_v.numel() == 0:
        return log_v
    sample = log_v if log_v.numel() <= 1_000_000 else log_v[:: -(-log_v.numel() // 1_000_000)]  # quantile's limit
    log_v90 = torch.quantile(sample.double(), percentile / 100.0).to(log_v.dtype)
    return torch.exp(beta * torch.clamp(log_v - log_v90, max=0.0))


def importance_scores(scene: GaussianScene, cameras: Sequence[Camera], beta: float = 0.1,
                      backend: str = "auto") -> Generator[ProgressRecord, None, torch.Tensor]:
    """Stage 2: global importance S [N] (Eq. 2) of every Gaussian over ``cameras``; one record per view."""
    clock = StageClock("importance", len(cameras))
    total = torch.zeros(scene.num_gaussians, dtype=torch.float64, device=scene.device)
    yield clock.record(0, "accumulating blending weights")
    for i, cam in enumerate(cameras):
        total += contribution_weights(scene, cam, backend=backend).double()  # Eq. 2 inner sum, one view
        yield clock.record(i + 1, f"view {i + 1}/{len(cameras)}")
    scores = (total * volume_factor(scene.log_scales.detach(), beta).double()).to(scene.means.dtype)
    log.info("importance: %d Gaussians, %d never visible, max %.3g", scene.num_gaussians,
             int((total == 0).sum()), float(scores.max()) if scores.numel() else 0.0)
    return scores


def prune_index(importance: torch.Tensor, ratio: float) -> torch.Tensor:
    """Indices [M] (ascending) of the ``round((1 - ratio) * N)`` most important Gaussians (at least one).

    Ties are broken by index (stable sort), so the result is deterministic.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"prune ratio must be in [0, 1), got {ratio}")
    n = importance.shape[0]
    keep = max(1, min(n, int(round((1.0 - ratio) * n))))
    order = torch.sort(-importance, stable=True).indices[:keep]
    return torch.sort(order).values


def prune(scene: GaussianScene, importance: torch.Tensor, ratio: float) -> tuple[GaussianScene, torch.Tensor]:
    """Stage 3: (kept scene, kept indices [M] into ``scene``), keeping the (1 - ratio) most important."""
    idx = prune_index(importance, ratio)
    return scene.subset(idx), idx
