"""ClusterTable: one row per NeuralGS cluster, with show/solo/colour/highlight and progressive loading.

Rows come as plain dicts (``set_clusters``): ``count`` (Gaussians), ``importance`` (share of the total
importance in [0, 1], or None when unknown, e.g. for an opened file), ``loss`` (final fitting loss or
None) and ``bytes`` (the cluster's bytes in the file). The table never touches a scene: it emits
``displayChanged`` whenever what should be drawn changes and ``clusterSelected(int)`` (-1: none) when
the selection changes; ``display_state()`` says what to draw. Each number column has one format
(:func:`~widgets.units.number_column`, :func:`~widgets.units.bytes_column`): same decimals, same unit.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QSlider, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from widgets.palette import cluster_color_255
from widgets.units import bytes_column, human_bytes, number_column

# Short headers so that the table fits the dock's default width; the tooltips say what each column is.
COLUMNS = ("Cluster", "Gaussians", "Share", "Loss", "Size")
_TIPS = ("Tick to draw the cluster in the compressed render (Space toggles the selected row); its index "
         "(largest first) and its colour in the loss plot and in colour-by-cluster mode",
         "Gaussians in the cluster", "Share of the total importance (Eq. 2) held by the cluster",
         "Final importance-weighted fitting loss of the cluster's MLP (Eq. 4)",
         "Size of the cluster in the .ngs file: fp16 MLP weights + 6 bytes per position "
         "(hover a cell for the exact byte count)")


def swatch(index: int, size: int = 12) -> QIcon:
    """A square icon in cluster ``index``'s colour."""
    pm = QPixmap(size, size)
    pm.fill(QColor(*cluster_color_255(index)))
    return QIcon(pm)


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
        layout.addLayout(row)
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
        for i, r in enumerate(rows):
            name = QTableWidgetItem(swatch(i), f"{i}")  # the show/hide checkbox, the swatch and the index
            name.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            name.setCheckState(Qt.CheckState.Checked)
            imp = r.get("importance")
            size = _num(sizes[i])
            size.setToolTip(f"{int(r['bytes']):,} bytes")
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
        """``{"visible": [K] bool (ticked and within the progressive prefix), "color_by_cluster": bool,
        "highlight": selected cluster or -1, "n_first": progressive n}``."""
        vis = self.visible()
        vis[self.slider.value():] = False
        return {"visible": vis, "color_by_cluster": self.color_box.isChecked(),
                "highlight": self.selected_cluster(), "n_first": self.slider.value()}

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
