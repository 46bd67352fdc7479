"""The display renderer (core.display): agreement with a brute-force reference, with the differentiable
renderer (donut.ply) and with ground-truth images (lego), plus orientation, subsets and lifetime.

Each test taking ``renderer`` runs on both backends ("gl": moderngl/EGL, "cpu": numba tiles), with one
renderer per backend for the module; the GL runs skip with the reason when no EGL context can be
created on this machine.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from core.camera import Camera
from core.metrics import psnr
from core.scene import GaussianScene
from tests.conftest import shared_path

# -- a brute-force reference written from the spec, independent of core.display ------------------

_C0 = 0.28209479177387814
_C1 = 0.4886025119029199
_C2 = [1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396]
_C3 = [-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
       1.445305721320277, -0.5900435899266435]


def _sh_basis(d: np.ndarray, k: int) -> np.ndarray:
    x, y, z = d
    b = [_C0]
    if k > 1:
        b += [-_C1 * y, _C1 * z, -_C1 * x]
    if k > 4:
        b += [_C2[0] * x * y, _C2[1] * y * z, _C2[2] * (2 * z * z - x * x - y * y), _C2[3] * x * z,
              _C2[4] * (x * x - y * y)]
    if k > 9:
        b += [_C3[0] * y * (3 * x * x - y * y), _C3[1] * x * y * z, _C3[2] * y * (4 * z * z - x * x - y * y),
              _C3[3] * z * (2 * z * z - 3 * x * x - 3 * y * y), _C3[4] * x * (4 * z * z - x * x - y * y),
              _C3[5] * z * (x * x - y * y), _C3[6] * x * (x * x - 3 * y * y)]
    return np.array(b)


def reference_render(scene: GaussianScene, cam: Camera, background=(0.0, 0.0, 0.0)) -> np.ndarray:
    """float64 [H, W, 3]: every pixel composites every Gaussian front to back (camera z order), gsplat
    1.5.3 classic rules, each Gaussian cut to its opacity-aware 3.33-sigma rectangle."""
    means = scene.means.double().numpy()
    quats = scene.quats.double().numpy()
    scales = np.exp(scene.log_scales.double().numpy())
    opac = 1.0 / (1.0 + np.exp(-scene.opacity_logits.double().numpy()))
    coeffs = scene.sh_coeffs().double().numpy()
    rot, trans = cam.world_to_camera[:3, :3], cam.world_to_camera[:3, 3]
    fx, fy, cx, cy, w, h = cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height
    py, px = np.mgrid[0:h, 0:w] + 0.5
    splats = []
    for i in range(len(means)):
        x, y, z = rot @ means[i] + trans
        if z < 0.01:
            continue
        qw, qx, qy, qz = quats[i] / np.linalg.norm(quats[i])
        rq = np.array([[1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qw * qz), 2 * (qx * qz + qw * qy)],
                       [2 * (qx * qy + qw * qz), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qw * qx)],
                       [2 * (qx * qz - qw * qy), 2 * (qy * qz + qw * qx), 1 - 2 * (qx * qx + qy * qy)]])
        m = rq @ np.diag(scales[i])
        cov_c = rot @ m @ m.T @ rot.T
        tfx, tfy = 0.5 * w / fx, 0.5 * h / fy
        tx = z * min((w - cx) / fx + 0.3 * tfx, max(-(cx / fx + 0.3 * tfx), x / z))
        ty = z * min((h - cy) / fy + 0.3 * tfy, max(-(cy / fy + 0.3 * tfy), y / z))
        jac = np.array([[fx / z, 0, -fx * tx / z**2], [0, fy / z, -fy * ty / z**2]])
        cov2d = jac @ cov_c @ jac.T + 0.3 * np.eye(2)
        if np.linalg.det(cov2d) <= 0 or opac[i] < 1 / 255:
            continue
        extend = min(3.33, math.sqrt(2 * math.log(opac[i] * 255)))
        rx, ry = np.ceil(extend * np.sqrt(np.diag(cov2d)))
        mx, my = fx * x / z + cx, fy * y / z + cy
        if (rx <= 0 and ry <= 0) or mx + rx <= 0 or mx - rx >= w or my + ry <= 0 or my - ry >= h:
            continue
        d = means[i] - cam.position
        rgb = np.maximum(_sh_basis(d / np.linalg.norm(d), coeffs.shape[1]) @ coeffs[i] + 0.5, 0.0)
        splats.append((z, i, mx, my, rx, ry, np.linalg.inv(cov2d), opac[i], rgb))
    splats.sort(key=lambda s: (s[0], s[1]))
    color = np.zeros((h, w, 3))
    trans_t = np.ones((h, w))
    for _, _, mx, my, rx, ry, conic, op, rgb in splats:
        dx, dy = mx - px, my - py
        sigma = 0.5 * (conic[0, 0] * dx * dx + conic[1, 1] * dy * dy) + conic[0, 1] * dx * dy
        alpha = np.minimum(0.999, op * np.exp(-sigma))
        keep = (sigma >= 0) & (alpha >= 1 / 255) & (np.abs(dx) <= rx) & (np.abs(dy) <= ry)
        alpha = np.where(keep, alpha, 0.0)
        color += (trans_t * alpha)[..., None] * rgb
        trans_t *= 1 - alpha
    return color + trans_t[..., None] * np.asarray(background, dtype=np.float64)


def tiny_scene(n: int = 20, sh_degree: int = 3, seed: int = 0) -> GaussianScene:
    """n random Gaussians in front of ``tiny_camera`` (anisotropic, rotated, varied opacity and SH),
    plus one behind the camera, one closer than the near plane and one off-screen whose footprint
    reaches into the image (exercises the Jacobian clamp)."""
    g = np.random.default_rng(seed)
    z = g.uniform(2.0, 6.0, n)
    means = np.stack([g.uniform(-0.6, 0.6, n) * z, g.uniform(-0.45, 0.45, n) * z, z], 1)
    means = np.concatenate([means, [[0.0, 0.0, -1.0], [0.0, 0.0, 0.005], [3.2, 0.2, 4.0]]])
    m = len(means)
    log_scales = np.log(g.uniform(0.03, 0.4, (m, 3)))
    log_scales[-1] = np.log([0.8, 0.3, 0.3])
    k = (sh_degree + 1) ** 2
    sh = g.normal(0, 0.3, (m, k, 3))
    sh[:, 0] = g.normal(0, 1.0, (m, 3))
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float32)
    return GaussianScene(t(means), t(g.normal(size=(m, 4))), t(log_scales), t(g.normal(0.5, 1.5, m)),
                         t(sh[:, 0]), t(sh[:, 1:]))


def tiny_camera(width: int = 64, height: int = 48) -> Camera:
    return Camera(np.eye(4), 60.0 * width / 64, 60.0 * width / 64, width / 2, height / 2, width, height)


def single_gaussian(pos, rgb_dc=(1.8, -1.8, -1.8), scale=0.05, opacity_logit=4.0) -> GaussianScene:
    t = lambda a: torch.tensor([a], dtype=torch.float32)
    return GaussianScene(t(list(pos)), t([1.0, 0.0, 0.0, 0.0]), t([math.log(scale)] * 3), t(opacity_logit),
                         t(list(rgb_dc)), torch.zeros(1, 0, 3))


# -- fixtures --------------------------------------------------------------------------------------

def _require_egl() -> str:
    from core.display import display_available

    ok, why = display_available()
    if not ok:
        pytest.skip(f"display renderer unavailable: {why}")
    return why


@pytest.fixture(scope="module", params=["gl", "cpu"])
def renderer(request):
    from core.display import DisplayRenderer

    if request.param == "gl":
        _require_egl()
    r = DisplayRenderer(64, 48, backend=request.param)
    assert r.backend == request.param
    yield r
    r.release()


@pytest.fixture(scope="module")
def donut() -> GaussianScene:
    from core.io import read_scene

    return read_scene(shared_path("scenes", "donut.ply"))


# -- tests -----------------------------------------------------------------------------------------

def test_display_available_tells_whether_a_gl_renderer_can_be_created():
    from core.display import DisplayRenderer, display_available

    ok, why = display_available()
    assert display_available() == (ok, why)  # probed once per process
    if ok:  # the reason names the context a GL renderer then gets, and that renderer draws
        cam = tiny_camera(16, 12)
        with DisplayRenderer(16, 12, backend="gl") as r:
            assert r.backend == "gl" and why == r.renderer_info and ", OpenGL " in why
            r.set_scene(single_gaussian((0.0, 0.0, 3.0), scale=0.3))  # a red blob in the middle
            img = r.render(cam)
        assert img.shape == (12, 16, 3) and img[6, 8, 0] > 200 and img[0, 0].max() == 0
    else:
        assert why.startswith("cannot create an EGL OpenGL 4.3 context")
        with pytest.raises(Exception):  # noqa: B017 - whatever moderngl raises
            DisplayRenderer(16, 12, backend="gl")


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
@pytest.mark.parametrize("background", [(0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (0.2, 0.5, 0.9)])
def test_tiny_scene_matches_brute_force_reference(renderer, sh_degree, background):
    scene, cam = tiny_scene(sh_degree=sh_degree, seed=sh_degree), tiny_camera()
    renderer.set_scene(scene)
    img = renderer.render_float(cam, background)
    ref = np.clip(reference_render(scene, cam, background), 0, 1)
    assert img.shape == (48, 64, 3) and img.dtype == np.float32
    assert ref.std() > 0.05, "the test scene should not be blank"
    assert psnr(img, ref) > 70.0  # float32 GL vs float64 numpy: about 140 dB on llvmpipe
    assert np.abs(img - ref).max() < 5e-3


def test_off_axis_principal_point_and_non_square_pixels(renderer):
    scene = tiny_scene(n=30, sh_degree=1, seed=7)
    cam = Camera(np.eye(4), 70.0, 55.0, 25.3, 30.1, 72, 40)
    renderer.set_scene(scene)
    img = renderer.render_float(cam, (0.1, 0.1, 0.1))
    ref = np.clip(reference_render(scene, cam, (0.1, 0.1, 0.1)), 0, 1)
    assert psnr(img, ref) > 70.0


def test_rotated_camera_matches_reference(renderer):
    scene = tiny_scene(n=25, sh_degree=3, seed=3)
    cam = Camera.look_at([1.0, -0.5, -0.5], [0.0, 0.0, 4.0], [0.0, -1.0, 0.0], 50.0, 64, 48)
    renderer.set_scene(scene)
    img = renderer.render_float(cam, (1.0, 1.0, 1.0))
    ref = np.clip(reference_render(scene, cam, (1.0, 1.0, 1.0)), 0, 1)
    assert psnr(img, ref) > 70.0


def test_huge_and_near_plane_splats_match_reference(renderer):
    """A splat far larger than the view (its Jacobian is clamped), one just beyond the near plane and
    one almost edge-on: no overflow, same image as the reference."""
    cam = tiny_camera()
    t = lambda a: torch.tensor(a, dtype=torch.float32)
    scene = GaussianScene(
        t([[0.3, 0.1, 1.0], [0.02, 0.01, 0.011], [0.0, -0.2, 3.0], [-0.5, 0.3, 2.0]]),
        t([[1.0, 0.0, 0.0, 0.0], [0.9, 0.1, 0.3, 0.0], [0.7, 0.7, 0.0, 0.1], [1.0, 0.0, 0.0, 0.0]]),
        t([[math.log(40.0)] * 3, [math.log(0.01)] * 3, [math.log(0.5), math.log(0.001), math.log(0.02)],
           [math.log(0.1), math.log(0.1), math.log(1e-4)]]),
        t([-2.0, 1.0, 3.0, 2.0]), t([[0.5, -0.5, 0.2], [1.0, 1.0, -1.0], [-1.0, 1.5, 0.0], [0.0, 0.0, 1.5]]),
        torch.zeros(4, 0, 3))
    renderer.set_scene(scene)
    img = renderer.render_float(cam, (0.2, 0.2, 0.2))
    ref = np.clip(reference_render(scene, cam, (0.2, 0.2, 0.2)), 0, 1)
    assert psnr(img, ref) > 70.0


def test_uint8_render_is_rounded_float_render(renderer):
    scene, cam = tiny_scene(seed=11), tiny_camera()
    renderer.set_scene(scene)
    img8 = renderer.render(cam, (0.3, 0.6, 0.9))
    imgf = renderer.render_float(cam, (0.3, 0.6, 0.9))
    assert img8.dtype == np.uint8 and img8.shape == (48, 64, 3)
    assert np.abs(img8.astype(np.float64) - imgf * 255.0).max() <= 0.51


@pytest.mark.parametrize("u, v", [(10.5, 8.5), (50.5, 8.5), (10.5, 40.5), (40.0, 30.0)])
def test_orientation_row_zero_is_top(renderer, u, v):
    """A small Gaussian placed to project at pixel (u, v) (x right, y down) appears at row v, column u."""
    cam = tiny_camera()
    z = 3.0
    pos = ((u - cam.cx) * z / cam.fx, (v - cam.cy) * z / cam.fy, z)
    renderer.set_scene(single_gaussian(pos, scale=0.02))
    img = renderer.render_float(cam)
    i, j = np.unravel_index(np.argmax(img[..., 0]), img.shape[:2])
    assert abs(i + 0.5 - v) <= 0.5 and abs(j + 0.5 - u) <= 0.5
    assert img[i, j, 0] > 0.5 and img[..., 1].max() < 0.05  # red: DC (1.8, -1.8, -1.8) -> colour (1.0, 0, 0)


def test_world_up_is_image_up_with_look_at(renderer):
    cam = Camera.look_at([0.0, -4.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], 40.0, 64, 48)
    renderer.set_scene(single_gaussian((0.0, 0.0, 0.5), scale=0.05))  # above the target
    img = renderer.render_float(cam)
    i, _ = np.unravel_index(np.argmax(img[..., 0]), img.shape[:2])
    assert i < 24


def test_front_splat_occludes_back_splat(renderer):
    cam = tiny_camera()
    front = single_gaussian((0.0, 0.0, 2.0), rgb_dc=(1.8, -1.8, -1.8), scale=0.3, opacity_logit=8.0)
    back = single_gaussian((0.0, 0.0, 4.0), rgb_dc=(-1.8, -1.8, 1.8), scale=0.3, opacity_logit=8.0)
    for order in ([back, front], [front, back]):
        renderer.set_scene(GaussianScene.concatenate(order))
        px = renderer.render_float(cam)[24, 32]
        assert px[0] > 0.95 and px[2] < 0.05


def test_empty_and_culled_scenes_give_the_background(renderer):
    cam = tiny_camera()
    renderer.set_scene(single_gaussian((0.0, 0.0, -2.0)))  # behind the camera
    assert renderer.num_splats == 1
    np.testing.assert_array_equal(renderer.render(cam, (1.0, 0.0, 0.0)), np.tile([255, 0, 0], (48, 64, 1)))
    empty = tiny_scene().subset(torch.zeros(23, dtype=torch.bool))
    renderer.set_scene(empty)
    assert renderer.num_splats == 0
    np.testing.assert_allclose(renderer.render_float(cam, (0.0, 0.5, 1.0)), np.tile([0, 0.5, 1.0], (48, 64, 1)))
    invisible = single_gaussian((0.0, 0.0, 3.0), opacity_logit=-10.0)  # opacity < 1/255: dropped
    renderer.set_scene(invisible)
    assert renderer.num_splats == 0


def test_framebuffer_follows_camera_size(renderer):
    scene = tiny_scene(seed=2)
    renderer.set_scene(scene)
    for w, h in [(64, 48), (33, 17), (128, 96), (64, 48)]:
        cam = tiny_camera().resized(w, h)
        assert renderer.render(cam).shape == (h, w, 3)
        assert renderer.render_float(cam).shape == (h, w, 3)
        assert renderer.size == (w, h)
    big = tiny_camera().resized(128, 96)
    ref = np.clip(reference_render(scene, big), 0, 1)
    assert psnr(renderer.render_float(big), ref) > 70.0


def test_max_splats_draws_the_most_significant_first(renderer):
    cam = tiny_camera()
    big = single_gaussian((0.0, 0.0, 3.0), rgb_dc=(-1.8, 1.8, -1.8), scale=0.4, opacity_logit=3.0)
    small = [single_gaussian(((k - 4) * 0.3, 0.8, 3.0), scale=0.02, opacity_logit=1.0) for k in range(8)]
    scene = GaussianScene.concatenate(small + [big])
    renderer.set_scene(scene)
    full = renderer.render_float(cam)
    np.testing.assert_array_equal(renderer.render_float(cam, max_splats=None), full)
    np.testing.assert_array_equal(renderer.render_float(cam, max_splats=100), full)
    one = renderer.render_float(cam, max_splats=1)
    assert one[24, 32, 1] > 0.5  # the big green one
    assert one[..., 0].max() < 0.05  # none of the small red ones
    np.testing.assert_array_equal(renderer.render(cam, (0.0, 0.0, 1.0), max_splats=0),
                                  np.tile([0, 0, 255], (48, 64, 1)))


def test_set_scene_accepts_any_float_dtype_and_replaces_the_scene(renderer):
    cam = tiny_camera()
    scene = tiny_scene(seed=5)
    renderer.set_scene(scene.to("cpu", torch.float64))
    a = renderer.render_float(cam)
    renderer.set_scene(single_gaussian((0.0, 0.0, 3.0)))
    renderer.set_scene(scene)
    np.testing.assert_allclose(renderer.render_float(cam), a, atol=1e-5)


def test_numba_projection_matches_numpy():
    from core.display.frame import DisplayScene, project_frame

    scene = tiny_scene(n=200, sh_degree=3, seed=9)
    ds = DisplayScene(scene)
    for cam in (tiny_camera(), Camera.look_at([2.0, 1.0, -1.0], [0.0, 0.0, 4.0], [0.0, -1.0, 0.0], 60.0, 80, 60)):
        fast = project_frame(ds, cam)
        slow = project_frame(ds, cam, use_numba=False)
        assert fast.shape == slow.shape and len(fast) > 50
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-4)


def test_warm_up_compiles_every_kernel_a_frame_needs():
    """After warm_up, drawing a frame on the CPU backend (uint8 and float output) compiles nothing more."""
    from core.display import DisplayRenderer, kernels, warm_up
    from core.raster import tiles

    dispatchers = {"project": kernels.project, "argsort_u32": kernels.argsort_u32,
                   "gather_reversed": kernels.gather_reversed, "raster_tiles": kernels.raster_tiles,
                   "bin_footprints": tiles.bin_footprints}
    seconds = warm_up()
    assert seconds > 0.0
    compiled = {name: len(d.signatures) for name, d in dispatchers.items()}
    assert all(compiled.values()), compiled
    cam = tiny_camera()
    with DisplayRenderer(cam.width, cam.height, backend="cpu") as r:
        r.set_scene(tiny_scene(sh_degree=1, seed=2))
        assert r.render(cam, (1.0, 1.0, 1.0)).std() > 0
        assert r.render_float(cam).std() > 0
    assert {name: len(d.signatures) for name, d in dispatchers.items()} == compiled


def test_back_to_front_sort():
    from core.display.frame import back_to_front

    g = np.random.default_rng(0)
    depth = g.uniform(0.01, 1000.0, 10_000).astype(np.float32)
    depth[:100] = depth[100:200]  # ties
    order = back_to_front(depth)
    assert sorted(order.tolist()) == list(range(len(depth)))
    assert np.all(np.diff(depth[order]) <= 0)
    np.testing.assert_array_equal(order, np.argsort(depth, kind="stable")[::-1])


def test_two_renderers_in_one_process_keep_their_own_state(renderer):
    from core.display import DisplayRenderer

    cam = tiny_camera()
    a, b = tiny_scene(seed=21), tiny_scene(seed=22)
    renderer.set_scene(a)
    ref_a = renderer.render(cam)
    with DisplayRenderer(32, 32, backend=renderer.backend) as other:
        other.set_scene(b)
        ref_b = other.render(cam)
        np.testing.assert_array_equal(renderer.render(cam), ref_a)
        np.testing.assert_array_equal(other.render(cam), ref_b)
    assert not np.array_equal(ref_a, ref_b)
    np.testing.assert_array_equal(renderer.render(cam), ref_a)


def test_render_from_a_worker_thread(renderer):
    """The GUI renders in a worker thread: the GL context follows the calling thread."""
    import threading

    cam = tiny_camera()
    renderer.set_scene(tiny_scene(seed=31))
    expected = renderer.render(cam)
    got = {}
    worker = threading.Thread(target=lambda: got.setdefault("img", renderer.render(cam)))
    worker.start()
    worker.join(60)
    np.testing.assert_array_equal(got["img"], expected)
    np.testing.assert_array_equal(renderer.render(cam), expected)


def test_release_is_idempotent_and_final(renderer):
    from core.display import DisplayRenderer

    r = DisplayRenderer(16, 16, backend=renderer.backend)
    r.set_scene(tiny_scene())
    r.release()
    r.release()
    with pytest.raises(RuntimeError, match="release"):
        r.render(tiny_camera())


def test_benchmark_display_reports_fps(renderer):
    from core.display import benchmark_display

    res = benchmark_display(tiny_scene(), tiny_camera(), frames=3, backend=renderer.backend)
    assert set(res) >= {"fps", "ms_per_frame", "n_splats"} and res["backend"] == renderer.backend
    assert res["fps"] > 0 and res["n_splats"] == 23 and res["ms_per_frame"] == pytest.approx(1000 / res["fps"])


# -- real data -------------------------------------------------------------------------------------

def _donut_views(scene: GaussianScene, size: int = 256) -> list[Camera]:
    means = scene.means.double().numpy()
    centre = np.median(means, axis=0)
    radius = np.percentile(np.linalg.norm(means - centre, axis=1), 98)
    dist = radius / math.sin(math.radians(20.0)) * 1.05  # 40 degree field of view frames the donut
    views = []
    for az, el in [(0, 35), (72, 10), (144, 60), (216, -20), (288, 85)]:
        a, e = math.radians(az), math.radians(el)
        eye = centre + dist * np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        up = [0.0, 0.0, 1.0] if abs(el) < 80 else [0.0, 1.0, 0.0]
        views.append(Camera.look_at(eye, centre, up, 40.0, size, size, name=f"az{az}_el{el}"))
    return views


@pytest.fixture(scope="module")
def donut_references(donut) -> dict:
    """core.render(backend="cpu") images of the donut views: [(camera, background, [H, W, 3])]."""
    try:
        from core.render import render
    except ImportError as exc:  # pragma: no cover - core.render is written concurrently
        pytest.skip(f"core.render not available yet: {exc}")
    refs = []
    for cam in _donut_views(donut):
        for bg in [(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)]:
            with torch.no_grad():
                out = render(donut, cam, background=bg, backend="cpu")
            refs.append((cam, bg, out.color.detach().clamp(0, 1).numpy()))
    return refs


def test_donut_matches_differentiable_cpu_renderer(renderer, donut, donut_references):
    renderer.set_scene(donut)
    scores = {}
    for cam, bg, ref in donut_references:
        img = renderer.render_float(cam, bg)
        assert (np.abs(ref - np.asarray(bg)) > 0.1).any(axis=-1).mean() > 0.1, "the donut is in view"
        scores[(cam.name, bg)] = round(psnr(img, ref), 2)
    # spec: >= 30 dB. Measured: gl 67-80 dB (core.render also stops pixels at T <= 1e-4), cpu higher
    worst = min(scores.values())
    assert worst >= 40.0, f"PSNR display vs core.render cpu: {scores}"


@pytest.fixture(scope="module")
def lego_views():
    """(metadata, scene, [(view index, camera, ground-truth image)]) of lego-3dgs's held-out views."""
    from core.cameras import load_cameras
    from core.images import load_image
    from core.io import read_scene

    meta = json.loads(shared_path("scenes", "lego-3dgs.json").read_text())
    scene = read_scene(shared_path("scenes", meta["file"]))
    cams = load_cameras(shared_path("datasets", "lego", "transforms_train.json"))
    w, h = meta["training_resolution"]
    views = []
    for idx in meta["test_image_indices"]:
        cam = cams.cameras[idx].resized(w, h)
        views.append((idx, cam, load_image(cam.image_path, size=(w, h), background=(1.0, 1.0, 1.0))))
    return meta, scene, views


