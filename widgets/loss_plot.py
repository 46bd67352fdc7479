"""LossPlot: live pyqtgraph curves of the fitting loss per cluster (Eq. 4) and the image loss.

Two stacked plots: the top one has one curve per cluster (cluster colours from :mod:`widgets.palette`),
the bottom one the image loss (Eq. 5-7) of every stage that learns from the pictures, one after the other
on one iteration axis: co-adaptation after pruning, the MLPs' fine-tuning, quantisation-aware fine-tuning
(a dashed line and the stage's name where each starts). Each logged value is drawn as a faint line (it
jumps from view to view) and its moving mean over the last ``SMOOTH_POINTS`` values as a bold one. Points
are appended with ``add_fit`` / ``add_image_loss`` (``add_finetune`` for the MLPs' stage) from progress
records; only the curves that changed are redrawn,
at most every ``REDRAW_MS``, so a fast worker cannot flood the GUI thread. The y axes are
:class:`~widgets.loss_axis.LossAxis` (plain numbers, readable log ticks). Clicking a curve or a legend
entry (its colour sample or its text) emits ``clusterSelected``.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from widgets.loss_axis import LossAxis
from widgets.palette import cluster_color_255

REDRAW_MS = 250  # a redraw repaints the plot (10-30 ms of GUI-thread CPU on a busy 2-core machine)
NEW_CURVES_PER_PASS = 2  # a new curve and its legend entry cost ~5 ms: K of them at once blocked the GUI thread
SMOOTH_POINTS = 10
LOG_FLOOR = 1e-12  # what a non-positive loss is drawn as on a log axis
STAGE_LABELS = {"coadapt": "co-adapt", "finetune": "fine-tune", "qat": "QAT"}


class SelectingLegend(pg.LegendItem):
    """A legend whose entries are clicked as a whole: a click on an entry's text, not only on its colour
    sample, emits ``sigSampleClicked(item)`` (pyqtgraph's labels take no clicks: the click reaches the legend)."""

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph override
        if ev.button() == QtCore.Qt.MouseButton.LeftButton:
            for sample, label in self.items:
                if label.mapRectToParent(label.boundingRect()).contains(ev.pos()):
                    ev.accept()
                    self.sigSampleClicked.emit(sample.item)
                    return
        ev.ignore()


def moving_mean(ys: np.ndarray, n: int = SMOOTH_POINTS) -> np.ndarray:
    """Trailing mean of the last ``n`` values at each point (fewer at the start), same length as ``ys``."""
    ys = np.asarray(ys, dtype=np.float64)
    if ys.size == 0:
        return ys
    c = np.concatenate([[0.0], np.cumsum(ys)])
    idx = np.arange(1, ys.size + 1)
    start = np.maximum(idx - n, 0)
    return (c[idx] - c[start]) / (idx - start)


class LossPlot(QWidget):
    """Fit losses per cluster and the fine-tuning loss, with a log-scale switch and a selecting legend."""

    clusterSelected = Signal(int)  # -1: none

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True)
        self.log_box = QCheckBox("Log scale", toolTip="Logarithmic loss axis (L)", checked=True)
        self.log_box.setShortcut("L")
        self.log_box.toggled.connect(self.set_log)
        self.status = QLabel("", toolTip="Latest losses")
        top = QHBoxLayout()
        top.addWidget(self.log_box)
        top.addWidget(self.status, 1)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("w")
        self.fit_plot = self.graphics.addPlot(row=0, col=0, title="Fitting loss per cluster (Eq. 4)",
                                              axisItems={"left": LossAxis()})
        self.tune_plot = self.graphics.addPlot(row=1, col=0, title="Image loss (Eq. 5-7)",
                                               axisItems={"left": LossAxis()})
        for plot, ylabel in ((self.fit_plot, "weighted MSE"), (self.tune_plot, "image loss")):
            plot.showGrid(x=True, y=True, alpha=0.25)
            plot.setLabel("bottom", "iteration")
            plot.setLabel("left", ylabel)
            plot.getAxis("bottom").enableAutoSIPrefix(False)
        legend_style = dict(offset=(-5, 5), labelTextSize="8pt", brush=pg.mkBrush(255, 255, 255, 70))
        self.legend = SelectingLegend(colCount=3, **legend_style)  # mostly see-through: curves under it show
        self.legend.setParentItem(self.fit_plot.vb)
        self.fit_plot.legend = self.legend  # as addLegend would: the plot adds its named curves to it
        self.legend.sigSampleClicked.connect(self._legend_clicked)
        self.tune_legend = self.tune_plot.addLegend(colCount=2, **legend_style)
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 2)
        self.graphics.setToolTip("Click a curve or its legend entry to select that cluster")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.graphics, 1)
        self._timer = QTimer(self, interval=REDRAW_MS, singleShot=True)
        self._timer.timeout.connect(self._timed_redraw)
        self._soon = QTimer(self, interval=0, singleShot=True)  # the rest of a pass that made new curves
        self._soon.timeout.connect(self._timed_redraw)
        self.live = False
        self.fit_data: dict[int, tuple[list[int], list[float]]] = {}
        self.curves: dict[int, pg.PlotDataItem] = {}
        self.tune_raw_curve = self.tune_plot.plot([], [], pen=pg.mkPen((90, 90, 90, 90), width=1), name="logged")
        self.tune_curve = self.tune_plot.plot([], [], pen=pg.mkPen((30, 30, 30), width=2.5),
                                              name=f"mean of last {SMOOTH_POINTS}")
        self.reset()
        self.set_log(True)

    # -- data ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every point and the cluster curves (a new run); the fine-tuning curves stay, emptied."""
        for curve in self.curves.values():
            self.fit_plot.removeItem(curve)  # also takes it out of the legend
        self.fit_data = {}
        self.tune_data: tuple[list[int], list[float]] = ([], [])
        for marker in getattr(self, "stage_markers", {}).values():
            self.tune_plot.removeItem(marker)
        self.stage_markers: dict[str, pg.InfiniteLine] = {}  # learning stage -> the line where it starts
        self.stage_offset: dict[str, int] = {}  # learning stage -> iterations of the stages drawn before it
        self.curves = {}
        self.selected = -1
        self._dirty_fit: set[int] = set()
        self._dirty_tune = True
        self.status.setText("")

    def set_live(self, on: bool) -> None:
        """While a run feeds the plot (``on``), curves are drawn without antialiasing: a third less GUI-thread
        time per redraw; off again, everything is redrawn smooth."""
        self.live = bool(on)
        if not on:
            self._dirty_fit.update(self.fit_data)
            self._dirty_tune = True
            self.redraw()

    def add_fit(self, step: int, losses: dict[int, float]) -> None:
        """Per-cluster fitting losses at iteration ``step`` (cluster index -> loss)."""
        for c, v in sorted(losses.items()):
            xs, ys = self.fit_data.setdefault(int(c), ([], []))
            if xs and step <= xs[-1]:  # a repeated record (the throttled one and the logged one)
                xs[-1], ys[-1] = step, float(v)
            else:
                xs.append(int(step))
                ys.append(float(v))
            self._dirty_fit.add(int(c))
        if losses:
            mean = sum(losses.values()) / len(losses)
            self.status.setText(f"fit step {step}: mean loss {mean:.3g} over {len(losses)} clusters")
        self._schedule()

    def add_finetune(self, step: int, loss: float) -> None:
        """The MLPs' fine-tuning loss at iteration ``step``."""
        self.add_image_loss("finetune", step, loss)

    def add_image_loss(self, stage: str, step: int, loss: float) -> None:
        """The image loss of learning ``stage`` ("coadapt", "finetune", "qat") at its iteration ``step``; a stage
        seen for the first time starts where the curve ends, marked with its name."""
        xs, ys = self.tune_data
        if stage not in self.stage_offset:
            self.stage_offset[stage] = xs[-1] if xs else 0
            # every learning stage is named where it starts
            marker = pg.InfiniteLine(pos=self.stage_offset[stage], angle=90, label=STAGE_LABELS.get(stage, stage),
                                     pen=pg.mkPen((120, 120, 120), width=1, style=QtCore.Qt.PenStyle.DashLine),
                                     labelOpts={"position": 0.9, "color": (80, 80, 80)})
            self.tune_plot.addItem(marker)
            self.stage_markers[stage] = marker
        x = self.stage_offset[stage] + int(step)
        if xs and x <= xs[-1]:
            xs[-1], ys[-1] = x, float(loss)
        else:
            xs.append(x)
            ys.append(float(loss))
        self._dirty_tune = True
        self.status.setText(f"{STAGE_LABELS.get(stage, stage)} step {step}: image loss {loss:.4g}")
        self._schedule()

    def _schedule(self) -> None:
        if not self._timer.isActive():
            self._timer.start()

    def _timed_redraw(self) -> None:
        self.redraw(max_new_curves=NEW_CURVES_PER_PASS)

    def redraw(self, max_new_curves: int | None = None) -> None:
        """Push new data to the curves that changed (called by the throttle timer; call directly in tests).
        ``max_new_curves``: create at most that many cluster curves now, the rest in a pass right after."""
        self._timer.stop()
        aa = not self.live
        for c in sorted(self._dirty_fit):
            xs, ys = self.fit_data[c]
            curve = self.curves.get(c)
            if curve is None:
                if max_new_curves is not None and max_new_curves <= 0:
                    continue
                max_new_curves = None if max_new_curves is None else max_new_curves - 1
                curve = self.fit_plot.plot([], [], pen=self._pen(c), name=f"cluster {c}")
                curve.curve.setClickable(True, width=6)
                curve.sigClicked.connect(self._curve_clicked)  # (item, MouseClickEvent)
                self.curves[c] = curve
            curve.setData(np.asarray(xs, dtype=np.float64), self._positive(ys), antialias=aa)
            self._dirty_fit.discard(c)
        if self._dirty_fit:
            self._soon.start()
        if self._dirty_tune:
            xs, ys = np.asarray(self.tune_data[0], dtype=np.float64), np.asarray(self.tune_data[1], dtype=np.float64)
            self.tune_raw_curve.setData(xs, self._positive(ys), antialias=aa)
            self.tune_curve.setData(xs, self._positive(moving_mean(ys)), antialias=aa)
            self._dirty_tune = False

    def _positive(self, ys) -> np.ndarray:
        """Losses for drawing: on a log axis, non-positive values cannot be drawn; clamp them."""
        a = np.asarray(ys, dtype=np.float64)
        if not self.log_box.isChecked():
            return a
        return np.where((a > 0) & np.isfinite(a), a, LOG_FLOOR)

    def _pen(self, c: int):
        width = 3 if c == self.selected else 1.5
        color = cluster_color_255(c)
        alpha = 255 if self.selected in (-1, c) else 70
        return pg.mkPen((*color, alpha), width=width)

    # -- interaction ---------------------------------------------------------------------------
    def set_log(self, on: bool) -> None:
        """Logarithmic y axes on both plots."""
        if self.log_box.isChecked() != on:
            self.log_box.setChecked(on)
            return
        self.fit_plot.setLogMode(y=on)
        self.tune_plot.setLogMode(y=on)
        self._dirty_fit.update(self.fit_data)
        self._dirty_tune = True
        self.redraw()

    def _curve_clicked(self, item, *_event) -> None:
        """A curve was clicked: ``item`` is its PlotCurveItem (pyqtgraph forwards that one's signal), then the event."""
        for c, curve in self.curves.items():
            if item is curve or item is curve.curve:
                self.select_cluster(c, emit=True)
                return

    def _legend_clicked(self, item) -> None:
        item.setVisible(True)  # pyqtgraph's legend hides the curve on click; here a click selects instead
        for c, curve in self.curves.items():
            if curve is item:
                self.select_cluster(c, emit=True)

    def select_cluster(self, c: int, emit: bool = False) -> None:
        """Emphasise cluster ``c`` (-1: none); clicking the selected one again clears the selection."""
        if emit and c == self.selected:
            c = -1
        self.selected = int(c)
        for k, curve in self.curves.items():
            curve.setPen(self._pen(k))
            curve.setZValue(10 if k == c else 0)
        if emit:
            self.clusterSelected.emit(self.selected)
