"""Learning from pictures (issue 18): co-adaptation after pruning, quantisation-aware fine-tuning, the effort knob."""

from __future__ import annotations

import pytest
import torch

from core.codec.ngs import decode_ngs
from core.codec.ngs_v2 import encode_v2
from core.neural_field import normalise, scene_to_attributes
from core.pipeline import run_to_completion
from core.pipeline.coadapt import coadapt
from core.pipeline.compress import compress
from core.pipeline.config import EFFORTS, RESIDUAL_GROUPS, config_from_preset, default_effort
from core.pipeline.evaluation import score_renders
from core.pipeline.fit import fit_clusters
from core.pipeline.qat import element_steps, quantisation_aware
from core.pipeline.rate_control import render_psnr, settings_for
from core.pipeline.views import build_views
from core.scene import GaussianScene
from tests.core.pipeline_helpers import tiny_config, tiny_scene

pytestmark = pytest.mark.usefixtures("single_thread")  # one torch and one numba thread (tests/core/conftest.py)


def _damaged(scene: GaussianScene, seed: int = 1) -> GaussianScene:
    """``scene`` with every attribute but the positions perturbed: what co-adaptation must repair."""
    g = torch.Generator().manual_seed(seed)
    return GaussianScene(scene.means.clone(), scene.quats + 0.2 * torch.randn(scene.quats.shape, generator=g),
                         scene.log_scales + 0.2 * torch.randn(scene.log_scales.shape, generator=g),
                         scene.opacity_logits + 0.8 * torch.randn(scene.opacity_logits.shape, generator=g),
                         scene.sh_dc + 0.3 * torch.randn(scene.sh_dc.shape, generator=g), scene.sh_rest.clone())


@pytest.fixture(scope="module")
def learning_setup():
    scene = tiny_scene(300, seed=5)
    cfg = tiny_config(n_views=8, image_size=32, coadapt_iters=60, log_every=10)
    with torch.no_grad():
        views = run_to_completion(build_views(scene, cfg))
    return scene, cfg, views


def _psnr(scene, views, cfg, train=True) -> float:
    cams, tgts = (views.train_cameras, views.train_targets) if train else (views.test_cameras, views.test_targets)
    return run_to_completion(score_renders(scene, cams, tgts, cfg, with_ssim=False))["psnr"]


def test_coadaptation_repairs_damaged_attributes_and_leaves_the_input_alone(learning_setup):
    scene, cfg, views = learning_setup
    damaged = _damaged(scene)
    before = [t.clone() for t in damaged.tensors()]
    res = run_to_completion(coadapt(damaged, views, cfg))
    for a, b in zip(before, damaged.tensors()):
        assert torch.equal(a, b), "co-adaptation changed its input"
    assert not any(t.requires_grad for t in res.scene.tensors())
    assert torch.equal(res.scene.means, damaged.means), "positions move only with coadapt_positions"
    p0, p1 = _psnr(damaged, views, cfg), _psnr(res.scene, views, cfg)
    assert p1 > p0 + 3.0, f"training views {p0:.2f} -> {p1:.2f} dB"
    assert _psnr(res.scene, views, cfg, train=False) > _psnr(damaged, views, cfg, train=False) + 2.0
    assert [s for s, _ in res.history] == [10, 20, 30, 40, 50, 60]
    assert res.history[-1][1] < res.history[0][1]


def test_coadaptation_moves_positions_only_when_asked(learning_setup):
    scene, cfg, views = learning_setup
    res = run_to_completion(coadapt(_damaged(scene), views, cfg.replace(coadapt_positions=True), steps=5))
    assert not torch.equal(res.scene.means, scene.means)


def test_coadaptation_reports_progress_and_stops_cleanly_when_closed(learning_setup):
    scene, cfg, views = learning_setup
    damaged = _damaged(scene)
    gen = coadapt(damaged, views, cfg)
    recs = [next(gen) for _ in range(3)]
    assert all(r.stage == "coadapt" for r in recs) and recs[0].step == 0 and recs[0].total == 60
    assert any(r.total_loss is not None for r in recs[1:])
    gen.close()  # cancel mid-way
    assert damaged.opacity_logits.grad is None and not damaged.opacity_logits.requires_grad
    assert run_to_completion(coadapt(damaged, views, cfg, steps=0)).history == []


