"""Fine-tuning losses: L1 / SSIM (Eq. 5) and the frequency loss (Eq. 6): high-pass behaviour and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from core.pipeline.losses import (
    frequency_loss,
    highpass_mask,
    l1_loss,
    render_loss,
    ssim_loss,
    total_loss,
)

pytestmark = pytest.mark.usefixtures("single_thread")  # one torch and one numba thread (tests/core/conftest.py)

H = W = 64


def _grid():
    return torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")


def scene_image(shift: float = 0.0) -> torch.Tensor:
    """[H, W, 3]: a bright disk (sharp edge) on a gradient, with a fine texture; ``shift`` moves the disk."""
    yy, xx = _grid()
    disk = ((xx - 30 - shift) ** 2 + (yy - 32) ** 2 < 14.0**2).float()
    texture = 0.05 * torch.sin(xx * 1.3) * torch.cos(yy * 0.9)
    return torch.stack([0.2 + 0.6 * disk, 0.3 + 0.2 * disk + 0.2 * xx / W, 0.5 + 0 * xx], -1) + texture[..., None]


def smooth_changes() -> dict[str, torch.Tensor]:
    yy, xx = _grid()
    return {
        "constant": torch.full((H, W, 1), 0.1),
        "ramp": (0.1 * xx / W)[..., None],
        "blob": (0.1 * torch.exp(-((xx - 32) ** 2 + (yy - 32) ** 2) / (2 * 15.0**2)))[..., None],
    }


def test_identical_images_have_zero_losses():
    img = scene_image()
    assert float(l1_loss(img, img)) == 0.0
    assert abs(float(ssim_loss(img, img))) < 1e-6
    assert float(frequency_loss(img, img)) == 0.0


def test_highpass_mask_is_zero_at_dc_and_near_one_at_nyquist():
    m = highpass_mask(H, W, cutoff=0.2)
    assert float(m[0, 0]) == 0.0
    assert float(m[H // 2, W // 2]) > 0.99  # the corner frequency (0.5, 0.5) cycles/pixel
    assert float(m[1, 0]) < 0.02  # one cycle per image


@pytest.mark.parametrize("name", ["constant", "ramp", "blob"])
def test_frequency_loss_ignores_low_frequency_changes(name):
    """A smooth change of amplitude 0.1 barely moves L_freq; fine noise with less L1 moves it 50x more."""
    img = scene_image()
    change = smooth_changes()[name]
    smooth = float(frequency_loss(img + change, img))
    noise = 0.03 * torch.randn(H, W, 3, generator=torch.Generator().manual_seed(0))
    noisy = float(frequency_loss(img + noise, img))
    assert float(l1_loss(img + change, img)) > float(l1_loss(img + noise, img))  # the smooth change is larger
    assert smooth < 0.01, smooth
    assert noisy > 50 * smooth, (noisy, smooth)


def test_frequency_loss_reacts_to_a_one_pixel_edge_shift_and_to_blur():
    img = scene_image()
    shifted = float(frequency_loss(scene_image(shift=1.0), img))
    blurred = torch.nn.functional.avg_pool2d(img.permute(2, 0, 1)[None], 3, 1, 1, count_include_pad=False)
    blur = float(frequency_loss(blurred[0].permute(1, 2, 0), img))
    smooth = float(frequency_loss(img + smooth_changes()["ramp"], img))
    # a 1-pixel shift changes L1 by only 0.0035, but L_freq by ~1.2: the phase term sees it
    assert float(l1_loss(scene_image(shift=1.0), img)) < 0.01
    assert shifted > 0.5 and shifted > 100 * smooth
    assert blur > 0.3 and blur > 50 * smooth


def test_frequency_loss_scale_makes_lambda_001_a_regulariser():
    """With lambda_freq = 0.01 the term is of the order of the render loss for a visible error, not 100x it."""
    img = scene_image()
    noisy = img + 0.03 * torch.randn(H, W, 3, generator=torch.Generator().manual_seed(1))
    freq = 0.01 * float(frequency_loss(noisy, img))
    rend = float(render_loss(noisy, img))
    assert 0.05 * rend < freq < 5 * rend, (freq, rend)


def test_frequency_loss_gradients_are_finite_even_for_flat_and_zero_images():
    target = scene_image()
    for start in (torch.zeros(H, W, 3), torch.full((H, W, 3), 0.5), target.clone()):
        x = start.clone().requires_grad_(True)
        frequency_loss(x, target).backward()
        assert torch.isfinite(x.grad).all()
    flat = torch.full((H, W, 3), 0.5)
    x = (flat + 0.01 * torch.randn(H, W, 3, generator=torch.Generator().manual_seed(2))).requires_grad_(True)
    loss = frequency_loss(x, flat)  # a target with no high frequencies at all
    loss.backward()
    assert math.isfinite(float(loss.detach())) and torch.isfinite(x.grad).all()


def test_gradient_descent_on_the_frequency_loss_sharpens_a_blurred_image():
    target = scene_image()
    blurred = torch.nn.functional.avg_pool2d(target.permute(2, 0, 1)[None], 3, 1, 1, count_include_pad=False)
    x = blurred[0].permute(1, 2, 0).clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=1e-2)
    first = None
    for _ in range(20):
        opt.zero_grad()
        loss = frequency_loss(x, target)
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    assert float(frequency_loss(x.detach(), target)) < 0.7 * first


def test_total_loss_combines_eq5_and_eq7():
    img = scene_image()
    other = scene_image(shift=2.0)
    l1, s, f = float(l1_loss(other, img)), float(ssim_loss(other, img)), float(frequency_loss(other, img))
    assert float(render_loss(other, img, 0.2)) == pytest.approx(0.8 * l1 + 0.2 * s, rel=1e-5)
    assert float(total_loss(other, img, 0.2, 0.01)) == pytest.approx(0.8 * l1 + 0.2 * s + 0.01 * f, rel=1e-5)
    assert float(total_loss(other, img, 0.2, 0.0)) == pytest.approx(0.8 * l1 + 0.2 * s, rel=1e-5)
