"""ClusterTable: one row per NeuralGS cluster, with show/solo/colour/highlight and progressive loading.

Rows come as plain dicts (``set_clusters``): ``count`` (Gaussians), ``importance`` (share of the total
importance in [0, 1], or None when unknown, e.g. for an opened file), ``loss`` (final fitting loss or
None) and ``bytes`` (the cluster's bytes in the file), optionally split into ``positions``, ``predictor`` and
``residuals`` bytes: the Size cell then draws a stacked bar of the three (scaled to the largest cluster; the
exact split on hover) and a legend under the table gives the totals. The table never touches a scene: it emits
``displayChanged`` whenever what should be drawn changes and ``clusterSelected(int)`` (-1: none) when
the selection changes; ``display_state()`` says what to draw (with ``prediction_only``: B without the
residuals, a switch enabled by :meth:`ClusterTable.set_prediction_available`). Each number column has one
format (:func:`~widgets.units.number_column`, :func:`~widgets.units.bytes_column`): same decimals, same unit.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QSlider, QStyledItemDelegate, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from widgets.palette import cluster_color_255
from widgets.units import bytes_column, human_bytes, number_column

# Short headers so that the table fits the dock's default width; the tooltips say what each column is.
COLUMNS = ("Cluster", "Gaussians", "Share", "Loss", "Size")
SIZE_COLUMN = 4
SPLIT_PARTS = ("positions", "predictor", "residuals")
SPLIT_NAMES = {"positions": "positions", "predictor": "predictor (MLP or constant)",
               "residuals": "residuals"}
SPLIT_COLORS = {"positions": (78, 121, 167), "predictor": (242, 142, 43), "residuals": (89, 161, 79)}
SPLIT_ROLE = Qt.ItemDataRole.UserRole + 1  # the Size cell's [positions, predictor, residuals, largest cluster]
BAR_HEIGHT = 3  # a bar along the cell's bottom (a narrow column)
BAR_HEIGHT_BESIDE = 8  # a bar beside the number, when there are BAR_MIN_BESIDE px for it
BAR_MIN_BESIDE = 40
_TIPS = ("Tick to draw the cluster in the compressed render (Space toggles the selected row); its index "
         "(largest first) and its colour in the loss plot and in colour-by-cluster mode",
         "Gaussians in the cluster", "Share of the total importance (Eq. 2) held by the cluster",
         "Final importance-weighted fitting loss of the cluster's MLP (Eq. 4)",
         "Size of the cluster in the .ngs file; its bar splits it into positions (blue), the predictor: MLP "
         "or constant (orange), and the residuals the codec adds to the prediction (green), scaled to the "
         "largest cluster (hover a cell for the exact bytes of each)")


def swatch(index: int, size: int = 12) -> QIcon:
    """A square icon in cluster ``index``'s colour."""
    pm = QPixmap(size, size)
    pm.fill(QColor(*cluster_color_255(index)))
    return QIcon(pm)


class _SizeBar(QStyledItemDelegate):
    """The Size cell: its text, with a stacked bar of positions / predictor / residuals beside it (along the
    bottom when the column is narrow)."""

    def paint(self, painter, option, index) -> None:
        super().paint(painter, option, index)
        split = index.data(SPLIT_ROLE)
        if not split or not split[3]:
            return
        r = option.rect
        room = r.width() - option.fontMetrics.horizontalAdvance(str(index.data() or "")) - 16.0
        if room >= BAR_MIN_BESIDE:  # beside the number, vertically centred
            x, y, width, h = r.left() + 4.0, r.center().y() - BAR_HEIGHT_BESIDE / 2 + 1, room, BAR_HEIGHT_BESIDE
        else:  # a narrow column: a thin bar along the bottom
            x, y, width, h = r.left() + 3.0, r.bottom() - BAR_HEIGHT - 1.0, max(0.0, r.width() - 6.0), BAR_HEIGHT
        painter.save()
        for part, n in zip(SPLIT_PARTS, split[:3]):
            w = width * float(n) / float(split[3])
            if w > 0:
                painter.fillRect(QRectF(x, y, w, h), QColor(*SPLIT_COLORS[part]))
            x += w
        painter.restore()


def split_tooltip(row: dict) -> str:
    """The Size cell's tooltip: the exact bytes, and their split when the row has one."""
    total = int(row["bytes"])
    if not all(k in row for k in SPLIT_PARTS):
        return f"{total:,} bytes"
    parts = [f"{SPLIT_NAMES[k]} {int(row[k]):,} ({100 * int(row[k]) / total:.0f} %)" if total else
             f"{SPLIT_NAMES[k]} {int(row[k]):,}" for k in SPLIT_PARTS]
    return f"{total:,} bytes: " + " · ".join(parts)


