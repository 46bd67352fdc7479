"""The compressed scene's clusters: the cluster table, the B side it selects, the loss plot's selection.

:class:`ClusterController` shows the session's result in the table (:meth:`show_result`) and, whenever
the table's state changes (a cluster toggled, soloed, selected, coloured), records it in the session
(``Session.show_clusters``) and gives the viewport the B side to draw: rows of the one decode
(:func:`~app.documents.display_scene`), built in the render thread, never recompressed. It also says what
that B side is when it is not the file as decoded (:func:`display_note`), so that the view's PSNR/SSIM are
labelled as the shown subset's, or not measured at all for false colours (issue 14).

Issue 14 also: B can be the NeuralGS prediction alone, without the file's residuals (the table's
"B: NeuralGS prediction only" switch; decoded once, in the render thread, then cached), which B's pane title
and the metrics name; and Undo / Redo (Ctrl+Z / Ctrl+Shift+Z, ``actions``) go back and forth through the
clusters the user ticked (toggles, solo, show all), through the session's history.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from app.documents import display_scene
from app.menus import make_action
from app.session import Session
from app.viewport import Viewport
from widgets.cluster_table import ClusterTable
from widgets.loss_plot import LossPlot

log = logging.getLogger(__name__)

B_TITLE = "B · NeuralGS"  # B's pane title for a file without residuals (the compare view's own)
B_TITLE_FULL = "B · full codec (NeuralGS + residuals)"
B_TITLE_PREDICTION = "B · NeuralGS prediction only (no residuals)"


class ClusterController(QObject):
    """See the module docstring. ``actions``: "undo_clusters", "redo_clusters" (for the Clusters menu)."""

    changed = Signal()  # what is shown changed: the window refreshes its facts

    def __init__(self, session: Session, table: ClusterTable, loss: LossPlot, viewport: Viewport,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.table, self.loss, self.viewport = session, table, loss, viewport
        table.displayChanged.connect(self._display_changed)
        table.clusterSelected.connect(lambda c: self.loss.select_cluster(c))
        loss.clusterSelected.connect(table.select_cluster)
        host = parent if isinstance(parent, QWidget) else table  # shortcuts work wherever the window has focus
        self.actions: dict[str, QAction] = {
            "undo_clusters": make_action(host, "&Undo cluster visibility", self.undo, "Ctrl+Z",
                                         "Undo the last change of the clusters shown: a toggle, a solo, show all "
                                         "(Ctrl+Z)"),
            "redo_clusters": make_action(host, "&Redo cluster visibility", self.redo, "Ctrl+Shift+Z",
                                         "Redo the change of the clusters shown that Undo took back (Ctrl+Shift+Z)"),
        }
        self._update_actions()

    def show_result(self) -> None:
        """Show the session's result (all clusters, none selected), or none: an empty table, no B side."""
        cs = self.session.compressed
        if cs is None:
            self.table.set_prediction_available(False)
            self.table.set_clusters([])
            self.viewport.set_scene(1, None)
            self._set_b_title()
        else:
            self.table.set_prediction_available(cs.has_residuals)
            self.table.set_clusters(cs.rows)  # emits displayChanged -> the B side is rebuilt
        self._update_actions()
        self.changed.emit()

    def undo(self) -> None:
        """Show the clusters ticked before the last change (nothing to undo: nothing happens)."""
        ticks = self.session.undo_clusters()
        if ticks is not None:
            self.table.set_ticked(ticks)
        self._update_actions()

    def redo(self) -> None:
        """Take the last undone change again."""
        ticks = self.session.redo_clusters()
        if ticks is not None:
            self.table.set_ticked(ticks)
        self._update_actions()

    def _update_actions(self) -> None:
        self.actions["undo_clusters"].setEnabled(self.session.can_undo_clusters)
        self.actions["redo_clusters"].setEnabled(self.session.can_redo_clusters)

    def _set_b_title(self) -> None:
        cs, view = self.session.compressed, self.viewport.view
        title = B_TITLE
        if cs is not None and cs.has_residuals:
            title = B_TITLE_PREDICTION if self.session.clusters.prediction_only else B_TITLE_FULL
        if view.titles[1] != title:
            view.set_titles(view.titles[0], title)

    @Slot()
    def _display_changed(self) -> None:
        st = self.table.display_state()
        self.session.show_clusters(st["visible"], st["color_by_cluster"], st["highlight"], st["ticked"],
                                   st["prediction_only"])
        self._update_actions()
        self._set_b_title()
        cs = self.session.compressed
        if cs is None:
            return
        vis, shown = self.session.display_mask(), self.session.clusters
        prediction = shown.prediction_only and cs.has_residuals
        measure, note = display_note(cs.n_clusters, vis, shown.color_by_cluster, shown.highlight, prediction)
        self.viewport.set_scene(1, lambda: display_scene(cs, vis, shown.color_by_cluster, shown.highlight,
                                                         prediction), measure, note)
        self.changed.emit()


def display_note(n_clusters: int, visible, color_by_cluster: bool, highlight: int,
                 prediction_only: bool = False) -> tuple[bool, str]:
    """(measure, note) for a B side showing ``visible`` [K] bool (None: all) of ``n_clusters``, maybe in cluster
    colours or with one cluster highlighted, maybe the NeuralGS prediction without the residuals: measure False
    when its colours are not the file's; note "" when it is the file as decoded, else what it shows (the
    overlay puts it beside the metrics)."""
    n = n_clusters if visible is None else int(visible.sum())
    highlighted = 0 <= highlight < n_clusters
    shows = (["the NeuralGS prediction only (no residuals)"] if prediction_only else []) + \
        ([f"{n} of {n_clusters} clusters"] if n < n_clusters else [])
    parts = [", ".join(shows)] if shows else []
    if color_by_cluster:
        parts.append("coloured by cluster" if parts else "is coloured by cluster")
    if highlighted:
        parts.append(f"highlighting cluster {highlight}" if parts else f"highlights cluster {highlight}")
    if shows:
        parts[0] = "shows " + parts[0]
    return not (color_by_cluster or highlighted), ("B " + ", ".join(parts)) if parts else ""
