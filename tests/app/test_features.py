"""Issue 14's features through the real window, as a user drives them:

A. the codec's target (quality in dB, a size, or none) as a knob of the Compression panel, what it sends to the
   compression, and the exact size the export will write, shown before exporting;
B. what each cluster costs, split into positions, predictor and residuals; B with and without the residuals;
C. Undo / Redo of cluster toggles and solo (Ctrl+Z / Ctrl+Shift+Z).

One rate-controlled run on the small donut (module fixture ``coded``) serves A, B and C.
"""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu

from app import dialogs
from app.cluster_controller import B_TITLE_FULL, B_TITLE_PREDICTION
from core.pipeline.config import RESIDUAL_GROUPS
from tests.app.conftest import (TINY, TINY_PANEL, _record_errors, close_window, idle, make_window, open_and_settle,
                                pump, pump_for, pump_until, settle)

SIZE = 4  # the Size column


@pytest.fixture(scope="module")
def coded(qapp, small_scene_file, tmp_path_factory):
    """A window that ran a 30 dB rate-controlled compression of the small scene, the target chosen in the panel
    (``win.run_config``: the configuration its worker got). Tests leave it as they found it."""
    mp = pytest.MonkeyPatch()
    errors: list = []
    _record_errors(mp, errors)
    win = make_window(tmp_path_factory.mktemp("settings") / "settings.ini")
    win.errors = errors
    win.session.config_overrides = dict(TINY, prune_candidates=(0.4, 0.0))
    win.files.open_path(small_scene_file)
    pump(lambda: win.session.original is not None and idle(win))
    panel = win.panel
    panel.target_box.setCurrentIndex(panel.target_box.findData("psnr"))  # the user's choice: quality, 30 dB
    panel.psnr_spin.setValue(30.0)
    panel.run_button.click()
    pump(lambda: win.compression.worker is not None, 10)
    win.run_config = win.compression.worker.config
    pump(lambda: win.compression.worker is None and win.session.compressed is not None and idle(win), 300)
    assert not errors, errors
    yield win
    close_window(win, pump_for)
    mp.undo()


def size_cells(win) -> list[str]:
    return [win.table.table.item(i, SIZE).toolTip() for i in range(win.table.n_clusters)]


def clusters_menu(win) -> QMenu:
    return next(m for m in win.menuBar().findChildren(QMenu) if m.title() == "C&lusters")


def overlay(win) -> str:
    return "\n".join(win.view.overlay)


# -- A: the target knob and the export size -------------------------------------------------------------------
def test_the_target_chosen_in_the_panel_is_what_the_compression_gets(coded):
    cfg = coded.run_config
    assert (cfg.target_psnr, cfg.target_size, cfg.residual_groups, cfg.format_version) == \
        (30.0, 0, RESIDUAL_GROUPS, 2)
    cs = coded.session.compressed
    assert cs.result.codec["target_psnr"] == 30.0 and cs.has_residuals
    assert coded.panel.values()["target"] == ("psnr", 30.0) and coded.panel.values()["custom"]


def test_the_exact_export_size_shows_before_export_and_is_what_is_written(coded, qtbot, tmp_path, monkeypatch):
    win, cs = coded, coded.session.compressed
    label = win.panel.size_label.text()
    assert f"{cs.n_bytes:,} bytes" in label and ".ngs" in label and win.panel.size_label.isVisible()
    out = tmp_path / "coded.ngs"
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *a, **k: str(out))
    win.files.export_ngs_dialog()
    pump_until(qtbot, lambda: not win.tasks.busy, 30, "the export")
    assert out.stat().st_size == cs.n_bytes


@pytest.mark.parametrize("mode, value, unit, expected", [
    ("size", 120.0, "KB", dict(target_psnr=0.0, target_size=120_000, residual_groups=RESIDUAL_GROUPS)),
    ("size", 1.5, "MB", dict(target_psnr=0.0, target_size=1_500_000, residual_groups=RESIDUAL_GROUPS)),
    ("none", None, None, dict(target_psnr=0.0, target_size=0, residual_groups=())),
])
def test_size_and_none_targets_reach_the_worker(window, qtbot, small_scene_file, mode, value, unit, expected):
    win = window
    open_and_settle(qtbot, win, small_scene_file)
    win.panel.set_values(dict(TINY_PANEL, fit_iters=100_000))  # long enough to cancel
    p = win.panel
    p.target_box.setCurrentIndex(p.target_box.findData(mode))
    if mode == "size":
        p.size_unit.setCurrentText(unit)
        p.size_spin.setValue(value)
    assert p.size_spin.isVisible() == (mode == "size") and not p.psnr_spin.isVisible()
    p.run_button.click()
    qtbot.waitUntil(lambda: win.compression.worker is not None, timeout=5000)
    cfg = win.compression.worker.config
    assert {k: getattr(cfg, k) for k in expected} == expected and cfg.format_version == 2
    assert not p.target_box.isEnabled()  # no knob changes while it runs
    p.cancel_button.click()
    qtbot.waitUntil(lambda: win.compression.worker is None, timeout=20000)
    assert p.target_box.isEnabled() and p.size_label.text() == ""  # no result: no size to export


