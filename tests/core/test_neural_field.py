"""core.neural_field: the attribute layout's quaternion reconstruction."""

from __future__ import annotations

import pytest
import torch


def test_quaternion_w_has_finite_gradients_on_and_beyond_the_unit_sphere():
    """|xyz| = 1 exactly (a saturated tanh gives it) or beyond: w = 0 and finite gradients (the old
    sqrt(clamp_min(d, 0)) gave an infinite one at d = 0)."""
    from core.neural_field import attributes_to_scene

    attrs = torch.zeros(4, 10)
    attrs[:, 4:7] = torch.tensor([[0.6, 0.0, 0.0], [1.0, 0.0, 0.0], [0.9, 0.9, 0.0], [0.0, 0.0, 0.0]])
    attrs.requires_grad_(True)
    scene = attributes_to_scene(torch.zeros(4, 3), attrs, 0)
    assert scene.quats[:, 0].tolist() == pytest.approx([0.8, 0.0, 0.0, 1.0])
    scene.quats[:, 0].sum().backward()
    assert torch.isfinite(attrs.grad).all()
    assert attrs.grad[0, 4].item() == pytest.approx(-0.6 / 0.8)
