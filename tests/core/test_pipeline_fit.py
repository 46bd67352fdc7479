"""Per-cluster MLP fitting (Eq. 4): loss goes down, model invariants, records, determinism, weights, cancellation."""

from __future__ import annotations

import pytest
import torch

from core.neural_field import normalise, scene_to_attributes
from core.pipeline import run_to_completion
from core.pipeline.fit import cluster_order, exp_lr, fit_clusters
from tests.core.pipeline_helpers import smooth_attributes, tiny_config, tiny_scene

pytestmark = pytest.mark.usefixtures("single_thread")  # one torch and one numba thread (tests/core/conftest.py)

FAST = dict(fit_lr=(1e-2, 1e-3))


def problem(n: int = 400, k: int = 3, seed: int = 0, smooth: bool = True):
    """Positions, attributes [N, 10] (smooth functions of position, or a real tiny scene's), labels, importance."""
    scene = tiny_scene(n, seed=seed)
    attrs = smooth_attributes(scene.means) if smooth else scene_to_attributes(scene)
    labels = torch.arange(n) % k
    labels[: n // 2] = 0  # unequal sizes: cluster 0 is the largest
    importance = torch.rand(n, generator=torch.Generator().manual_seed(seed)) + 0.1
    return scene.means, attrs, labels, importance


def run_fit(cfg, pos, attrs, labels, importance, records=None):
    return run_to_completion(fit_clusters(pos, attrs, labels, importance, cfg, 0),
                             records.append if records is not None else None)


def test_fitting_reduces_every_clusters_loss_and_records_per_cluster_losses():
    pos, attrs, labels, imp = problem()
    records = []
    res = run_fit(tiny_config(fit_iters=60, log_every=10, **FAST), pos, attrs, labels, imp, records)
    fit_recs = [r for r in records if r.losses is not None]
    assert [s for s, _ in res.history] == [10, 20, 30, 40, 50, 60]
    assert all(set(r.losses) == {0, 1, 2} for r in fit_recs) and records[-1].step == records[-1].total == 60
    first, last = res.history[0][1], res.history[-1][1]
    assert all(last[c] < 0.6 * first[c] for c in range(3)), (first, last)
    assert all(res.final_losses[c] < first[c] for c in range(3))


def test_model_invariants_clusters_sorted_by_size_and_gaussians_by_cluster():
    pos, attrs, labels, imp = problem(smooth=False)
    res = run_fit(tiny_config(fit_iters=2, attr_range_pct=0.0), pos, attrs, labels, imp)
    m = res.model
    assert m.cluster_sizes == sorted(m.cluster_sizes, reverse=True) and sum(m.cluster_sizes) == 400
    assert sorted(res.order.tolist()) == list(range(400))
    ids = m.cluster_ids()
    for c in range(m.n_clusters):  # every model cluster is exactly one input cluster
        assert len(set(labels[res.order[ids == c]].tolist())) == 1
    # positions: the input's, snapped to the 16-bit grid of the kept box
    step = (m.pos_hi - m.pos_lo) / 65535
    assert torch.all((m.positions - pos[res.order]).abs() <= step * 0.5001 + 1e-7)
    torch.testing.assert_close(m.pos_lo, pos.min(0).values)
    # the box: min/max, widened to 3 significant digits (short numbers in a file's header)
    assert torch.all(m.attr_lo <= attrs.min(0).values)
    torch.testing.assert_close(m.attr_lo, attrs.min(0).values, rtol=1e-2, atol=1e-6)
    torch.testing.assert_close(res.weights, imp[res.order])
    decoded = m.decode()
    assert decoded.num_gaussians == 400 and decoded.sh_degree == 0


def test_short_box_widens_to_three_significant_digits():
    from core.pipeline.fit import short_box

    lo, hi = short_box(torch.tensor([-1.23456, 0.0123456, 0.0, 5.0]), torch.tensor([1.23456, -0.0123456, 0.0, 5.0]))
    torch.testing.assert_close(lo, torch.tensor([-1.24, 0.0123, 0.0, 5.0]))
    torch.testing.assert_close(hi, torch.tensor([1.24, -0.0123, 0.0, 5.0]))


def test_robust_attribute_range_and_margin():
    pos, attrs, labels, imp = problem(smooth=False)
    attrs = attrs.clone()
    attrs[0, 7] = 1e3  # a wild colour outlier
    m = run_fit(tiny_config(fit_iters=1, attr_range_pct=1.0), pos, attrs, labels, imp).model
    q = torch.quantile(attrs.double(), torch.tensor([0.01, 0.99], dtype=torch.float64), dim=0).float()
    assert torch.all(m.attr_lo <= q[0]) and torch.all(m.attr_hi >= q[1])  # widened to 3 significant digits
    torch.testing.assert_close(m.attr_lo, q[0], rtol=1e-2, atol=1e-6)
    torch.testing.assert_close(m.attr_hi, q[1], rtol=1e-2, atol=1e-6)
    assert float(m.attr_hi[7]) < 10  # the outlier does not stretch the colour range
    wide = run_fit(tiny_config(fit_iters=1, attr_range_pct=0.0, attr_margin=0.1), pos, attrs, labels, imp).model
    span = attrs.max(0).values - attrs.min(0).values
    torch.testing.assert_close(wide.attr_hi - wide.attr_lo, 1.2 * span, rtol=2e-2, atol=1e-5)  # + 3-digit widening


def test_cluster_order_ties_and_empty_labels():
    order, sizes = cluster_order(torch.tensor([2, 0, 2, 0, 4, 4, 4]))
    assert sizes == [3, 2, 2]  # label 4 first, then 0 and 2 (tie: lower label first); labels 1, 3 empty
    assert order.tolist() == [4, 5, 6, 1, 3, 0, 2]


def test_same_seed_gives_identical_weights():
    pos, attrs, labels, imp = problem(n=200)
    cfg = tiny_config(fit_iters=15)
    a = run_fit(cfg, pos, attrs, labels, imp).model
    b = run_fit(cfg, pos, attrs, labels, imp).model
    for fa, fb in zip(a.fields, b.fields):
        for pa, pb in zip(fa.parameters(), fb.parameters()):
            assert torch.equal(pa, pb)
    c = run_fit(cfg.replace(seed=1), pos, attrs, labels, imp).model
    assert not torch.equal(a.fields[0].linears[0].weight, c.fields[0].linears[0].weight)


def test_importance_weights_make_the_important_gaussians_fit_better():
    """Eq. 4's point: with limited capacity, weighting by S_j trades error on unimportant Gaussians
    for accuracy on the important ones."""
    n = 300
    g = torch.Generator().manual_seed(5)
    pos = torch.rand(n, 3, generator=g)
    attrs = torch.randn(n, 10, generator=g)  # noise: a tiny MLP cannot fit it all
    imp = torch.ones(n)
    important = torch.zeros(n, dtype=torch.bool)
    important[::10] = True
    imp[important] = 100.0
    labels = torch.zeros(n, dtype=torch.int64)
    cfg = tiny_config(hidden=12, layers=3, pe_freqs=2, fit_iters=150, fit_lr=(1e-2, 1e-3))

    def error_on_important(config):
        res = run_fit(config, pos, attrs, labels, imp)
        target = normalise(attrs[res.order], res.model.attr_lo, res.model.attr_hi)
        with torch.no_grad():
            err = ((res.model.predict_normalised() - target) ** 2).mean(1)
        sel = important[res.order]
        return float(err[sel].mean()), float(err[~sel].mean())

    w_imp, w_rest = error_on_important(cfg)
    u_imp, u_rest = error_on_important(cfg.replace(use_importance_weights=False))
    assert w_imp < 0.6 * u_imp, (w_imp, u_imp)
    assert w_rest > u_rest  # the price, paid by the unimportant ones


def test_minibatches_also_reduce_the_loss():
    pos, attrs, labels, imp = problem()
    res = run_fit(tiny_config(fit_iters=60, fit_batch_size=32, log_every=20, **FAST), pos, attrs, labels, imp)
    first = run_fit(tiny_config(fit_iters=1), pos, attrs, labels, imp).final_losses
    assert all(res.final_losses[c] < 0.5 * first[c] for c in range(3)), (first, res.final_losses)


def test_closing_mid_fit_is_clean_and_leaves_inputs_untouched():
    pos, attrs, labels, imp = problem()
    copies = [t.clone() for t in (pos, attrs, labels, imp)]
    gen = fit_clusters(pos, attrs, labels, imp, tiny_config(fit_iters=100, log_every=5), 0)
    for _ in range(3):
        next(gen)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)
    for a, b in zip(copies, (pos, attrs, labels, imp)):
        assert torch.equal(a, b)


