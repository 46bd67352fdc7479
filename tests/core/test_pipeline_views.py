"""Training / held-out views and targets: generated orbits (self-distillation) and dataset images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.camera import Camera
from core.images import load_image, save_png
from core.pipeline import config_from_preset, run_to_completion
from core.pipeline.views import build_views, dataset_size, generated_cameras, split_indices
from core.render.api import render
from tests.core.pipeline_helpers import tiny_config, tiny_scene

pytestmark = pytest.mark.usefixtures("single_thread")  # one torch and one numba thread (tests/core/conftest.py)


def views(scene, cfg, cameras=None, use_images=None, records=None):
    on_progress = records.append if records is not None else None
    return run_to_completion(build_views(scene, cfg, cameras, use_images), on_progress)


def test_generated_views_render_the_original_and_hold_out_other_poses():
    scene = tiny_scene(200)
    cfg = tiny_config(n_views=6, n_test_views=3, image_size=24)
    records = []
    vs = views(scene, cfg, records=records)
    assert vs.source == "renders" and (vs.n_train, vs.n_test) == (6, 3)
    assert [r.step for r in records] == list(range(10)) and records[-1].total == 9
    for cam, tgt in zip(vs.train_cameras + vs.test_cameras, vs.train_targets + vs.test_targets):
        assert tgt.shape == (24, 24, 3) and cam.size == (24, 24)
        ref = render(scene, cam, cfg.background, backend="cpu").color.clamp(0, 1)
        torch.testing.assert_close(tgt, ref)
    train_pos = np.stack([c.position for c in vs.train_cameras])
    for cam in vs.test_cameras:  # no held-out view sits where a training view is
        assert np.linalg.norm(train_pos - cam.position, axis=1).min() > 0.05 * np.linalg.norm(cam.position)
    assert float(vs.train_targets[0].min()) < 0.9  # the scene is in view (white background otherwise)


def test_held_out_views_are_eval_size_and_training_views_image_size():
    """Held-out views (cameras and targets) at ``eval_size`` px, training views at ``image_size``; the same
    poses whatever the sizes, so a held-out view is the same view at another resolution."""
    scene = tiny_scene(100)
    cfg = tiny_config(n_views=3, n_test_views=2, image_size=16, eval_size=40)
    train, test = generated_cameras(scene.means, cfg)
    assert [c.size for c in train] == [(16, 16)] * 3 and [c.size for c in test] == [(40, 40)] * 2
    small_train, small_test = generated_cameras(scene.means, cfg.replace(eval_size=16))
    for a, b in zip(train + test, small_train + small_test):
        np.testing.assert_array_equal(a.world_to_camera, b.world_to_camera)
    assert test[0].fx / 40 == pytest.approx(small_test[0].fx / 16)  # same field of view
    vs = views(scene, cfg)
    assert [tuple(t.shape) for t in vs.train_targets] == [(16, 16, 3)] * 3
    assert [tuple(t.shape) for t in vs.test_targets] == [(40, 40, 3)] * 2
    # the default protocol: 800 px held-out views, whatever the training size
    default_test = generated_cameras(scene.means, config_from_preset("balanced", n_test_views=1))[1]
    assert default_test[0].size == (800, 800)


def test_heldout_cameras_of_evaluation_follow_eval_size_but_a_dataset_keeps_its_own(tmp_path):
    from core.pipeline.evaluation import heldout_cameras, view_size

    scene = tiny_scene(100)
    cfg = tiny_config(n_test_views=2, image_size=16, eval_size=48)
    cams = heldout_cameras(scene, cfg)
    assert [c.size for c in cams] == [(48, 48)] * 2 and view_size(cams) == 48
    dataset = write_dataset(tmp_path, n=9, size=64)
    held = heldout_cameras(scene, cfg.replace(dataset_max_size=32), dataset)  # the dataset's protocol
    assert [c.name for c in held] == ["r_0", "r_8"] and view_size(held) == 32


def test_generated_views_are_deterministic_and_follow_the_up_axis():
    scene = tiny_scene(100)
    cfg = tiny_config(up=(0.0, 0.0, 1.0), elevation_range_deg=(10.0, 50.0), n_views=8)
    a, _ = generated_cameras(scene.means, cfg)
    b, _ = generated_cameras(scene.means, cfg)
    assert all(np.array_equal(x.world_to_camera, y.world_to_camera) for x, y in zip(a, b))
    for cam in a:
        image_up = -cam.world_to_camera[1, :3]
        assert image_up[2] > 0.5  # world +z appears upwards in every view
        assert cam.position[2] > 0  # elevations 10..50 degrees: above the scene
    assert len({round(float(c.extra["azimuth_deg"]), 3) for c in a}) == 8


def write_dataset(tmp_path, n: int = 10, size: int = 64) -> list[Camera]:
    rng = np.random.default_rng(0)
    cams = []
    for i in range(n):
        img = rng.random((size, size, 4)).astype(np.float32)
        img[..., 3] = np.where(np.arange(size)[None, :] < size // 2, 1.0, 0.0)  # half transparent
        path = tmp_path / f"r_{i}.png"
        save_png(path, img)
        eye = [3.0 * np.cos(i), 3.0 * np.sin(i), 1.0]
        cam = Camera.look_at(eye, [0, 0, 0], [0, 0, 1], 40.0, size, size, name=f"r_{i}")
        cams.append(Camera(cam.world_to_camera, cam.fx, cam.fy, cam.cx, cam.cy, size, size, image_path=path,
                           name=cam.name))
    return cams


def test_dataset_images_are_targets_every_eighth_is_held_out_and_resized(tmp_path):
    cams = write_dataset(tmp_path)
    cfg = tiny_config(dataset_max_size=32, test_every=8, background=(1.0, 0.0, 0.0))
    vs = views(tiny_scene(50), cfg, cams)
    assert vs.source == "dataset"
    assert [c.name for c in vs.test_cameras] == ["r_0", "r_8"]
    assert [c.name for c in vs.train_cameras] == [f"r_{i}" for i in (1, 2, 3, 4, 5, 6, 7, 9)]
    cam, tgt = vs.train_cameras[0], vs.train_targets[0]
    assert cam.size == (32, 32) and cam.fx == pytest.approx(cams[1].fx / 2)
    expected = load_image(cams[1].image_path, size=(32, 32), background=(1.0, 0.0, 0.0))
    torch.testing.assert_close(tgt, torch.from_numpy(expected))
    torch.testing.assert_close(tgt[:, 20:], torch.tensor([1.0, 0.0, 0.0]).expand(32, 12, 3))  # composited


def test_dataset_cameras_without_images_render_targets_and_bad_requests_fail(tmp_path):
    cams = write_dataset(tmp_path, n=4, size=16)
    scene = tiny_scene(50)
    vs = views(scene, tiny_config(test_every=2), cams, use_images=False)
    assert vs.source == "renders" and [c.name for c in vs.test_cameras] == ["r_0", "r_2"]
    torch.testing.assert_close(vs.train_targets[0], render(scene, vs.train_cameras[0], (1, 1, 1), backend="cpu")
                               .color.clamp(0, 1))
    (tmp_path / "r_3.png").unlink()
    assert views(scene, tiny_config(test_every=2), cams).source == "renders"  # one image missing: renders
    with pytest.raises(ValueError, match="r_3 has no image file"):
        views(scene, tiny_config(), cams, use_images=True)
    with pytest.raises(ValueError, match="no training views left"):
        views(scene, tiny_config(test_every=1), cams)


def test_split_and_size_helpers():
    assert split_indices(10, 8) == ([1, 2, 3, 4, 5, 6, 7, 9], [0, 8])
    assert split_indices(3, 0) == ([0, 1, 2], [])
    big = Camera.look_at([0, 0, -3], [0, 0, 0], [0, -1, 0], 40.0, 1920, 1080)
    assert dataset_size(big, 400) == (400, 225)
    assert dataset_size(big.resized(200, 100), 400) == (200, 100)


def test_closing_while_rendering_targets_is_clean():
    gen = build_views(tiny_scene(50), tiny_config(n_views=20))
    next(gen)
    next(gen)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)
