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
