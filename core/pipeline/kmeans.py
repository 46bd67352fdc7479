"""Attribute clustering (paper §3.4 "Gaussian clustering", DESIGN §5 stage 4): a seeded torch k-means.

Features are all attributes INCLUDING position, each dimension mapped to [-1, 1] by its min/max
(the paper; optionally by robust percentiles with clipping). k-means++ initialisation on a random
subsample, then chunked Lloyd iterations ("batched strategy ... refined with multiple iterations").
Empty clusters are re-seeded with the points farthest from their centres. Centre sums use a
one-hot matmul rather than scatter-add so results are deterministic on CUDA as well as on CPU.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Generator

import torch

from core.neural_field import normalise
from core.pipeline.progress import ProgressRecord, StageClock, run_to_completion

log = logging.getLogger(__name__)

INIT_SAMPLE = 20_000
"""Points used for the k-means++ initialisation (a seeded random subsample when N is larger)."""
CHUNK = 65_536
"""Rows per distance block in the Lloyd iterations (bounds memory at CHUNK x K floats)."""


@dataclass
class KMeansResult:
    """labels [N] int64 in [0, K); centres [K, D] (in the normalised feature space); inertia: mean
    squared distance to the assigned centre; iterations run; converged: labels stopped changing."""

    labels: torch.Tensor
    centres: torch.Tensor
    inertia: float
    iterations: int
    converged: bool


def feature_range(x: torch.Tensor, range_pct: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-column (lo [D], hi [D]): min/max, or the ``range_pct`` / ``100 - range_pct`` percentiles."""
    if x.shape[0] == 0:
        return x.new_zeros(x.shape[1]), x.new_zeros(x.shape[1])
    if range_pct <= 0.0:
        return x.min(dim=0).values, x.max(dim=0).values
    sample = x if x.shape[0] <= 1_000_000 else x[:: -(-x.shape[0] // 1_000_000)]  # quantile's size limit
    q = torch.tensor([range_pct / 100.0, 1.0 - range_pct / 100.0], dtype=torch.float64, device=x.device)
    lo, hi = torch.quantile(sample.double(), q, dim=0).to(x.dtype)
    return lo, hi


def normalised_features(x: torch.Tensor, range_pct: float = 0.0) -> torch.Tensor:
    """x [N, D] mapped per column to [-1, 1] by :func:`feature_range` (clipped; constant columns -> -1)."""
    lo, hi = feature_range(x, range_pct)
    return normalise(x, lo, hi).clamp(-1.0, 1.0)


def _sq_dists(x: torch.Tensor, c: torch.Tensor, c_sq: torch.Tensor) -> torch.Tensor:
    return ((x * x).sum(1, keepdim=True) - 2.0 * x @ c.T + c_sq[None]).clamp_min(0.0)


def kmeans_pp_init(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ centres [k, D] from the rows of x (D^2 sampling; uniform when all distances are 0)."""
    n = x.shape[0]
    first = int(torch.randint(n, (1,), generator=gen, device="cpu"))
    centres = [x[first]]
    d2 = ((x - x[first]) ** 2).sum(1)
    for _ in range(1, k):
        w = d2.double().cpu()
        probs = w if float(w.sum()) > 0 else torch.ones_like(w)
        j = int(torch.multinomial(probs, 1, generator=gen))
        centres.append(x[j])
        d2 = torch.minimum(d2, ((x - x[j]) ** 2).sum(1))
    return torch.stack(centres)


def _assign(x: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels [N], squared distance to the nearest centre [N]), in chunks."""
    c_sq = (centres * centres).sum(1)
    labels, dists = [], []
    for s in range(0, x.shape[0], CHUNK):
        d = _sq_dists(x[s: s + CHUNK], centres, c_sq)
        m = d.min(dim=1)
        labels.append(m.indices)
        dists.append(m.values)
    return torch.cat(labels), torch.cat(dists)


def _centre_sums(x: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sums [k, D], counts [k]) by one-hot matmuls (deterministic, unlike scatter-add on CUDA)."""
    sums = x.new_zeros(k, x.shape[1])
    counts = x.new_zeros(k)
    for s in range(0, x.shape[0], CHUNK):
        onehot = torch.nn.functional.one_hot(labels[s: s + CHUNK], k).to(x.dtype)  # [chunk, k]
        sums += onehot.T @ x[s: s + CHUNK]
        counts += onehot.sum(0)
    return sums, counts


def kmeans_stage(x: torch.Tensor, k: int, iters: int = 30, seed: int = 0,
                 tol: float = 1e-6) -> Generator[ProgressRecord, None, KMeansResult]:
    """Stage 4: cluster the rows of x [N, D] (already normalised) into min(k, N) clusters.

    One record per Lloyd iteration. Stops when no label changes or the inertia improves by less
    than ``tol`` (relative). Deterministic for a seed.
    """
    n = x.shape[0]
    if n == 0:
        raise ValueError("k-means needs at least one point")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > n:
        log.warning("k-means: %d clusters requested for %d points; using %d", k, n, n)
        k = n
    gen = torch.Generator().manual_seed(int(seed))
    clock = StageClock("cluster", iters)
    sample = x if n <= INIT_SAMPLE else x[torch.randperm(n, generator=gen)[:INIT_SAMPLE].to(x.device)]
    centres = kmeans_pp_init(sample, k, gen)
    yield clock.record(0, f"k-means++ initialised {k} centres")
    labels, dists = _assign(x, centres)
    inertia = float(dists.mean())
    converged, it = False, 0
    for it in range(1, iters + 1):
        sums, counts = _centre_sums(x, labels, k)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1.0)[:, None], centres)
        empty = torch.nonzero(counts == 0).flatten()
        if empty.numel():  # re-seed with the points farthest from their centres, one per empty cluster
            far = torch.topk(dists, min(empty.numel(), n)).indices
            centres[empty[: far.numel()]] = x[far]
        new_labels, dists = _assign(x, centres)
        changed = int((new_labels != labels).sum())
        labels, old = new_labels, inertia
        inertia = float(dists.mean())
        yield clock.record(it, f"k-means iteration {it}: inertia {inertia:.4g}, {changed} changed")
        if changed == 0 or (empty.numel() == 0 and old - inertia <= tol * max(old, 1e-30)):
            converged = True
            break
    log.info("k-means: N=%d D=%d K=%d, %d iterations, inertia %.4g", n, x.shape[1], k, it, inertia)
    yield clock.record(clock.total, f"k-means done after {it} iterations: inertia {inertia:.4g}")
    return KMeansResult(labels, centres, inertia, it, converged)


def kmeans(x: torch.Tensor, k: int, iters: int = 30, seed: int = 0) -> KMeansResult:
    """:func:`kmeans_stage` run to completion."""
    return run_to_completion(kmeans_stage(x, k, iters, seed))
