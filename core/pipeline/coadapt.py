"""Co-adaptation after pruning (issue 18; NeuralGS §3.5 Eq. 5-7, LightGaussian §3.2 "co-adaptation").

Pruning removes Gaussians whose light the remaining ones never learned to carry. This stage trains the kept
Gaussians' attributes through the differentiable renderer against the targets, so that they fill the holes:
opacity logits, log-scales, rotations and SH coefficients (positions too when asked, at a small learning
rate; the codec then snaps them to its grid). The targets are the dataset's training images when the run
has them (never the held-out ones), otherwise renders of the original scene from the training views, so the
co-adapted scene learns to look like the original, not like its own pruned self.

Loss, per step on one training view (seeded random order, a fresh permutation every pass): Eq. 5
``(1 - λ_ssim) L1 + λ_ssim (1 - SSIM)`` plus ``λ_freq L_freq`` (Eq. 6-7), as the fine-tuning stage.
Optimiser: Adam with the graphdeco 3DGS per-attribute learning rates (opacity 0.05, scales 0.005, rotation
0.001, DC 0.0025, higher SH 0.0025 / 20, positions 1.6e-4 x the scene's extent), all scaled by
``config.coadapt_lr`` and decayed exponentially to ``COADAPT_LR_END`` of their start over the stage.

The stage trains copies: the caller's scene is never modified, so closing the generator mid-way (cancel)
leaves nothing half-trained behind. Measured on this 2-core CPU before it was built (issue 18): donut pruned
at 0.5 went from 38.86 to 41.02 dB (800-px held-out views) after 1000 steps at 256 px.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Generator

import torch

from core.errors import ConfigError
from core.pipeline.config import CompressionConfig
from core.pipeline.finetune import view_schedule
from core.pipeline.fit import exp_lr
from core.pipeline.losses import total_loss
from core.pipeline.progress import ProgressRecord, StageClock, Throttle
from core.pipeline.views import ViewSet
from core.render.api import render
from core.scene import GaussianScene

log = logging.getLogger(__name__)

BASE_LR = {"opacity_logits": 0.05, "log_scales": 0.005, "quats": 0.001, "sh_dc": 0.0025, "sh_rest": 0.0025 / 20.0}
"""graphdeco 3DGS's learning rates per attribute (train.py / arguments), before ``config.coadapt_lr``."""
POSITION_LR = 1.6e-4
"""graphdeco's position learning rate, per unit of the scene's extent."""
COADAPT_LR_END = 0.1
"""Each learning rate decays exponentially to this fraction of its start over the stage."""


@dataclass
class TrainResult:
    """The trained scene (detached, on the caller's device) and the image loss: (step, mean loss) every
    ``log_every`` steps."""

    scene: GaussianScene
    history: list[tuple[int, float]] = field(default_factory=list)


def scene_extent(means: torch.Tensor) -> float:
    """Radius of the positions' 1..99th-percentile box (world units): what the position learning rate scales by."""
    if means.shape[0] == 0:
        return 1.0
    q = torch.quantile(means[:: max(1, means.shape[0] // 100_000)].float(), torch.tensor([0.01, 0.99],
                                                                                            device=means.device), dim=0)
    return max(float((q[1] - q[0]).norm()) * 0.5, 1e-6)


def coadapt(scene: GaussianScene, views: ViewSet, config: CompressionConfig,
            steps: int | None = None) -> Generator[ProgressRecord, None, TrainResult]:
    """Train a copy of ``scene``'s attributes on ``views.train_*`` for ``steps`` (default
    ``config.coadapt_iters``); yields progress with ``total_loss`` (the image loss, for a live curve)."""
    total = config.coadapt_iters if steps is None else int(steps)
    if total <= 0:
        return TrainResult(scene.detach(), [])
    if views.n_train == 0:
        raise ConfigError("co-adaptation needs at least one training view")
    params = {name: getattr(scene, name).detach().clone().requires_grad_(True) for name in BASE_LR}
    means = scene.means.detach().clone()
    groups = [{"params": [params[n]], "name": n, "base": BASE_LR[n] * config.coadapt_lr} for n in BASE_LR]
    if config.coadapt_positions:
        means.requires_grad_(True)
        groups.append({"params": [means], "name": "means",
                       "base": POSITION_LR * scene_extent(means.detach()) * config.coadapt_lr})
    for g in groups:
        g["lr"] = g["base"]
    opt = torch.optim.Adam(groups, eps=1e-15)

    def current() -> GaussianScene:
        return GaussianScene(means, params["quats"], params["log_scales"], params["opacity_logits"], params["sh_dc"],
                             params["sh_rest"])

    history = yield from train_loop("coadapt", current, opt, views, config, total,
                                     f"co-adapting {scene.num_gaussians:,} Gaussians on {views.n_train} views")
    with torch.no_grad():
        out = current().detach()
    return TrainResult(GaussianScene(*(t.clone() for t in out.tensors())), history)


def train_loop(stage: str, build_scene, opt: torch.optim.Optimizer, views: ViewSet, config: CompressionConfig,
               total: int, first_message: str,
               penalty=None) -> Generator[ProgressRecord, None, list[tuple[int, float]]]:
    """The shared render-and-step loop of the learning stages (co-adaptation, quantisation-aware fine-tuning).

    ``build_scene()`` returns the scene to render, differentiable in the optimiser's parameters; every param
    group carries its start learning rate in ``"base"`` (decayed to ``COADAPT_LR_END`` of it). Returns the
    logged history [(step, mean image loss since the last log)]. ``penalty()``, when given, is called after
    ``build_scene()`` and its scalar added to the loss (not to the logged image loss)."""
    lam_freq = config.lambda_freq if config.use_freq_loss else 0.0
    schedule = view_schedule(views.n_train, total, config.seed)
    clock, throttle = StageClock(stage, total), Throttle()
    history: list[tuple[int, float]] = []
    window: list[float] = []
    yield clock.record(0, first_message)
    for step, v in enumerate(schedule):
        for g in opt.param_groups:
            g["lr"] = exp_lr(step, total, (g["base"], g["base"] * COADAPT_LR_END))
        opt.zero_grad(set_to_none=True)
        out = render(build_scene(), views.train_cameras[v], views.background, backend=config.render_backend,
                     with_depth=False)
        loss = total_loss(out.color, views.train_targets[v], config.lambda_ssim, lam_freq, config.freq_cutoff)
        window.append(float(loss.detach()))
        if penalty is not None:
            loss = loss + penalty()
        loss.backward()
        opt.step()
        done = step + 1
        logged = done % config.log_every == 0 or done == total
        if logged or throttle.due():
            mean = sum(window) / len(window)
            window.clear()
            if logged:
                history.append((done, mean))
            yield clock.record(done, f"step {done}/{total}: image loss {mean:.4g}", total_loss=mean)
    log.info("%s: %d steps on %d views, last image loss %s", stage, total, views.n_train,
             f"{history[-1][1]:.4g}" if history else "n/a")
    return history
