"""The .ngs v2 codec through the real window: a rate-controlled run, its export and reopening (a user's sequence)."""

from __future__ import annotations

import numpy as np

from app import dialogs
from core.pipeline.config import RESIDUAL_GROUPS
from tests.app.conftest import TINY, TINY_PANEL, open_and_settle, pump_until, settle


def test_a_target_psnr_run_exports_the_file_it_measured_and_reopens_identical(window, qtbot, small_scene_file,
                                                                               tmp_path, monkeypatch):
    win = window
    open_and_settle(qtbot, win, small_scene_file)
    win.session.config_overrides = dict(TINY, residual_groups=RESIDUAL_GROUPS, target_psnr=30.0,
                                        prune_candidates=(0.4, 0.0))
    win.panel.set_values(TINY_PANEL)
    win.panel.run_button.click()
    pump_until(qtbot, lambda: (win.compression.worker is None and not win.tasks.busy
                               and win.session.compressed is not None), 300, "the rate-controlled compression")
    settle(qtbot, win)
    cs = win.session.compressed
    codec = cs.result.codec
    assert codec["target_psnr"] == 30.0 and codec["reached"] is True and cs.result.metrics["psnr"] >= 30.0
    assert cs.model.residual is not None  # residuals on top of the predictor
    # the cluster table shows each cluster's section of the file; together with the header, the file
    sizes = [r["bytes"] for r in cs.rows]
    assert sum(sizes) < cs.n_bytes and sum(sizes) == sum(sum(c["bytes"].values()) for c in codec["clusters"])
    image_before = win.view.image(1).copy()
    out = tmp_path / "coded.ngs"
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *a, **k: str(out))
    win.files.export_ngs_dialog()
    pump_until(qtbot, lambda: not win.tasks.busy, 30, "the export")
    assert out.read_bytes()[4:6] == b"\x02\x00" and out.stat().st_size == cs.n_bytes
    open_and_settle(qtbot, win, out)
    assert win.session.compressed.path == out and win.session.compressed.model.residual is not None
    np.testing.assert_array_equal(win.view.image(1), image_before)  # the file holds what was shown
    # exporting the reopened file again writes the same bytes (not re-encoded)
    again = tmp_path / "again.ngs"
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *a, **k: str(again))
    win.files.export_ngs_dialog()
    pump_until(qtbot, lambda: not win.tasks.busy, 30, "the second export")
    assert again.read_bytes() == out.read_bytes()


def test_the_learning_stages_show_their_progress_and_image_loss_and_effort_fast_skips_them(window, qtbot,
                                                                                          small_scene_file):
    win = window
    open_and_settle(qtbot, win, small_scene_file)
    win.session.config_overrides = dict(TINY, residual_groups=RESIDUAL_GROUPS, target_psnr=30.0,
                                        prune_candidates=(0.4, 0.0), coadapt_iters=12, qat_iters=8)
    win.panel.set_values(TINY_PANEL)
    assert win.panel.values()["effort"] == "default"  # the panel's default, as the command line's with a target
    seen = []
    win.panel.stage_label.setText = lambda text, real=win.panel.stage_label.setText: (seen.append(text), real(text))
    win.panel.run_button.click()
    pump_until(qtbot, lambda: win.compression.worker is None and win.session.compressed is not None, 300, "the run")
    settle(qtbot, win)
    stages = [t for t in seen if t.startswith("Stage ")]
    assert any("Co-adapting the kept Gaussians" in t for t in stages), stages
    assert any("Quantisation-aware fine-tuning" in t for t in stages), stages
    numbers = [tuple(map(int, t.split(":")[0].split()[1].split("/"))) for t in stages]
    first = list(dict.fromkeys(k for k, _ in numbers))  # each stage's first appearance, in the order they start
    assert {n for _, n in numbers} == {10} and first == sorted(first), stages
    history = win.session.compressed.result.history
    assert [s for s, _ in history["coadapt"]][-1] == 12 and [s for s, _ in history["qat"]][-1] == 8
    plot = win.loss
    assert set(plot.stage_offset) >= {"coadapt", "qat"} and "qat" in plot.stage_markers
    assert plot.tune_data[0][-1] == plot.stage_offset["qat"] + 8  # one iteration axis across the stages
    assert win.session.compressed.result.model.meta["config"]["effort"] == "default"
    times = win.panel.message_label.text()  # the time each stage took, in the order they ran
    assert times.startswith("Time per stage: Views and targets") and "Co-adapting" in times and "Quantisation" in times
    assert times.index("Co-adapting") < times.index("Rate control") < times.index("Quantisation")
    # effort fast: the codec without learning
    win.panel.effort_box.setCurrentIndex(win.panel.effort_box.findData("fast"))
    win.session.config_overrides.pop("coadapt_iters")
    win.session.config_overrides.pop("qat_iters")
    win.session.result_exported = True  # no question about the unexported result
    win.panel.run_button.click()
    pump_until(qtbot, lambda: win.compression.worker is None and win.session.compressed is not None
               and win.session.compressed.result.model.meta["config"]["effort"] == "fast", 300, "the fast run")
    settle(qtbot, win)
    history = win.session.compressed.result.history
    assert history["coadapt"] == [] and history["qat"] == [] and not win.loss.stage_offset.get("qat")
