"""Camera sources: every supported camera file, converted to :class:`core.camera.Camera`.

Supported inputs (see :func:`load_cameras`):

- graphdeco ``cameras.json`` (written by the official 3DGS trainer), format ``"cameras_json"``;
- a COLMAP sparse model (``cameras.bin``/``images.bin`` or ``cameras.txt``/``images.txt``),
  formats ``"colmap_bin"`` / ``"colmap_txt"``;
- NeRF-synthetic / instant-ngp ``transforms*.json``, format ``"transforms"``.

Every loader converts at load time to the project's single convention (``core/camera.py``):
world-to-camera 4x4, OpenCV axes (x right, y down, z forward), principal point in pixels with
pixel centres at (j + 0.5, i + 0.5). Poses are taken as the file gives them: no recentering,
rescaling or re-orientation of the world frame.

Malformed files raise :class:`core.errors.InputFileError` naming the file and the problem.
Frames that are fine but unusable (an image file that does not exist) are skipped and reported
one message per frame in :attr:`CameraSet.skipped`; non-fatal caveats (lens distortion that the
pinhole renderer ignores) go to :attr:`CameraSet.warnings`.

Modules: ``camera_set`` (:class:`CameraSet` and the value checks the loaders share), ``load``
(:func:`load_cameras`), one module per format (``cameras_json``, ``colmap``, ``transforms``), and
``bounds`` / ``orbit`` (scene bounds and generated orbit cameras). This package only re-exports them;
its submodules import one another, never the package.
"""

from __future__ import annotations

from core.cameras.bounds import robust_bounds
from core.cameras.camera_set import (FORMATS, CameraSet, as_array, as_number, as_size, build_set, checked_rotation,
                                     make_camera, read_json, rigid_world_to_camera)
from core.cameras.cameras_json import find_cameras_beside, load_cameras_json
from core.cameras.colmap import COLMAP_FILE_NAMES, find_colmap_model, load_colmap
from core.cameras.load import load_cameras
from core.cameras.orbit import DEFAULT_UP, estimate_up, orbit_camera, orbit_cameras
from core.cameras.transforms import TRANSFORMS_NAMES, load_transforms

__all__ = [
    "COLMAP_FILE_NAMES", "DEFAULT_UP", "FORMATS", "TRANSFORMS_NAMES", "CameraSet", "as_array", "as_number", "as_size",
    "build_set", "checked_rotation", "estimate_up", "find_cameras_beside", "find_colmap_model", "load_cameras",
    "load_cameras_json", "load_colmap", "load_transforms", "make_camera", "orbit_camera", "orbit_cameras",
    "read_json", "rigid_world_to_camera", "robust_bounds",
]
