"""ParameterPanel: presets fill the knobs, edits make a custom preset, the buttons emit, progress shows."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.widgets.conftest import show_active
from widgets.param_panel import CUSTOM, ParameterPanel, format_duration

PRESETS = {
    "preview": dict(n_clusters=4, prune_ratio=0.4, lambda_freq=0.01, fit_iters=300, finetune_iters=150, hidden=32,
                    device="auto"),
    "balanced": dict(n_clusters=8, prune_ratio=0.4, lambda_freq=0.01, fit_iters=1500, finetune_iters=600, hidden=64,
                     device="auto"),
}


@pytest.fixture
def panel(qtbot):
    p = ParameterPanel()
    qtbot.addWidget(p)
    p.set_presets(PRESETS, "preview")
    p.show()
    return p


def test_presets_fill_the_knobs(panel):
    v = panel.values()
    assert v["preset"] == "preview" and not v["custom"]
    assert {k: v[k] for k in PRESETS["preview"]} == PRESETS["preview"]
    panel.preset_box.setCurrentText("balanced")
    assert panel.values()["n_clusters"] == 8 and panel.values()["hidden"] == 64


def test_editing_a_knob_makes_it_custom_based_on_the_last_preset(panel):
    panel.editors["n_clusters"].setValue(12)
    v = panel.values()
    assert panel.preset_box.currentText() == CUSTOM and v["custom"] and v["preset"] == "preview"
    assert v["n_clusters"] == 12 and v["fit_iters"] == 300


def test_run_pause_cancel_emit(panel, qtbot):
    with qtbot.waitSignal(panel.runRequested) as run:
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert run.args[0]["n_clusters"] == 4
    panel.set_running(True)
    assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    assert not panel.editors["hidden"].isEnabled()
    with qtbot.waitSignal(panel.pauseToggled) as paused:
        qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert paused.args == [True] and panel.pause_button.text() == "Resume"
    with qtbot.waitSignal(panel.pauseToggled) as resumed:
        qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
    assert resumed.args == [False]
    with qtbot.waitSignal(panel.cancelRequested):
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    panel.set_running(False)
    assert panel.run_button.isEnabled() and not panel.pause_button.isEnabled()


def test_f5_runs(panel, qtbot):
    show_active(qtbot, panel)
    with qtbot.waitSignal(panel.runRequested, timeout=2000):
        qtbot.keyClick(panel, Qt.Key.Key_F5)


def test_progress_shows_stage_fraction_and_eta(panel):
    panel.show_progress("fit", 50, 200, "step 50/200", elapsed_s=12.0, eta_s=65.0)
    assert panel.stage_label.text() == "Stage 5/7: Fitting MLPs (Eq. 4)"
    assert panel.progress.value() == 250
    assert "ETA 1:05" in panel.eta_label.text() and "elapsed 0:12" in panel.eta_label.text()
    panel.show_status("Done", 1.0)
    assert panel.stage_label.text() == "Done" and panel.progress.value() == 1000


def test_device_choices_follow_what_is_available(panel):
    panel.device_box.setCurrentText("cuda")
    panel.set_available_devices(["auto", "cpu"])
    assert panel.values()["device"] == "auto"
    assert not panel.device_box.model().item(2).isEnabled()


def test_every_control_has_a_tooltip(panel):
    for w in [*panel.editors.values(), panel.preset_box, panel.device_box, panel.run_button, panel.pause_button,
              panel.cancel_button, panel.progress]:
        assert w.toolTip()


@pytest.mark.parametrize("s, text", [(None, "--"), (5.4, "0:05"), (3725, "1:02:05"), (float("nan"), "--")])
def test_format_duration(s, text):
    assert format_duration(s) == text


def test_the_codec_target_follows_the_preset_and_editing_it_makes_it_custom(qtbot):
    """Issue 14: quality or size is the user's knob beside K, prune ratio and λ_freq."""
    p = ParameterPanel()
    qtbot.addWidget(p)
    p.set_presets({"preview": dict(PRESETS["preview"], target_psnr=0.0, target_size=0, residual_groups=[]),
                   "codec": dict(PRESETS["balanced"], target_psnr=40.0, target_size=0, residual_groups=["opacity"])},
                  "preview")
    p.show()
    assert p.values()["target"] == ("none", None)  # preview: the paper's pure NeuralGS
    assert not p.psnr_spin.isVisible() and not p.size_spin.isVisible()
    p.preset_box.setCurrentText("codec")
    assert p.values()["target"] == ("psnr", 40.0) and p.psnr_spin.isVisible() and not p.values()["custom"]
    p.psnr_spin.setValue(36.0)
    v = p.values()
    assert v["target"] == ("psnr", 36.0) and v["custom"] and v["preset"] == "codec"
    p.target_box.setCurrentIndex(p.target_box.findData("size"))
    assert p.size_spin.isVisible() and p.size_unit.isVisible() and not p.psnr_spin.isVisible()
    p.size_spin.setValue(250.0)
    assert p.values()["target"] == ("size", 250_000)  # KB = 1,000 bytes, as the command line's 250k
    p.size_unit.setCurrentText("MB")
    assert p.values()["target"] == ("size", 250_000_000)
    p.set_values({"target": ("size", 1_500)})
    assert p.size_unit.currentText() == "KB" and p.size_spin.value() == 1.5
    p.set_values({"target": ("psnr", 38.5)})
    assert p.values()["target"] == ("psnr", 38.5)
    for w in (p.target_box, p.psnr_spin, p.size_spin, p.size_unit, p.size_label):
        assert w.toolTip()
    for i in range(p.target_box.count()):
        assert p.target_box.itemData(i, Qt.ItemDataRole.ToolTipRole)
    p.set_running(True)
    assert not p.target_box.isEnabled() and not p.psnr_spin.isEnabled()
    p.set_running(False)
    assert p.target_box.isEnabled()


def test_the_export_size_is_shown_in_exact_bytes(panel):
    panel.show_file_size(204_312)
    assert "204,312 bytes" in panel.size_label.text() and ".ngs" in panel.size_label.text()
    panel.show_file_size(None)
    assert panel.size_label.text() == ""
