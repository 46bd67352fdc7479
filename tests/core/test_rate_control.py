"""Rate control of .ngs v2 (core.pipeline.rate_control): targets met or honestly missed, the search's pieces."""

from __future__ import annotations

import math

import pytest
import torch

from core.codec.ngs import decode_ngs
from core.pipeline import run_to_completion
from core.pipeline.compress import compress
from core.pipeline.config import RESIDUAL_GROUPS
from core.pipeline.rate_control import (
    X_COARSEST,
    X_FINEST,
    Trial,
    _solve_step,
    prune_candidates,
    search_subset,
    settings_for,
    variants,
)
from tests.core.pipeline_helpers import tiny_config, tiny_scene

pytestmark = pytest.mark.usefixtures("single_thread")  # one torch and one numba thread (tests/core/conftest.py)


def codec_config(**overrides):
    """tiny_config with residual coding (the codec preset's search, on 24-px views)."""
    base = dict(residual_groups=RESIDUAL_GROUPS, finetune_iters=0, n_test_views=3, search_views=2, image_size=24,
                prune_ratio=0.2)
    return tiny_config(**{**base, **overrides})


@pytest.fixture(scope="module")
def scene():
    return tiny_scene(400, seed=3, degree=1)


def _file(res) -> bytes:
    return b"".join(res.encoded.chunks)


