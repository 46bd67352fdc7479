"""The pinhole camera, in one convention for the whole project.

Convention (OpenCV / COLMAP): camera axes x right, y down, z forward (the camera looks down +z).
``world_to_camera`` is a 4x4 rigid transform taking world points to camera coordinates.
Intrinsics are in pixels; pixel (i, j) covers [j, j+1) x [i, i+1), so its centre is at
(j + 0.5, i + 0.5) and a centred principal point is (width / 2, height / 2), as in gsplat.
Every camera source (cameras.json, COLMAP, transforms.json, orbits) converts to this at load
time, and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np


MAX_IMAGE_SIDE = 16384
"""Largest camera width or height in pixels (as ``render --size``): a float image of 16384 x 16384 is 3 GiB."""


class CameraValidationError(ValueError):
    """A Camera was built with an invalid pose, intrinsics or size."""


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: pose (world-to-camera, OpenCV axes) and intrinsics in pixels."""

    world_to_camera: np.ndarray  # [4, 4] float64, rigid
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int
    image_path: Path | None = None
    name: str = ""
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        m = np.asarray(self.world_to_camera, dtype=np.float64)
        if m.shape != (4, 4):
            raise CameraValidationError(f"world_to_camera has shape {m.shape}, expected (4, 4)")
        if not np.isfinite(m).all():
            raise CameraValidationError("world_to_camera holds NaN or Inf")
        if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
            raise CameraValidationError(f"world_to_camera last row is {m[3].tolist()}, expected [0, 0, 0, 1]")
        r = m[:3, :3]
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0:
            raise CameraValidationError("world_to_camera rotation is not a proper rotation (orthonormal, det +1)")
        object.__setattr__(self, "world_to_camera", m)
        for name in ("fx", "fy", "cx", "cy"):
            v = float(getattr(self, name))
            if not np.isfinite(v):
                raise CameraValidationError(f"{name} is not finite")
            object.__setattr__(self, name, v)
        if self.fx <= 0 or self.fy <= 0:
            raise CameraValidationError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        for name in ("width", "height"):
            v = getattr(self, name)
            if int(v) != v or int(v) <= 0:
                raise CameraValidationError(f"{name} must be a positive integer, got {v}")
            if int(v) > MAX_IMAGE_SIDE:
                raise CameraValidationError(f"{name} {int(v):,} pixels is over the {MAX_IMAGE_SIDE:,}-pixel limit "
                                            f"(an image that size would not fit in memory)")
            object.__setattr__(self, name, int(v))
        if self.image_path is not None:
            object.__setattr__(self, "image_path", Path(self.image_path))

    # -- derived quantities --------------------------------------------------------------------
    @property
    def camera_to_world(self) -> np.ndarray:
        """[4, 4] inverse of ``world_to_camera``."""
        r = self.world_to_camera[:3, :3]
        t = self.world_to_camera[:3, 3]
        out = np.eye(4)
        out[:3, :3] = r.T
        out[:3, 3] = -r.T @ t
        return out

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates, [3]."""
        return self.camera_to_world[:3, 3]

    @property
    def forward(self) -> np.ndarray:
        """Viewing direction (camera +z) in world coordinates, [3]."""
        return self.world_to_camera[2, :3].copy()

    @property
    def intrinsics(self) -> np.ndarray:
        """[3, 3] pinhole matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.width, self.height

    def resized(self, width: int, height: int) -> "Camera":
        """The same camera at another resolution (intrinsics scaled per axis)."""
        sx, sy = width / self.width, height / self.height
        return replace(self, fx=self.fx * sx, fy=self.fy * sy, cx=self.cx * sx, cy=self.cy * sy,
                       width=int(width), height=int(height))

    @staticmethod
    def look_at(eye, target, up, fov_y_deg: float, width: int, height: int, name: str = "") -> "Camera":
        """A centred pinhole camera at ``eye`` looking at ``target``; ``up`` is the world up vector."""
        eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
        z = target - eye
        z /= np.linalg.norm(z)
        x = np.cross(z, up)  # camera right = forward x up; then y = forward x right points down
        if np.linalg.norm(x) < 1e-9:
            x = np.cross(z, np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0]))
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        r = np.stack([x, y, z])  # rows: camera axes in world coordinates
        w2c = np.eye(4)
        w2c[:3, :3] = r
        w2c[:3, 3] = -r @ eye
        f = 0.5 * height / np.tan(0.5 * np.radians(fov_y_deg))
        return Camera(w2c, f, f, width / 2.0, height / 2.0, width, height, name=name)
