"""Held-out evaluation of a compressed scene against its original (and against dataset images).

The held-out views are the ones the compression held out: generated orbit views
(``views.generated_cameras``, deterministic for a configuration, ``eval_size`` pixels square: 800 by
default, DESIGN §7's protocol) or every ``test_every``-th camera of a dataset (resized to the
dataset's protocol, ``dataset_max_size``). Renders are clamped to [0, 1]; PSNR in dB and SSIM
(11x11 Gaussian window) are means over the views.
"""

from __future__ import annotations

from typing import Callable, Generator, Sequence

import torch

from core.errors import ConfigError
from core.camera import Camera
from core.images import load_image
from core.metrics import psnr, ssim
from core.pipeline.config import CompressionConfig
from core.pipeline.progress import ProgressRecord, StageClock
from core.pipeline.views import dataset_size, generated_cameras, render_view, split_indices
from core.scene import GaussianScene


def heldout_cameras(original: GaussianScene, config: CompressionConfig,
                    cameras: Sequence[Camera] | None = None) -> list[Camera]:
    """The held-out cameras: every ``test_every``-th of ``cameras`` (long side at most ``dataset_max_size``
    pixels), else the generated test views (``eval_size`` x ``eval_size`` pixels)."""
    cams = list(getattr(cameras, "cameras", cameras) or [])
    if not cams:
        return generated_cameras(original.means, config)[1]
    _, test_idx = split_indices(len(cams), config.test_every)
    return [cams[i].resized(*dataset_size(cams[i], config.dataset_max_size)) for i in test_idx]


def view_size(cameras: Sequence[Camera]) -> int | None:
    """The longest side in pixels over ``cameras`` (None for none): the size quality is measured at."""
    return max((max(c.width, c.height) for c in cameras), default=None)


def score_renders(scene: GaussianScene, cameras: Sequence[Camera], targets: Sequence[torch.Tensor],
                  config: CompressionConfig, stage: str = "evaluate",
                  with_ssim: bool = True) -> Generator[ProgressRecord, None, dict]:
    """PSNR (dB) and, with ``with_ssim``, SSIM of renders of ``scene`` (:func:`render_view`) against ``targets``
    ([H, W, 3] in [0, 1], one per camera), one progress record per view.

    Returns {"psnr": mean, "ssim": mean (None without ``with_ssim``), "per_view": [{"name", "psnr", "ssim"}]}
    (no views: NaN means).
    """
    clock = StageClock(stage, len(cameras))
    per_view = []
    for i, (cam, tgt) in enumerate(zip(cameras, targets)):
        img = render_view(scene, cam, config)
        per_view.append({"name": cam.name, "psnr": float(psnr(img, tgt)),
                         "ssim": float(ssim(img, tgt)) if with_ssim else None})
        yield clock.record(i + 1, f"view {i + 1}/{len(cameras)}: {per_view[-1]['psnr']:.2f} dB")

    def mean(key):
        return sum(v[key] for v in per_view) / len(per_view) if per_view else float("nan")

    return {"psnr": mean("psnr"), "ssim": mean("ssim") if with_ssim else None, "per_view": per_view}


def evaluate_pair(original: GaussianScene, compressed: GaussianScene, config: CompressionConfig,
                  cameras: Sequence[Camera] | None = None,
                  on_progress: Callable | None = None, reference_renders: dict | None = None) -> dict:
    """Compare ``compressed`` with ``original`` at the held-out views.

    ``reference_renders``: a dict that caches the original's renders by view index (filled on first
    use); pass the same dict to compare several compressed scenes with one original at the same
    ``config`` and ``cameras``, and each view of the original is rendered once instead of every time.

    Returns {"n_original", "n_compressed", "n_views", "view_size" (pixels, the longest side of the
    held-out views), "psnr", "ssim" (against the original's renders), "psnr_gt", "ssim_gt",
    "psnr_gt_original", "ssim_gt_original" (against the dataset images, None without them),
    "per_view": [...]}.
    """
    views = heldout_cameras(original, config, cameras)
    if not views:
        raise ConfigError("no held-out views to evaluate on")
    clock = StageClock("evaluate", len(views))
    per_view = []
    for i, cam in enumerate(views):
        if reference_renders is None:
            ref = render_view(original, cam, config)
        else:
            if i not in reference_renders:
                reference_renders[i] = render_view(original, cam, config)
            ref = reference_renders[i]
        img = render_view(compressed, cam, config)
        row = {"name": cam.name, "psnr": psnr(img, ref), "ssim": ssim(img, ref)}
        if cam.image_path is not None and cam.image_path.is_file():
            gt = torch.from_numpy(load_image(cam.image_path, size=(cam.width, cam.height),
                                             background=config.background))
            row.update(psnr_gt=psnr(img, gt), ssim_gt=ssim(img, gt), psnr_gt_original=psnr(ref, gt),
                       ssim_gt_original=ssim(ref, gt))
        per_view.append(row)
        if on_progress is not None:
            on_progress(clock.record(i + 1, f"view {i + 1}/{len(views)}: {row['psnr']:.2f} dB"))

    def mean(key):
        vals = [v[key] for v in per_view if key in v]
        return sum(vals) / len(vals) if len(vals) == len(per_view) else None

    return {
        "n_original": original.num_gaussians, "n_compressed": compressed.num_gaussians, "n_views": len(views),
        "view_size": view_size(views),
        "psnr": mean("psnr"), "ssim": mean("ssim"), "psnr_gt": mean("psnr_gt"), "ssim_gt": mean("ssim_gt"),
        "psnr_gt_original": mean("psnr_gt_original"), "ssim_gt_original": mean("ssim_gt_original"),
        "per_view": per_view,
    }
