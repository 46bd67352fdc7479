"""LossPlot: one curve per cluster while fitting, the total while fine-tuning, log scale, legend selection."""

from __future__ import annotations

import numpy as np
import pytest

from widgets.loss_plot import LossPlot
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
    xs, ys = plot.tune_curve.xData, plot.tune_curve.yData
    np.testing.assert_array_equal(xs, [5, 10])
    np.testing.assert_allclose(ys, [0.3, 0.19])


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
    assert plot.curves == {} and plot.tune_curve.getData()[0] is None or len(plot.tune_curve.getData()[0]) == 0
