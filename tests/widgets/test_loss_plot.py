"""LossPlot: one curve per cluster while fitting, the total while fine-tuning (raw and moving mean), log scale
with readable ticks, legend selection, redraws limited to what changed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from widgets.loss_axis import LossAxis, format_loss, format_ticks, log_ticks
from widgets.loss_plot import SMOOTH_POINTS, LossPlot, moving_mean
from widgets.palette import cluster_color_255


@pytest.fixture
def plot(qtbot):
    p = LossPlot()
    qtbot.addWidget(p)
    p.resize(600, 400)
    p.show()
    return p


def test_one_curve_per_cluster_with_its_colour(plot):
    for step in (10, 20, 30):
        plot.add_fit(step, {0: 1.0 / step, 1: 2.0 / step, 2: 0.5 / step})
    plot.redraw()
    assert sorted(plot.curves) == [0, 1, 2]
    xs, ys = plot.curves[1].xData, plot.curves[1].yData
    np.testing.assert_array_equal(xs, [10, 20, 30])
    np.testing.assert_allclose(ys, [0.2, 0.1, 2 / 30])
    assert plot.curves[2].opts["pen"].color().getRgb()[:3] == cluster_color_255(2)
    assert "fit step 30" in plot.status.text()


def test_finetune_curve_and_repeated_steps_replace(plot):
    plot.add_finetune(5, 0.3)
    plot.add_finetune(10, 0.2)
    plot.add_finetune(10, 0.19)  # the same step reported twice (throttled and logged): one point
    plot.redraw()
    xs, ys = plot.tune_raw_curve.xData, plot.tune_raw_curve.yData
    np.testing.assert_array_equal(xs, [5, 10])
    np.testing.assert_allclose(ys, [0.3, 0.19])
    np.testing.assert_allclose(plot.tune_curve.yData, [0.3, (0.3 + 0.19) / 2])  # the moving mean


def test_finetune_moving_mean_is_smoother_than_the_raw_loss(plot):
    rng = np.random.default_rng(0)
    raw = 0.02 * (1 + 0.2 * rng.uniform(-1, 1, 60))
    for step, v in enumerate(raw, 1):
        plot.add_finetune(step, float(v))
    plot.redraw()
    smooth = plot.tune_curve.yData
    np.testing.assert_allclose(plot.tune_raw_curve.yData, raw)
    np.testing.assert_allclose(smooth[-1], raw[-SMOOTH_POINTS:].mean())
    assert np.abs(np.diff(smooth)).mean() < 0.3 * np.abs(np.diff(raw)).mean()
    raw_pen, mean_pen = plot.tune_raw_curve.opts["pen"], plot.tune_curve.opts["pen"]
    assert raw_pen.color().alpha() < 128 and mean_pen.width() > raw_pen.width()  # raw faint, mean bold


def test_moving_mean():
    np.testing.assert_allclose(moving_mean(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    assert moving_mean(np.array([]), 3).shape == (0,)


def test_redraws_are_throttled_but_happen(plot, qtbot):
    plot.add_fit(1, {0: 0.5})
    assert 0 not in plot.curves  # not drawn yet: the timer batches updates
    qtbot.waitUntil(lambda: 0 in plot.curves, timeout=2000)


def test_log_scale_toggle(plot):
    assert plot.fit_plot.getAxis("left").logMode
    plot.set_log(False)
    assert not plot.log_box.isChecked() and not plot.fit_plot.getAxis("left").logMode
    plot.log_box.setChecked(True)
    assert plot.fit_plot.getAxis("left").logMode and plot.tune_plot.getAxis("left").logMode


def test_loss_axes_have_no_si_prefix_and_plain_log_labels(plot):
    """A fine-tuning loss around 0.019 reads 0.018 / 0.02 on the axis, not "2·10¹" with "(x0.001)"."""
    for step in range(1, 40):
        plot.add_finetune(step, 0.019 + 0.002 * math.sin(step))
    plot.redraw()
    axis = plot.tune_plot.getAxis("left")
    assert isinstance(axis, LossAxis) and not axis.autoSIPrefix and axis.logMode
    assert "x0.001" not in axis.labelString() and "(x" not in plot.fit_plot.getAxis("left").labelString()
    plot.tune_plot.getViewBox().updateAutoRange()  # what the next paint does
    lo, hi = plot.tune_plot.getViewBox().viewRange()[1]
    levels = axis.tickValues(lo, hi, 120)
    labels = axis.tickStrings(levels[0][1], 1.0, levels[0][0])
    assert len(labels) >= 2 and all(lab.startswith("0.0") for lab in labels), labels
    assert axis.tickStrings(levels[1][1], 1.0, levels[1][0]) == [""] * len(levels[1][1])  # minor: no label
    plot.set_log(False)
    assert "·" not in "".join(axis.tickStrings([0.018, 0.02], 1.0, 0.002))


@pytest.mark.parametrize("lo, hi, px", [(0.017, 0.022, 80), (0.03, 0.3, 150), (0.01, 0.1, 200), (1e-3, 0.5, 120),
                                        (1e-8, 10.0, 100), (0.0123, 0.0124, 100), (1.0, 10.0, 40), (0.05, 0.2, 300),
                                        (0.011, 0.025, 60)])
def test_log_ticks_are_few_spread_out_and_labelled_plainly(lo, hi, px):
    major, minor = log_ticks(math.log10(lo), math.log10(hi), px)
    assert 2 <= len(major) <= 6, major
    per_decade = px / (math.log10(hi) - math.log10(lo))
    assert min(np.diff(major)) * per_decade >= 15  # labels never crowd (22 px apart where the axis allows)
    assert all(math.log10(lo) - 1e-9 <= v <= math.log10(hi) + 1e-9 for v in major + minor)
    labels = format_ticks([10 ** v for v in major])
    assert len(set(labels)) == len(labels) and not any("·" in lab or "^" in lab for lab in labels), labels


def test_log_ticks_prefer_decades_and_fall_back_to_linear_steps():
    assert format_ticks([10 ** v for v in log_ticks(-3, 0, 100)[0]]) == ["0.001", "0.01", "0.1", "1"]
    assert format_ticks([10 ** v for v in log_ticks(math.log10(0.017), math.log10(0.022), 80)[0]]) == \
        ["0.018", "0.02", "0.022"]
    assert log_ticks(0.0, 0.0, 100) == ([], [])
    # the fine-tuning plot of the screenshots: 65 px for 0.011 .. 0.025 showed one label ("0.02")
    assert len(log_ticks(math.log10(0.011), math.log10(0.025), 65)[0]) >= 2


def test_format_loss():
    assert [format_loss(v) for v in (0.019, 0.0015, 150, 2.5e-5, 3e6, 0.0)] == \
        ["0.019", "0.0015", "150", "2.5e-5", "3e6", "0"]


def test_redraw_touches_only_the_curves_that_changed(plot, monkeypatch):
    plot.add_fit(1, {0: 0.5, 1: 0.4})
    plot.add_finetune(1, 0.1)
    plot.redraw()
    calls = []
    for name, curve in [("fit0", plot.curves[0]), ("fit1", plot.curves[1]), ("tune", plot.tune_curve)]:
        monkeypatch.setattr(curve, "setData", lambda *a, n=name, **k: calls.append(n))
    plot.add_fit(2, {1: 0.3})
    plot.redraw()
    assert calls == ["fit1"]
    plot.redraw()
    assert calls == ["fit1"]  # nothing new: nothing redrawn
    plot.add_finetune(2, 0.09)
    plot.redraw()
    assert calls == ["fit1", "tune"]


def test_zero_losses_are_drawable_on_a_log_axis(plot):
    plot.add_fit(1, {0: 0.0})
    plot.redraw()
    assert plot.curves[0].yData[0] > 0


def test_legend_click_selects_the_cluster_and_keeps_it_visible(plot, qtbot):
    plot.add_fit(1, {0: 0.5, 1: 0.4})
    plot.redraw()
    with qtbot.waitSignal(plot.clusterSelected) as sel:
        plot.legend.sigSampleClicked.emit(plot.curves[1])
    assert sel.args == [1] and plot.selected == 1
    assert plot.curves[1].isVisible()
    assert plot.curves[1].opts["pen"].width() > plot.curves[0].opts["pen"].width()
    with qtbot.waitSignal(plot.clusterSelected) as again:  # clicking it again clears the selection
        plot.legend.sigSampleClicked.emit(plot.curves[1])
    assert again.args == [-1]


def test_select_from_outside_does_not_echo(plot, qtbot):
    plot.add_fit(1, {0: 0.5, 1: 0.4})
    plot.redraw()
    with qtbot.assertNotEmitted(plot.clusterSelected):
        plot.select_cluster(0)
    assert plot.selected == 0


def test_reset_forgets_everything(plot):
    plot.add_fit(1, {0: 0.5})
    plot.add_finetune(1, 0.1)
    plot.redraw()
    plot.reset()
    plot.redraw()
    assert plot.curves == {} and plot.fit_data == {} and not plot.legend.items
    assert [item for item in plot.fit_plot.listDataItems()] == []
    for curve in (plot.tune_curve, plot.tune_raw_curve):
        assert curve.getData()[0] is None or len(curve.getData()[0]) == 0


def test_new_curves_are_made_a_few_per_pass_and_all_soon(plot, qtbot):
    """Making a curve and its legend entry costs milliseconds: a timed pass makes two, the next pass follows
    at once, so eight clusters never block the GUI thread in one piece."""
    from widgets.loss_plot import NEW_CURVES_PER_PASS

    plot.add_fit(1, {c: 0.1 * (c + 1) for c in range(8)})
    plot._timed_redraw()
    assert len(plot.curves) == NEW_CURVES_PER_PASS
    qtbot.waitUntil(lambda: len(plot.curves) == 8, timeout=2000)
    assert len(plot.legend.items) == 8


def test_live_curves_skip_antialiasing_until_the_run_ends(plot):
    plot.set_live(True)
    plot.add_fit(1, {0: 0.5})
    plot.add_finetune(1, 0.1)
    plot.redraw()
    assert not plot.curves[0].opts["antialias"] and not plot.tune_curve.opts["antialias"]
    plot.set_live(False)
    assert plot.curves[0].opts["antialias"] and plot.tune_raw_curve.opts["antialias"]


def test_learning_stages_share_one_iteration_axis_with_named_markers(plot):
    for step in (10, 20):
        plot.add_image_loss("coadapt", step, 0.01)
    plot.add_finetune(10, 0.02)
    plot.add_image_loss("qat", 5, 0.005)
    plot.add_image_loss("qat", 5, 0.004)  # a repeated step replaces its point
    plot.redraw()
    assert plot.tune_data == ([10, 20, 30, 35], [0.01, 0.01, 0.02, 0.004])
    assert plot.stage_offset == {"coadapt": 0, "finetune": 20, "qat": 30}
    assert {k: m.value() for k, m in plot.stage_markers.items()} == {"coadapt": 0, "finetune": 20, "qat": 30}
    assert plot.stage_markers["qat"].label.toPlainText() == "QAT"
    assert list(plot.tune_raw_curve.xData) == [10, 20, 30, 35]
    markers = list(plot.stage_markers.values())
    plot.reset()
    assert not plot.stage_markers and not plot.stage_offset
    assert all(m.scene() is None for m in markers), "a new run keeps the last run's stage markers"
