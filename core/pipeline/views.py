"""Training and held-out views with their target images (DESIGN §5, stage 1).

Two sources:

- **dataset**: cameras from :func:`core.cameras.load_cameras` whose image files exist. Images are
  loaded with :func:`core.images.load_image` (alpha composited onto ``background``), the longer
  side reduced to at most ``config.dataset_max_size`` pixels (cameras resized to match); every
  ``config.test_every``-th camera (0, 8, 16, ...: the NeRF-synthetic / 3DGS convention) is held
  out and never trained on.
- **renders** (self-distillation): without images, targets are renders of the ORIGINAL scene.
  Cameras are the given ones (split as above) or, when none are given, generated around the
  scene: ``n_views`` training views on a golden-angle spiral over the elevation band (even
  coverage of the band), and ``n_test_views`` separate held-out views at other azimuths.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Generator, Sequence

import numpy as np
import torch

from core.errors import ConfigError
from core.camera import Camera
from core.cameras import orbit_camera
from core.images import load_image
from core.pipeline.config import CompressionConfig
from core.pipeline.progress import ProgressRecord, StageClock
from core.render.api import render
from core.scene import GaussianScene

log = logging.getLogger(__name__)

GOLDEN_ANGLE_DEG = 180.0 * (3.0 - math.sqrt(5.0))
_MAX_BOUNDS_POINTS = 200_000


@dataclass
class ViewSet:
    """Cameras and float32 RGB targets [H, W, 3] in [0, 1] (on the pipeline's device).

    source: "dataset" (targets are real images) or "renders" (targets are renders of the original).
    """

    train_cameras: list[Camera]
    train_targets: list[torch.Tensor]
    test_cameras: list[Camera]
    test_targets: list[torch.Tensor]
    source: str
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)

    @property
    def n_train(self) -> int:
        return len(self.train_cameras)

    @property
    def n_test(self) -> int:
        return len(self.test_cameras)


def generated_cameras(means, config: CompressionConfig) -> tuple[list[Camera], list[Camera]]:
    """(train, test) orbit cameras around ``means`` [N, 3] (numpy or torch), deterministic.

    Train view k of n: azimuth k * 137.5° (golden angle), sin(elevation) evenly spaced over the
    band. Held-out view j of m: azimuth (j + 0.5) * 360 / m + 11.25°, elevations spread over the band
    in a different order, so no held-out view coincides with a training view.
    Sizes: training views ``config.image_size`` x ``image_size`` pixels, held-out views
    ``config.eval_size`` x ``eval_size`` pixels (the evaluation protocol; same field of view, so
    a view's framing does not depend on its size).
    """
    pts = means.detach().cpu().numpy() if isinstance(means, torch.Tensor) else np.asarray(means)
    if pts.shape[0] > _MAX_BOUNDS_POINTS:  # robust bounds of a strided subsample: same frame, cheaper
        pts = pts[:: -(-pts.shape[0] // _MAX_BOUNDS_POINTS)]
    lo, hi = (math.sin(math.radians(v)) for v in config.elevation_range_deg)

    def view(az: float, s: float, name: str, size: int) -> Camera:
        el = math.degrees(math.asin(max(-1.0, min(1.0, s))))
        return replace(orbit_camera(pts, az % 360.0, el, size, size, up=config.up), name=name)

    n, m = config.n_views, config.n_test_views
    train = [view(k * GOLDEN_ANGLE_DEG, lo + (k + 0.5) / n * (hi - lo), f"train_{k:03d}", config.image_size)
             for k in range(n)]
    test = [view((j + 0.5) * 360.0 / m + 11.25, lo + ((j * 0.618034 + 0.25) % 1.0) * (hi - lo), f"test_{j:03d}",
                 config.eval_size) for j in range(m)]
    return train, test


def split_indices(n: int, test_every: int) -> tuple[list[int], list[int]]:
    """(train, test) indices: every ``test_every``-th index (0, k, 2k, ...) is held out; 0 = none."""
    test = list(range(0, n, test_every)) if test_every > 0 else []
    held = set(test)
    return [i for i in range(n) if i not in held], test


def dataset_size(camera: Camera, max_size: int) -> tuple[int, int]:
    """(width, height) with the longer side at most ``max_size`` pixels, aspect kept."""
    w, h = camera.width, camera.height
    factor = max(w, h) / max_size
    if factor <= 1.0:
        return w, h
    return max(1, round(w / factor)), max(1, round(h / factor))


def render_view(scene: GaussianScene, camera: Camera, config: CompressionConfig) -> torch.Tensor:
    """The image of ``scene`` at ``camera`` as the pipeline compares images: [H, W, 3] float in [0, 1]
    (clamped), on ``config.background`` with ``config.render_backend``, without autograd. The one render
    behind every target, score and search of the pipeline."""
    with torch.no_grad():  # never across a yield (callers yield between views): grad mode is thread state
        img = render(scene, camera, config.background, backend=config.render_backend, with_depth=False).color
    return img.clamp(0.0, 1.0).contiguous()


def render_targets(scene: GaussianScene, cameras: Sequence[Camera], config: CompressionConfig,
                   clock: StageClock, offset: int = 0) -> Generator[ProgressRecord, None, list[torch.Tensor]]:
    """Renders of ``scene`` (:func:`render_view`), one record per view."""
    out = []
    for i, cam in enumerate(cameras):
        out.append(render_view(scene, cam, config))
        yield clock.record(offset + i + 1, f"rendered target {offset + i + 1}/{clock.total}")
    return out


def build_views(scene: GaussianScene, config: CompressionConfig, cameras: Sequence[Camera] | None = None,
                use_images: bool | None = None) -> Generator[ProgressRecord, None, ViewSet]:
    """Stage 1: the :class:`ViewSet` for ``scene`` (already on the pipeline's device).

    cameras: a CameraSet or list of Camera, or None to generate orbit views. use_images: None =
    use the dataset images when every camera has an existing image file; True = require them
    (ValueError otherwise); False = render targets from the cameras.
    """
    device = scene.device
    cams = list(getattr(cameras, "cameras", cameras) or [])
    if not cams:
        if use_images:
            raise ConfigError("use_images=True needs cameras with image files")
        train, test = generated_cameras(scene.means, config)
        return (yield from _rendered_viewset(scene, train, test, config))
    have_images = all(c.image_path is not None and c.image_path.is_file() for c in cams)
    if use_images and not have_images:
        missing = next(c for c in cams if c.image_path is None or not c.image_path.is_file())
        raise ConfigError(f"camera {missing.name or '?'} has no image file ({missing.image_path}); "
                         "cannot use dataset images")
    train_idx, test_idx = split_indices(len(cams), config.test_every)
    if not train_idx:
        raise ConfigError(f"no training views left: {len(cams)} camera(s), every {config.test_every}th held out")
    if use_images is False or not have_images:
        sized = [c.resized(*dataset_size(c, config.dataset_max_size)) for c in cams]
        return (yield from _rendered_viewset(scene, [sized[i] for i in train_idx], [sized[i] for i in test_idx],
                                             config))
    clock = StageClock("views", len(cams))
    images: dict[int, torch.Tensor] = {}
    sized_cams: dict[int, Camera] = {}
    for step, i in enumerate(train_idx + test_idx, start=1):
        size = dataset_size(cams[i], config.dataset_max_size)
        arr = load_image(cams[i].image_path, size=size, background=config.background)
        images[i] = torch.from_numpy(arr).to(device)
        sized_cams[i] = cams[i].resized(*size)
        yield clock.record(step, f"loaded image {step}/{len(cams)}")
    log.info("views: %d training and %d held-out dataset images", len(train_idx), len(test_idx))
    return ViewSet([sized_cams[i] for i in train_idx], [images[i] for i in train_idx],
                   [sized_cams[i] for i in test_idx], [images[i] for i in test_idx], "dataset", config.background)


def _rendered_viewset(scene, train: list[Camera], test: list[Camera],
                      config: CompressionConfig) -> Generator[ProgressRecord, None, ViewSet]:
    clock = StageClock("views", len(train) + len(test))
    yield clock.record(0, "rendering targets of the original scene")
    train_t = yield from render_targets(scene, train, config, clock)
    test_t = yield from render_targets(scene, test, config, clock, offset=len(train))
    log.info("views: %d training (%dx%d) and %d held-out (%s) rendered targets", len(train), train[0].width,
             train[0].height, len(test), f"{test[0].width}x{test[0].height}" if test else "-")
    return ViewSet(train, train_t, test, test_t, "renders", config.background)
