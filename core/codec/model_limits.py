"""What an ``.ngs`` file can hold of a :class:`~core.neural_field.NeuralGSModel`: the structural limits both
encoders (:mod:`core.codec.ngs` for v1, :mod:`core.codec.ngs_v2`) check before writing anything."""

from __future__ import annotations

import numpy as np
import torch

from core.codec.ngs_format import MAX_CLUSTERS, MAX_GAUSSIANS, MAX_HIDDEN, MAX_LAYERS, MAX_PE_FREQS, MIN_LAYERS
from core.neural_field import ClusterField, NeuralGSModel


def np32(t: torch.Tensor) -> np.ndarray:
    """A tensor as a flat float32 numpy array (on the CPU)."""
    return t.detach().cpu().to(torch.float32).numpy().reshape(-1)


def check_model(model: NeuralGSModel, allow_v2: bool = False) -> None:
    """ValueError for anything a v1 file (or, with ``allow_v2``, a v2 file) cannot hold (the reader's limits)."""
    if not allow_v2 and (model.residual is not None or not all(isinstance(f, ClusterField) for f in model.fields)):
        raise ValueError("this model has residuals or constant predictors: only .ngs v2 stores them")
    a = model.arch
    if not (0 <= a.sh_degree <= 3 and 1 <= a.hidden <= MAX_HIDDEN and MIN_LAYERS <= a.layers <= MAX_LAYERS
            and 0 <= a.pe_freqs <= MAX_PE_FREQS):
        raise ValueError(f"architecture {a} is outside .ngs v1 limits (SH 0..3, hidden 1..{MAX_HIDDEN}, "
                         f"layers {MIN_LAYERS}..{MAX_LAYERS}, pe_freqs 0..{MAX_PE_FREQS})")
    sizes = [int(s) for s in model.cluster_sizes]
    k, n = len(sizes), model.num_gaussians
    if k > MAX_CLUSTERS or n > MAX_GAUSSIANS:
        raise ValueError(f"{k} clusters / {n} Gaussians exceed .ngs v1 limits ({MAX_CLUSTERS} / {MAX_GAUSSIANS})")
    if tuple(model.positions.shape) != (n, 3):
        raise ValueError(f"positions have shape {tuple(model.positions.shape)}, expected (N, 3)")
    if len(model.fields) != k or sum(sizes) != n or any(s < 0 for s in sizes):
        raise ValueError(f"inconsistent model: {k} cluster sizes summing to {sum(sizes)}, {len(model.fields)} "
                         f"fields, {n} positions")
    if any(sizes[i] > sizes[i - 1] for i in range(1, k)):
        raise ValueError(f"cluster sizes must be non-increasing (largest cluster first), got {sizes[:10]}...")
    d = a.out_dim
    for name, t, m in (("pos_lo", model.pos_lo, 3), ("pos_hi", model.pos_hi, 3),
                       ("attr_lo", model.attr_lo, d), ("attr_hi", model.attr_hi, d)):
        v = np32(t)
        if v.shape != (m,) or not np.isfinite(v).all():
            raise ValueError(f"{name} must hold {m} finite values, got {v.shape[0]}: {v[:8]}")
    if (np32(model.pos_hi) < np32(model.pos_lo)).any() or (np32(model.attr_hi) < np32(model.attr_lo)).any():
        raise ValueError("pos_hi/attr_hi must be >= pos_lo/attr_lo")
    for c, f in enumerate(model.fields):
        if f.arch != a:
            raise ValueError(f"cluster {c}'s field has architecture {f.arch}, the model's is {a}")
