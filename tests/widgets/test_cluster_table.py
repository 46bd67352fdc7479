"""ClusterTable: rows, show/solo/all, colour-by-cluster, selection (highlight) and the progressive slider."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from widgets.cluster_table import COLUMNS, ClusterTable

ROWS = [dict(count=500, importance=0.5, loss=0.01, bytes=3000 + 6 * 500),
        dict(count=300, importance=0.3, loss=0.02, bytes=3000 + 6 * 300),
        dict(count=200, importance=None, loss=None, bytes=3000 + 6 * 200)]


@pytest.fixture
def table(qtbot):
    t = ClusterTable()
    qtbot.addWidget(t)
    t.set_clusters(ROWS)
    t.show()
    return t


def cell(t, r, c):
    return t.table.item(r, c).text()


def test_rows_show_count_share_loss_size_and_a_swatch(table):
    assert table.n_clusters == 3 and table.table.columnCount() == len(COLUMNS)
    assert [cell(table, 0, j) for j in range(5)] == ["0", "500", "50.0 %", "0.0100", "5.9 KiB"]
    assert [cell(table, 1, j) for j in (3, 4)] == ["0.0200", "4.7 KiB"]  # one format per column
    assert table.table.item(0, 4).toolTip() == "6,000 bytes"  # the exact count on hover
    assert cell(table, 2, 2) == "—" and cell(table, 2, 3) == "—"  # unknown importance / loss (an opened file)
    assert not table.table.item(1, 0).icon().isNull()
    assert table.table.item(1, 0).flags() & Qt.ItemFlag.ItemIsUserCheckable
    assert "1,000 Gaussians" in table.summary.text() and "3 clusters" in table.summary.text()
    assert "14.6 KiB" in table.summary.text() and "15,000 bytes" in table.summary.toolTip()
    assert table.display_state()["visible"].tolist() == [True, True, True]


def test_unticking_a_row_hides_the_cluster_at_once(table, qtbot):
    with qtbot.waitSignal(table.displayChanged):
        table.table.item(1, 0).setCheckState(Qt.CheckState.Unchecked)
    assert table.display_state()["visible"].tolist() == [True, False, True]


def test_space_toggles_the_selected_row(table, qtbot):
    table.select_cluster(2)
    table.table.setFocus()
    with qtbot.waitSignal(table.displayChanged):
        qtbot.keyClick(table.table, Qt.Key.Key_Space)
    assert table.visible().tolist() == [True, True, False]


def test_solo_and_back(table, qtbot):
    table.select_cluster(1)
    qtbot.mouseClick(table.solo_button, Qt.MouseButton.LeftButton)
    assert table.visible().tolist() == [False, True, False]
    qtbot.mouseClick(table.solo_button, Qt.MouseButton.LeftButton)  # solo again: everything back
    assert table.visible().tolist() == [True, True, True]
    table.solo(0)
    qtbot.mouseClick(table.all_button, Qt.MouseButton.LeftButton)
    assert table.visible().all()


def test_solo_emits_one_display_change(table, qtbot):
    seen = []
    table.displayChanged.connect(lambda: seen.append(1))
    table.solo(2)
    assert len(seen) == 1


def test_selection_highlights(table, qtbot):
    with qtbot.waitSignal(table.clusterSelected) as sel:
        table.table.selectRow(1)
    assert sel.args == [1] and table.display_state()["highlight"] == 1
    with qtbot.waitSignal(table.clusterSelected) as cleared:
        table.select_cluster(-1)
    assert cleared.args == [-1]


def test_colour_by_cluster(table, qtbot):
    with qtbot.waitSignal(table.displayChanged):
        table.color_box.setChecked(True)
    assert table.display_state()["color_by_cluster"]


def test_progressive_slider_keeps_the_first_n(table, qtbot):
    assert table.slider.value() == 3
    with qtbot.waitSignal(table.displayChanged):
        table.set_progressive(1)
    st = table.display_state()
    assert st["n_first"] == 1 and st["visible"].tolist() == [True, False, False]
    assert table.slider_label.text() == "first 1 of 3"
    table.set_visible(0, False)
    assert table.display_state()["visible"].tolist() == [False, False, False]


def test_new_clusters_reset_the_state(table):
    table.solo(1)
    table.set_progressive(2)
    table.set_clusters(ROWS[:2])
    st = table.display_state()
    assert st["visible"].tolist() == [True, True] and st["n_first"] == 2 and st["highlight"] == -1
    table.set_clusters([])
    assert table.summary.text() == "No compressed scene" and not table.solo_button.isEnabled()
    assert table.display_state()["visible"].shape == (0,)
    np.testing.assert_array_equal(table.visible(), np.zeros(0, bool))


def test_controls_have_tooltips(table):
    for w in (table.solo_button, table.all_button, table.color_box, table.slider, table.table):
        assert w.toolTip()
    for j in range(len(COLUMNS)):
        assert len(table.table.horizontalHeaderItem(j).toolTip()) > len(COLUMNS[j])


def test_columns_fit_the_default_dock_width(qtbot):
    """At the dock's default width (the parameter panel's minimum, 360 px) every column shows in full:
    no horizontal scroll bar, even with a big cluster and 120 rows."""
    t = ClusterTable()
    qtbot.addWidget(t)
    rows = [dict(count=1_234_567, importance=0.123, loss=0.0123456, bytes=1_536_000)] + ROWS * 40
    t.set_clusters(rows)
    t.resize(360, 400)
    t.show()
    qtbot.waitExposed(t)
    qtbot.wait(50)
    header = t.table.horizontalHeader()
    used = sum(header.sectionSize(j) for j in range(len(COLUMNS)))
    assert used <= t.table.viewport().width(), (used, t.table.viewport().width())
    assert t.table.horizontalScrollBar().maximum() == 0
    for j in range(len(COLUMNS)):  # no column narrower than its text
        assert header.sectionSize(j) >= t.table.sizeHintForColumn(j)


def test_human_bytes():
    from widgets.units import human_bytes

    assert [human_bytes(n) for n in (0, 950, 1024, 28_800, 2_560_000, 3 * 2**30)] == \
        ["0 B", "950 B", "1 KiB", "28.1 KiB", "2.44 MiB", "3 GiB"]


def test_each_number_column_has_one_format(table):
    """Issue 14: "0.04" beside "0.0708", "28 KiB" beside "55.3 KiB": a column now has one number of decimals
    and one unit (the largest value's)."""
    table.set_clusters([dict(count=12000, importance=0.5, loss=0.04, bytes=28 * 1024),
                        dict(count=9000, importance=0.3, loss=0.0708, bytes=int(55.3 * 1024)),
                        dict(count=600, importance=0.2, loss=0.00312, bytes=950)])
    assert [cell(table, i, 3) for i in range(3)] == ["0.04000", "0.07080", "0.00312"]
    assert [cell(table, i, 4) for i in range(3)] == ["28.0 KiB", "55.3 KiB", "0.9 KiB"]
    assert table.table.item(2, 4).toolTip() == "950 bytes"
    table.set_clusters([dict(count=1, importance=None, loss=1e-7, bytes=10), dict(count=1, importance=None,
                                                                                   loss=0.5, bytes=900)])
    assert [cell(table, i, 3) for i in range(2)] == ["1.00e-07", "5.00e-01"]  # decades apart: scientific
    assert [cell(table, i, 4) for i in range(2)] == ["10 B", "900 B"]


SPLIT_ROWS = [dict(r, positions=1000 + i, predictor=200, residuals=r["bytes"] - 1200 - i) for i, r in enumerate(ROWS)]


def test_the_size_column_splits_each_cluster_into_positions_predictor_and_residuals(table):
    """Issue 14: what each cluster costs, by what it codes."""
    from widgets.cluster_table import SIZE_COLUMN, SPLIT_ROLE

    assert not table.split_legend.isVisible()  # rows without a split (as before): no legend, no bar
    assert table.table.item(0, SIZE_COLUMN).data(SPLIT_ROLE) is None
    table.set_clusters(SPLIT_ROWS)
    item = table.table.item(0, SIZE_COLUMN)
    assert item.text() == "5.9 KiB"
    assert item.data(SPLIT_ROLE) == [1000, 200, 4800, 6000]  # the bar: the three parts, the largest cluster
    tip = item.toolTip()
    assert tip.startswith("6,000 bytes: ") and "positions 1,000 (17 %)" in tip and "residuals 4,800 (80 %)" in tip
    assert "predictor (MLP or constant) 200" in tip
    legend = table.split_legend.text()
    assert table.split_legend.isVisible() and "positions" in legend and "residuals" in legend
    assert "positions 2.93 KiB" in legend  # positions over all clusters: 1000 + 1001 + 1002 bytes
    table.table.viewport().repaint()  # the delegate paints the bars without error


def test_set_ticked_and_the_prediction_switch(table, qtbot):
    with qtbot.waitSignal(table.displayChanged):
        table.set_ticked([False, True, False])
    assert table.display_state()["visible"].tolist() == [False, True, False]
    table.set_progressive(1)
    st = table.display_state()
    assert st["visible"].tolist() == [False, False, False] and st["ticked"].tolist() == [False, True, False]
    assert not table.prediction_box.isEnabled() and not st["prediction_only"]
    table.set_prediction_available(True)
    with qtbot.waitSignal(table.displayChanged):
        table.prediction_box.setChecked(True)
    assert table.display_state()["prediction_only"]
    table.set_prediction_available(False)  # a result without residuals: B is the file as decoded
    assert not table.display_state()["prediction_only"] and table.prediction_box.isChecked()
    assert table.prediction_box.toolTip()
