"""Global importance (Eq. 2-3) and pruning on tiny hand-made scenes."""

from __future__ import annotations

import math

import pytest
import torch

from core.camera import Camera
from core.pipeline import run_to_completion
from core.pipeline.importance import importance_scores, prune, prune_index, volume_factor
from core.scene import GaussianScene
from tests.core.pipeline_helpers import front_camera, tiny_scene

pytestmark = pytest.mark.usefixtures("single_thread")  # one torch and one numba thread (tests/core/conftest.py)


def gaussians(means, log_scales, opacity_logits) -> GaussianScene:
    n = len(means)
    quats = torch.zeros(n, 4)
    quats[:, 0] = 1.0
    return GaussianScene(torch.tensor(means, dtype=torch.float32), quats,
                         torch.tensor(log_scales, dtype=torch.float32),
                         torch.tensor(opacity_logits, dtype=torch.float32), torch.full((n, 3), 0.5),
                         torch.zeros(n, 0, 3))


def scores(scene, cameras, beta=0.1):
    return run_to_completion(importance_scores(scene, cameras, beta, backend="cpu"))


def test_a_gaussian_hidden_behind_an_opaque_one_has_almost_no_importance():
    # camera at z = -3 looking at +z: two big opaque Gaussians at z = -0.5 and -0.3 cover the small one
    # at z = +0.5 (two layers: alpha is capped at 0.999 and falls off-centre, so one layer lets ~0.5% through)
    scene = gaussians([[0, 0, -0.5], [0, 0, -0.3], [0, 0, 0.5]], [[0.0] * 3, [0.0] * 3, [-2.5] * 3], [9.0] * 3)
    front, _, hidden = scores(scene, [front_camera(32)], beta=0.0).tolist()
    (alone,) = scores(scene.subset(torch.tensor([2])), [front_camera(32)], beta=0.0).tolist()
    assert front > 50.0  # tens of pixels of (almost) full blending weight
    assert alone > 2.0  # the same small Gaussian, unoccluded, covers a few pixels
    assert hidden < 2e-3 * alone, (hidden, alone)


def test_gaussians_behind_the_camera_score_zero_and_scores_add_over_views():
    scene = gaussians([[0, 0, 0], [0, 0, -5]], [[-1.5] * 3, [-1.5] * 3], [3.0, 3.0])
    cam = front_camera(32)
    one = scores(scene, [cam], beta=0.0)
    assert float(one[1]) == 0.0 and float(one[0]) > 0
    two = scores(scene, [cam, cam], beta=0.0)
    torch.testing.assert_close(two, 2 * one)


def test_volume_term_orders_equal_coverage_gaussians_by_volume():
    # five side-by-side Gaussians, identical in x/y, elongated differently along the (far, narrow)
    # viewing direction: same footprint and blending weights, different volumes
    z_scales = [-4.0, -3.5, -3.0, -2.5, -2.0]
    means = [[x, 0.0, 0.0] for x in (-0.6, -0.3, 0.0, 0.3, 0.6)]
    scene = gaussians(means, [[-2.6, -2.6, z] for z in z_scales], [2.0] * 5)
    far = Camera.look_at([0.0, 0.0, -60.0], [0, 0, 0], [0, -1, 0], 1.6, 64, 32)
    flat = scores(scene, [far], beta=0.0)
    assert float(flat.min()) > 10 and float(flat.max() - flat.min()) < 2e-2 * float(flat.max())
    s = scores(scene, [far], beta=0.1)
    assert torch.all(s[1:] >= s[:-1]) and torch.all(s[1:4] > s[:3] * 1.01)  # largest volume clipped to 1
    # Eq. 3 exactly: V_norm = clip(V / V_90, 0, 1), times beta
    log_v = torch.tensor([-5.2 + z for z in z_scales])
    v90 = torch.quantile(log_v.double(), 0.9)
    expected = flat * torch.exp(0.1 * torch.clamp(log_v - v90, max=0)).float()
    torch.testing.assert_close(s, expected, rtol=1e-5, atol=0)


def test_volume_factor_is_one_above_the_90th_percentile_and_survives_tiny_volumes():
    log_scales = torch.tensor([[-40.0, -40.0, -40.0]] + [[-2.0, -2.0, -2.0]] * 9 + [[0.0, 0.0, 0.0]])
    f = volume_factor(log_scales, beta=0.1)
    assert float(f[-1]) == 1.0 and torch.all(f[1:10] == f[1])
    assert 0 < float(f[0]) < float(f[1]) <= 1.0  # exp(-120) underflows as a volume, not in log space
    assert float(f[0]) == pytest.approx(math.exp(0.1 * (-120.0 - float(torch.quantile(log_scales.sum(1), 0.9)))))
    assert torch.all(volume_factor(log_scales, beta=0.0) == 1.0)


def test_importance_yields_a_record_per_view():
    recs = list(importance_scores(tiny_scene(50), [front_camera(16)] * 3, backend="cpu"))
    assert [r.step for r in recs] == [0, 1, 2, 3] and {r.stage for r in recs} == {"importance"}


def test_prune_keeps_the_most_important_in_input_order():
    imp = torch.tensor([0.5, 3.0, 0.1, 3.0, 2.0, 0.0, 1.0, 0.2, 5.0, 0.3])
    idx = prune_index(imp, 0.4)
    assert idx.tolist() == [0, 1, 3, 4, 6, 8]
    assert prune_index(imp, 0.0).tolist() == list(range(10))
    assert prune_index(imp, 0.99).tolist() == [8]  # at least one is kept
    tie = prune_index(torch.ones(6), 0.5)
    assert tie.tolist() == [0, 1, 2]  # ties: lower index first, deterministic
    scene = tiny_scene(10)
    kept, kidx = prune(scene, imp, 0.4)
    assert torch.equal(kidx, idx) and torch.equal(kept.means, scene.means[idx])
    with pytest.raises(ValueError, match="prune ratio"):
        prune_index(imp, 1.0)
