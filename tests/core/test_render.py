"""The differentiable renderers agree with the brute-force reference, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.camera import Camera
from core.render import render
from core.render.sh import eval_sh_colors, sh_basis
from core.scene import SH_REST_COUNTS, GaussianScene

BG = (0.2, 0.3, 0.4)


def random_scene(n: int, degree: int, seed: int, spread: float = 0.6) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    m = SH_REST_COUNTS[degree]
    return GaussianScene(
        means=torch.randn(n, 3, generator=g) * spread,
        quats=torch.randn(n, 4, generator=g),
        log_scales=torch.randn(n, 3, generator=g) * 0.4 - 2.0,
        opacity_logits=torch.randn(n, generator=g) * 2.0,
        sh_dc=torch.randn(n, 3, generator=g) * 0.6,
        sh_rest=torch.randn(n, m, 3, generator=g) * 0.2,
    )


def camera(width: int = 37, height: int = 29, eye=(0.3, -0.5, -4.0)) -> Camera:
    return Camera.look_at(eye, [0, 0, 0], [0, -1, 0], 50.0, width, height)


def gradients(scene: GaussianScene, cam: Camera, backend: str, seed: int = 1):
    leaves = [t.clone().requires_grad_(True) for t in scene.tensors()]
    out = render(GaussianScene(*leaves), cam, BG, backend=backend)
    g = torch.Generator().manual_seed(seed)
    loss = (
        (out.color * torch.rand(out.color.shape, generator=g)).sum()
        + (out.alpha * torch.rand(out.alpha.shape, generator=g)).sum()
        + 0.1 * (out.depth * torch.rand(out.depth.shape, generator=g)).sum()
    )
    loss.backward()
    return out, [t.grad for t in leaves]


CASES = [(30, 0, 0, (37, 29)), (40, 1, 1, (32, 24)), (25, 2, 2, (17, 40)), (40, 3, 3, (37, 29))]


@pytest.mark.parametrize("n,degree,seed,size", CASES)
def test_cpu_forward_and_gradients_match_reference(n, degree, seed, size):
    scene = random_scene(n, degree, seed)
    cam = camera(*size)
    fast, g_fast = gradients(scene, cam, "cpu")
    ref, g_ref = gradients(scene, cam, "reference")
    assert fast.n_visible == ref.n_visible > n // 2
    assert float(ref.alpha.detach().max()) > 0.5, "the scene must actually cover pixels"
    torch.testing.assert_close(fast.color, ref.color, atol=1e-4, rtol=0)
    torch.testing.assert_close(fast.alpha, ref.alpha, atol=1e-4, rtol=0)
    torch.testing.assert_close(fast.depth, ref.depth, atol=1e-4 * float(ref.depth.detach().abs().max()), rtol=0)
    for name, a, b in zip(GaussianScene.field_names(), g_fast, g_ref):
        if name == "sh_rest" and degree == 0:
            continue
        scale = float(b.abs().max())
        assert scale > 0, f"reference gradient of {name} is all zero: the test would be vacuous"
        err = float((a - b).abs().max())
        assert err <= 1e-3 * scale, f"{name}: max |cpu - reference| = {err:.3g}, reference max {scale:.3g}"


def test_reference_detects_a_wrong_gradient():
    """The comparison above is sensitive: a slightly changed scene gives clearly different gradients."""
    scene = random_scene(30, 1, 5)
    cam = camera()
    _, g1 = gradients(scene, cam, "cpu")
    moved = GaussianScene(scene.means + 0.01, *scene.tensors()[1:])
    _, g2 = gradients(moved, cam, "cpu")
    assert float((g1[0] - g2[0]).abs().max()) > 1e-3 * float(g1[0].abs().max())


def test_behind_camera_and_offscreen_gaussians_are_culled_without_nan():
    scene = random_scene(50, 1, 7, spread=3.0)  # many behind the camera at z=-4 or far off screen
    cam = camera()
    out, grads = gradients(scene, cam, "cpu")
    ref, _ = gradients(scene, cam, "reference")
    assert out.n_visible < 50
    torch.testing.assert_close(out.color, ref.color, atol=1e-4, rtol=0)
    for g in grads:
        assert torch.isfinite(g).all()


def test_empty_view_is_background():
    scene = random_scene(10, 0, 3)
    cam = Camera.look_at([0, 0, -4], [0, 0, -8], [0, -1, 0], 50.0, 16, 16)  # looking away
    out = render(scene, cam, BG, backend="cpu")
    assert out.n_visible == 0
    assert torch.allclose(out.color, torch.tensor(BG).expand(16, 16, 3))
    assert float(out.alpha.abs().max()) == 0.0


def test_single_gaussian_lands_where_projected():
    """A round Gaussian at a known world point covers the pixel the pinhole model predicts."""
    scene = GaussianScene(
        means=torch.tensor([[0.5, 0.25, 2.0]]), quats=torch.tensor([[1.0, 0, 0, 0]]),
        log_scales=torch.full((1, 3), float(np.log(0.02))), opacity_logits=torch.tensor([5.0]),
        sh_dc=torch.zeros(1, 3), sh_rest=torch.zeros(1, 0, 3),
    )
    cam = Camera(np.eye(4), 100.0, 100.0, 32.0, 24.0, 64, 48)  # at origin, looking down +z
    out = render(scene, cam, (0, 0, 0), backend="cpu")
    # u = fx * x / z + cx = 57, v = 36.5: pixel (row 36, col 56) has centre (56.5, 36.5)
    row, col = np.unravel_index(int(out.alpha.argmax()), out.alpha.shape)
    assert (row, col) in {(36, 56), (36, 57)}
    assert abs(float(out.depth[row, col]) - 2.0) < 1e-3


def test_sh_basis_is_orthonormal_on_the_sphere():
    """Monte-Carlo check that the basis is the real orthonormal SH basis (catches sign/constant slips)."""
    g = torch.Generator().manual_seed(0)
    d = torch.nn.functional.normalize(torch.randn(400_000, 3, generator=g, dtype=torch.float64), dim=-1)
    y = sh_basis(3, d)
    gram = (y.T @ y) * (4 * np.pi / d.shape[0])
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=0.02)


def test_sh_colour_matches_graphdeco_formula_for_degree_1():
    coeffs = torch.tensor([[[0.1, 0.2, 0.3], [0.5, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 0.5]]])
    d = torch.tensor([[0.0, 0.6, 0.8]])
    c0, c1 = 0.28209479177387814, 0.4886025119029199
    expected = c0 * coeffs[0, 0] - c1 * 0.6 * coeffs[0, 1] + c1 * 0.8 * coeffs[0, 2] + 0.5
    assert torch.allclose(eval_sh_colors(coeffs, d * 3.0)[0], expected.clamp_min(0))


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown render backend"):
        render(random_scene(3, 0, 0), camera(), BG, backend="vulkan")


def test_auto_backend_on_cpu_scene_uses_cpu():
    out = render(random_scene(5, 0, 0), camera(), BG, backend="auto")
    assert out.backend == "cpu"


def test_gsplat_that_cannot_run_falls_back_to_cpu_for_auto_and_raises_when_asked_for(monkeypatch):
    """One fallback rule for render and contribution_weights: "auto" -> cpu, "gsplat" -> RuntimeError."""
    from core.render import api, gsplat_backend

    scene, cam = random_scene(20, 1, 3), camera()
    want_img = render(scene, cam, BG, backend="cpu")
    want_w = api.contribution_weights(scene, cam, backend="cpu")
    monkeypatch.setattr(api, "resolve_backend", lambda backend, device="cpu": "gsplat")  # as if CUDA worked
    calls = []
    monkeypatch.setattr(gsplat_backend, "render", lambda *a: calls.append("render"))  # gsplat fails: None
    monkeypatch.setattr(gsplat_backend, "render_features", lambda *a: calls.append("features"))
    monkeypatch.setattr(gsplat_backend, "unavailable_reason", lambda: "no kernels here")
    out = render(scene, cam, BG, backend="auto")
    assert out.backend == "cpu" and calls == ["render"]
    torch.testing.assert_close(out.color, want_img.color, atol=0, rtol=0)
    torch.testing.assert_close(api.contribution_weights(scene, cam, backend="auto"), want_w, atol=0, rtol=0)
    assert calls == ["render", "features"]
    with pytest.raises(RuntimeError, match="gsplat backend unavailable: no kernels here"):
        render(scene, cam, BG, backend="gsplat")
    with pytest.raises(RuntimeError, match="gsplat backend unavailable: no kernels here"):
        api.contribution_weights(scene, cam, backend="gsplat")


def test_render_output_has_one_home():
    import core.render
    from core.render import api, output

    assert core.render.RenderOutput is api.RenderOutput is output.RenderOutput
    assert render(random_scene(5, 0, 0), camera(), BG, backend="reference").__class__ is output.RenderOutput


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA for gsplat")
def test_gsplat_matches_cpu_backend():
    scene = random_scene(400, 3, 11)
    cam = camera(96, 64)
    cpu_out = render(scene, cam, BG, backend="cpu")
    gpu_out = render(scene.to("cuda"), cam, BG, backend="gsplat")
    assert gpu_out.backend == "gsplat"
    torch.testing.assert_close(gpu_out.color.cpu(), cpu_out.color, atol=2e-3, rtol=0)
    torch.testing.assert_close(gpu_out.alpha.cpu(), cpu_out.alpha, atol=2e-3, rtol=0)


def test_contribution_weights_equal_brute_force_blending_weights():
    """Σ_pixels α_i T_i per Gaussian: the gradient trick agrees with weights summed by hand."""
    from core.render.api import contribution_weights

    scene = random_scene(30, 0, 4)
    cam = camera()
    got = contribution_weights(scene, cam, backend="cpu")
    # by hand: render each Gaussian's colour as a one-hot channel through the reference renderer
    total = torch.zeros(30)
    for i in range(30):
        dc = torch.full((30, 3), -0.5 / 0.28209479177387814)  # colour 0 everywhere
        dc[i] = 0.5 / 0.28209479177387814  # colour 1 for Gaussian i
        s = GaussianScene(scene.means, scene.quats, scene.log_scales, scene.opacity_logits, dc, scene.sh_rest)
        total[i] = render(s, cam, (0, 0, 0), backend="reference").color[..., 0].sum()
    assert float(total.sum()) > 1.0
    torch.testing.assert_close(got, total, atol=1e-3, rtol=1e-4)
