"""``bench formats``: what one run computes: the scenes, the peer formats, the .ngs settings and schedules."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


from core.paths import shared_data_dir

log = logging.getLogger(__name__)



SCENE_SUFFIXES = (".ply", ".splat")


# NeuralGS settings of the curve, smallest first: the preset's schedule (iterations, learning rates,
# views) with these overrides. Fewer kept Gaussians (prune_ratio) and smaller MLPs (K x width) give
# smaller files. max_params_per_gaussian narrows the MLPs of tiny scenes only (sh3-capture,
# truncated-sh3), where a fixed width would cost more than the Gaussians themselves; it does not bind
# on donut or lego. Tune here; the labels name the points in the tables and plots.
NGS_PRESET = "balanced"


NGS_SETTINGS: list[tuple[str, dict]] = [
    ("xs", dict(prune_ratio=0.8, n_clusters=4, hidden=32, max_params_per_gaussian=4.0)),
    ("s", dict(prune_ratio=0.6, n_clusters=6, hidden=48, max_params_per_gaussian=8.0)),
    ("m", dict(prune_ratio=0.4, n_clusters=8, hidden=64, max_params_per_gaussian=16.0)),
    ("l", dict(prune_ratio=0.3, n_clusters=10, hidden=80, max_params_per_gaussian=24.0)),
]


# .ngs v2 (rate control, DESIGN §7): one point per target PSNR on the `codec` preset's predictor. Against the
# original's renders for generated views; against the images for a dataset scene (lego), where the uncompressed
# scene itself scores about 34.1 dB, so its curve sits below that (33.57: SPZ's score; 33.63: within 0.5 dB of
# the uncompressed scene).
V2_TARGETS = (36.0, 38.0, 40.0, 42.0, 45.0)


V2_DATASET_TARGETS = (32.5, 33.0, 33.57, 33.63)


QUICK_V2_TARGETS = (30.0,)


V2_DATASET_RENDER_TARGETS = (40.0,)
"""For a dataset scene, also these targets against the original's renders at the dataset's cameras (the
protocol of the other scenes: 40 dB counts as visually equal), so that every scene has a 40 dB point."""


RENDER_TARGETS_KEY = "_targets_renders"


def v2_efforts() -> dict[str, dict]:
    """The efforts the v2 curve is drawn at: ``fast`` (the codec before issue 18, no learning) and ``default``
    (co-adaptation and quantisation-aware fine-tuning), each with its configuration fields."""
    from core.pipeline.config import EFFORTS

    return {e: {**EFFORTS[e], "effort": e} for e in ("fast", "default")}


QUICK_EFFORTS = {"fast": dict(coadapt_iters=0, qat_iters=0, effort="fast"),
                 "default": dict(coadapt_iters=6, qat_iters=4, effort="default")}
"""--quick: both curves, with a few learning steps (the numbers mean nothing)."""


def v2_label(target: float, effort: str, renders: bool = False) -> str:
    """``v2-40dB`` (effort default), ``v2-fast-40dB``; ``-vs-renders`` for a dataset scene's render targets."""
    return f"v2-{'' if effort == 'default' else effort + '-'}{target:g}dB{'-vs-renders' if renders else ''}"


def v2_settings(targets: tuple[float, ...], render_targets: tuple[float, ...] = (),
                efforts: dict[str, dict] | None = None) -> list[tuple[str, dict]]:
    """The v2 curves' points: the `codec` preset's settings with each target PSNR, once per effort (default:
    :func:`v2_efforts`); ``render_targets``: points of a dataset scene whose targets are the original's renders
    at the dataset's cameras instead of its images."""
    from core.pipeline.config import PRESETS

    out = []
    for effort, fields in (efforts if efforts is not None else v2_efforts()).items():
        out += [(v2_label(t, effort), {**PRESETS["codec"], **fields, "target_psnr": t}) for t in targets]
        out += [(v2_label(t, effort, True), {**PRESETS["codec"], **fields, "target_psnr": t,
                                             RENDER_TARGETS_KEY: True}) for t in render_targets]
    return out


# --quick (the test suite): the same curve with a schedule that runs in seconds; numbers are not meaningful
# (held-out views at 48 px, not the protocol's 800).
QUICK_PRESET = "preview"


QUICK_OVERRIDES = dict(fit_iters=40, finetune_iters=8, n_views=6, n_test_views=2, image_size=48, eval_size=48,
                       kmeans_iters=5, dataset_max_size=64)


