"""Quantisation-aware fine-tuning of the attributes a ``.ngs`` v2 file stores (issue 18; c3dgs §4, HAC §3.4).

Rate control first finds the residual step Δ at which the co-adapted attributes meet the target. This stage
then trains the attributes *through the quantiser* at a coarser step, so that what the decoder rebuilds
from the coarser symbols looks as good as the finer step did; rate control then searches again from there.

For Gaussian j of cluster c and attribute dimension d (normalised space, :mod:`core.codec.residuals`) the
decoder rebuilds

    ŷ_jd = p_cd + Δ_d s_{l_j} · round((y_jd - p_cd) / (Δ_d s_{l_j}))    for a coded dimension d,
    ŷ_jd = p_cd                                                        for a dimension left to the predictor,

with p the cluster's predictor (a constant: the fp16 mean of y over the cluster, recomputed every step as the
encoder computes it, so the trained values stay on the grid the file uses; or the MLP's output, fixed). The
forward pass renders exactly ŷ; the backward pass treats round() as the identity (straight-through
estimator, Bengio et al. 2013), so the gradient reaches y. The trainable values are the raw attributes
(as :func:`~core.neural_field.scene_to_attributes` lays them out) with graphdeco's per-attribute learning
rates (:data:`core.pipeline.coadapt.BASE_LR`) times :data:`QAT_LR_SCALE`. Loss and views as co-adaptation
(Eq. 5-7 on the training views), plus a rate term as in learned compression (Ballé et al. 2017): λ_rate times
the mean Laplace code length |r| / b of the residual symbols r = (y - p) / step (b: their mean magnitude per
cluster and dimension, held fixed within a step), which pulls attributes that the pictures do not need
towards their predictor. Returns the new true attributes (normalised, in the model's order) to encode.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Generator

import numpy as np
import torch

from core.codec.entropy import LAPLACE_RANGE
from core.codec.ngs_format_v2 import steps_per_dim
from core.codec.ngs_v2 import CodecSettings, EncodedV2, importance_levels
from core.neural_field import ConstantField, NeuralGSModel, attributes_to_scene, denormalise, normalise
from core.pipeline.coadapt import BASE_LR, train_loop
from core.pipeline.config import CompressionConfig
from core.pipeline.progress import ProgressRecord
from core.pipeline.views import ViewSet

log = logging.getLogger(__name__)

QAT_LR_SCALE = 0.3
"""QAT's learning rates relative to co-adaptation's. Measured on donut (prune 0.45, co-adapted, 150 steps, search
views at 800 px): scale 1.0 made the next search choose a finer step (203 KB against 195 KB before QAT), 0.1
gained little (193 KB), 0.3 with a rate term of 0.01 and 0.25 octave coarser training steps gave 190 KB."""
COLUMN_GROUPS = (("opacity_logits", slice(0, 1)), ("log_scales", slice(1, 4)), ("quats", slice(4, 7)),
                 ("sh_dc", slice(7, 10)), ("sh_rest", slice(10, None)))
"""Raw attribute columns (scene_to_attributes' layout) and the learning rate of :data:`BASE_LR` each uses."""


@dataclass
class QatResult:
    """target [N, D]: the trained true attributes (normalised, model order) to encode; history: (step, loss)."""

    target: torch.Tensor
    history: list[tuple[int, float]] = field(default_factory=list)


def _ste_round(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _ste_f16(x: torch.Tensor) -> torch.Tensor:
    return x + (x.clamp(-60000, 60000).half().float() - x).detach()


def element_steps(settings: CodecSettings, importance: torch.Tensor | None, n: int, sh_degree: int) -> torch.Tensor:
    """Δ_d s_{l_j} [n, D] float64 in the model's order (inf for dimensions left to the predictor), as
    :func:`core.codec.ngs_v2.encode_v2` computes it."""
    step_d = torch.from_numpy(steps_per_dim(settings.steps, sh_degree))
    imp = None if importance is None else importance.detach().cpu().double().numpy().reshape(-1)
    levels = importance_levels(imp, n, settings.level_fractions) if settings.coded else np.zeros(n, np.int64)
    level_steps = np.asarray(settings.level_steps if settings.coded else (1.0,), np.float32).astype(np.float64)
    mult = torch.from_numpy(level_steps[levels])
    return step_d[None, :] * mult[:, None]


def quantisation_aware(model: NeuralGSModel, target: torch.Tensor, importance: torch.Tensor | None,
                       encoded: EncodedV2, settings: CodecSettings, views: ViewSet, config: CompressionConfig,
                       steps: int | None = None) -> Generator[ProgressRecord, None, QatResult]:
    """Train ``target`` [N, D] (normalised, ``model``'s order) so that the file ``encoded`` (``model`` encoded
    with ``settings``: its predictors and positions) decodes to a scene that matches the training views."""
    total = config.qat_iters if steps is None else int(steps)
    if total <= 0 or not settings.coded:
        return QatResult(target.detach().clone(), [])
    dev = target.device
    order = torch.from_numpy(encoded.order).to(dev)
    dec = encoded.model
    lo, hi = dec.attr_lo.to(dev), dec.attr_hi.to(dev)
    step = element_steps(settings, importance, model.num_gaussians, model.arch.sh_degree)[order.cpu()].to(dev)
    coded = torch.isfinite(step[0]) if step.shape[0] else torch.zeros(step.shape[1], dtype=torch.bool)
    step = torch.where(torch.isfinite(step), step, torch.ones_like(step)).float()
    offs = dec.cluster_offsets()
    constant = [isinstance(f, ConstantField) for f in dec.fields]
    with torch.no_grad():
        fixed = dec.predict_normalised() if dec.residual is None else dec.predict_normalised() - dec.residual.to(dev)
    positions = dec.positions.to(dev)
    raw = denormalise(target[order].detach().float(), lo, hi)
    params = {name: raw[:, sl].clone().requires_grad_(True) for name, sl in COLUMN_GROUPS}
    groups = [{"params": [params[name]], "base": BASE_LR[name] * config.coadapt_lr * QAT_LR_SCALE}
              for name, _ in COLUMN_GROUPS]
    opt = torch.optim.Adam(groups, eps=1e-15)
    state: dict[str, torch.Tensor] = {}
    coded_idx = torch.nonzero(coded).flatten()

    def decoded_normalised() -> torch.Tensor:
        y = normalise(torch.cat([params[name] for name, _ in COLUMN_GROUPS], dim=1), lo, hi)
        preds = []
        for c in range(dec.n_clusters):
            yc = y[offs[c]: offs[c + 1]]
            if constant[c]:  # the encoder's constant: the fp16 mean of the cluster's true values
                preds.append(_ste_f16(yc.mean(dim=0, keepdim=True)).expand_as(yc))
            else:
                preds.append(fixed[offs[c]: offs[c + 1]])
        p = torch.cat(preds) if preds else y
        r = (y - p) / step
        state["r"] = r[:, coded_idx]
        q = _ste_round(r).clamp(-LAPLACE_RANGE, LAPLACE_RANGE)
        return torch.where(coded[None, :], p + q * step, p)

    def rate() -> torch.Tensor:
        """The rate term: λ_rate x mean over coded symbols of |r| / b (Laplace code length up to constants, in
        nats; b = mean |r| per cluster and dimension, held fixed in the step)."""
        r = state["r"]
        if r.numel() == 0:
            return r.sum()
        terms = []
        for c in range(dec.n_clusters):
            rc = r[offs[c]: offs[c + 1]]
            if rc.shape[0]:
                b = rc.detach().abs().mean(dim=0).clamp_min(0.05)
                terms.append((rc.abs() / b).sum())
        return config.qat_rate_lambda * torch.stack(terms).sum() / r.numel()

    def current():
        return attributes_to_scene(positions, denormalise(decoded_normalised(), lo, hi), dec.arch.sh_degree)

    history = yield from train_loop("qat", current, opt, views, config, total,
                                     f"quantisation-aware fine-tuning of {model.num_gaussians:,} Gaussians",
                                     rate if config.qat_rate_lambda > 0 and coded_idx.numel() else None)
    with torch.no_grad():
        y = normalise(torch.cat([params[name] for name, _ in COLUMN_GROUPS], dim=1), lo, hi)
        out = torch.empty_like(y)
        out[order] = y
    return QatResult(out.to(target.dtype), history)
