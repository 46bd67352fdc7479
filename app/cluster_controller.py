"""The compressed scene's clusters: the cluster table, the B side it selects, the loss plot's selection.

:class:`ClusterController` shows the session's result in the table (:meth:`show_result`) and, whenever
the table's state changes (a cluster toggled, soloed, selected, coloured), records it in the session
(``Session.show_clusters``) and gives the viewport the B side to draw: rows of the one decode
(:func:`~app.documents.display_scene`), built in the render thread, never recompressed. It also says what
that B side is when it is not the file as decoded (:func:`display_note`), so that the view's PSNR/SSIM are
labelled as the shown subset's, or not measured at all for false colours (issue 14).
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot

from app.documents import display_scene
from app.session import Session
from app.viewport import Viewport
from widgets.cluster_table import ClusterTable
from widgets.loss_plot import LossPlot

log = logging.getLogger(__name__)


class ClusterController(QObject):
    """See the module docstring."""

    changed = Signal()  # what is shown changed: the window refreshes its facts

    def __init__(self, session: Session, table: ClusterTable, loss: LossPlot, viewport: Viewport,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.table, self.loss, self.viewport = session, table, loss, viewport
        table.displayChanged.connect(self._display_changed)
        table.clusterSelected.connect(lambda c: self.loss.select_cluster(c))
        loss.clusterSelected.connect(table.select_cluster)

    def show_result(self) -> None:
        """Show the session's result (all clusters, none selected), or none: an empty table, no B side."""
        cs = self.session.compressed
        if cs is None:
            self.table.set_clusters([])
            self.viewport.set_scene(1, None)
        else:
            self.table.set_clusters(cs.rows)  # emits displayChanged -> the B side is rebuilt
        self.changed.emit()

    @Slot()
    def _display_changed(self) -> None:
        st = self.table.display_state()
        self.session.show_clusters(st["visible"], st["color_by_cluster"], st["highlight"])
        cs = self.session.compressed
        if cs is None:
            return
        vis, shown = self.session.display_mask(), self.session.clusters
        measure, note = display_note(cs.n_clusters, vis, shown.color_by_cluster, shown.highlight)
        self.viewport.set_scene(1, lambda: display_scene(cs, vis, shown.color_by_cluster, shown.highlight),
                                measure, note)
        self.changed.emit()


def display_note(n_clusters: int, visible, color_by_cluster: bool, highlight: int) -> tuple[bool, str]:
    """(measure, note) for a B side showing ``visible`` [K] bool (None: all) of ``n_clusters``, maybe in cluster
    colours or with one cluster highlighted: measure False when its colours are not the file's; note ""
    when it is the file as decoded, else what it shows (the overlay puts it beside the metrics)."""
    n = n_clusters if visible is None else int(visible.sum())
    highlighted = 0 <= highlight < n_clusters
    parts = [f"shows {n} of {n_clusters} clusters"] if n < n_clusters else []
    if color_by_cluster:
        parts.append("coloured by cluster" if parts else "is coloured by cluster")
    if highlighted:
        parts.append(f"highlighting cluster {highlight}" if parts else f"highlights cluster {highlight}")
    return not (color_by_cluster or highlighted), ("B " + ", ".join(parts)) if parts else ""