def test_lego_held_out_views_match_ground_truth(renderer, lego_views):
    """Absolute check on real pictures: lego-3dgs.json records the per-view PSNR of its (gsplat-compatible)
    renderer against the held-out ground-truth images; the display renderer must reproduce it."""
    meta, scene, views = lego_views
    renderer.set_scene(scene)
    diffs = {}
    for idx, cam, gt in views:
        got = psnr(renderer.render_float(cam, (1.0, 1.0, 1.0)), gt)
        diffs[idx] = (round(got, 3), meta["test_psnr_per_view"][str(idx)])
    # measured: every view within 0.003 dB of the recorded value
    assert all(abs(a - b) <= 0.02 for a, b in diffs.values()), f"(display, recorded) PSNR per view: {diffs}"


def test_backends_agree_on_the_donut(donut):
    from core.display import DisplayRenderer

    _require_egl()
    cam = _donut_views(donut, size=200)[0]
    with DisplayRenderer(backend="gl") as gl, DisplayRenderer(backend="cpu") as cpu:
        gl.set_scene(donut)
        cpu.set_scene(donut)
        for bg in [(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)]:
            # they differ only where the CPU tiles stop a pixel at T <= 1e-4, as gsplat does
            assert psnr(gl.render_float(cam, bg), cpu.render_float(cam, bg)) > 60.0


def test_auto_backend_prefers_cpu_tiles_on_software_gl(monkeypatch):
    from core.display import DisplayRenderer

    why = _require_egl()
    monkeypatch.delenv("NEURALGS_DISPLAY_BACKEND", raising=False)
    with DisplayRenderer(16, 16) as r:
        expected = "cpu" if any(s in why.lower() for s in ("llvmpipe", "softpipe", "swrast")) else "gl"
        assert r.backend == expected and r.renderer_info
    monkeypatch.setenv("NEURALGS_DISPLAY_BACKEND", "gl")
    with DisplayRenderer(16, 16) as r:
        assert r.backend == "gl"
    with pytest.raises(ValueError, match="unknown display backend"):
        DisplayRenderer(16, 16, backend="vulkan")
