"""The main flows through the real window: open, run a tiny compression, toggle a cluster, export and reopen,
cancel, pause, bad files, training cameras, screenshots, recent files."""

from __future__ import annotations

import time

import numpy as np
import pytest

from app import dialogs
from tests.app.conftest import TINY, open_and_settle, settle


def run_to_end(qtbot, win, timeout_s=180):
    win.panel.run_button.click()
    assert win.compression.worker is not None
    qtbot.waitUntil(lambda: win.compression.worker is None, timeout=timeout_s * 1000)
    settle(qtbot, win)


def test_open_renders_the_original(window, qtbot, small_scene_file):
    open_and_settle(qtbot, window, small_scene_file)
    assert window.session.original.scene.num_gaussians == 3042
    a = window.view.image(0)
    assert a is not None and a.shape[:2] == window.view.pane_size()[::-1]
    assert (a < 250).any(axis=2).mean() > 0.02  # something besides the white background
    assert window.view.image(1) is None
    assert "donut-small.ply: 3,042 Gaussians" in window.view.overlay[0]
    assert "donut-small.ply" in window.windowTitle()


def test_bad_file_shows_a_dialog_naming_the_file_and_the_problem(window, qtbot, tmp_path):
    bad = tmp_path / "broken.ply"
    bad.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 10\nproperty float x\nend_header\n\x00")
    window.files.open_path(bad)
    qtbot.waitUntil(lambda: bool(window.errors), timeout=30000)
    title, message = window.errors[0]
    assert title == "Cannot open file" and str(bad) in message and len(message) > len(str(bad)) + 5
    assert window.session.original is None  # nothing half-loaded
    window.files.open_path(tmp_path / "missing.ngs")
    qtbot.waitUntil(lambda: len(window.errors) == 2, timeout=30000)
    assert "missing.ngs" in window.errors[1][1]


def test_run_fills_the_plot_the_table_and_the_b_side(compressed_window):
    win = compressed_window
    cs = win.session.compressed
    assert cs is not None and cs.result is not None
    assert win.session.has_unexported_result  # a fresh compression, not exported yet
    assert win.table.n_clusters == cs.n_clusters == 3
    assert sorted(win.loss.fit_data) == [0, 1, 2]  # one curve per cluster, live during the fit stage
    assert len(win.loss.tune_data[0]) >= 2  # the fine-tuning curve
    shares = [win.table.table.item(i, 2).text() for i in range(3)]
    assert all(s.endswith("%") for s in shares)
    assert win.view.image(1) is not None
    res = win.viewport.last_result
    assert res.full and res.psnr is not None and 5 < res.psnr < 80
    assert any(line.startswith("This view: PSNR") for line in win.view.overlay)
    assert win.panel.stage_label.text().startswith("Done")
    assert win.cameras.box.count() == 1 + len(cs.result.views.train_cameras)  # jump targets


def test_held_out_number_names_its_view_size(compressed_window):
    """The status's held-out PSNR is the compression's, measured at eval_size px views (800 by default;
    the tests' tiny configuration: TINY's), and says so."""
    cs = compressed_window.session.compressed
    size = TINY["eval_size"]
    assert [c.size for c in cs.result.views.test_cameras] == [(size, size)] * TINY["n_test_views"]
    text = compressed_window.panel.stage_label.text()
    assert f"held-out PSNR {cs.result.metrics['psnr']:.2f} dB" in text and f"at {size} px" in text


def test_toggling_a_cluster_changes_the_render_at_once(compressed_window, qtbot):
    win = compressed_window
    before = win.view.image(1).copy()
    n_before = win.viewport.last_result.n_drawn[1]
    win.table.set_visible(0, False)
    settle(qtbot, win)
    after = win.view.image(1)
    assert np.abs(after.astype(int) - before.astype(int)).max() > 30
    assert win.viewport.last_result.n_drawn[1] < n_before
    assert win.session.compressed.result is not None  # same compression: nothing recompressed
    win.table.show_all()
    settle(qtbot, win)
    np.testing.assert_array_equal(win.view.image(1), before)