# splat-transform's SOG clusters the SH coefficients into a palette of up to 64k entries with k-means; on
# the CPU (no WebGPU adapter; a single-threaded k-d tree in 45 dimensions) that is slow for big SH-3
# scenes and grows faster than N x palette: on random subsets of lego, 1/8 (16.8k Gaussians, 16k palette)
# took 32 s of k-means and 1/4 (33.5k, 32k palette) 288 s, so all of lego (134k, 64k) needs an estimated
# 1.5-2.5 hours (sh3-capture's 9k Gaussians take 8 s). Mesa 22's lavapipe (a CPU Vulkan) is not accepted
# by splat-transform's WebGPU (Dawn). A run past this limit is killed and its failure saved (see above).
PEER_TIMEOUT_S = 3 * 3600


# What the shared scenes need beyond the defaults: world up for generated views (donut is z-up; the
# others are -y, the default) and the dataset whose held-out images are ground truth.
KNOWN_SCENES: dict[str, dict] = {
    "donut.ply": {"up": (0.0, 0.0, 1.0)},
    "lego-3dgs.ply": {"up": (0.0, 0.0, 1.0), "dataset": "lego"},
}


@dataclass(frozen=True)
class PeerFormat:
    """A splat-transform output: ``method`` name in the results, file suffix, extra arguments."""

    method: str
    suffix: str
    args: tuple[str, ...] = ()


def peer_formats() -> list[PeerFormat]:
    from core.splat_transform import SOG_ARGS

    return [PeerFormat("compressed.ply", ".compressed.ply"), PeerFormat("spz", ".spz"),
            PeerFormat("sog", ".sog", SOG_ARGS)]


@dataclass(frozen=True)
class BenchPlan:
    """What to run: the preset and overrides shared by every ``.ngs`` point (and the held-out views),
    the curve's settings, and which methods run (splat-transform's formats, ``.ngs``)."""

    preset: str = NGS_PRESET
    overrides: dict = field(default_factory=dict)
    ngs_settings: list[tuple[str, dict]] = field(default_factory=lambda: list(NGS_SETTINGS))
    peers: bool = True
    ngs: bool = True
    v2: bool = True
    v2_targets: tuple[float, ...] = V2_TARGETS
    v2_dataset_targets: tuple[float, ...] = V2_DATASET_TARGETS
    v2_dataset_render_targets: tuple[float, ...] = V2_DATASET_RENDER_TARGETS
    v2_overrides: dict = field(default_factory=dict)  # applied after each v2 point's settings (--quick)
    v2_efforts: dict | None = None  # effort -> its fields, one v2 curve each (None: v2_efforts())


ONLY_CHOICES = ("peers", "ngs", "v2")


def default_plan(quick: bool = False, only: str | None = None) -> BenchPlan:
    """The full benchmark's plan, or the seconds-long ``--quick`` one; ``only``: "peers" (splat-transform's
    formats) or "ngs" runs just those methods."""
    if only not in (None, *ONLY_CHOICES):
        raise ValueError(f"only: {only!r} is not one of {', '.join(ONLY_CHOICES)}")
    methods = dict(peers=only in (None, "peers"), ngs=only in (None, "ngs"), v2=only in (None, "v2"))
    if quick:
        return BenchPlan(QUICK_PRESET, dict(QUICK_OVERRIDES), **methods, v2_targets=QUICK_V2_TARGETS,
                         v2_dataset_targets=QUICK_V2_TARGETS, v2_dataset_render_targets=(),
                         v2_overrides=dict(QUICK_OVERRIDES), v2_efforts=dict(QUICK_EFFORTS))
    return BenchPlan(**methods)


def default_scenes() -> list[Path]:
    """Every scene file (``.ply``, ``.compressed.ply``, ``.splat``) in the shared ``scenes`` folder."""
    folder = shared_data_dir() / "scenes"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SCENE_SUFFIXES)


def scene_label(path: Path) -> str:
    """``donut`` for donut.ply, ``guitar`` for guitar.compressed.ply."""
    return path.name.split(".")[0] or path.name


@dataclass
class SceneRun:
    """What every method of one scene shares."""

    label: str
    scene: object  # GaussianScene
    ref_ply: Path  # the standard .ply that splat-transform reads and whose size is the ratio's base
    ply_bytes: int
    config: object  # CompressionConfig: the preset, the plan's overrides and the scene's view settings
    cameras: object  # CameraSet of the dataset, or None
    out_dir: Path
    work_dir: Path
    on_progress: Callable | None
    scene_key: dict = field(default_factory=dict)  # the scene file's identity, part of every point's fingerprint
    views_key: dict = field(default_factory=dict)  # the views trained and evaluated on, part of every fingerprint
    reuse: bool = True  # reuse finished points whose fingerprint matches (False: --force)
    original_gt: dict = field(default_factory=dict)  # the original's PSNR/SSIM against the dataset images
    reference_renders: dict = field(default_factory=dict)  # the original's held-out renders, by view index
    view_size: int | None = None  # pixels, the long side of the held-out views every method is measured at
