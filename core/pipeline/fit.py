"""Cluster-based neural field fitting (paper §3.4, Eq. 4; DESIGN §5 stage 5).

One :class:`~core.neural_field.ClusterField` per cluster maps the normalised position (the box of
the kept positions; positions are snapped to the 16-bit grid of that box that the .ngs file
stores, so fitting and fine-tuning see the stored positions) to the normalised attributes
(per-dimension min/max over the kept Gaussians, or robust percentiles with clipping). Loss per
cluster P (Eq. 4, with the squared L2 norm averaged over the D dimensions: the paper's text calls
it an MSE loss):

    L_P = sum_{j in P} S_j * sum_d w_d (F(pos_j) - GS_j)_d^2 / sum_{j in P} S_j

with w_d = 1/D (``attr_weights="uniform"``, the paper) or per-attribute-group shares
(:func:`attribute_dim_weights`: with uniform weights the 45 higher-SH dimensions of an SH-3 scene
get 45 times opacity's say, though opacity errors cost far more in the renders).

Minibatches (``fit_batch_size`` > 0, clusters larger than it) sample Gaussians with probability
S_j / sum S (with replacement) and average the plain squared error: an unbiased estimate of L_P
with lower variance than uniform sampling with weights. Adam over all MLPs at once (each MLP only
receives its own cluster's gradient), lr decaying exponentially (supplement: 1e-3 -> 8e-5). On a
CPU a plain loop over clusters on cluster-sorted slices is the fastest form (DESIGN §10).

Clusters are ordered by decreasing size (cluster 0 = largest; ties by k-means label) and the
Gaussians sorted by cluster: the NeuralGSModel invariant and the progressive-loading order.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Generator

import torch

from core.codec.ngs import quantise_model_positions_
from core.neural_field import ATTR_SLICES, ClusterField, FieldArch, NeuralGSModel, normalise
from core.pipeline.config import CompressionConfig
from core.pipeline.kmeans import feature_range
from core.pipeline.progress import ProgressRecord, StageClock, Throttle

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """The fitted model and how it got there.

    order [M]: model row i is input row order[i]; weights [M]: importance in model order;
    history: (step, {cluster: loss}) every ``log_every`` steps (the loss of that step's batch: exact
    for full batches, an estimate with minibatches); final_losses: exact (full-batch) per-cluster
    Eq. 4 loss of the final MLPs.
    """

    model: NeuralGSModel
    order: torch.Tensor
    weights: torch.Tensor
    history: list[tuple[int, dict[int, float]]] = field(default_factory=list)
    final_losses: dict[int, float] = field(default_factory=dict)


def exp_lr(step: int, total: int, lr: tuple[float, float]) -> float:
    """Exponential decay from lr[0] at step 0 to lr[1] at step total - 1."""
    if total <= 1:
        return lr[0]
    return lr[0] * (lr[1] / lr[0]) ** (step / (total - 1))


def init_field(arch: FieldArch, gen: torch.Generator) -> ClusterField:
    """A ClusterField with PyTorch's default Linear initialisation U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    drawn from ``gen`` so that results do not depend on (or disturb) the global RNG."""
    f = ClusterField(arch)
    with torch.no_grad():
        for lin in f.linears:
            bound = 1.0 / math.sqrt(lin.in_features)
            lin.weight.uniform_(-bound, bound, generator=gen)
            lin.bias.uniform_(-bound, bound, generator=gen)
    return f


