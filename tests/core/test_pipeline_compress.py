"""The whole pipeline: stages in order, result contents, determinism, cancellation at every stage, real data."""

from __future__ import annotations

import json
import os

import pytest
import torch

from core.codec.ngs import decode_ngs, encode_ngs
from core.metrics import psnr
from core.pipeline.config import RESIDUAL_GROUPS
from core.pipeline import run_to_completion
from core.pipeline.compress import compress, limited_threads
from core.render.api import render
from tests.conftest import shared_path
from tests.core.pipeline_helpers import tiny_config, tiny_scene

pytestmark = pytest.mark.usefixtures("single_thread")  # one torch and one numba thread (tests/core/conftest.py)

STAGES = ["views", "importance", "prune", "cluster", "fit", "finetune", "evaluate"]


@pytest.fixture(scope="module")
def tiny_run(single_thread):
    scene = tiny_scene(300, seed=1)
    records = []
    res = run_to_completion(compress(scene, tiny_config()), records.append)
    return scene, res, records


def test_stages_run_in_order_and_the_result_is_complete(tiny_run):
    scene, res, records = tiny_run
    order = []
    for r in records:
        if not order or order[-1] != r.stage:
            order.append(r.stage)
    assert order == STAGES
    assert res.n_original == 300 and res.n_kept == 180  # prune_ratio 0.4
    m = res.model
    assert m.num_gaussians == 180 and m.n_clusters == 3 and m.cluster_sizes == sorted(m.cluster_sizes, reverse=True)
    # the v2 encoding of a pure-NeuralGS preset is timed as its own stage
    assert set(res.timings) == set(STAGES) | {"encode"} and all(v >= 0 for v in res.timings.values())
    assert res.importance.shape == (180,) and float(res.importance.min()) >= 0
    assert [s for s, _ in res.history["fit"]][-1] == 30 and set(res.history["fit"][-1][1]) == {0, 1, 2}
    assert [s for s, _ in res.history["finetune"]][-1] == 6
    assert set(res.fit_losses) == {0, 1, 2}
    assert res.metrics["n_test"] == 2 and len(res.metrics["per_view"]) == 2 and res.metrics["psnr"] > 10
    assert res.views.n_train == 6 and res.views.source == "renders"
    fit_records = [r for r in records if r.stage == "fit" and r.losses]
    assert fit_records and all(set(r.losses) == {0, 1, 2} for r in fit_records)
    assert any(r.total_loss is not None for r in records if r.stage == "finetune")


def _assert_same_scene(a_model, b_model):
    torch.testing.assert_close(b_model.positions, a_model.positions, rtol=0, atol=0)
    for x, y in zip(a_model.decode().tensors(), b_model.decode().tensors()):
        torch.testing.assert_close(x, y, rtol=0, atol=0)


def test_the_result_is_exactly_what_the_ngs_file_stores(tiny_run):
    """v2 (the default): the bytes compress() measured decode to the model it evaluated, bit for bit."""
    _, res, _ = tiny_run
    data = b"".join(res.encoded.chunks)
    assert res.n_bytes == len(data) and data[4:6] == b"\x02\x00"
    back = decode_ngs(data)
    _assert_same_scene(res.model, back)
    meta = json.loads(json.dumps(back.meta))
    assert meta["config"]["n_clusters"] == 3 and meta["timings"]["total"] > 0  # a compact record in the file
    assert meta["n_original"] == 300 and meta["n_kept"] == 180 and "psnr" in meta["heldout"]
    assert res.codec["predictors"] == {"mlp": 3, "constant": 0}  # pure NeuralGS: MLPs only, no residuals
    assert back.residual is None and res.codec["bytes"]["residuals"] == 0


def test_format_version_1_still_writes_the_papers_storage(single_thread):
    res = run_to_completion(compress(tiny_scene(300, seed=1), tiny_config(format_version=1)))
    data = encode_ngs(res.model)
    assert res.encoded is None and res.n_bytes == len(data) and data[4:6] == b"\x01\x00"
    _assert_same_scene(res.model, decode_ngs(data))