def test_target_psnr_is_met_on_every_held_out_view_and_the_file_is_what_was_measured(scene):
    res = run_to_completion(compress(scene, codec_config(target_psnr=32.0)))
    assert res.metrics["psnr"] >= 32.0
    c = res.codec
    assert c["reached"] is True and c["target_psnr"] == 32.0 and len(c["trials"]) >= 1
    assert all({"variant", "log2_step", "bytes", "psnr", "seconds"} <= set(t) for t in c["trials"])
    back = decode_ngs(_file(res))
    for x, y in zip(res.model.decode().tensors(), back.decode().tensors()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert back.meta["codec"]["reached"] is True and "trials" not in back.meta["codec"]  # the file stays small
    # a higher target costs more bytes
    hi = run_to_completion(compress(scene, codec_config(target_psnr=38.0)))
    assert hi.metrics["psnr"] >= 38.0 and hi.n_bytes > res.n_bytes


def test_target_size_is_never_exceeded_and_more_bytes_buy_quality(scene):
    small = run_to_completion(compress(scene, codec_config(target_size=6000)))
    big = run_to_completion(compress(scene, codec_config(target_size=12000)))
    assert small.n_bytes <= 6000 and big.n_bytes <= 12000
    assert small.codec["reached"] and big.codec["reached"]
    assert big.metrics["psnr"] > small.metrics["psnr"]


def test_an_unreachable_size_ends_with_the_smallest_file_and_says_by_how_much(scene):
    res = run_to_completion(compress(scene, codec_config(target_size=50)))
    assert res.codec["reached"] is False
    assert "not reached" in res.codec["message"] and "over" in res.codec["message"]
    decode_ngs(_file(res))  # still a valid file


def test_an_unreachable_psnr_ends_with_the_best_file_and_a_bounded_search(scene):
    # the kept Gaussians (prune 0.2 of a random scene) cap the PSNR far below 150 dB
    res = run_to_completion(compress(scene, codec_config(target_psnr=150.0)))
    c = res.codec
    assert c["reached"] is False and "not reached" in c["message"] and "dB short" in c["message"]
    assert len(c["trials"]) <= 7 * len(variants(codec_config(), scene.sh_degree))
    decode_ngs(_file(res))


def test_the_codec_preset_searches_prune_ratios_and_position_bits():
    s = tiny_scene(500, seed=4)
    cfg = codec_config(target_psnr=30.0, prune_candidates=(0.6, 0.4, 0.2, 0.0))
    res = run_to_completion(compress(s, cfg))
    c = res.codec
    assert c["prune_search"] and {"prune", "bits", "psnr"} <= set(c["prune_search"][0])
    assert c["prune_ratio"] in (0.6, 0.4, 0.2, 0.0) and res.n_kept == round((1 - c["prune_ratio"]) * 500)
    assert 10 <= c["settings"]["position_bits"] <= 16
    assert res.metrics["psnr"] >= 30.0


def test_importance_scaled_steps_can_be_switched_off():
    cfg = codec_config(target_psnr=30.0)
    on, off = settings_for(RESIDUAL_GROUPS, -5.0, cfg), settings_for(RESIDUAL_GROUPS, -5.0,
                                                                      cfg.replace(importance_levels=1))
    assert len(on.level_steps) == 4 and on.level_steps[0] == 1.0 and on.level_steps[-1] > 1.0
    assert off.level_steps == (1.0,) and off.level_fractions == ()
    assert settings_for(RESIDUAL_GROUPS, None, cfg).coded is False  # no step: the paper's pure NeuralGS


def test_variants_go_from_fewest_coded_groups_to_most():
    cfg = codec_config()
    v0 = variants(cfg, 0)
    assert [g for _, g in v0] == [("opacity", "log_scales", "rotation", "sh_dc")]
    v3 = variants(cfg, 3)
    assert [len(g) for _, g in v3] == [4, 5, 6, 7] and v3[-1][1] == RESIDUAL_GROUPS
    assert "SH bands >= 1 from the predictor" in v3[0][0]


def test_prune_candidates_go_down_from_the_most_pruning_one():
    cfg = codec_config(prune_candidates=(0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0))
    assert prune_candidates(0.6, cfg) == [0.6, 0.5, 0.4]
    assert prune_candidates(0.1, cfg) == [0.1, 0.0]
    assert prune_candidates(0.0, cfg) == [0.0]


def test_search_subset_spreads_the_views():
    assert search_subset(8, 2) == [1, 5] or search_subset(8, 2) == [2, 6]
    assert search_subset(3, 5) == [0, 1, 2]
    assert len(search_subset(8, 3)) == 3


def _curve(m0_db: float, c: float):
    """A synthetic PSNR(step) = -10 log10(m0 + c * step^2), counted."""
    calls = []

    def evaluate(x):
        psnr = -10.0 * math.log10(10 ** (-m0_db / 10) + c * 4.0 ** x)
        calls.append(x)
        return None, None, Trial("v", x, int(1e6 * 2.0 ** -x), psnr, 0.0)

    return evaluate, calls


def _solve(evaluate, goal, x0=-5.0):
    gen = _solve_step(evaluate, goal, x0, lambda t: t)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


def test_the_step_solver_finds_the_largest_step_reaching_the_goal_in_few_evaluations():
    evaluate, calls = _curve(60.0, 1e-3)
    good, _ = _solve(evaluate, 40.0)
    x = good[2].log2_step
    exact = 0.5 * math.log2((1e-4 - 1e-6) / 1e-3)
    assert good[2].psnr >= 40.0 and x <= exact + 1e-9 and exact - x < 0.2
    assert len(calls) <= 5


def test_the_step_solver_gives_up_quickly_when_the_ceiling_is_below_the_goal():
    evaluate, calls = _curve(35.0, 1e-3)  # no step beats the 35 dB ceiling
    good, closest = _solve(evaluate, 40.0)
    assert good is None and closest[2].psnr < 35.0 + 1e-9
    assert X_FINEST in calls and len(calls) <= 4


def test_the_step_solver_stops_at_the_coarsest_step_when_everything_passes():
    evaluate, calls = _curve(80.0, 1e-9)
    good, _ = _solve(evaluate, 40.0)
    assert good[2].log2_step == X_COARSEST and len(calls) <= 6


def test_a_surplus_on_all_held_out_views_buys_a_coarser_step(scene, monkeypatch):
    """When all held-out views beat the target by far more than the search views did, the step is searched again
    for a lower goal on the search views: a smaller file, still at the target on all views."""
    import core.pipeline.compress as compress_module

    real = compress_module._evaluate_model

    def kinder(model, views, config, timings):  # all views 3 dB kinder than the search views
        m = yield from real(model, views, config, timings)
        return {**m, "psnr": m["psnr"] + 3.0}

    monkeypatch.setattr(compress_module, "_evaluate_model", kinder)
    cfg = codec_config(target_psnr=34.0)
    with_surplus = run_to_completion(compress(scene, cfg))
    monkeypatch.setattr(compress_module, "SURPLUS_DB", 1e9)  # the search before this rule
    without = run_to_completion(compress(scene, cfg))
    assert with_surplus.metrics["psnr"] >= 34.0 and with_surplus.codec["reached"] is True
    assert with_surplus.n_bytes < without.n_bytes, (with_surplus.n_bytes, without.n_bytes)
    assert with_surplus.metrics["psnr"] < without.metrics["psnr"]


def test_constant_predictors_skip_the_mlp_fit(scene):
    res = run_to_completion(compress(scene, codec_config(target_psnr=32.0, predictor="constant")))
    assert res.history["fit"] == [] and res.codec["predictors"]["mlp"] == 0 and res.metrics["psnr"] >= 32.0
    assert res.model.meta["config"]["fit_iters"] == 0
