"""What the window shows, as plain data: the original scene and the compressed one, and how to load them.

- :class:`OriginalScene`: a scene file as read (``.ply``, ``.compressed.ply``, ``.splat``).
- :class:`CompressedScene`: a NeuralGS model decoded once, with per-Gaussian cluster ids and the rows of
  the cluster table. Toggling, soloing, colouring and highlighting clusters (:func:`display_scene`)
  select and recolour rows of that one decode: no recompression, no re-decode.

Everything here may take seconds on a large scene: call it from a worker thread, never the GUI thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.cameras import robust_bounds
from core.codec import is_ngs_file
from core.scene import GaussianScene
from widgets.palette import cluster_colors

log = logging.getLogger(__name__)

SH_C0 = 0.28209479177387814
HIGHLIGHT_OTHERS_OPACITY = 0.12  # opacity factor of the clusters that are not highlighted
HIGHLIGHT_OTHERS_GREY = 0.75  # how far their colour moves towards grey


@dataclass
class OriginalScene:
    """A scene file as read: the scene (CPU float32), its format, size in bytes and robust bounds [3] x 2."""

    path: Path
    scene: GaussianScene
    format: str
    n_bytes: int
    bounds: tuple[np.ndarray, np.ndarray]
    warnings: list[str] = field(default_factory=list)


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

    @property
    def n_clusters(self) -> int:
        return len(self.rows)


def _bounds(means: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    if means.shape[0] == 0:
        return np.full(3, -1.0), np.full(3, 1.0)
    return robust_bounds(means)


def load_original(path: str | Path) -> OriginalScene:
    """Read a scene file (InputFileError naming the file and the problem for anything wrong)."""
    from core.io import read_scene_with_info

    scene, info = read_scene_with_info(Path(path))
    return OriginalScene(Path(path), scene, info.format, int(info.bytes), _bounds(scene.means), list(info.warnings))


def cluster_rows(model, importance: torch.Tensor | None = None,
                 fit_losses: dict[int, float] | None = None, section_bytes: list[int] | None = None) -> list[dict]:
    """ClusterTable rows of a model: count, importance share, final fit loss and bytes per cluster.

    importance [N] in model order (None: unknown); bytes: ``section_bytes[c]`` when given (.ngs v2: the
    cluster's section, positions + predictor + residuals), else fp16 MLP weights (2 * n_params) + 6 per
    position (the ``.ngs`` v1 sections); the header is not attributed to any cluster.
    """
    offsets = model.cluster_offsets()
    mlp_bytes = 2 * model.arch.n_params()
    total_imp = float(importance.sum()) if importance is not None else 0.0
    rows = []
    for c, size in enumerate(model.cluster_sizes):
        share = None
        if importance is not None and total_imp > 0:
            share = float(importance[offsets[c]: offsets[c + 1]].sum()) / total_imp
        loss = None if fit_losses is None or c not in fit_losses else float(fit_losses[c])
        nbytes = section_bytes[c] if section_bytes is not None and c < len(section_bytes) else mlp_bytes + 6 * int(size)
        rows.append({"count": int(size), "importance": share, "loss": loss, "bytes": int(nbytes)})
    return rows


def compressed_from_model(model, n_bytes: int, path: Path | None = None, result=None) -> CompressedScene:
    """Decode ``model`` once (no gradients, CPU) and gather the cluster table rows."""
    with torch.no_grad():
        scene = model.decode().detach().to("cpu", torch.float32)
    ids = model.cluster_ids().numpy().astype(np.int64)
    importance = None if result is None else result.importance.detach().cpu()
    losses = None if result is None else result.fit_losses
    sections = _section_bytes(result, path)
    return CompressedScene(model, scene, ids, cluster_rows(model, importance, losses, sections), int(n_bytes),
                           _bounds(scene.means), path, result)


def _section_bytes(result, path: Path | None) -> list[int] | None:
    """Bytes of each cluster's section of a .ngs v2 result or file (None for v1)."""
    codec = getattr(result, "codec", None) if result is not None else None
    if codec and codec.get("clusters"):
        return [sum(c["bytes"].values()) for c in codec["clusters"]]
    if path is not None:
        from core.codec import read_ngs_header

        hdr = read_ngs_header(path)
        if hdr.get("version") == 2:
            return [int(s["length"]) for s in hdr["sections"]]
    return None


def compressed_from_result(result) -> CompressedScene:
    """The CompressedScene of a finished compression (``core.pipeline.CompressionResult``)."""
    return compressed_from_model(result.model, result.n_bytes, None, result)


def load_compressed(path: str | Path) -> CompressedScene:
    """Read and decode an ``.ngs`` file (NgsFormatError, an InputFileError, for any problem)."""
    from core.codec import read_ngs

    p = Path(path)
    model = read_ngs(p)
    return compressed_from_model(model, p.stat().st_size, p)


def load_any(path: str | Path) -> OriginalScene | CompressedScene:
    """An ``.ngs`` file becomes a CompressedScene, any other scene file an OriginalScene."""
    from core.io import check_input_file

    p = check_input_file(Path(path))
    return load_compressed(p) if is_ngs_file(p) else load_original(p)


def display_scene(cs: CompressedScene, visible: np.ndarray | None = None, color_by_cluster: bool = False,
                  highlight: int = -1) -> GaussianScene:
    """The Gaussians to draw for the cluster table's state.

    visible [K] bool (None: all); color_by_cluster: each Gaussian in its cluster's palette colour
    (sh_dc = (rgb - 0.5) / C0, higher SH zeroed); highlight: a cluster index whose Gaussians keep
    their look while the other visible ones fade (opacity x 0.12) towards grey (-1: none).
    """
    ids = cs.cluster_ids
    mask = np.ones(ids.shape[0], dtype=bool) if visible is None else np.asarray(visible, dtype=bool)[ids]
    idx = torch.from_numpy(np.flatnonzero(mask))
    scene = cs.scene.subset(idx)
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
