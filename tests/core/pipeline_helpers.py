"""Tiny scenes and configurations shared by the pipeline tests (the ``single_thread`` fixture they use is in
tests/core/conftest.py)."""

from __future__ import annotations

import torch

from core.camera import Camera
from core.pipeline import config_from_preset
from core.scene import SH_REST_COUNTS, GaussianScene


def smooth_attributes(pos: torch.Tensor, dim: int = 10, seed: int = 0) -> torch.Tensor:
    """[N, dim] attributes that are smooth functions of position [N, 3]: learnable by a tiny MLP."""
    a = torch.randn(3, dim, generator=torch.Generator().manual_seed(seed)) * 2.0
    return torch.sin(pos @ a) + 0.5 * torch.cos(2.0 * pos @ a.flip(1))


def tiny_scene(n: int = 300, seed: int = 0, degree: int = 0, spread: float = 0.5) -> GaussianScene:
    """n random, fairly opaque Gaussians in a ball of radius ~``spread`` around the origin."""
    g = torch.Generator().manual_seed(seed)
    return GaussianScene(
        means=torch.randn(n, 3, generator=g) * spread,
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.randn(n, 3, generator=g) * 0.3 - 2.5,
        opacity_logits=torch.randn(n, generator=g) + 1.0,
        sh_dc=torch.randn(n, 3, generator=g) * 0.8,
        sh_rest=torch.randn(n, SH_REST_COUNTS[degree], 3, generator=g) * 0.1,
    )


def tiny_config(**overrides):
    """A seconds-scale configuration: 32x32 views, small MLPs, few iterations. Held-out views are as small
    as the training views (``eval_size`` = ``image_size`` unless given), not the protocol's 800 px."""
    base = dict(n_clusters=3, hidden=16, layers=3, pe_freqs=2, fit_iters=30, finetune_iters=6, n_views=6,
                n_test_views=2, image_size=32, kmeans_iters=10, log_every=5, device="cpu", render_backend="cpu")
    base["eval_size"] = overrides.get("image_size", base["image_size"])
    return config_from_preset("preview", **{**base, **overrides})


def front_camera(size: int = 32, distance: float = 3.0) -> Camera:
    return Camera.look_at([0.0, 0.0, -distance], [0, 0, 0], [0, -1, 0], 50.0, size, size)