# -- B: what each cluster costs, B with and without residuals -------------------------------------------------
def test_the_size_column_splits_each_cluster_as_the_file_lays_it_out(coded):
    cs = coded.session.compressed
    clusters = cs.result.codec["clusters"]
    tips = size_cells(coded)
    assert len(tips) == cs.n_clusters == len(clusters)
    for row, tip in zip(cs.rows, tips):
        assert row["positions"] + row["predictor"] + row["residuals"] == row["bytes"]
        assert tip.startswith(f"{row['bytes']:,} bytes: ")
        for part in ("positions", "residuals"):
            assert f"{part} {row[part]:,} (" in tip
        assert f"predictor (MLP or constant) {row['predictor']:,}" in tip
    assert sum(r["residuals"] for r in cs.rows) > 0  # a 30 dB target codes residuals
    legend = coded.table.split_legend.text()
    assert coded.table.split_legend.isVisible() and "positions" in legend and "residuals" in legend


def test_an_opened_v2_file_shows_the_same_split_and_its_size(coded, window, qtbot, small_scene_file, tmp_path,
                                                            monkeypatch):
    out = tmp_path / "coded.ngs"
    monkeypatch.setattr(dialogs, "ask_save_path", lambda *a, **k: str(out))
    coded.files.export_ngs_dialog()
    pump_until(qtbot, lambda: not coded.tasks.busy, 30, "the export")
    expected = size_cells(coded)
    open_and_settle(qtbot, window, small_scene_file)
    open_and_settle(qtbot, window, out)
    assert window.session.compressed.path == out
    assert size_cells(window) == expected  # the header's lengths, as the run measured them
    assert f"{out.stat().st_size:,} bytes" in window.panel.size_label.text()
    assert window.table.prediction_box.isEnabled()


def test_b_without_the_residuals_is_the_neuralgs_prediction_and_says_so(coded, qtbot):
    win = coded
    box = win.table.prediction_box
    settle(qtbot, win)
    assert box.isEnabled() and not box.isChecked() and win.view.titles[1] == B_TITLE_FULL
    full = win.view.image(1).copy()
    box.click()
    settle(qtbot, win)
    qtbot.waitUntil(lambda: "PSNR" in overlay(win) and "…" not in overlay(win), timeout=60000)
    assert win.view.titles[1] == B_TITLE_PREDICTION and win.session.clusters.prediction_only
    assert "This view (B shows the NeuralGS prediction only (no residuals)): PSNR" in overlay(win)
    prediction = win.view.image(1).copy()
    assert not np.array_equal(prediction, full)  # the residuals change what B shows
    cs = win.session.compressed
    assert cs._prediction is not None and cs.prediction_scene() is cs._prediction  # decoded once, cached
    box.click()  # back to the full codec
    settle(qtbot, win)
    assert win.view.titles[1] == B_TITLE_FULL and "prediction only" not in overlay(win)
    np.testing.assert_array_equal(win.view.image(1), full)


def test_the_clusters_menu_switches_b_and_greys_it_without_residuals(coded, qtbot):
    win = coded
    menu = clusters_menu(win)
    entry = next(a for a in menu.actions() if a.text().startswith("B: NeuralGS prediction only"))
    entry.trigger()
    assert win.table.prediction_box.isChecked()
    entry.trigger()
    assert not win.table.prediction_box.isChecked()
    win.table.set_prediction_available(False)  # as for a result without residuals
    menu.aboutToShow.emit()
    assert not entry.isEnabled()
    win.table.set_prediction_available(True)
    menu.aboutToShow.emit()
    assert entry.isEnabled()
    settle(qtbot, win)


# -- C: undo / redo of cluster toggles and solo ---------------------------------------------------------------
def test_ctrl_z_undoes_toggles_and_solo_and_ctrl_shift_z_redoes_them(coded, qtbot):
    win, table = coded, coded.table
    win.activateWindow()
    qtbot.waitUntil(lambda: win.isActiveWindow(), timeout=5000)
    k = table.n_clusters
    assert k >= 2
    undo, redo = win.actions_by_name["undo_clusters"], win.actions_by_name["redo_clusters"]
    assert not undo.isEnabled() and not redo.isEnabled()
    everything = win.session.n_shown()

    table.table.item(1, 0).setCheckState(Qt.CheckState.Unchecked)  # toggle cluster 1 off
    toggled = [i != 1 for i in range(k)]
    assert table.visible().tolist() == toggled and undo.isEnabled()
    table.select_cluster(0)
    table.solo_button.click()  # only cluster 0
    solo = [i == 0 for i in range(k)]
    assert table.visible().tolist() == solo
    settle(qtbot, win)
    assert f"{win.session.n_shown():,} of" in overlay(win) and win.session.n_shown() < everything

    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert table.visible().tolist() == toggled  # the solo is taken back
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert table.visible().tolist() == [True] * k and not undo.isEnabled() and redo.isEnabled()
    settle(qtbot, win)
    assert win.session.n_shown() == everything and f"{everything:,} of {everything:,}" in overlay(win)
    qtbot.keyClick(win, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert table.visible().tolist() == toggled
    np.testing.assert_array_equal(win.session.display_mask(), toggled)  # B follows: the session's mask
    # colour and selection are not steps: Undo goes straight back to all shown
    table.color_box.click()
    table.color_box.click()
    undo.trigger()
    assert table.visible().tolist() == [True] * k
    menu = clusters_menu(win)
    assert undo in menu.actions() and redo in menu.actions()
    redo.trigger()
    table.show_all()  # leave the window as it was found
    table.select_cluster(-1)
    settle(qtbot, win)
    assert table.visible().tolist() == [True] * k
