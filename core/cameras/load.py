"""``load_cameras``: the camera file (or dataset folder) at a path, read by the loader for its format."""

from __future__ import annotations

import logging
from pathlib import Path

from core.cameras.camera_set import CameraSet, read_json
from core.cameras.cameras_json import load_cameras_json
from core.cameras.colmap import COLMAP_FILE_NAMES, find_colmap_model, load_colmap
from core.cameras.transforms import TRANSFORMS_NAMES, load_transforms
from core.errors import InputFileError

log = logging.getLogger(__name__)


def load_cameras(path: str | Path, *, require_images: bool | None = None) -> CameraSet:
    """Load cameras from a camera file or a dataset folder.

    ``path`` may be:

    - a graphdeco ``cameras.json`` (or a folder holding one, e.g. a 3DGS model output folder);
    - a COLMAP model folder holding ``cameras``/``images`` ``.bin`` (preferred) or ``.txt``, the
      dataset root holding ``sparse/0`` (or ``sparse/``), or one of the model files itself;
    - a NeRF/instant-ngp ``transforms*.json``, or a folder holding ``transforms_train.json``
      (preferred: the training split) or ``transforms.json``.

    A folder is searched in that order: COLMAP model, transforms, cameras.json.

    ``require_images``: True skips (and reports in ``skipped``) every frame whose image file is
    missing; False keeps such frames (``image_path=None``) when their size is known from the
    file. None (default): True for COLMAP and transforms files when at least one image file
    exists, else False; cameras.json never names image files, so its cameras always have
    ``image_path=None``. Raises InputFileError when nothing usable is left.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(p, "file or folder not found")
    if p.is_dir():
        model = find_colmap_model(p)
        if model is not None:
            result = load_colmap(model, require_images)
        elif any((p / n).is_file() for n in TRANSFORMS_NAMES):
            result = load_transforms(next(p / n for n in TRANSFORMS_NAMES if (p / n).is_file()), require_images)
        elif (p / "cameras.json").is_file():
            result = load_cameras_json(p / "cameras.json", require_images)
        else:
            raise InputFileError(p, "no camera file found: expected a COLMAP model (sparse/0/cameras.bin and "
                                    "images.bin, or .txt), transforms_train.json, transforms.json or cameras.json")
    elif p.name in COLMAP_FILE_NAMES:
        model = find_colmap_model(p.parent)
        if model is None:
            raise InputFileError(p, "COLMAP model is incomplete: cameras and images files are both needed")
        result = load_colmap(model, require_images)
    elif p.suffix.lower() == ".json":
        data = read_json(p)
        if isinstance(data, list):
            result = load_cameras_json(p, require_images, data=data)
        elif isinstance(data, dict) and "frames" in data:
            result = load_transforms(p, require_images, data=data)
        else:
            raise InputFileError(p, "unrecognised camera JSON: expected a graphdeco cameras.json (a list of "
                                    "cameras) or a transforms.json (an object with 'frames')")
    else:
        raise InputFileError(p, "unrecognised camera file: expected cameras.json, transforms*.json or a "
                                "COLMAP model (cameras/images .bin or .txt)")
    for msg in result.skipped:
        log.info("%s: skipped %s", result.source, msg)
    for msg in result.warnings:
        log.warning("%s: %s", result.source, msg)
    return result
