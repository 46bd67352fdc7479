"""Fine-tuning through the differentiable renderer (paper §3.5, Eq. 5-7; DESIGN §5 stage 6).

Positions stay fixed; only the per-cluster MLPs are trained. Each step renders
``model.decode()`` (differentiable in the MLP weights) from one training view and minimises
(1 - lambda) L1 + lambda (1 - SSIM) + lambda_freq L_freq against its target. Views are visited in
seeded random order (a fresh permutation every pass over the views). Adam, lr decaying
exponentially (supplement: 3e-4 -> 6e-6).

The stage works on a copy of the model: the caller's model is never modified, so closing the
generator mid-way leaves nothing half-trained behind. At the end the MLP weights are rounded to
fp16 (what the .ngs file stores), so that every later evaluation sees exactly the stored model.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Generator

import torch

from core.errors import ConfigError
from core.codec.ngs import quantise_model_weights_
from core.neural_field import NeuralGSModel
from core.pipeline.config import CompressionConfig
from core.pipeline.fit import exp_lr
from core.pipeline.losses import total_loss
from core.pipeline.progress import ProgressRecord, StageClock, Throttle
from core.pipeline.views import ViewSet
from core.render.api import render

log = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    """The fine-tuned (fp16-rounded) model and its loss history: (step, total loss) every ``log_every`` steps."""

    model: NeuralGSModel
    history: list[tuple[int, float]] = field(default_factory=list)


def copy_model(model: NeuralGSModel) -> NeuralGSModel:
    """A copy whose MLPs can be trained without touching ``model`` (positions and boxes are shared, read-only)."""
    return NeuralGSModel(model.arch, model.positions, list(model.cluster_sizes),
                         [copy.deepcopy(f) for f in model.fields], model.pos_lo, model.pos_hi,
                         model.attr_lo, model.attr_hi, dict(model.meta))


def view_schedule(n_views: int, n_steps: int, seed: int) -> list[int]:
    """Training-view index per step: concatenated seeded random permutations of the views."""
    gen = torch.Generator().manual_seed(int(seed) + 1)
    out: list[int] = []
    while len(out) < n_steps:
        out.extend(torch.randperm(n_views, generator=gen).tolist())
    return out[:n_steps]


def finetune(model: NeuralGSModel, views: ViewSet,
             config: CompressionConfig) -> Generator[ProgressRecord, None, FinetuneResult]:
    """Stage 6: fine-tune a copy of ``model`` on ``views.train_*``; yields the loss every ``log_every`` steps."""
    work = copy_model(model)
    total = config.finetune_iters
    if total > 0 and views.n_train == 0:
        raise ConfigError("fine-tuning needs at least one training view")
    params = [p for f in work.fields for p in f.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=config.finetune_lr[0])
    lam_freq = config.lambda_freq if config.use_freq_loss else 0.0
    schedule = view_schedule(views.n_train, total, config.seed)
    clock, throttle = StageClock("finetune", total), Throttle()
    history: list[tuple[int, float]] = []
    window: list[float] = []
    yield clock.record(0, f"fine-tuning {work.n_clusters} MLPs on {views.n_train} views")
    for step, v in enumerate(schedule):
        for g in opt.param_groups:
            g["lr"] = exp_lr(step, total, config.finetune_lr)
        opt.zero_grad(set_to_none=True)
        out = render(work.decode(), views.train_cameras[v], views.background, backend=config.render_backend,
                     with_depth=False)
        loss = total_loss(out.color, views.train_targets[v], config.lambda_ssim, lam_freq, config.freq_cutoff)
        loss.backward()
        opt.step()
        window.append(float(loss.detach()))
        done = step + 1
        logged = done % config.log_every == 0 or done == total
        if logged or throttle.due():
            mean = sum(window) / len(window)  # mean over the views since the last record: less noisy
            window.clear()
            if logged:
                history.append((done, mean))
            yield clock.record(done, f"step {done}/{total}: loss {mean:.4g}", total_loss=mean)
    quantise_model_weights_(work)  # the fp16 values the .ngs file stores
    for p in params:
        p.requires_grad_(False)
    log.info("finetune: %d steps on %d views, last loss %s", total, views.n_train,
             f"{history[-1][1]:.4g}" if history else "n/a")
    return FinetuneResult(work, history)