def test_same_seed_same_model_and_metrics(tiny_run):
    scene, res, _ = tiny_run
    again = run_to_completion(compress(scene, tiny_config()))
    for fa, fb in zip(res.model.fields, again.model.fields):
        for pa, pb in zip(fa.parameters(), fb.parameters()):
            assert torch.equal(pa, pb)
    assert again.metrics["psnr"] == res.metrics["psnr"]


LEARNING = dict(residual_groups=RESIDUAL_GROUPS, target_psnr=28.0, prune_candidates=(0.4, 0.0), coadapt_iters=6,
                qat_iters=6, finetune_iters=0, n_test_views=2)


@pytest.mark.parametrize("stage", [*STAGES, "coadapt", "search", "qat"])
def test_closing_at_any_stage_is_clean_and_writes_nothing(stage, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scene = tiny_scene(200, seed=2)
    before = [t.clone() for t in scene.tensors()]
    extra = LEARNING if stage in ("coadapt", "search", "qat") else {}  # the codec's stages run with a target
    gen = compress(scene, tiny_config(**{"fit_iters": 20, "finetune_iters": 4, **extra}))
    for rec in gen:
        if rec.stage == stage:
            break
    else:
        pytest.fail(f"stage {stage} never reported")
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)
    assert os.listdir(tmp_path) == []
    assert all(torch.equal(a, b) for a, b in zip(before, scene.tensors()))


def test_the_driver_keeps_its_grad_mode_and_thread_count_between_records():
    """Stages must not leave their state in the caller's thread while suspended at a yield
    (torch.no_grad() around a yield would disable autograd in the GUI's worker between records)."""
    seen = []
    threads = torch.get_num_threads()

    def check(rec):
        seen.append((rec.stage, torch.is_grad_enabled()))

    run_to_completion(compress(tiny_scene(120), tiny_config(fit_iters=5, finetune_iters=2, threads=-1)), check)
    assert {stage for stage, _ in seen} == set(STAGES)
    assert all(enabled for _, enabled in seen), [s for s, e in seen if not e]
    assert torch.get_num_threads() == threads


def test_one_mlp_ablation_and_no_evaluation():
    res = run_to_completion(compress(tiny_scene(150), tiny_config(use_clusters=False, evaluate=False,
                                                                  finetune_iters=2)))
    assert res.model.n_clusters == 1 and res.metrics is None and "evaluate" not in res.timings


def test_thread_limit_is_restored():
    import numba

    before = torch.get_num_threads(), numba.get_num_threads()
    with limited_threads(1):
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert (torch.get_num_threads(), numba.get_num_threads()) == before