def cluster_order(labels: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """(order [M], sizes [K']): Gaussians sorted by cluster, clusters by decreasing size (empty ones dropped).

    Ties in size keep the k-means label order; within a cluster the input order is kept (stable).
    """
    counts = torch.bincount(labels.cpu())
    by_size = sorted((c for c in range(counts.numel()) if counts[c] > 0), key=lambda c: (-int(counts[c]), c))
    rank = torch.full((counts.numel(),), -1, dtype=torch.int64)
    rank[torch.tensor(by_size, dtype=torch.int64)] = torch.arange(len(by_size))
    new_labels = rank[labels.cpu()]
    order = torch.sort(new_labels, stable=True).indices
    return order.to(labels.device), [int(counts[c]) for c in by_size]


def attribute_box(attrs: torch.Tensor, range_pct: float, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(attr_lo [D], attr_hi [D]) for the normalisation, widened by ``margin`` x range on each side."""
    lo, hi = feature_range(attrs, range_pct)
    pad = (hi - lo) * margin
    return lo - pad, hi + pad


# Relative weight of each attribute group in Eq. 4 under ``attr_weights="render"``: proportional to how
# much rendering quality each group costs when it alone is replaced by its fitted value (measured on
# lego-3dgs after 600 fitting steps, K 8, width 64, against the held-out images: opacity -13.0 dB,
# log-scales -8.6, rotation -5.1, DC colour -5.7, higher SH -0.8; the pruned scene is 34.7 dB).
RENDER_GROUP_WEIGHTS = {"opacity": 0.39, "log_scales": 0.26, "quat_xyz": 0.15, "sh_dc": 0.17, "sh_rest": 0.03}


def attribute_dim_weights(dim: int, mode: str, device=None) -> torch.Tensor:
    """Weights [D] (summing to 1) of the attribute dimensions in Eq. 4's mean over dimensions.

    "uniform": 1/D each (the paper's plain MSE, where the 45 higher-SH dimensions of an SH-3 scene
    outweigh opacity 45 to 1); "groups": each attribute group (opacity, log-scales, rotation, DC
    colour, higher SH) gets an equal share, split evenly over its dimensions; "render": the shares
    of :data:`RENDER_GROUP_WEIGHTS`. Groups absent at SH degree 0 (no higher SH) drop out.
    """
    if mode == "uniform":
        return torch.full((dim,), 1.0 / dim, device=device)
    groups = dict(ATTR_SLICES)
    if dim > 10:
        groups["sh_rest"] = slice(10, dim)
    w = torch.zeros(dim, device=device)
    for name, sl in groups.items():
        share = 1.0 if mode == "groups" else RENDER_GROUP_WEIGHTS[name]
        w[sl] = share / (sl.stop - sl.start)
    return w / w.sum()


def _cluster_weights(weights: torch.Tensor, offsets: list[int]) -> torch.Tensor:
    """Weights normalised to sum 1 within each cluster (uniform for a cluster whose weights sum to 0)."""
    out = weights.clone().double()
    for a, b in zip(offsets[:-1], offsets[1:]):
        s = float(out[a:b].sum())
        out[a:b] = out[a:b] / s if s > 0 else 1.0 / (b - a)
    return out.to(weights.dtype)


@torch.no_grad()
def cluster_losses(model: NeuralGSModel, targets: torch.Tensor, weights: torch.Tensor,
                   dim_weights: torch.Tensor) -> dict[int, float]:
    """Exact Eq. 4 loss per cluster, {cluster: loss}; weights [M] normalised per cluster, model order;
    dim_weights [D] summing to 1 (:func:`attribute_dim_weights`)."""
    pred = model.predict_normalised()
    err = (((pred - targets) ** 2) @ dim_weights) * weights
    offs = model.cluster_offsets()
    return {c: float(err[offs[c]: offs[c + 1]].sum()) for c in range(model.n_clusters)}


def short_box(lo: torch.Tensor, hi: torch.Tensor, digits: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """The box [lo, hi] widened to values of ``digits`` significant decimal digits (lo rounded down, hi up):
    the same normalisation within a fraction of a percent, and half the characters in a file's header
    (its 2 D attribute bounds were 1.4 KB of a 3.6 KB SH-3 file)."""
    def rnd(x: torch.Tensor, up: bool) -> torch.Tensor:
        v = x.double()
        mag = torch.where(v != 0, torch.floor(torch.log10(v.abs().clamp_min(1e-30))), torch.zeros_like(v))
        scale = 10.0 ** (digits - 1 - mag)
        r = (torch.ceil(v * scale) if up else torch.floor(v * scale)) / scale
        return r.to(x.dtype)

    lo2, hi2 = rnd(lo, False), rnd(hi, True)
    return torch.minimum(lo2, lo), torch.maximum(hi2, hi)


def fit_clusters(positions: torch.Tensor, attrs: torch.Tensor, labels: torch.Tensor,
                 importance: torch.Tensor | None, config: CompressionConfig,
                 sh_degree: int) -> Generator[ProgressRecord, None, FitResult]:
    """Stage 5: fit one MLP per cluster (Eq. 4).

    positions [M, 3] world units; attrs [M, D] raw attributes (``scene_to_attributes``); labels [M]
    cluster of each Gaussian; importance [M] (S_j, Eq. 2) or None for uniform weights. Yields a
    record with every cluster's loss every ``config.log_every`` steps and at least every 0.5 s.
    """
    m = positions.shape[0]
    if m == 0:
        raise ValueError("nothing to fit: no Gaussians")
    device = positions.device
    order, sizes = cluster_order(labels)
    pos = positions[order].contiguous()
    raw = attrs[order]
    attr_lo, attr_hi = short_box(*attribute_box(raw, config.attr_range_pct, config.attr_margin))
    targets = normalise(raw, attr_lo, attr_hi).clamp(-1.0, 1.0)
    use_w = config.use_importance_weights and importance is not None
    base_w = importance[order].clamp_min(0.0) if importance is not None else torch.ones(m, device=device)
    arch = FieldArch(sh_degree, config.hidden, config.layers, config.pe_freqs)
    gen = torch.Generator().manual_seed(int(config.seed))
    fields = [init_field(arch, gen).to(device) for _ in sizes]
    model = NeuralGSModel(arch, pos, sizes, fields, pos.min(dim=0).values, pos.max(dim=0).values, attr_lo, attr_hi)
    quantise_model_positions_(model)  # fit (and later fine-tune) at the 16-bit positions the file stores
    pos = model.positions
    offs = model.cluster_offsets()
    weights = _cluster_weights(base_w if use_w else torch.ones(m, device=device), offs)
    pos_n = model.normalise_positions(pos)
    dim_w = attribute_dim_weights(arch.out_dim, config.attr_weights, device)
    params = [p for f in fields for p in f.parameters()]
    opt = torch.optim.Adam(params, lr=config.fit_lr[0])
    total, bs = config.fit_iters, config.fit_batch_size
    clock, throttle = StageClock("fit", total), Throttle()
    history: list[tuple[int, dict[int, float]]] = []
    yield clock.record(0, f"fitting {len(sizes)} MLPs ({arch.n_params()} parameters each) to {m} Gaussians")
    for step in range(total):
        for g in opt.param_groups:
            g["lr"] = exp_lr(step, total, config.fit_lr)
        opt.zero_grad(set_to_none=True)
        losses = []
        for c, f in enumerate(fields):
            a, b = offs[c], offs[c + 1]
            if bs and b - a > bs:  # importance sampling: E[mean err] = the weighted loss of Eq. 4
                idx = torch.multinomial(weights[a:b].double().cpu(), bs, replacement=True, generator=gen).to(device)
                loss = (((f(pos_n[a:b][idx]) - targets[a:b][idx]) ** 2) @ dim_w).mean()
            else:  # Eq. 4, full batch
                loss = ((((f(pos_n[a:b]) - targets[a:b]) ** 2) @ dim_w) * weights[a:b]).sum()
            losses.append(loss)
        torch.stack(losses).sum().backward()
        opt.step()
        done = step + 1
        logged = done % config.log_every == 0 or done == total
        if logged or throttle.due():
            vals = {c: float(v) for c, v in enumerate(torch.stack(losses).detach().cpu())}
            if logged:
                history.append((done, vals))
            yield clock.record(done, f"step {done}/{total}: mean loss {sum(vals.values()) / len(vals):.3g}",
                               losses=vals)
    final = cluster_losses(model, targets, weights, dim_w)
    log.info("fit: %d clusters, %d steps, final weighted loss per cluster %s", len(sizes), total,
             ", ".join(f"{v:.2e}" for v in final.values()))
    if total == 0:
        yield clock.record(0, "no fitting iterations", losses=final)
    return FitResult(model, order, base_w, history, final)