def _encoded_setup(scene, cfg):
    """A fitted model of ``scene`` (one cluster, constant and MLP predictors possible), its true normalised
    attributes and an encoding at a coarse step."""
    attrs = scene_to_attributes(scene)
    labels = torch.zeros(scene.num_gaussians, dtype=torch.int64)
    labels[scene.num_gaussians // 2:] = 1
    fitted = run_to_completion(fit_clusters(scene.means, attrs, labels, torch.rand(scene.num_gaussians) + 0.1,
                                            cfg.replace(fit_iters=20), scene.sh_degree))
    target = normalise(attrs[fitted.order], fitted.model.attr_lo, fitted.model.attr_hi).detach()
    settings = settings_for(RESIDUAL_GROUPS, -3.0, cfg)
    return fitted, target, settings


@pytest.mark.parametrize("predictor", ["constant", "mlp"])
def test_qat_starts_from_exactly_what_the_file_decodes_to(learning_setup, predictor):
    """With 0 learning steps the trained attributes re-encode to the same file, and the quantiser the stage
    renders through rebuilds bit for bit what the decoder rebuilds (else QAT learns the wrong grid)."""
    scene, cfg, views = learning_setup
    fitted, target, settings = _encoded_setup(scene, cfg)
    settings = settings_for(RESIDUAL_GROUPS, -3.0, cfg.replace(predictor=predictor))
    enc = encode_v2(fitted.model, settings, target, fitted.weights)
    res = run_to_completion(quantisation_aware(fitted.model, target, fitted.weights, enc, settings, views, cfg,
                                               steps=0))
    assert torch.equal(res.target, target)
    # one step at learning rate ~0: the rendered scene is the decoded one
    seen = {}
    import core.pipeline.qat as qat_module

    real = qat_module.train_loop

    def spy(stage, build_scene, *args, **kwargs):
        with torch.no_grad():
            seen["scene"] = build_scene().detach()
        return (yield from real(stage, build_scene, *args, **kwargs))

    qat_module.train_loop = spy
    try:
        run_to_completion(quantisation_aware(fitted.model, target, fitted.weights, enc, settings, views,
                                             cfg.replace(coadapt_lr=1e-12), steps=1))
    finally:
        qat_module.train_loop = real
    with torch.no_grad():
        decoded = decode_ngs(b"".join(enc.chunks)).decode()
    for name, a, b in zip(decoded.field_names(), seen["scene"].tensors(), decoded.tensors()):
        torch.testing.assert_close(a, b, rtol=0, atol=2e-6, msg=f"{name} differs from the decoder's")


def test_qat_makes_the_coarse_file_render_better_at_the_same_step(learning_setup):
    scene, cfg, views = learning_setup
    fitted, target, _ = _encoded_setup(scene, cfg)
    settings = settings_for(RESIDUAL_GROUPS, -2.0, cfg)  # coarse: quantisation is most of the error
    enc = encode_v2(fitted.model, settings, target, fitted.weights)
    res = run_to_completion(quantisation_aware(fitted.model, target, fitted.weights, enc, settings, views,
                                               cfg.replace(qat_iters=60, coadapt_lr=3.0)))
    assert [r[0] for r in res.history][-1] == 60
    after = encode_v2(fitted.model, settings, res.target, fitted.weights)
    cams, tgts = views.train_cameras, views.train_targets
    with torch.no_grad():
        p0 = render_psnr(enc.model.decode(), cams, tgts, cfg)
        p1 = render_psnr(after.model.decode(), cams, tgts, cfg)
    assert p1 > p0 + 0.5, f"{p0:.2f} -> {p1:.2f} dB at the same step"


def test_element_steps_follow_groups_and_importance_levels():
    cfg = tiny_config(residual_groups=RESIDUAL_GROUPS)
    st = settings_for(("opacity", "sh_dc"), -4.0, cfg)
    imp = torch.arange(100, dtype=torch.float32)
    steps = element_steps(st, imp, 100, 0)
    assert steps.shape == (100, 10)
    assert torch.isinf(steps[:, 1:7]).all() and torch.isfinite(steps[:, [0, 7, 8, 9]]).all()
    assert steps[99, 0] == 2.0 ** -4 and steps[0, 0] > steps[99, 0]  # the least important: the coarsest step


def test_effort_presets_and_defaults():
    assert EFFORTS["fast"] == {"coadapt_iters": 0, "qat_iters": 0}
    assert 0 < EFFORTS["default"]["coadapt_iters"] < EFFORTS["max"]["coadapt_iters"]
    cfg = config_from_preset("codec", effort="default", qat_iters=7)
    assert cfg.effort == "default" and cfg.coadapt_iters == EFFORTS["default"]["coadapt_iters"] and cfg.qat_iters == 7
    assert config_from_preset("codec").coadapt_iters == 0  # no effort named: nothing learned
    assert default_effort(True) == "default" and default_effort(False) == "fast"
    with pytest.raises(ValueError, match="unknown effort 'slow'"):
        config_from_preset("codec", effort="slow")
    with pytest.raises(ValueError, match="coadapt_iters"):
        config_from_preset("codec", coadapt_iters=-1)


def test_compress_with_learning_prunes_on_the_coadapted_ceiling_and_records_its_stages():
    s = tiny_scene(500, seed=4)
    cfg = tiny_config(residual_groups=RESIDUAL_GROUPS, finetune_iters=0, n_test_views=3, search_views=2,
                      image_size=24, target_psnr=30.0, prune_candidates=(0.6, 0.4, 0.2, 0.0), coadapt_iters=20,
                      qat_iters=10, coadapt_recovery_db=3.0)
    recs, gen = [], compress(s, cfg)
    try:
        while True:
            recs.append(next(gen))
    except StopIteration as stop:
        res = stop.value
    stages = [r.stage for r in recs]
    assert "coadapt" in stages and stages.index("coadapt") < stages.index("fit")
    assert "qat" in stages and stages.index("qat") > stages.index("search")
    assert len(res.history["coadapt"]) >= 1 and len(res.history["qat"]) >= 1
    assert res.timings["coadapt"] > 0 and res.timings["qat"] > 0
    tried = res.codec["prune_search"]
    assert any(t.get("coadapted") for t in tried), tried
    assert res.codec["prune_ratio"] in (0.6, 0.4, 0.2, 0.0)
    assert res.n_kept == round((1 - res.codec["prune_ratio"]) * 500)
    assert res.metrics["psnr"] >= 30.0
    model = decode_ngs(b"".join(res.encoded.chunks))
    assert model.meta["config"]["coadapt_iters"] == 20 and model.meta["config"]["qat_iters"] == 10


def test_a_coadapted_ratio_short_of_the_margin_is_searched_beside_the_safer_one(monkeypatch):
    """When the harder co-adapted prune ratio misses target + margin but clears the target, both it and the exact
    search's ratio are co-adapted and searched in full; the smaller file that reaches the target wins."""
    import re

    import core.pipeline.compress as compress_module

    real, ratios = compress_module._coadapt_at, []

    def first_one_short(src, scores, ratio, views, config, timings, search):
        plan = yield from real(src, scores, ratio, views, config, timings, search)
        ratios.append(ratio)
        if len(ratios) == 1:  # 0.5 dB above the target: short of the 1 dB margin, above COADAPT_MIN_HEADROOM_DB
            plan.ceilings.cache[(0.0, 16)] = config.target_psnr + 0.5
        return plan

    monkeypatch.setattr(compress_module, "_coadapt_at", first_one_short)
    s = tiny_scene(500, seed=4)
    cfg = tiny_config(residual_groups=RESIDUAL_GROUPS, finetune_iters=0, n_test_views=3, search_views=2,
                      image_size=24, target_psnr=30.0, prune_candidates=(0.8, 0.6, 0.4, 0.2, 0.0), coadapt_iters=10,
                      coadapt_recovery_db=6.0)
    res = run_to_completion(compress(s, cfg))
    assert len(ratios) == 2 and ratios[0] > ratios[1], ratios
    searched = {m.group(1) for t in res.codec["trials"] for m in [re.search(r"\[prune (\d\.\d\d)", t["variant"])] if m}
    assert searched == {f"{r:.2f}" for r in ratios}, searched
    assert res.codec["prune_ratio"] in ratios and res.metrics["psnr"] >= 30.0
    assert sum(1 for t in res.codec["prune_search"] if t.get("coadapted")) == 2


def test_a_qat_file_and_the_file_before_it_are_both_confirmed_and_the_smaller_passing_one_wins(monkeypatch):
    import core.pipeline.compress as compress_module

    evaluated, returned = [], []
    real_eval, real_qat = compress_module._evaluate_encoded, compress_module._quantisation_aware

    def spy_eval(encoded, views, config, timings):
        m = yield from real_eval(encoded, views, config, timings)
        evaluated.append((encoded.n_bytes, m["psnr"]))
        return m

    def spy_qat(*args, **kwargs):
        out = yield from real_qat(*args, **kwargs)
        returned.append(len(out))
        return out

    chosen, real_confirm = [], compress_module._confirm

    def spy_confirm(*args, **kwargs):
        cand, m = yield from real_confirm(*args, **kwargs)
        chosen.append(cand.rate.encoded.n_bytes)  # before the run's record joins the header
        return cand, m

    monkeypatch.setattr(compress_module, "_evaluate_encoded", spy_eval)
    monkeypatch.setattr(compress_module, "_quantisation_aware", spy_qat)
    monkeypatch.setattr(compress_module, "_confirm", spy_confirm)
    s = tiny_scene(500, seed=4)
    cfg = tiny_config(residual_groups=RESIDUAL_GROUPS, finetune_iters=0, n_test_views=3, search_views=2,
                      image_size=24, target_psnr=30.0, prune_candidates=(0.6, 0.4, 0.2, 0.0), coadapt_iters=20,
                      qat_iters=30, qat_coarsen=0.5)
    res = run_to_completion(compress(s, cfg))
    assert returned == [2], "QAT paid on the search views: it and the file before it are confirmed"
    passing = [b for b, p in evaluated if p >= 30.0]
    assert len(evaluated) >= 2 and chosen == [min(passing)], (evaluated, chosen)
    assert res.metrics["psnr"] >= 30.0