def test_donut_subset_end_to_end_renders_a_held_out_view_well():
    """2,000 Gaussians of the real donut, 48x48 views, a few hundred steps (~20 s on a busy 2-core CPU).

    Measured: 30.3 dB held-out PSNR with fine-tuning, 26-27 dB without; 25 dB guards against a broken
    stage (a decoder or normalisation bug lands far below 20 dB) with room for platform differences.
    """
    from core.io import read_scene

    scene = read_scene(shared_path("scenes", "donut.ply"))
    sub = scene.subset(torch.arange(2000) * (scene.num_gaussians // 2000))
    cfg = tiny_config(up=(0.0, 0.0, 1.0), n_clusters=4, hidden=32, layers=4, pe_freqs=6, fit_iters=150,
                      fit_lr=(5e-3, 5e-4), finetune_iters=60, finetune_lr=(2e-3, 2e-4), n_views=12, n_test_views=3,
                      image_size=48, kmeans_iters=15, threads=1)
    res = run_to_completion(compress(sub, cfg))
    assert res.n_kept == 1200
    assert res.metrics["psnr"] > 25.0, res.metrics
    # the metric is what it claims: a fresh render of the decoded model at a held-out view
    cam, target = res.views.test_cameras[0], res.views.test_targets[0]
    with torch.no_grad():
        img = render(res.model.decode(), cam, cfg.background, backend="cpu").color.clamp(0, 1)
    assert psnr(img, target) == pytest.approx(res.metrics["per_view"][0]["psnr"], abs=1e-6)


def test_width_budget_narrows_the_mlps_of_a_small_scene():
    from core.neural_field import FieldArch, width_within_budget

    arch = FieldArch(3, 64, 5, 10)
    assert width_within_budget(arch, 8, 1e9) == 64
    w = width_within_budget(arch, 8, 10 * 5448)  # sh3-capture: 5,448 kept Gaussians, 10 parameters each
    assert 8 * FieldArch(3, w, 5, 10).n_params() <= 54_480 < 8 * FieldArch(3, w + 1, 5, 10).n_params()
    assert width_within_budget(arch, 8, 10) == 8  # nothing fits: the smallest width
    cfg = tiny_config(max_params_per_gaussian=20.0, evaluate=False, finetune_iters=1, hidden=32, n_clusters=2)
    res = run_to_completion(compress(tiny_scene(150), cfg))
    assert res.model.arch.hidden < 32
    assert res.model.n_clusters * res.model.arch.n_params() <= 20.0 * res.n_kept
    assert res.model.meta["config"]["hidden"] == res.model.arch.hidden


@pytest.mark.parametrize("name, min_ratio", [("sh3-capture.ply", 12.0), ("lego-3dgs.ply", 20.0)])
def test_balanced_preset_meets_the_size_targets_on_real_scenes(name, min_ratio, single_thread):
    """The file size follows from the preset's architecture and pruning, not from training, so it is
    checked here without training (0 iterations, 4 tiny views for the importance); issue 3's targets:
    sh3-capture at least 12x and lego-3dgs at least 20x smaller than the .ply, and sh3-capture's
    positions (coordinates up to ~1000 units) within 1e-4 of the scene extent."""
    from core.io import read_scene
    from core.pipeline.config import config_from_preset

    path = shared_path("scenes", name)
    scene = read_scene(path)
    cfg = config_from_preset("balanced", fit_iters=0, finetune_iters=0, n_views=4, n_test_views=0, image_size=32,
                             evaluate=False, kmeans_iters=3)
    res = run_to_completion(compress(scene, cfg))
    data = b"".join(res.encoded.chunks)  # .ngs v2 (pure NeuralGS: entropy-coded positions, int8 weights)
    assert len(data) == res.n_bytes and len(data) < 0.75 * len(encode_ngs(res.model))  # v1: 6 B/position, fp16
    assert path.stat().st_size / len(data) >= min_ratio, (len(data), res.model.arch.hidden)
    if name == "sh3-capture.ply":  # 5,448 x 9,080 distances; lego's 80k x 134k would take minutes
        decoded = decode_ngs(data).positions.double()
        orig = scene.means.double()
        extent = float((orig.max(0).values - orig.min(0).values).norm())
        nearest = torch.cat([torch.cdist(chunk, orig).min(1).values for chunk in decoded.split(1024)])
        assert float(nearest.max()) <= 1e-4 * extent


def test_evaluate_pair_renders_each_reference_view_once_with_a_cache(monkeypatch):
    import core.pipeline.evaluation as evaluation

    scene = tiny_scene(200)
    other = scene.subset(torch.arange(0, 200, 2))
    cfg = tiny_config(n_test_views=3, image_size=24)
    plain = evaluation.evaluate_pair(scene, other, cfg)
    assert plain["view_size"] == 24 and plain["n_views"] == 3
    rendered = []
    real = evaluation.render_view
    monkeypatch.setattr(evaluation, "render_view", lambda s, cam, c: (rendered.append(s), real(s, cam, c))[1])
    cache: dict = {}
    first = evaluation.evaluate_pair(scene, other, cfg, reference_renders=cache)
    second = evaluation.evaluate_pair(scene, other, cfg, reference_renders=cache)
    assert sorted(cache) == [0, 1, 2]
    assert sum(s is scene for s in rendered) == 3 and sum(s is other for s in rendered) == 6
    assert first["psnr"] == second["psnr"] == plain["psnr"] and first["ssim"] == plain["ssim"]