def test_exponential_learning_rate_schedule():
    assert exp_lr(0, 100, (1e-3, 8e-5)) == pytest.approx(1e-3)
    assert exp_lr(99, 100, (1e-3, 8e-5)) == pytest.approx(8e-5)
    assert exp_lr(50, 101, (1e-3, 1e-5)) == pytest.approx(1e-4)
    assert exp_lr(0, 1, (1e-3, 8e-5)) == 1e-3


@pytest.mark.parametrize("dim", [10, 19, 34, 55])
def test_attribute_dim_weights_sum_to_one_and_share_by_group(dim):
    from core.pipeline.fit import RENDER_GROUP_WEIGHTS, attribute_dim_weights

    uni = attribute_dim_weights(dim, "uniform")
    assert torch.allclose(uni, torch.full((dim,), 1.0 / dim))
    groups = attribute_dim_weights(dim, "groups")
    n_groups = 5 if dim > 10 else 4
    assert float(groups.sum()) == pytest.approx(1.0)
    assert float(groups[0]) == pytest.approx(1.0 / n_groups)  # opacity alone: a whole group's share
    assert float(groups[1:4].sum()) == pytest.approx(1.0 / n_groups)
    render = attribute_dim_weights(dim, "render")
    total = sum(v for k, v in RENDER_GROUP_WEIGHTS.items() if dim > 10 or k != "sh_rest")
    assert float(render[0]) == pytest.approx(RENDER_GROUP_WEIGHTS["opacity"] / total)
    assert float(render.sum()) == pytest.approx(1.0)


def test_group_weights_fit_the_opacity_better_than_uniform_weights():
    """With 45 higher-SH dimensions of noise beside it, a uniform mean neglects the one opacity
    dimension; "groups" gives it a fifth of the loss and it fits markedly better."""
    n = 300
    g = torch.Generator().manual_seed(3)
    pos = torch.rand(n, 3, generator=g)
    attrs = torch.randn(n, 55, generator=g)
    labels = torch.zeros(n, dtype=torch.int64)
    cfg = tiny_config(hidden=12, layers=3, pe_freqs=2, fit_iters=150, fit_lr=(1e-2, 1e-3))

    def opacity_error(config):
        res = run_to_completion(fit_clusters(pos, attrs, labels, None, config, 3))
        target = normalise(attrs[res.order], res.model.attr_lo, res.model.attr_hi)
        with torch.no_grad():
            return float(((res.model.predict_normalised() - target)[:, 0] ** 2).mean())

    assert opacity_error(cfg.replace(attr_weights="groups")) < 0.7 * opacity_error(cfg.replace(attr_weights="uniform"))