def _square(rgb) -> str:
    return f"<span style='color: rgb{tuple(rgb)}'>■</span>"


class _Table(QTableWidget):
    spacePressed = Signal()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.key() == Qt.Key.Key_Space:
            self.spacePressed.emit()
            return
        super().keyPressEvent(event)


class ClusterTable(QWidget):
    """The cluster list with its controls (solo, show all, colour by cluster, progressive slider)."""

    displayChanged = Signal()
    clusterSelected = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._filling = False
        self.table = _Table(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for i, tip in enumerate(_TIPS):
            self.table.horizontalHeaderItem(i).setToolTip(tip)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter)
        self.table.setToolTip("Select a row to highlight its cluster in the compressed render; "
                              "Space toggles it, Alt+S solos it")
        self.table.setItemDelegateForColumn(SIZE_COLUMN, _SizeBar(self.table))
        self.table.itemChanged.connect(self._item_changed)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.spacePressed.connect(self.toggle_selected)

        self.solo_button = QPushButton("Solo", toolTip="Show only the selected cluster; again: show all (Alt+S)")
        self.solo_button.setShortcut(QKeySequence("Alt+S"))
        self.solo_button.clicked.connect(lambda: self.solo(self.selected_cluster()))
        self.all_button = QPushButton("Show all", toolTip="Tick every cluster (Alt+A)")
        self.all_button.setShortcut(QKeySequence("Alt+A"))
        self.all_button.clicked.connect(self.show_all)
        self.color_box = QCheckBox("Colour by cluster", toolTip="Draw each Gaussian in its cluster's colour (C)")
        self.color_box.setShortcut(QKeySequence("C"))
        self.color_box.toggled.connect(self._emit_display)
        self.slider = QSlider(Qt.Orientation.Horizontal, toolTip="Progressive loading: draw only the first n "
                                                                  "(largest) clusters, as a reader streaming the "
                                                                  "file would")
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider_label = QLabel("", toolTip=self.slider.toolTip())
        self.summary = QLabel("No compressed scene", toolTip="Totals over all clusters")
        self.split_legend = QLabel("", toolTip="What the clusters' bytes code, over all clusters: positions, "
                                               "predictors (MLP or constant) and residuals; the bars in the Size "
                                               "column split each cluster the same way")
        self.split_legend.setTextFormat(Qt.TextFormat.RichText)
        self.split_legend.setWordWrap(True)
        self.prediction_box = QCheckBox("B: NeuralGS prediction only",
                                        toolTip="Show B without the file's residuals: what the NeuralGS MLPs "
                                                "(or constants) alone predict, against the full codec when off "
                                                "(only for a .ngs v2 that codes residuals)")
        self.prediction_box.toggled.connect(self._emit_display)
        self.prediction_box.setEnabled(False)

        row = QHBoxLayout()
        for w in (self.solo_button, self.all_button, self.color_box):
            row.addWidget(w)
        row.addStretch(1)
        prog = QHBoxLayout()
        prog.addWidget(QLabel("Progressive:"))
        prog.addWidget(self.slider, 1)
        prog.addWidget(self.slider_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.split_legend)
        layout.addLayout(row)
        layout.addWidget(self.prediction_box)
        layout.addLayout(prog)
        self.set_clusters([])

    # -- content -------------------------------------------------------------------------------
    @property
    def n_clusters(self) -> int:
        return self.table.rowCount()

    def set_clusters(self, rows: list[dict]) -> None:
        """Replace the rows (see the module docstring); every cluster shown, no selection, all loaded."""
        self._filling = True
        self.table.clearSelection()
        self.table.setRowCount(len(rows))
        losses = number_column([r.get("loss") for r in rows])  # one format per column
        sizes = bytes_column([int(r["bytes"]) for r in rows])
        largest = max((int(r["bytes"]) for r in rows), default=0)
        for i, r in enumerate(rows):
            name = QTableWidgetItem(swatch(i), f"{i}")  # the show/hide checkbox, the swatch and the index
            name.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            name.setCheckState(Qt.CheckState.Checked)
            imp = r.get("importance")
            size = _num(sizes[i])
            size.setToolTip(split_tooltip(r))
            if all(k in r for k in SPLIT_PARTS):
                size.setData(SPLIT_ROLE, [int(r[k]) for k in SPLIT_PARTS] + [largest])
            cells = [name, _num(f"{int(r['count']):,}"), _num("—" if imp is None else f"{100 * imp:.1f} %"),
                     _num(losses[i]), size]
            for j, item in enumerate(cells):
                if j:
                    item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                self.table.setItem(i, j, item)
        self.slider.setRange(0, len(rows))
        self.slider.setValue(len(rows))
        self._filling = False
        total = sum(int(r["count"]) for r in rows)
        nbytes = sum(int(r["bytes"]) for r in rows)
        self.summary.setText(f"{len(rows)} clusters · {total:,} Gaussians · {human_bytes(nbytes)}"
                             if rows else "No compressed scene")
        self.summary.setToolTip(f"Totals over all clusters ({nbytes:,} bytes)" if rows else "Totals over all clusters")
        split = rows and all(k in r for r in rows for k in SPLIT_PARTS)
        totals = {k: sum(int(r[k]) for r in rows) for k in SPLIT_PARTS} if split else {}
        self.split_legend.setText(" · ".join(f"{_square(SPLIT_COLORS[k])} {k} {human_bytes(n)}"
                                             for k, n in totals.items()))
        self.split_legend.setVisible(bool(split))
        self._update_slider_label()
        self.solo_button.setEnabled(bool(rows))
        self.all_button.setEnabled(bool(rows))
        self.displayChanged.emit()

    # -- state ---------------------------------------------------------------------------------
    def visible(self) -> np.ndarray:
        """[K] bool: the ticked clusters."""
        return np.array([self.table.item(i, 0).checkState() == Qt.CheckState.Checked
                         for i in range(self.n_clusters)], dtype=bool)

    def selected_cluster(self) -> int:
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() if rows else -1

    def display_state(self) -> dict:
        """``{"visible": [K] bool (ticked and within the progressive prefix), "ticked": [K] bool (the ticks
        alone), "color_by_cluster": bool, "highlight": selected cluster or -1, "n_first": progressive n,
        "prediction_only": B without the residuals (ticked and available)}``."""
        ticked = self.visible()
        vis = ticked.copy()
        vis[self.slider.value():] = False
        return {"visible": vis, "ticked": ticked, "color_by_cluster": self.color_box.isChecked(),
                "highlight": self.selected_cluster(), "n_first": self.slider.value(),
                "prediction_only": self.prediction_box.isChecked() and self.prediction_box.isEnabled()}

    def set_ticked(self, mask) -> None:
        """Tick exactly the clusters of ``mask`` [K] bool (undo / redo); one ``displayChanged``."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape == (self.n_clusters,):
            self._set_all(mask)

    def set_prediction_available(self, available: bool) -> None:
        """Whether B can be shown without residuals (the result codes some); unavailable: the switch is greyed
        out and B is the file as decoded (its tick is kept for the next result that has residuals)."""
        self.prediction_box.setEnabled(bool(available))

    def set_visible(self, c: int, on: bool) -> None:
        self.table.item(c, 0).setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _set_all(self, mask: np.ndarray) -> None:
        self._filling = True
        for i, on in enumerate(mask):
            self.set_visible(i, bool(on))
        self._filling = False
        self._emit_display()

    def toggle_selected(self) -> None:
        c = self.selected_cluster()
        if c >= 0:
            self.set_visible(c, not self.visible()[c])

    def solo(self, c: int) -> None:
        """Show only cluster ``c``; when it is already the only one shown, show all again."""
        if not 0 <= c < self.n_clusters:
            return
        vis = self.visible()
        only = np.zeros(self.n_clusters, dtype=bool)
        only[c] = True
        self._set_all(np.ones_like(only) if np.array_equal(vis, only) else only)

    def show_all(self) -> None:
        self._set_all(np.ones(self.n_clusters, dtype=bool))

    def select_cluster(self, c: int) -> None:
        """Select row ``c`` (-1 clears the selection)."""
        if 0 <= c < self.n_clusters:
            self.table.selectRow(c)
        else:
            self.table.clearSelection()

    def set_progressive(self, n: int) -> None:
        self.slider.setValue(int(n))

    # -- signals -------------------------------------------------------------------------------
    def _item_changed(self, item: QTableWidgetItem) -> None:
        if not self._filling and item.column() == 0:
            self._emit_display()

    def _selection_changed(self) -> None:
        if self._filling:
            return
        self.clusterSelected.emit(self.selected_cluster())
        self._emit_display()

    def _slider_moved(self, _value: int) -> None:
        self._update_slider_label()
        if not self._filling:
            self._emit_display()

    def _update_slider_label(self) -> None:
        self.slider_label.setText(f"first {self.slider.value()} of {self.n_clusters}")

    def _emit_display(self, *_args) -> None:
        if not self._filling:
            self.displayChanged.emit()


def _num(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item
