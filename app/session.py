"""The state of one studio session, as plain Python (no Qt): what is open, what was made, what was saved.

:class:`Session` is the one place the window's controllers read and change (see
:mod:`app.main_window`): the original scene, the training cameras (a dataset or cameras file), the
world up override, the compressed result, how its clusters are shown, what has been exported and
the extra compression settings. Every change goes through a named transition
(:meth:`Session.open_scene`, :meth:`Session.set_compressed`, :meth:`Session.open_compressed`,
:meth:`Session.open_compressed_alone`, :meth:`Session.set_cameras`, :meth:`Session.mark_exported`, ...), so a
rule about what a change keeps or drops lives in one method, unit-tested without Qt
(``tests/app/test_session.py``).

Rules (issue 14): a camera set belongs to the scene that was open when it was loaded (``cameras_for``; loaded
with nothing open, it belongs to the next scene opened), and opening another scene drops it; a ``.ngs`` is
checked against the open original before it is put beside it (:meth:`Session.source_check`); exports are
never proposed over the files they come from (:meth:`Session.export_suggestion`). The clusters the user ticks
(toggles, solo, show all) keep a short history (:meth:`Session.undo_clusters`, :meth:`Session.redo_clusters`), and
the codec's target (quality in dB, a size, or none: pure NeuralGS) maps to the configuration's fields the way
the command line maps ``--target-psnr`` / ``--target-size`` (:func:`target_fields`).

Torch and the pipeline load only inside the methods that need them (``up_axis`` with cameras,
``compression_config``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.documents import CompressedScene, OriginalScene

log = logging.getLogger(__name__)

DEFAULT_UP = (0.0, -1.0, 0.0)  # COLMAP / graphdeco captures
CLUSTER_HISTORY = 50  # cluster visibility states Undo can go back through
TARGET_MODES = ("psnr", "size", "none")  # the codec's target: a quality in dB, a size in bytes, none (pure NeuralGS)
SIZE_RATIO_LIMIT = 3.0  # bounds whose diagonals differ more than this belong to different scenes
CENTRE_OFFSET_LIMIT = 0.5  # ... or whose centres lie further apart than this many diagonals


def _same_path(a: str | Path | None, b: str | Path | None) -> bool:
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()


def _bounds_disagree(a, b) -> bool:
    """Whether two robust bounds ([3] lo, [3] hi) cannot be the same scene's (pruning moves them only a little)."""
    ca, cb = (np.asarray(a[0]) + np.asarray(a[1])) / 2, (np.asarray(b[0]) + np.asarray(b[1])) / 2
    da, db = float(np.linalg.norm(np.asarray(a[1]) - a[0])), float(np.linalg.norm(np.asarray(b[1]) - b[0]))
    if min(da, db) <= 0 or not np.isfinite([da, db]).all():
        return False
    far = float(np.linalg.norm(ca - cb)) > CENTRE_OFFSET_LIMIT * max(da, db)
    return max(da, db) / min(da, db) > SIZE_RATIO_LIMIT or far


@dataclass(frozen=True)
class SourceCheck:
    """Whether a ``.ngs`` was made from the open original: ``verdict`` "same", "different" or "unknown" (the
    file cannot tell: no fingerprint and nothing that disagrees); ``message``: one sentence naming both files."""

    verdict: str
    message: str = ""


@dataclass(frozen=True)
class DroppedCameras:
    """A camera set dropped because another scene was opened: the set and the scene it was loaded for."""

    camera_set: object
    scene: Path


@dataclass(frozen=True)
class ClusterDisplay:
    """How the B side shows the compressed scene's clusters: ``visible`` [K] bool (None: all),
    ``color_by_cluster`` (each cluster in its palette colour), ``highlight`` (a cluster, -1: none),
    ``ticked`` [K] bool: the clusters the user ticked (None: as ``visible``; ``visible`` may show fewer, the
    progressive slider's first n), what Undo / Redo go back and forth through; ``prediction_only``: B is the
    NeuralGS prediction without the file's residuals (the full codec otherwise)."""

    visible: np.ndarray | None = None
    color_by_cluster: bool = False
    highlight: int = -1
    ticked: np.ndarray | None = None
    prediction_only: bool = False

    def ticked_mask(self) -> np.ndarray | None:
        """The ticked clusters (None: all)."""
        return self.visible if self.ticked is None else self.ticked


