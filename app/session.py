"""The state of one studio session, as plain Python (no Qt): what is open, what was made, what was saved.

:class:`Session` is the one place the window's controllers read and change (see
:mod:`app.main_window`): the original scene, the training cameras (a dataset or cameras file), the
world up override, the compressed result, how its clusters are shown, what has been exported and
the extra compression settings. Every change goes through a named transition
(:meth:`Session.open_scene`, :meth:`Session.set_compressed`, :meth:`Session.open_compressed`,
:meth:`Session.set_cameras`, :meth:`Session.mark_exported`, ...), so a rule about what a change keeps
or drops lives in one method, unit-tested without Qt (``tests/app/test_session.py``).

Torch and the pipeline load only inside the methods that need them (``up_axis`` with cameras,
``compression_config``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.documents import CompressedScene, OriginalScene

log = logging.getLogger(__name__)

DEFAULT_UP = (0.0, -1.0, 0.0)  # COLMAP / graphdeco captures


@dataclass(frozen=True)
class ClusterDisplay:
    """How the B side shows the compressed scene's clusters: ``visible`` [K] bool (None: all),
    ``color_by_cluster`` (each cluster in its palette colour), ``highlight`` (a cluster, -1: none)."""

    visible: np.ndarray | None = None
    color_by_cluster: bool = False
    highlight: int = -1


@dataclass
class Session:
    """What the window has open and has made (see the module docstring).

    ``original``: the scene file opened (the A side and what a compression compresses); ``camera_set``:
    a dataset or cameras file (core.cameras.CameraSet: training cameras, and targets when it has images);
    ``up_override``: the View menu's world up; ``compressed``: the B side (a finished compression or an
    opened ``.ngs``); ``clusters``: how its clusters are shown; ``exported_path``: the last file written
    by an export; ``result_exported``: whether the current result has been exported;
    ``config_overrides``: CompressionConfig fields set by scripts and tests, over the panel's values.
    """

    original: OriginalScene | None = None
    camera_set: object | None = None
    up_override: tuple[float, float, float] | None = None
    compressed: CompressedScene | None = None
    clusters: ClusterDisplay = field(default_factory=ClusterDisplay)
    exported_path: Path | None = None
    result_exported: bool = False
    config_overrides: dict = field(default_factory=dict)

    # -- transitions ----------------------------------------------------------------------------------
    def open_scene(self, original: OriginalScene) -> None:
        """The one transition that replaces the scene: the result of the previous one goes with it."""
        self.original = original
        # issue 14: drop a dataset that belongs to another scene (today the camera set is kept)
        self.camera_set = self.camera_set
        self._replace_result(None)

    def set_compressed(self, cs: CompressedScene | None) -> None:
        """A finished compression of the open scene becomes the result (not exported yet)."""
        self._replace_result(cs)

    def open_compressed(self, cs: CompressedScene) -> None:
        """An opened ``.ngs`` file becomes the result; the original, if any, stays open beside it."""
        # issue 14: a .ngs of another scene than the open original is accepted here
        self._replace_result(cs)

    def _replace_result(self, cs: CompressedScene | None) -> None:
        self.compressed = cs
        self.clusters = ClusterDisplay(color_by_cluster=self.clusters.color_by_cluster)  # all shown, none selected
        self.result_exported = False

    def set_cameras(self, camera_set) -> None:
        """A dataset folder or cameras file was opened (replaces the previous one)."""
        self.camera_set = camera_set

    def set_up_override(self, up) -> tuple[float, float, float]:
        """The user's world up (kept until changed, across scenes); returns it as a float triple."""
        self.up_override = tuple(float(v) for v in up)
        return self.up_override

    def show_clusters(self, visible, color_by_cluster: bool = False, highlight: int = -1) -> None:
        """How the clusters are shown now (the cluster table's state)."""
        vis = None if visible is None else np.asarray(visible, dtype=bool).copy()
        self.clusters = ClusterDisplay(vis, bool(color_by_cluster), int(highlight))

    def mark_exported(self, path: str | Path, cs: CompressedScene | None = None) -> None:
        """``cs`` (default: the current result) was written to ``path`` (``.ngs`` or decompressed ``.ply``).

        The current result counts as exported only when ``cs`` is it: an export that finishes after a
        newer result replaced the one it wrote leaves the newer one unexported.
        """
        self.exported_path = Path(path)
        if cs is None or cs is self.compressed:
            self.result_exported = self.compressed is not None

    # -- questions ------------------------------------------------------------------------------------
    @property
    def has_unexported_result(self) -> bool:
        """A compression finished in this session and was not exported (an opened ``.ngs`` is on disk)."""
        cs = self.compressed
        return cs is not None and cs.path is None and not self.result_exported

    def up_axis(self) -> tuple[float, float, float]:
        """The world up: the user's choice, else the cameras' estimate, else +z for the demo scene, else -y."""
        from core.paths import DEMO_SCENE, DEMO_UP

        if self.up_override is not None:
            return self.up_override
        if self.camera_set is not None:
            from core.cameras import estimate_up

            return tuple(float(v) for v in estimate_up(self.camera_set))
        if self.original is not None and Path(self.original.path).resolve() == DEMO_SCENE.resolve():
            return DEMO_UP
        return DEFAULT_UP

    def dataset_cameras(self) -> list | None:
        """The cameras a compression trains on: the opened dataset / cameras file (None: the pipeline's orbit)."""
        return list(self.camera_set.cameras) if self.camera_set is not None else None

    def training_cameras(self) -> list:
        """Cameras to jump to: the opened dataset / cameras file, else the last compression's training views."""
        if self.camera_set is not None:
            return list(self.camera_set.cameras)
        result = self.compressed.result if self.compressed is not None else None
        return list(result.views.train_cameras) if result is not None else []

    def compression_config(self, values: dict):
        """CompressionConfig from the panel's ``values`` (its ``preset`` plus fields), the session's up (when
        no cameras are open) and ``config_overrides`` over everything. ValueError naming a bad field."""
        from core.pipeline.config import config_from_preset

        fields = {k: v for k, v in values.items() if k not in ("preset", "custom")}
        if self.camera_set is None:
            fields["up"] = self.up_axis()
        return config_from_preset(values.get("preset") or "preview", **{**fields, **self.config_overrides})

    def display_mask(self) -> np.ndarray | None:
        """[K] bool of the clusters shown (None: all, or no result, or a mask of another result's size)."""
        vis, cs = self.clusters.visible, self.compressed
        if cs is None or vis is None or len(vis) != cs.n_clusters:
            return None
        return vis

    def n_shown(self) -> int:
        """Gaussians of the result in shown clusters (0 without a result)."""
        cs = self.compressed
        if cs is None:
            return 0
        mask = self.display_mask()
        return int(cs.scene.num_gaussians if mask is None else np.count_nonzero(mask[cs.cluster_ids]))

    def source_path(self) -> Path | None:
        """The file the session is about: the original, else the opened ``.ngs`` (None: nothing from a file)."""
        if self.original is not None:
            return Path(self.original.path)
        if self.compressed is not None and self.compressed.path is not None:
            return Path(self.compressed.path)
        return None

    def folder(self) -> Path:
        """Where file dialogs start: the source file's folder, else the working directory."""
        src = self.source_path()
        return src.parent if src is not None else Path.cwd()

    def export_stem(self) -> str:
        """The suggested name of exported files (without suffix)."""
        return Path(self.original.path).stem if self.original is not None else "scene"
