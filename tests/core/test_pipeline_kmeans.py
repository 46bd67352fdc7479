"""Seeded torch k-means: blobs recovered, determinism, K > N, duplicates, normalisation, cancellation."""

from __future__ import annotations

import pytest
import torch

from core.pipeline.kmeans import feature_range, kmeans, kmeans_stage, normalised_features

pytestmark = pytest.mark.usefixtures("single_thread")  # one torch and one numba thread (tests/core/conftest.py)


def blobs(n_per: int = 200, k: int = 5, d: int = 6, seed: int = 0, spread: float = 0.05):
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(k, d, generator=g) * 2 - 1
    labels = torch.arange(k).repeat_interleave(n_per)
    x = centres[labels] + spread * torch.randn(k * n_per, d, generator=g)
    perm = torch.randperm(k * n_per, generator=g)
    return x[perm], labels[perm]


def test_separable_blobs_are_recovered_exactly():
    x, truth = blobs()
    res = kmeans(x, 5, iters=30, seed=0)
    assert res.labels.shape == truth.shape and res.labels.dtype == torch.int64
    # a bijection between true blobs and found clusters
    pairs = {(int(t), int(f)) for t, f in zip(truth, res.labels)}
    assert len(pairs) == 5 and len({t for t, _ in pairs}) == 5 and len({f for _, f in pairs}) == 5
    assert res.converged and res.inertia < 6 * 0.05**2 * 1.5


def test_same_seed_same_result_and_the_global_rng_is_untouched():
    x, _ = blobs(k=8, seed=3, spread=0.3)  # overlapping: the init matters
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = kmeans(x, 8, iters=10, seed=7)
    b = kmeans(x, 8, iters=10, seed=7)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centres, b.centres)
    assert torch.equal(torch.rand(1), before)


def test_more_clusters_than_points_and_duplicate_points():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    res = kmeans(x, 10, iters=5, seed=0)
    assert sorted(res.labels.tolist()) == [0, 1, 2] and res.centres.shape == (3, 2)
    dup = torch.zeros(50, 3)
    dup[25:] = 1.0
    res = kmeans(dup, 6, iters=5, seed=0)  # only two distinct points: clusters may stay empty, no crash
    assert res.labels.min() >= 0 and res.labels.max() < 6
    assert len(set(res.labels[:25].tolist())) == 1 and len(set(res.labels[25:].tolist())) == 1
    with pytest.raises(ValueError, match="at least one point"):
        kmeans(torch.zeros(0, 3), 2)


def test_empty_clusters_are_reseeded():
    # one far outlier group: with 4 clusters on 3 tight groups + sparse points, no cluster stays empty
    x, _ = blobs(n_per=100, k=3, d=2, seed=1, spread=0.02)
    res = kmeans(x, 4, iters=20, seed=0)
    assert torch.bincount(res.labels, minlength=4).min() > 0


def test_normalised_features_span_minus_one_to_one_and_robust_range_clips_outliers():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 4, generator=g) * torch.tensor([1.0, 100.0, 0.01, 5.0])
    x[0, 1] = 1e6  # one floater
    f = normalised_features(x)
    assert float(f.min()) == -1.0 and float(f.max()) == 1.0
    torch.testing.assert_close(f.min(0).values, -torch.ones(4))
    assert float(f[1:, 1].std()) < 0.01  # min/max: the floater squeezes everyone else together
    r = normalised_features(x, range_pct=1.0)
    assert float(r[0, 1]) == 1.0 and float(r[1:, 1].std()) > 0.2  # percentiles: the bulk spans the range
    lo, hi = feature_range(x, 1.0)
    assert torch.all(lo < hi)


def test_progress_records_per_iteration_and_clean_close():
    x, _ = blobs(k=4, spread=0.4)
    gen = kmeans_stage(x, 4, iters=10, seed=0)
    first = next(gen)
    assert first.stage == "cluster" and first.step == 0
    second = next(gen)
    assert second.step == 1 and "inertia" in second.message
    gen.close()  # cancellation: no exception, the generator is finished
    with pytest.raises(StopIteration):
        next(gen)
    recs = list(kmeans_stage(x, 4, iters=10, seed=0))
    assert recs[-1].step == recs[-1].total == 10