def test_export_then_reopen_the_ngs(compressed_window, qtbot, tmp_path, monkeypatch):
    win = compressed_window
    out = tmp_path / "out.ngs"
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *a, **k: str(tmp_path / "out"))  # suffix added
    win.files.export_ngs_dialog()
    qtbot.waitUntil(lambda: not win.tasks.busy, timeout=30000)
    assert out.is_file() and out.stat().st_size == win.session.compressed.n_bytes
    assert win.session.exported_path == out and not win.session.has_unexported_result
    image_before = win.view.image(1).copy()
    fresh = win.session.compressed
    open_and_settle(qtbot, win, out)
    assert win.session.compressed.path == out and win.session.compressed.result is None
    assert win.table.n_clusters == 3 and win.table.table.item(0, 2).text() == "—"
    assert win.session.original is not None  # still compared against the open original
    np.testing.assert_array_equal(win.view.image(1), image_before)  # the file holds what was shown
    win.session.set_compressed(fresh)  # as the module's other tests expect it
    win.clusters.show_result()
    settle(qtbot, win)


def test_export_asks_before_replacing_and_keeps_the_file_when_told_no(compressed_window, qtbot, tmp_path,
                                                                       monkeypatch):
    win = compressed_window
    out = tmp_path / "keep.ply"
    out.write_bytes(b"precious")
    asked = []
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *a, **k: str(out))
    monkeypatch.setattr(dialogs, "ask_overwrite", lambda parent, p: asked.append(p) or False)
    win.files.export_ply_dialog()
    qtbot.wait(200)
    assert asked == [out] and out.read_bytes() == b"precious"
    monkeypatch.setattr(dialogs, "ask_overwrite", lambda parent, p: True)
    win.files.export_ply_dialog()
    qtbot.waitUntil(lambda: not win.tasks.busy, timeout=30000)
    assert out.read_bytes().startswith(b"ply\n")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_cancel_takes_effect_within_a_second_and_leaves_nothing(window, qtbot, small_scene_file, tmp_path,
                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    open_and_settle(qtbot, window, small_scene_file)
    files_before = sorted(p.name for p in tmp_path.rglob("*"))
    window.panel.set_values(dict(fit_iters=100_000))  # a long fit: cancel mid-stage
    window.panel.run_button.click()
    qtbot.waitUntil(lambda: window.panel.stage_label.text().startswith("Stage 5/7"), timeout=120000)
    worker = window.compression.worker
    done = []
    worker.cancelled.connect(lambda: done.append(time.monotonic()))
    t0 = time.monotonic()
    window.panel.cancel_button.click()
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    assert done[0] - t0 < 1.0, f"cancel took {done[0] - t0:.2f} s"
    qtbot.waitUntil(lambda: window.compression.worker is None, timeout=5000)
    assert worker.outcome == "cancelled" and window.session.compressed is None
    assert window.panel.stage_label.text().startswith("Cancelled") and window.panel.run_button.isEnabled()
    assert sorted(p.name for p in tmp_path.rglob("*")) == files_before  # nothing written anywhere here


def test_pause_stops_progress_and_resume_continues(window, qtbot, small_scene_file):
    open_and_settle(qtbot, window, small_scene_file)
    window.panel.set_values(dict(fit_iters=100_000))
    window.panel.run_button.click()
    qtbot.waitUntil(lambda: window.panel.stage_label.text().startswith("Stage 5/7"), timeout=120000)
    window.panel.pause_button.click()
    assert window.compression.worker.paused
    qtbot.wait(700)  # the step running when paused finishes and its batch arrives
    step = window.panel.progress.value(), window.panel.progress.format()
    qtbot.wait(1000)
    assert (window.panel.progress.value(), window.panel.progress.format()) == step
    window.panel.pause_button.click()
    qtbot.waitUntil(lambda: window.panel.progress.format() != step[1], timeout=10000)
    window.panel.cancel_button.click()
    qtbot.waitUntil(lambda: window.compression.worker is None, timeout=5000)


def test_jump_to_training_cameras(compressed_window, qtbot):
    win = compressed_window
    cams = win.session.training_cameras()
    win.cameras.step(1)
    np.testing.assert_allclose(win.view.rig.world_to_camera(), cams[0].world_to_camera)
    assert win.cameras.box.currentIndex() == 1
    win.cameras.step(-1)
    np.testing.assert_allclose(win.view.rig.world_to_camera(), cams[-1].world_to_camera)
    win.view.rig.orbit(5.0, 0.0)
    win.view.cameraChanged.emit()
    assert win.cameras.box.currentIndex() == 0  # navigating leaves the training camera


def test_open_dataset_cameras_and_bad_cameras(window, qtbot, small_scene_file, tmp_path):
    import json

    from core.camera import Camera

    cam = Camera.look_at([0.0, -4.0, 1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], 40.0, 64, 48)
    c2w = cam.camera_to_world.copy()
    c2w[:3, 1:3] *= -1  # OpenCV -> OpenGL/Blender axes, as transforms.json stores them
    (tmp_path / "transforms.json").write_text(json.dumps(
        {"camera_angle_x": 0.9, "w": 64, "h": 48,
         "frames": [{"file_path": "./r_0", "transform_matrix": c2w.tolist()}]}))
    open_and_settle(qtbot, window, small_scene_file)
    window.files.open_cameras(tmp_path / "transforms.json")
    qtbot.waitUntil(lambda: window.session.camera_set is not None or bool(window.errors), timeout=30000)
    assert window.session.camera_set is not None, window.errors
    assert window.cameras.box.count() == 2
    (tmp_path / "bad.json").write_text("{not json")
    window.files.open_cameras(tmp_path / "bad.json")
    qtbot.waitUntil(lambda: bool(window.errors), timeout=30000)
    assert "bad.json" in window.errors[0][1]


def test_screenshot_and_recent_files(compressed_window, qtbot, tmp_path, small_scene_file):
    from PIL import Image

    from app.menus import recent_files

    out = tmp_path / "shot.png"
    n = compressed_window.files.save_screenshot(out)
    assert n == out.stat().st_size
    img = Image.open(out)
    assert img.size == (compressed_window.width(), compressed_window.height())
    with pytest.raises(FileExistsError):
        compressed_window.files.save_screenshot(out)
    recent = recent_files(compressed_window.settings)
    assert any(p.endswith("donut-small.ply") for p in recent) and len(set(recent)) == len(recent)
    assert [a.toolTip() for a in compressed_window.files.recent_menu.actions()] == recent


def test_run_without_a_scene_and_export_without_a_result_explain(window, qtbot):
    window.compression.run(window.panel.values())
    window.files.export_ngs_dialog()
    assert [t for t, _ in window.errors] == ["Nothing to compress", "Export .ngs"]


def test_menus_list_shortcuts_and_tooltips(window):
    for name, act in window.actions_by_name.items():
        assert not act.shortcut().isEmpty(), name
        assert act.toolTip(), name
    texts = [a.text() for m in window.menuBar().actions() for a in m.menu().actions()]
    assert any("\tF5" in t for t in texts) and any("\tAlt+S" in t for t in texts)


def test_rerun_with_new_settings_without_reloading_goes_last(compressed_window, qtbot, monkeypatch):
    """Last in the module: it changes the shared window's compression."""
    win = compressed_window
    import app.file_controller as fc

    monkeypatch.setattr(fc, "load_any", lambda *a: pytest.fail("re-running must not reload the scene"))
    win.panel.editors["n_clusters"].setValue(2)
    run_to_end(qtbot, win)
    assert win.session.compressed.n_clusters == 2 and win.table.n_clusters == 2


def test_the_overall_eta_adds_the_later_stages_and_learns_from_a_finished_run():
    from app.compression_controller import OverallEta, seconds_per_unit, stage_units
    from core.pipeline.config import config_from_preset

    cfg = config_from_preset("preview", fit_iters=1000, finetune_iters=0, evaluate=False)
    units = stage_units(cfg)
    assert units["fit"] == 1000 and units["finetune"] == 0 and units["evaluate"] == 0 and units["search"] == 0
    assert stage_units(cfg, n_cameras=100)["importance"] == 87 * 0.16  # lego: 87 training views at 400 px
    learned = seconds_per_unit({"views": 2.0, "fit": 10.0, "prune search": 1.0, "evaluate": 0.0}, units)
    assert learned["fit"] == 0.01 and "evaluate" not in learned and learned["prune"] == 1.0
    eta = OverallEta(units, {**{s: 0.0 for s in units}, "views": 1.0 / units["views"], "fit": 0.01})
    # 1 s of views predicted, half done after 0.5 s: the rest of the views plus 10 s of fitting
    assert eta.update("views", 5, 10, 0.5, 0.5) == pytest.approx(0.5 + 10.0)
    # the views took 2 s, twice the prediction: the fitting is expected to take twice as long too
    assert eta.update("views", 10, 10, 2.0, 0.0) == pytest.approx(20.0)
    assert eta.update("fit", 0, 1000, 0.0, None) == pytest.approx(20.0)
    assert eta.done_actual == 2.0 and eta.done_predicted == pytest.approx(1.0)
    # once the fitting has its own rate, its own ETA counts; no later stage has work
    assert eta.update("fit", 500, 1000, 2.5, 2.5) == pytest.approx(2.5)
