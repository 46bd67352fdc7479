"""Fine-tuning through the renderer (Eq. 5-7): lowers the loss, works on a copy, fp16 weights, determinism, cancel."""

from __future__ import annotations

import pytest
import torch

from core.metrics import psnr
from core.neural_field import scene_to_attributes
from core.pipeline import run_to_completion
from core.pipeline.finetune import finetune, view_schedule
from core.pipeline.fit import fit_clusters
from core.pipeline.views import build_views
from core.render.api import render
from tests.core.pipeline_helpers import tiny_config, tiny_scene

pytestmark = pytest.mark.usefixtures("single_thread")  # one torch and one numba thread (tests/core/conftest.py)


@pytest.fixture(scope="module")
def fitted(single_thread):
    """A roughly fitted model of a 250-Gaussian scene and its 32x32 views."""
    scene = tiny_scene(250, seed=3)
    cfg = tiny_config(n_views=6, n_test_views=2, fit_iters=40, fit_lr=(1e-2, 1e-3), hidden=24, pe_freqs=3)
    vs = run_to_completion(build_views(scene, cfg))
    labels = torch.arange(250) % 2
    res = run_to_completion(fit_clusters(scene.means, scene_to_attributes(scene), labels, None, cfg, 0))
    return res.model, vs, cfg


def weights(model):
    return [p.detach().clone() for f in model.fields for p in f.parameters()]


def train_psnr(model, vs):
    with torch.no_grad():
        scene = model.decode()
        return sum(psnr(render(scene, c, vs.background, backend="cpu").color.clamp(0, 1), t)
                   for c, t in zip(vs.train_cameras, vs.train_targets)) / vs.n_train


def test_finetuning_lowers_the_render_loss_and_leaves_the_input_model_alone(fitted):
    model, vs, cfg = fitted
    before = weights(model)
    records = []
    res = run_to_completion(finetune(model, vs, cfg.replace(finetune_iters=60, finetune_lr=(1e-2, 1e-3),
                                                            log_every=15)), records.append)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(model)))  # the caller's model is untouched
    losses = [v for _, v in res.history]
    assert [s for s, _ in res.history] == [15, 30, 45, 60] and losses[-1] < 0.7 * losses[0], losses
    assert all(r.stage == "finetune" for r in records) and records[-1].total_loss == pytest.approx(losses[-1])
    assert train_psnr(res.model, vs) > train_psnr(model, vs) + 1.0
    for p in res.model.fields[0].parameters():  # fp16 values, as the .ngs file stores them
        assert torch.equal(p, p.half().float()) and not p.requires_grad
    assert res.model.positions is model.positions  # positions fixed (and shared)


def test_same_seed_same_weights_and_frequency_switch_changes_the_result(fitted):
    model, vs, cfg = fitted
    cfg = cfg.replace(finetune_iters=4)
    a = weights(run_to_completion(finetune(model, vs, cfg)).model)
    b = weights(run_to_completion(finetune(model, vs, cfg)).model)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    c = weights(run_to_completion(finetune(model, vs, cfg.replace(use_freq_loss=False))).model)
    assert not all(torch.equal(x, y) for x, y in zip(a, c))


def test_closing_mid_finetune_is_clean(fitted):
    model, vs, cfg = fitted
    before = weights(model)
    gen = finetune(model, vs, cfg.replace(finetune_iters=50, log_every=1))
    next(gen)
    next(gen)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)
    assert all(torch.equal(a, b) for a, b in zip(before, weights(model)))


def test_view_schedule_visits_every_view_once_per_pass():
    s = view_schedule(5, 12, seed=0)
    assert len(s) == 12 and sorted(s[:5]) == [0, 1, 2, 3, 4] and sorted(s[5:10]) == [0, 1, 2, 3, 4]
    assert s == view_schedule(5, 12, seed=0) and s != view_schedule(5, 12, seed=1)
