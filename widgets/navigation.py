"""The viewport camera rig: orbit, pan, zoom and fly navigation as plain numpy state (no Qt, no torch).

Conventions are those of ``core.camera`` and ``core.cameras.orbit_camera``, whose orbit geometry
(``orbit_basis``, ``orbit_direction``, ``orbit_world_to_camera``, numpy only) the rig uses:
world-to-camera 4x4 with OpenCV axes (x right, y down, z forward); an orbit view at (azimuth, elevation) sits at
``target + distance * (cos(el) * (cos(az) * e1 + sin(az) * e2) + sin(el) * up)`` looking at
``target`` without roll, where ``e1`` is the world axis most perpendicular to ``up`` (made
orthogonal to it) and ``e2 = up x e1``. So a rig framed on the robust bounds reproduces the
orbit views the CLI renders.

A training camera can be shown exactly (``set_pose``), roll included. Navigation continues from it
without a jump: the orbit then turns around the camera's own up axis (``up``), so its roll stays, until
``frame`` (or ``set_up``) goes back to the world up (``world_up``). Captured cameras are rarely level,
and dropping the roll at the first mouse move tilted the whole image at once.

``frame`` fits the box in the view's width and height for its aspect: the box, padded by ``FRAME_PAD`` of
its size on every side (robust bounds leave out the outermost 2 % of the centres: a standing person's
head), must project inside the image, ``FRAME_MARGIN`` of it clear of each edge, seen from the current
angles. (The earlier fit of the box's bounding sphere left a tall subject's head at the image's top
edge, or past it.) ``frame`` remembers its box: while only orbits follow, ``reframe`` fits the same box to
a new viewport aspect, e.g. when the compare view switches from two half-width panes to one full-width view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.cameras.orbit import orbit_basis, orbit_direction, orbit_world_to_camera

MIN_ELEVATION, MAX_ELEVATION = -89.0, 89.0
FRAME_PAD = 0.05  # of the box's size, added on each side before fitting it
FRAME_MARGIN = 0.04  # of the image's half width / height left clear at each edge


def fit_distance(lo, hi, world_to_camera_rotation: np.ndarray, half_x: float, half_y: float,
                 pad: float = FRAME_PAD, margin: float = FRAME_MARGIN) -> float:
    """Distance from the centre of the box [lo, hi] at which a camera with this rotation ([3, 3] world to
    camera rows, OpenCV axes) looking at the centre sees the whole box, padded by ``pad`` of its size on each
    side, within its half angles (radians) less ``margin``: every corner inside the image, in width and height."""
    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    centre, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * (1.0 + 2.0 * pad)
    corners = centre + half * np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    q = (corners - centre) @ np.asarray(world_to_camera_rotation, dtype=np.float64).T  # camera axes, at the centre
    tx, ty = math.tan(half_x) * (1.0 - margin), math.tan(half_y) * (1.0 - margin)
    # a corner at q is seen from distance d at (q.x, q.y, q.z + d): inside when |q.x| <= tx (q.z + d), same for y
    need = np.maximum(np.abs(q[:, 0]) / tx, np.abs(q[:, 1]) / ty) - q[:, 2]
    size = float(np.linalg.norm(hi - lo))
    floor = max(1e-6, float(np.max(-q[:, 2])) + 1e-3 * size)  # every corner in front of the camera
    return max(float(need.max()), floor)


def _unit(v) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64).reshape(3)
    n = float(np.linalg.norm(a))
    if not np.isfinite(a).all() or n < 1e-12:
        raise ValueError(f"expected a finite non-zero 3-vector, got {v!r}")
    return a / n


@dataclass
class CameraRig:
    """Orbit camera state. Angles in degrees, distances in world units, ``fov_y_deg`` vertical field of view."""

    target: np.ndarray = field(default_factory=lambda: np.zeros(3))
    distance: float = 4.0
    azimuth_deg: float = 30.0
    elevation_deg: float = 20.0
    up: np.ndarray = field(default_factory=lambda: np.array([0.0, -1.0, 0.0]))
    fov_y_deg: float = 50.0
    pose_override: np.ndarray | None = None  # exact world_to_camera [4, 4] (a training camera)
    framed_box: tuple[np.ndarray, np.ndarray] | None = None  # the box the last frame() fitted, until moved

    def __post_init__(self) -> None:
        self.target = np.asarray(self.target, dtype=np.float64).reshape(3).copy()
        self.set_up(self.up)

    # -- basis -----------------------------------------------------------------------------------
    def set_up(self, up) -> None:
        """World up (any non-zero 3-vector); the orbit turns around it from now on."""
        self.world_up = _unit(up)
        self._set_orbit_up(self.world_up)

    def _set_orbit_up(self, up) -> None:
        """The axis the orbit turns around (``up``); recomputes the azimuth basis."""
        self.up = _unit(up)
        self.e1, self.e2 = orbit_basis(self.up)

    def _direction(self) -> np.ndarray:
        """Unit vector from the target to the eye, [3]."""
        return orbit_direction(self.azimuth_deg, self.elevation_deg, self.e1, self.e2, self.up)

    @property
    def eye(self) -> np.ndarray:
        """Camera centre in world coordinates, [3]."""
        if self.pose_override is not None:
            r, t = self.pose_override[:3, :3], self.pose_override[:3, 3]
            return -r.T @ t
        return self.target + self.distance * self._direction()

    def world_to_camera(self) -> np.ndarray:
        """[4, 4] float64 world-to-camera (OpenCV axes)."""
        if self.pose_override is not None:
            return self.pose_override.copy()
        return orbit_world_to_camera(self.eye, self.target, self.azimuth_deg, self.e1, self.e2)

    def intrinsics(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels for a ``width`` x ``height`` viewport (square pixels, centred)."""
        f = 0.5 * height / math.tan(0.5 * math.radians(self.fov_y_deg))
        return f, f, width / 2.0, height / 2.0

    # -- navigation ------------------------------------------------------------------------------
    def _release_pose(self) -> None:
        """Leave an exact training-camera pose for the equivalent orbit state (the same view: the orbit
        turns around the camera's up, see ``set_pose``)."""
        if self.pose_override is None:
            return
        w2c, self.pose_override = self.pose_override, None
        eye = -w2c[:3, :3].T @ w2c[:3, 3]
        forward = w2c[2, :3]
        self._look_from(eye, forward)

    def _look_from(self, eye: np.ndarray, forward: np.ndarray) -> None:
        d = -_unit(forward)
        self.elevation_deg = float(np.clip(math.degrees(math.asin(np.clip(d @ self.up, -1, 1))),
                                           MIN_ELEVATION, MAX_ELEVATION))
        self.azimuth_deg = math.degrees(math.atan2(float(d @ self.e2), float(d @ self.e1)))
        self.target = eye - self.distance * self._direction()

    def orbit(self, d_azimuth_deg: float, d_elevation_deg: float) -> None:
        """Turn around the target (a framed box keeps its centre and distance; F fits it again)."""
        self._release_pose()
        self.azimuth_deg = (self.azimuth_deg + d_azimuth_deg) % 360.0
        self.elevation_deg = float(np.clip(self.elevation_deg + d_elevation_deg, MIN_ELEVATION, MAX_ELEVATION))

    def look(self, d_azimuth_deg: float, d_elevation_deg: float) -> None:
        """Turn the camera in place (fly mode): the eye stays, the target moves."""
        self._release_pose()
        self.framed_box = None
        eye = self.eye
        self.azimuth_deg = (self.azimuth_deg + d_azimuth_deg) % 360.0
        self.elevation_deg = float(np.clip(self.elevation_deg + d_elevation_deg, MIN_ELEVATION, MAX_ELEVATION))
        self.target = eye - self.distance * self._direction()

    def pan(self, dx_px: float, dy_px: float, viewport_height: int) -> None:
        """Drag the scene by (dx, dy) pixels: it follows the mouse at the target's depth."""
        self._release_pose()
        self.framed_box = None
        w2c = self.world_to_camera()
        per_px = 2.0 * self.distance * math.tan(0.5 * math.radians(self.fov_y_deg)) / max(1, viewport_height)
        self.target = self.target - w2c[0, :3] * dx_px * per_px - w2c[1, :3] * dy_px * per_px

    def zoom(self, factor: float) -> None:
        """Multiply the distance to the target by ``factor`` (< 1: closer)."""
        if not factor > 0:
            raise ValueError(f"zoom factor must be positive, got {factor}")
        self._release_pose()
        self.framed_box = None
        self.distance = float(np.clip(self.distance * factor, 1e-6, 1e9))

    def fly(self, forward: float, right: float, up: float) -> None:
        """Move eye and target together, in units of the distance to the target (camera axes; up = image up)."""
        self._release_pose()
        self.framed_box = None
        w2c = self.world_to_camera()
        step = self.distance * (forward * w2c[2, :3] + right * w2c[0, :3] - up * w2c[1, :3])
        self.target = self.target + step

    def frame(self, lo, hi, aspect: float = 4.0 / 3.0) -> None:
        """Look at the box [lo, hi] (world, [3] each) from the distance at which it fits a view of this
        width / height in both directions (:func:`fit_distance`), orbiting around the world up again (angles
        unchanged)."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        self.pose_override = None
        if not np.allclose(self.up, self.world_up):
            self._set_orbit_up(self.world_up)
        self.framed_box = (lo.copy(), hi.copy())
        self.target = 0.5 * (lo + hi)
        half_y = 0.5 * math.radians(self.fov_y_deg)
        half_x = math.atan(math.tan(half_y) * max(aspect, 1e-3))
        rotation = self.world_to_camera()[:3, :3]  # depends on the angles only, not on the distance
        self.distance = fit_distance(lo, hi, rotation, half_x, half_y)

    def reframe(self, aspect: float) -> bool:
        """Fit the last framed box to a view of this width / height, when nothing but orbits moved the camera
        since ``frame``; returns whether it did."""
        if self.framed_box is None or self.pose_override is not None:
            return False
        self.frame(*self.framed_box, aspect=aspect)
        return True

    def set_pose(self, world_to_camera, fov_y_deg: float | None = None) -> None:
        """Show exactly this pose (a training camera); ``fov_y_deg`` from its intrinsics when given.
        Navigation from it orbits around the camera's own up (its roll stays) until ``frame``."""
        w2c = np.asarray(world_to_camera, dtype=np.float64).reshape(4, 4).copy()
        if fov_y_deg is not None:
            self.fov_y_deg = float(fov_y_deg)
        eye = -w2c[:3, :3].T @ w2c[:3, 3]
        to_target = float((self.target - eye) @ w2c[2, :3])
        if to_target > 1e-6:
            self.distance = to_target
        self.pose_override = None
        self.framed_box = None
        self._set_orbit_up(-w2c[1, :3])  # OpenCV axes: image up is -y
        self._look_from(eye, w2c[2, :3])
        self.pose_override = w2c

    def state(self) -> dict:
        """A plain snapshot (for tests and settings)."""
        return {"target": self.target.tolist(), "distance": self.distance, "azimuth_deg": self.azimuth_deg,
                "elevation_deg": self.elevation_deg, "up": self.up.tolist(), "world_up": self.world_up.tolist(),
                "fov_y_deg": self.fov_y_deg, "exact_pose": self.pose_override is not None,
                "framed": self.framed_box is not None}