def _same_ticks(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two ticked masks agree (None = all ticked)."""
    if a is None or b is None:
        other = b if a is None else a
        return other is None or bool(np.all(other))
    return a.shape == b.shape and bool(np.array_equal(a, b))


def target_fields(target, preset: str | None) -> dict:
    """The CompressionConfig fields of the panel's codec target ``(mode, value)``: ``("psnr", dB)``,
    ``("size", bytes)`` or ``("none", _)`` (the paper's pure NeuralGS: no residuals, no target); ``.ngs`` v2.

    A target goes through the command line's own mapping (:func:`core.pipeline.config.codec_overrides`, as
    ``--target-psnr`` / ``--target-size``: residual coding of every group on the preset's predictor); "none"
    also turns off the ``codec`` preset's own target. ValueError for an unknown mode or a value out of range.
    """
    from core.errors import ConfigError
    from core.pipeline.config import codec_overrides

    mode, value = target
    if mode not in TARGET_MODES:
        raise ValueError(f"target: unknown mode {mode!r}; choose one of {', '.join(TARGET_MODES)}")
    if mode == "none":
        return {"format_version": 2, "residual_groups": (), "target_psnr": 0.0, "target_size": 0}
    try:
        fields = codec_overrides(preset, target_psnr=float(value) if mode == "psnr" else None,
                                 target_size=int(round(value)) if mode == "size" else None)
    except ConfigError as exc:
        raise ValueError(str(exc).replace("--target-psnr", "the target PSNR")
                         .replace("--target-size", "the target size")) from None
    return {"format_version": 2, **fields}


@dataclass
class Session:
    """What the window has open and has made (see the module docstring).

    ``original``: the scene file opened (the A side and what a compression compresses); ``camera_set``:
    a dataset or cameras file (core.cameras.CameraSet: training cameras, and targets when it has images);
    ``cameras_for``: the scene file it was loaded for (None: loaded with nothing open, it goes with the next
    scene); ``up_override``: the View menu's world up; ``compressed``: the B side (a finished compression or an
    opened ``.ngs``); ``clusters``: how its clusters are shown; ``exported_path``: the last file written
    by an export; ``result_exported``: whether the current result has been exported;
    ``config_overrides``: CompressionConfig fields set by scripts and tests, over the panel's values.
    """

    original: OriginalScene | None = None
    camera_set: object | None = None
    cameras_for: Path | None = None
    up_override: tuple[float, float, float] | None = None
    compressed: CompressedScene | None = None
    clusters: ClusterDisplay = field(default_factory=ClusterDisplay)
    exported_path: Path | None = None
    result_exported: bool = False
    config_overrides: dict = field(default_factory=dict)
    _undo: list = field(default_factory=list, repr=False)  # earlier ClusterDisplay states (newest last)
    _redo: list = field(default_factory=list, repr=False)  # states undone (newest last)

    # -- transitions ----------------------------------------------------------------------------------
    def open_scene(self, original: OriginalScene) -> DroppedCameras | None:
        """The transition that replaces the scene: the result of the previous one goes with it, and so do
        cameras loaded for another scene (returned, for the window to say so; None: nothing dropped)."""
        dropped = self._keep_cameras_of(original.path)
        self.original = original
        self._replace_result(None)
        return dropped

    def open_compressed_alone(self, cs: CompressedScene) -> DroppedCameras | None:
        """An opened ``.ngs`` becomes the scene of its own: the original closes (and cameras of another scene
        with it); returns the cameras dropped, as :meth:`open_scene`."""
        dropped = self._keep_cameras_of(cs.path)
        self.original = None
        self._replace_result(cs)
        return dropped

    def _keep_cameras_of(self, path: Path | None) -> DroppedCameras | None:
        """Keep the camera set when it was loaded for ``path`` (or with nothing open); else drop it."""
        if self.camera_set is None:
            self.cameras_for = None
            return None
        if self.cameras_for is None or _same_path(self.cameras_for, path):
            self.cameras_for = Path(path) if path is not None else None
            return None
        dropped = DroppedCameras(self.camera_set, self.cameras_for)
        self.camera_set, self.cameras_for = None, None
        log.info("cameras of %s dropped: %s was opened", dropped.scene, path)
        return dropped

    def set_compressed(self, cs: CompressedScene | None) -> None:
        """A finished compression of the open scene becomes the result (not exported yet)."""
        self._replace_result(cs)

    def open_compressed(self, cs: CompressedScene) -> None:
        """An opened ``.ngs`` file becomes the result; the original, if any, stays open beside it (check first
        that it was made from it: :meth:`source_check`; else :meth:`open_compressed_alone`)."""
        self._replace_result(cs)

    def _replace_result(self, cs: CompressedScene | None) -> None:
        self.compressed = cs
        self.clusters = ClusterDisplay(color_by_cluster=self.clusters.color_by_cluster,  # all shown, none selected
                                       prediction_only=self.clusters.prediction_only)
        self._undo.clear()  # another result's clusters
        self._redo.clear()
        self.result_exported = False

    def set_cameras(self, camera_set) -> None:
        """A dataset folder or cameras file was opened (replaces the previous one) for the open scene."""
        self.camera_set = camera_set
        self.cameras_for = self.source_path() if camera_set is not None else None

    def set_up_override(self, up) -> tuple[float, float, float]:
        """The user's world up (kept until changed, across scenes); returns it as a float triple."""
        self.up_override = tuple(float(v) for v in up)
        return self.up_override

    def show_clusters(self, visible, color_by_cluster: bool = False, highlight: int = -1, ticked=None,
                      prediction_only: bool | None = None) -> None:
        """How the clusters are shown now (the cluster table's state): ``visible`` [K] bool (None: all),
        ``ticked`` the user's ticks (None: as ``visible``), ``prediction_only`` None: unchanged.

        A change of the ticks (a toggle, a solo, show all) with a result open is a step Undo can take back
        (:meth:`undo_clusters`; at most CLUSTER_HISTORY); it makes Redo's steps void. Colour, highlight, the
        progressive slider and the prediction-only switch are not steps."""
        vis = None if visible is None else np.asarray(visible, dtype=bool).copy()
        tick = None if ticked is None else np.asarray(ticked, dtype=bool).copy()
        old = self.clusters
        new_ticks = vis if tick is None else tick
        if self.compressed is not None and not _same_ticks(old.ticked_mask(), new_ticks):
            self._undo.append(old)
            del self._undo[:-CLUSTER_HISTORY]
            self._redo.clear()
        pred = old.prediction_only if prediction_only is None else bool(prediction_only)
        self.clusters = ClusterDisplay(vis, bool(color_by_cluster), int(highlight), tick, pred)

    def show_prediction_only(self, on: bool) -> None:
        """B shows the NeuralGS prediction without the residuals (True) or the full codec (False)."""
        self.clusters = replace(self.clusters, prediction_only=bool(on))

    @property
    def can_undo_clusters(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo_clusters(self) -> bool:
        return bool(self._redo)

    def undo_clusters(self) -> np.ndarray | None:
        """Go back to the ticks before the last change; returns them ([K] bool) for the table to show, or None
        when there is nothing to undo. Colour, highlight and the prediction-only switch stay as they are now."""
        return self._step(self._undo, self._redo)

    def redo_clusters(self) -> np.ndarray | None:
        """Take the last undone change again; returns its ticks ([K] bool), or None when there is none."""
        return self._step(self._redo, self._undo)

    def _step(self, source: list, target: list) -> np.ndarray | None:
        if not source or self.compressed is None:
            return None
        state, now = source.pop(), self.clusters
        target.append(now)
        ticks = state.ticked_mask()
        ticks = np.ones(self.compressed.n_clusters, dtype=bool) if ticks is None else ticks.copy()
        self.clusters = replace(now, ticked=ticks)  # the table's next state matches: not a new step
        return ticks

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

    def source_check(self, cs: CompressedScene) -> SourceCheck:
        """Whether ``cs`` (an opened ``.ngs``) was made from the open original.

        By the fingerprint of the source's means the file records (``meta["source"]["means_crc32"]``); files
        without one by the Gaussian count before pruning (``source.n_gaussians`` or ``n_original``) and the
        bounds; when nothing disagrees and there is no fingerprint, "unknown". No original: "same".
        """
        o = self.original
        if o is None:
            return SourceCheck("same")
        meta = cs.meta
        src = meta.get("source") if isinstance(meta.get("source"), dict) else {}
        name = Path(cs.path).name if cs.path is not None else "the compressed scene"
        made_from = str(src.get("file") or "another scene")
        open_n = int(o.scene.num_gaussians)
        n = src.get("n_gaussians", meta.get("n_original"))
        n = int(n) if isinstance(n, (int, float)) else None
        count = f" ({n:,} Gaussians)" if n is not None else ""
        here = f"the open {o.path.name} ({open_n:,} Gaussians)"
        fp = src.get("means_crc32")
        if fp is not None and o.fingerprint is not None:
            if str(fp) == str(o.fingerprint):
                return SourceCheck("same")
            return SourceCheck("different", f"{name} was made from {made_from}{count}, not from {here}: the "
                                            "positions of their Gaussians differ.")
        if n is not None and n != open_n:
            return SourceCheck("different", f"{name} was made from {made_from}{count}, not from {here}.")
        if _bounds_disagree(cs.bounds, o.bounds):
            return SourceCheck("different", f"{name} (made from {made_from}) lies elsewhere than {here}: their "
                                            "bounds disagree.")
        agree = "; its Gaussian count and bounds agree" if n is not None else "; its bounds agree"
        return SourceCheck("unknown", f"Cannot tell whether {name} was made from {o.path.name}: the file records "
                                      f"no fingerprint of its source{agree}.")

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
        """CompressionConfig from the panel's ``values`` (its ``preset`` plus fields; ``target``: the codec's
        target, see :func:`target_fields`; ``effort``: ``core.pipeline.config.EFFORTS``, applied with a target
        only), the session's up (when no cameras are open) and ``config_overrides`` over everything.
        ValueError naming a bad field."""
        from core.pipeline.config import config_from_preset, default_effort

        preset = values.get("preset") or "preview"
        fields = {k: v for k, v in values.items() if k not in ("preset", "custom", "target", "effort")}
        if values.get("target") is not None:
            fields.update(target_fields(values["target"], preset))
        if self.camera_set is None:
            fields["up"] = self.up_axis()
        plain = config_from_preset(preset, **{**fields, **self.config_overrides})
        targeted = bool(plain.target_psnr or plain.target_size)
        effort = values.get("effort") or default_effort(targeted)
        if not targeted:  # pure NeuralGS: nothing to code at a residual step, its own fine-tuning learns
            effort = "fast"
        return config_from_preset(preset, effort=effort, **{**fields, **self.config_overrides})

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
        """The suggested name of exported files (without suffix): the original's, else the opened ``.ngs``'s."""
        src = self.source_path()
        if src is None:
            return "scene"
        name = src.name
        for suffix in (".compressed.ply", ".ply", ".splat", ".spz", ".sog", ".ngs", ".json"):
            if name.lower().endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
        return src.stem

    def export_suggestion(self, suffix: str, folder: str | Path | None = None) -> Path:
        """Where to propose an export (``suffix`` ".ngs" or ".ply") in ``folder`` (default: :meth:`folder`):
        ``<stem>.ngs`` or ``<stem>-neuralgs.ply``, never a file the session shows (the open original, the opened
        ``.ngs``): those get ``-2``, ``-3``... A decompressed .ply proposed as the original's own path was two
        Enters from replacing it with the lossy version."""
        folder = Path(folder) if folder is not None else self.folder()
        base = self.export_stem() + ("-neuralgs" if suffix.lower() == ".ply" else "")
        sources = [p for p in (self.original.path if self.original else None,
                               self.compressed.path if self.compressed else None) if p is not None]
        candidate, i = folder / f"{base}{suffix}", 2
        while any(_same_path(candidate, p) for p in sources):
            candidate, i = folder / f"{base}-{i}{suffix}", i + 1
        return candidate

    def title(self) -> str:
        """The window title: the files shown (the original, and an opened ``.ngs`` beside it), a "•" while a
        result is not exported."""
        names = []
        if self.original is not None:
            names.append(Path(self.original.path).name)
        if self.compressed is not None and self.compressed.path is not None:
            names.append(Path(self.compressed.path).name)
        mark = "• " if self.has_unexported_result else ""
        return f"{mark}{' vs '.join(names)} — NeuralGS Studio" if names else f"{mark}NeuralGS Studio"
