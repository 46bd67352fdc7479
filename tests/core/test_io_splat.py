"""antimatter15 .splat reading: a tiny known scene and donut.ply converted by a writer in this file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.io import read_scene, read_scene_with_info
from core.scene import GaussianScene
from tests.conftest import shared_path

SH_C0 = 0.28209479177387814


def write_splat(scene: GaussianScene, path) -> None:
    """antimatter15's convert.py layout: pos f32x3, exp(scale) f32x3, RGBA u8, quat (w,x,y,z) u8 as q*128+128."""
    n = scene.num_gaussians
    rec = np.zeros(n, dtype=[("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
    rec["pos"] = scene.means.numpy()
    rec["scale"] = torch.exp(scene.log_scales).numpy()
    rgba = torch.cat([0.5 + SH_C0 * scene.sh_dc, torch.sigmoid(scene.opacity_logits)[:, None]], dim=1)
    rec["rgba"] = (rgba.double().numpy() * 255).clip(0, 255).astype(np.uint8)
    q = scene.unit_quats().double().numpy()
    rec["rot"] = (q * 128 + 128).clip(0, 255).astype(np.uint8)
    path.write_bytes(rec.tobytes())


def assert_within_quantisation(original: GaussianScene, back: GaussianScene) -> None:
    assert back.num_gaussians == original.num_gaussians and back.sh_degree == 0
    for t in back.tensors():
        assert t.dtype == torch.float32 and t.device.type == "cpu"
    assert torch.equal(back.means, original.means)
    # log(exp(s)) through float32: a few ulps
    torch.testing.assert_close(back.log_scales, original.log_scales, rtol=0,
                               atol=2e-6 * (1 + original.log_scales.abs().max()))
    color = (0.5 + SH_C0 * original.sh_dc).clamp(0, 1)
    back_color = 0.5 + SH_C0 * back.sh_dc
    assert float((back_color - color).abs().max()) <= 1 / 255 + 1e-6  # truncation to u8: one step
    alpha = torch.sigmoid(original.opacity_logits)
    assert float((back.opacities() - alpha).abs().max()) <= 1 / 255 + 1e-6
    dots = (back.unit_quats() * original.unit_quats()).sum(1).abs()
    assert float(dots.min()) > 0.995  # 8-bit components: about 1/128 per component


def test_tiny_known_scene(tmp_path):
    scene = GaussianScene(
        means=torch.tensor([[0.0, 1.0, 2.0], [-3.5, 4.25, 1e-3]]),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]]),
        log_scales=torch.log(torch.tensor([[0.5, 1.0, 2.0], [0.01, 0.02, 0.03]])),
        opacity_logits=torch.tensor([0.0, 3.0]),
        sh_dc=torch.tensor([[0.0, 1.0, -1.0], [0.5, -0.5, 0.25]]),
        sh_rest=torch.zeros(2, 0, 3),
    )
    path = tmp_path / "tiny.splat"
    write_splat(scene, path)
    assert path.stat().st_size == 64
    back, info = read_scene_with_info(path)
    assert (info.format, info.n_gaussians, info.sh_degree, info.bytes, info.warnings) == ("splat", 2, 0, 64, [])
    assert info.encoding == ""
    assert_within_quantisation(scene, back)
    # exact decodes of the bytes written: identity -> (255, 128, 128, 128); z-axis -> (128, 128, 128, 255)
    assert torch.equal(back.quats[0], torch.tensor([127 / 128, 0, 0, 0]))
    assert torch.equal(back.quats[1], torch.tensor([0, 0, 0, 127 / 128]))
    assert torch.equal(back.sh_dc[0, 0], torch.tensor((127 / 255 - 0.5) / SH_C0, dtype=torch.float64).float())


def test_opacity_extremes_and_zero_quaternion_stay_finite(tmp_path):
    rec = np.zeros(2, dtype=[("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
    rec["scale"] = 1.0
    rec["rgba"] = [[0, 0, 0, 0], [255, 255, 255, 255]]
    rec["rot"] = [[128, 128, 128, 128], [255, 128, 128, 128]]
    path = tmp_path / "edge.splat"
    path.write_bytes(rec.tobytes())
    back, info = read_scene_with_info(path)
    assert not back.non_finite_fields()
    assert back.opacity_logits[0] < -13 and back.opacity_logits[1] > 13
    assert torch.equal(back.quats[0], torch.tensor([1.0, 0, 0, 0]))
    assert info.warnings == ["1 splats had an all-zero rotation; set to identity"]


def test_donut_round_trip_through_splat(tmp_path):
    donut = read_scene(shared_path("scenes", "donut.ply"))
    path = tmp_path / "donut.splat"
    write_splat(donut, path)
    back, info = read_scene_with_info(path)
    assert info.n_gaussians == 45_624 and info.bytes == 45_624 * 32
    assert_within_quantisation(donut, back)


def test_ply_content_wins_over_splat_extension(tmp_path):
    from core.io import write_ply
    from tests.core.test_io_ply import random_scene

    path = tmp_path / "actually_a_ply.splat"
    write_ply(random_scene(5, 1), path)
    _, info = read_scene_with_info(path)
    assert info.format == "ply" and info.sh_degree == 1


def tiny_random_scene() -> GaussianScene:
    g = torch.Generator().manual_seed(0)
    return GaussianScene(torch.randn(3, 3, generator=g), torch.randn(3, 4, generator=g), torch.randn(3, 3, generator=g),
                         torch.randn(3, generator=g), torch.randn(3, 3, generator=g), torch.zeros(3, 0, 3))


@pytest.mark.parametrize("n", [1, 3])
def test_size_is_n_times_32(tmp_path, n):
    path = tmp_path / "s.splat"
    scene = GaussianScene(*(t[:n] for t in tiny_random_scene().tensors()))
    write_splat(scene, path)
    assert path.stat().st_size == 32 * n
    assert_within_quantisation(scene, read_scene(path))
