"""What the window shows, as plain data: the original scene and the compressed one, and how to load them.

- :class:`OriginalScene`: a scene file as read (``.ply``, ``.compressed.ply``, ``.splat``, ``.spz``, ``.sog``).
- :class:`CompressedScene`: a NeuralGS model decoded once, with per-Gaussian cluster ids and the rows of
  the cluster table. Toggling, soloing, colouring and highlighting clusters (:func:`display_scene`)
  select and recolour rows of that one decode: no recompression, no re-decode.
- :func:`load_any`: any scene file, through the one opener :func:`core.io.scene_files.load_scene_file`.
- Cluster bytes come from the codec's own layout of the file (:func:`ngs_layout`), never recomputed here, split
  into positions, predictor and residuals (:func:`cluster_byte_split`).
- B can be the file as decoded (the full codec) or the NeuralGS prediction alone, without the residuals
  (:meth:`CompressedScene.prediction_scene`, decoded once on first use).

Everything here may take seconds on a large scene: call it from a worker thread, never the GUI thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.cameras import robust_bounds
from core.scene import SH_C0, GaussianScene
from widgets.palette import cluster_colors

log = logging.getLogger(__name__)

HIGHLIGHT_OTHERS_OPACITY = 0.12  # opacity factor of the clusters that are not highlighted
HIGHLIGHT_OTHERS_GREY = 0.75  # how far their colour moves towards grey


@dataclass
class OriginalScene:
    """A scene file as read: the scene (CPU float32), its format, size in bytes and robust bounds [3] x 2;
    ``fingerprint``: :func:`core.pipeline.compress.means_fingerprint` of the scene (None: not computed), which a
    .ngs made from it records."""

    path: Path
    scene: GaussianScene
    format: str
    n_bytes: int
    bounds: tuple[np.ndarray, np.ndarray]
    warnings: list[str] = field(default_factory=list)
    fingerprint: str | None = None

    def source_meta(self) -> dict:
        """What a .ngs compressed from this scene records of it (``meta["source"]``), as the command line does."""
        from core.pipeline.compress import means_fingerprint, source_meta

        fp = self.fingerprint if self.fingerprint is not None else means_fingerprint(self.scene.means)
        return source_meta(self.path.name, self.n_bytes, self.format, self.scene.num_gaussians, fp)


@dataclass
class CompressedScene:
    """A decoded NeuralGS model. ``cluster_ids`` [N] int64 (model order); ``rows``: ClusterTable rows;
    ``n_bytes``: size of the ``.ngs`` encoding; ``path``: the file it came from (None: a fresh compression);
    ``result``: the CompressionResult when it came from a compression (history, metrics, views)."""

    model: object  # core.neural_field.NeuralGSModel
    scene: GaussianScene
    cluster_ids: np.ndarray
    rows: list[dict]
    n_bytes: int
    bounds: tuple[np.ndarray, np.ndarray]
    path: Path | None = None
    result: object | None = None
    _prediction: GaussianScene | None = field(default=None, repr=False, compare=False)

    @property
    def n_clusters(self) -> int:
        return len(self.rows)

    @property
    def has_residuals(self) -> bool:
        """The file codes residuals on top of the NeuralGS prediction (.ngs v2 with a target)."""
        return getattr(self.model, "residual", None) is not None

    def prediction_scene(self) -> GaussianScene:
        """The NeuralGS prediction alone: the model decoded without its residuals (CPU float32, the order of
        ``scene``); ``scene`` itself when there are none. Decoded once (seconds on a large scene: call it off
        the GUI thread), then cached."""
        if not self.has_residuals:
            return self.scene
        if self._prediction is None:
            import dataclasses

            with torch.no_grad():
                pred = dataclasses.replace(self.model, residual=None).decode()
            self._prediction = pred.detach().to("cpu", torch.float32)
        return self._prediction

    @property
    def meta(self) -> dict:
        """The run's record in the file's header (``source``, ``n_original``, ``heldout``...; {} when none)."""
        meta = getattr(self.model, "meta", None)
        return meta if isinstance(meta, dict) else {}


def _bounds(means: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    if means.shape[0] == 0:
        return np.full(3, -1.0), np.full(3, 1.0)
    return robust_bounds(means)


def cluster_rows(model, importance: torch.Tensor | None = None, fit_losses: dict[int, float] | None = None,
                 section_bytes: list[int] | None = None, splits: list[dict] | None = None) -> list[dict]:
    """ClusterTable rows of a model: count, importance share, final fit loss and bytes per cluster.

    importance [N] in model order (None: unknown); bytes: ``section_bytes[c]`` (see :func:`cluster_bytes`;
    None: the model's own ``.ngs`` v1 encoding); ``splits[c]``: its ``positions`` / ``predictor`` /
    ``residuals`` bytes (:func:`cluster_byte_split`), copied into the row; the header is not attributed to any
    cluster.
    """
    if section_bytes is None:
        layout = ngs_layout(model)
        section_bytes, splits = cluster_bytes(layout), cluster_byte_split(layout)
    offsets = model.cluster_offsets()
    total_imp = float(importance.sum()) if importance is not None else 0.0
    rows = []
    for c, size in enumerate(model.cluster_sizes):
        share = None
        if importance is not None and total_imp > 0:
            share = float(importance[offsets[c]: offsets[c + 1]].sum()) / total_imp
        loss = None if fit_losses is None or c not in fit_losses else float(fit_losses[c])
        row = {"count": int(size), "importance": share, "loss": loss, "bytes": int(section_bytes[c])}
        if splits is not None:
            row.update(splits[c])
        rows.append(row)
    return rows


def ngs_layout(model=None, result=None, path: Path | None = None):
    """The codec's layout of a ``.ngs`` (``NgsHeader`` / ``NgsHeaderV2``: sections, cluster sizes, file size).

    From the bytes a fresh compression measured (``result.encoded``, v2), else the file at ``path``
    (header only), else ``model``'s v1 encoding. NgsFormatError / ValueError when there is none.
    """
    from core.codec.ngs_format import ByteSource, FileSource, open_file
    from core.codec.ngs_layout import read_layout

    encoded = getattr(result, "encoded", None) if result is not None else None
    if encoded is not None:
        return read_layout(ByteSource(b"".join(encoded.chunks)), Path("<encoded>"))
    if path is not None:
        with open_file(Path(path)) as f:
            return read_layout(FileSource(f, Path(path)), Path(path))
    from core.codec import encode_ngs

    return read_layout(ByteSource(encode_ngs(model)), Path("<encoded>"))


def cluster_bytes(layout) -> list[int]:
    """Each cluster's bytes in the file laid out as ``layout`` (:func:`ngs_layout`): v2, its section
    (positions + predictor + residuals); v1, its MLP section plus its share of the positions section
    (each Gaussian's position takes the same bytes). Header and section framing are not attributed."""
    if layout.version == 1:
        positions, mlps = layout.sections[0], layout.sections[1:]
        n = layout.n_gaussians
        return [s.length + (positions.length * size // n if n else 0) for s, size in zip(mlps, layout.cluster_sizes)]
    return [s.length for s in layout.sections]


def cluster_byte_split(layout) -> list[dict]:
    """Each cluster's bytes (:func:`cluster_bytes`) by what they code: ``{"positions", "predictor",
    "residuals"}``. v2: the header's ``clusters[c].positions_len / predictor_len / residuals_len``; v1: the
    cluster's share of the positions section, its MLP section, no residuals. They add up to the cluster's bytes."""
    if layout.version == 1:
        positions, mlps = layout.sections[0], layout.sections[1:]
        n = layout.n_gaussians
        return [{"positions": positions.length * size // n if n else 0, "predictor": s.length, "residuals": 0}
                for s, size in zip(mlps, layout.cluster_sizes)]
    return [{"positions": e.positions_len, "predictor": e.predictor_len, "residuals": e.residuals_len}
            for e in layout.clusters]


def compressed_from_model(model, n_bytes: int | None = None, path: Path | None = None, result=None,
                          scene: GaussianScene | None = None) -> CompressedScene:
    """The CompressedScene of ``model``: decoded once (no gradients, CPU; ``scene``: already decoded) with
    the cluster table rows; bytes from the codec's layout of its file (``n_bytes`` None: the layout's size)."""
    if scene is None:
        with torch.no_grad():
            scene = model.decode()
    scene = scene.detach().to("cpu", torch.float32)
    ids = model.cluster_ids().numpy().astype(np.int64)
    importance = None if result is None else result.importance.detach().cpu()
    losses = None if result is None else result.fit_losses
    layout = ngs_layout(model, result, path)
    rows = cluster_rows(model, importance, losses, cluster_bytes(layout), cluster_byte_split(layout))
    size = layout.file_size if n_bytes is None else int(n_bytes)
    return CompressedScene(model, scene, ids, rows, size, _bounds(scene.means), path, result)


def compressed_from_result(result) -> CompressedScene:
    """The CompressedScene of a finished compression (``core.pipeline.CompressionResult``)."""
    return compressed_from_model(result.model, result.n_bytes, None, result)


def load_any(path: str | Path) -> OriginalScene | CompressedScene:
    """Open any scene file (:func:`core.io.scene_files.load_scene_file`): an ``.ngs`` becomes a
    CompressedScene, any other scene an OriginalScene. InputFileError naming the file for any problem."""
    from core.io.scene_files import load_scene_file

    p = Path(path)
    loaded = load_scene_file(p)
    if loaded.model is not None:
        return compressed_from_model(loaded.model, loaded.info.bytes, p, scene=loaded.scene)
    from core.pipeline.compress import means_fingerprint

    scene, info = loaded.scene, loaded.info
    return OriginalScene(p, scene, info.format, int(info.bytes), _bounds(scene.means), list(info.warnings),
                         means_fingerprint(scene.means))


def display_scene(cs: CompressedScene, visible: np.ndarray | None = None, color_by_cluster: bool = False,
                  highlight: int = -1, prediction_only: bool = False) -> GaussianScene:
    """The Gaussians to draw for the cluster table's state (``prediction_only``: of the NeuralGS prediction
    without the residuals, :meth:`CompressedScene.prediction_scene`; else of the file as decoded).

    visible [K] bool (None: all); color_by_cluster: each Gaussian in its cluster's palette colour
    (sh_dc = (rgb - 0.5) / C0, higher SH zeroed); highlight: a cluster index whose Gaussians keep
    their look while the other visible ones fade (opacity x 0.12) towards grey (-1: none).
    """
    ids = cs.cluster_ids
    mask = np.ones(ids.shape[0], dtype=bool) if visible is None else np.asarray(visible, dtype=bool)[ids]
    idx = torch.from_numpy(np.flatnonzero(mask))
    scene = (cs.prediction_scene() if prediction_only else cs.scene).subset(idx)
    kept_ids = torch.from_numpy(ids[mask])
    sh_dc, sh_rest, logits = scene.sh_dc, scene.sh_rest, scene.opacity_logits
    if color_by_cluster and scene.num_gaussians:
        rgb = torch.from_numpy(cluster_colors(cs.n_clusters)).to(torch.float32)
        sh_dc = (rgb[kept_ids] - 0.5) / SH_C0
        sh_rest = torch.zeros_like(sh_rest)
    if 0 <= highlight < cs.n_clusters and scene.num_gaussians:
        others = (kept_ids != highlight)[:, None]
        grey_dc = torch.zeros_like(sh_dc)  # dc 0 = mid grey
        sh_dc = torch.where(others, sh_dc + HIGHLIGHT_OTHERS_GREY * (grey_dc - sh_dc), sh_dc)
        sh_rest = torch.where(others[:, :, None], sh_rest * (1 - HIGHLIGHT_OTHERS_GREY), sh_rest)
        faded = torch.logit((torch.sigmoid(logits) * HIGHLIGHT_OTHERS_OPACITY).clamp(1e-6, 1 - 1e-6))
        logits = torch.where(others[:, 0], faded, logits)
    return GaussianScene(scene.means, scene.quats, scene.log_scales, logits, sh_dc, sh_rest)


def export_ngs(cs: CompressedScene, path: str | Path, overwrite: bool = False) -> int:
    """Write the model as ``.ngs``, atomically; FileExistsError when ``path`` exists and not ``overwrite``."""
    from core.codec import write_ngs
    from core.codec.ngs import write_chunks
    from core.neural_field import ClusterField

    encoded = getattr(cs.result, "encoded", None) if cs.result is not None else None
    if encoded is not None:  # a fresh v2 compression: the bytes it measured
        return write_chunks(encoded.chunks, Path(path), overwrite=overwrite)
    if cs.model.residual is not None or not all(isinstance(f, ClusterField) for f in cs.model.fields):
        if cs.path is None:
            raise ValueError("this compressed scene has no encoded bytes to export")
        if Path(path).resolve() == Path(cs.path).resolve():
            raise FileExistsError(f"{path} is the file this scene was opened from")
        return write_chunks([Path(cs.path).read_bytes()], Path(path), overwrite=overwrite)  # a v2 file, as read
    return write_ngs(cs.model, Path(path), overwrite=overwrite)


def export_ply(cs: CompressedScene, path: str | Path, overwrite: bool = False) -> int:
    """Write the decoded (all clusters) scene as a graphdeco ``.ply``, atomically; returns its size in bytes."""
    from core.io import write_ply

    write_ply(cs.scene, Path(path), overwrite=overwrite)
    return Path(path).stat().st_size
