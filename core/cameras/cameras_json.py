"""graphdeco ``cameras.json``: the camera list the official 3DGS trainer writes next to its model.

Each entry: ``id``, ``img_name``, ``width``, ``height``, ``position`` [3] (camera centre in world
coordinates), ``rotation`` [3][3] (camera-to-world rotation; its columns are the camera's x, y, z
axes in world coordinates, OpenCV convention: x right, y down, z forward), ``fx``, ``fy`` in
pixels. The principal point is not stored: graphdeco renders with a centred one, so
cx = width / 2, cy = height / 2. ``img_name`` has neither folder nor extension, so cameras from
this file never have an ``image_path``.
"""

from __future__ import annotations

from pathlib import Path

from core.camera import Camera
from core.cameras.camera_set import (CameraSet, as_array, as_number, as_size, build_set, checked_rotation,
                                     make_camera, read_json, rigid_world_to_camera)
from core.errors import InputFileError

_REQUIRED = ("width", "height", "position", "rotation", "fx", "fy")


def find_cameras_beside(scene_path: str | Path) -> Path | None:
    """The graphdeco ``cameras.json`` belonging to a scene file, or None.

    Looks beside the file, then in the model folder of a graphdeco layout
    ``<model>/point_cloud/iteration_N/point_cloud.ply`` (two folders above the file's folder).
    """
    p = Path(scene_path)
    folder = p if p.is_dir() else p.parent
    candidates = [folder / "cameras.json"]
    if len(folder.parents) >= 2:
        candidates.append(folder.parents[1] / "cameras.json")
    for c in candidates:
        if c.is_file():
            return c
    return None


def load_cameras_json(path: Path, require_images: bool | None, *, data: object = None) -> CameraSet:
    """Load a graphdeco cameras.json into a CameraSet (format ``"cameras_json"``).

    ``require_images=True`` cannot be satisfied (the file names no image files), so it leaves no
    camera and raises InputFileError; None and False keep every camera.
    """
    path = Path(path)
    if data is None:
        data = read_json(path)
    if not isinstance(data, list):
        raise InputFileError(path, "expected a JSON list of cameras (graphdeco cameras.json)")
    if not data:
        raise InputFileError(path, "the camera list is empty")
    cameras: list[Camera] = []
    skipped: list[str] = []
    warnings: list[str] = []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise InputFileError(path, f"camera {i}: expected a JSON object, got {type(entry).__name__}")
        name = str(entry.get("img_name", entry.get("id", i)))
        what = f"camera {i} ({name})"
        missing = [k for k in _REQUIRED if k not in entry]
        if missing:
            raise InputFileError(path, f"{what}: missing key(s) {', '.join(missing)}")
        width = as_size(entry["width"], path, f"{what}: width")
        height = as_size(entry["height"], path, f"{what}: height")
        position = as_array(entry["position"], (3,), path, f"{what}: position")
        rotation = as_array(entry["rotation"], (3, 3), path, f"{what}: rotation")
        rotation = checked_rotation(rotation, path, what, warnings)
        fx = as_number(entry["fx"], path, f"{what}: fx", positive=True)
        fy = as_number(entry["fy"], path, f"{what}: fy", positive=True)
        if require_images:
            skipped.append(f"{what}: cameras.json names no image file")
            continue
        cameras.append(make_camera(
            path, what, world_to_camera=rigid_world_to_camera(rotation, position), fx=fx, fy=fy,
            cx=width / 2.0, cy=height / 2.0, width=width, height=height, image_path=None, name=name,
            extra={"id": entry.get("id", i), "index": i}))
    return build_set(cameras, skipped, path, "cameras_json", warnings, len(data))
