"""Generated views orbiting a scene: for scenes without cameras, turntables and ``--orbit DEGREES``.

Geometry. The target is the centre of the robust bounds (:func:`robust_bounds`, 2..98th
percentile per axis) of the Gaussian centres; the orbit radius is the distance at which the
sphere around that box (radius = half its diagonal) just fits the narrower field of view,
times ``distance_scale``. A view at (azimuth, elevation) sits at
``centre + d * (cos(el) * (cos(az) * e1 + sin(az) * e2) + sin(el) * up)`` and looks at the centre
with no roll (image "up" is the projection of the world ``up``). ``e1`` is the world axis most
perpendicular to ``up`` (x before y before z), made orthogonal to it; ``e2 = up x e1``, so
azimuth grows counter-clockwise seen from above. Everything is deterministic.

World up. ``up`` (numpy [3]) wins when given. Otherwise, when the scene's ``cameras`` are
known, it is estimated as the mean of their image-up directions (:func:`estimate_up`): right
for COLMAP captures (arbitrary world frame) and for Blender scenes (+z). Otherwise
:data:`DEFAULT_UP` = -y, the up of COLMAP / graphdeco 3DGS captures (COLMAP's world frame starts
as the first camera's, whose y axis points down), which is what most ``.ply`` files are. Blender
(NeRF-synthetic) scenes are z-up: pass ``up=(0, 0, 1)`` or their cameras.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.camera import Camera
from core.cameras.bounds import robust_bounds

DEFAULT_UP = np.array([0.0, -1.0, 0.0])
"""World up used when neither ``up`` nor cameras are given: -y (COLMAP / graphdeco captures)."""


def estimate_up(cameras: Iterable[Camera]) -> np.ndarray:
    """World up [3] (unit) as the mean of the cameras' image-up directions (-camera y in world).

    Accepts a list of Camera or a CameraSet. Falls back to :data:`DEFAULT_UP` when there are no
    cameras or their up directions cancel out.
    """
    cams = list(getattr(cameras, "cameras", cameras))
    if not cams:
        return DEFAULT_UP.copy()
    ups = np.stack([-c.world_to_camera[1, :3] for c in cams])
    mean = ups.mean(axis=0)
    norm = np.linalg.norm(mean)
    if norm < 1e-3:
        return DEFAULT_UP.copy()
    return mean / norm


def _unit_up(up, cameras) -> np.ndarray:
    if up is not None:
        u = np.asarray(up, dtype=np.float64).reshape(-1)
        if u.shape != (3,) or not np.isfinite(u).all() or np.linalg.norm(u) < 1e-12:
            raise ValueError(f"up must be a finite non-zero 3-vector, got {up!r}")
        return u / np.linalg.norm(u)
    if cameras is not None:
        return estimate_up(cameras)
    return DEFAULT_UP.copy()


def orbit_basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(e1, e2), unit [3] each: the azimuth 0 and 90 degree directions of an orbit around the unit vector
    ``up``. e1 is the world axis most perpendicular to ``up`` (ties within noise: x, y, z) made
    orthogonal to it; e2 = up x e1."""
    dots = np.abs(up)
    axis = np.eye(3)[int(np.flatnonzero(dots <= dots.min() + 1e-6)[0])]
    e1 = axis - up * float(axis @ up)
    e1 = e1 / np.linalg.norm(e1)
    return e1, np.cross(up, e1)


def orbit_direction(azimuth_deg: float, elevation_deg: float, e1: np.ndarray, e2: np.ndarray,
                    up: np.ndarray) -> np.ndarray:
    """Unit vector [3] from the orbit centre to the eye at (azimuth, elevation) in degrees."""
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    return np.cos(el) * (np.cos(az) * e1 + np.sin(az) * e2) + np.sin(el) * up


def orbit_world_to_camera(eye: np.ndarray, target: np.ndarray, azimuth_deg: float, e1: np.ndarray,
                          e2: np.ndarray) -> np.ndarray:
    """World-to-camera [4, 4] (OpenCV axes) of an orbit eye looking at ``target`` without roll.

    Camera right is the direction of increasing azimuth (forward x up at the horizon): it stays
    defined and continuous through the poles, where forward x up vanishes.
    """
    az = np.radians(azimuth_deg)
    z = target - eye
    z = z / np.linalg.norm(z)
    x = -np.sin(az) * e1 + np.cos(az) * e2
    x = x - z * float(x @ z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)  # image down
    w2c = np.eye(4)
    w2c[:3, :3] = np.stack([x, y, z])
    w2c[:3, 3] = -w2c[:3, :3] @ eye
    return w2c


class _Orbit:
    """Centre, bounding radius and azimuth basis (e1, e2, up) of an orbit around ``means``."""

    def __init__(self, means, up, cameras, lower_pct: float, upper_pct: float) -> None:
        lo, hi = robust_bounds(means, lower_pct, upper_pct)
        self.centre = 0.5 * (lo + hi)
        radius = 0.5 * float(np.linalg.norm(hi - lo))
        self.radius = radius if radius > 1e-9 * (1.0 + float(np.abs(self.centre).max())) else 1.0
        self.up = _unit_up(up, cameras)
        self.e1, self.e2 = orbit_basis(self.up)

    def view(self, azimuth_deg: float, elevation_deg: float, width: int, height: int, fov_y_deg: float,
             distance_scale: float, name: str) -> Camera:
        if not 0.0 < fov_y_deg < 180.0:
            raise ValueError(f"fov_y_deg must be in (0, 180), got {fov_y_deg}")
        if not distance_scale > 0:
            raise ValueError(f"distance_scale must be positive, got {distance_scale}")
        half_y = 0.5 * np.radians(fov_y_deg)
        half_x = np.arctan(np.tan(half_y) * width / height)
        distance = self.radius / np.sin(min(half_x, half_y)) * distance_scale
        eye = self.centre + distance * orbit_direction(azimuth_deg, elevation_deg, self.e1, self.e2, self.up)
        w2c = orbit_world_to_camera(eye, self.centre, azimuth_deg, self.e1, self.e2)
        f = 0.5 * height / np.tan(half_y)
        return Camera(w2c, f, f, width / 2.0, height / 2.0, width, height, name=name,
                      extra={"azimuth_deg": float(azimuth_deg), "elevation_deg": float(elevation_deg),
                             "orbit_centre": self.centre.copy(), "orbit_distance": float(distance)})


def orbit_camera(means, azimuth_deg: float, elevation_deg: float, width: int, height: int,
                 fov_y_deg: float = 50.0, *, up=None, cameras=None, distance_scale: float = 1.0,
                 lower_pct: float = 2.0, upper_pct: float = 98.0) -> Camera:
    """One view of the orbit around ``means`` ([N, 3] numpy or torch, world units).

    Angles in degrees; elevation is measured from the plane perpendicular to ``up`` (positive:
    above, looking down). ``width``/``height`` in pixels, ``fov_y_deg`` the vertical field of
    view; the principal point is centred. See the module docstring for ``up`` / ``cameras``.
    """
    orbit = _Orbit(means, up, cameras, lower_pct, upper_pct)
    return orbit.view(azimuth_deg, elevation_deg, width, height, fov_y_deg, distance_scale,
                      f"orbit_az{azimuth_deg:g}_el{elevation_deg:g}")


def orbit_cameras(means, n_views: int, width: int, height: int, *,
                  elevations_deg: float | tuple[float, float] = (-20.0, 20.0), fov_y_deg: float = 50.0,
                  up=None, cameras=None, start_azimuth_deg: float = 0.0, distance_scale: float = 1.0,
                  lower_pct: float = 2.0, upper_pct: float = 98.0) -> list[Camera]:
    """``n_views`` views evenly spaced in azimuth over one full turn (a seamless loop).

    View k has azimuth ``start_azimuth_deg + 360 * k / n_views``. ``elevations_deg``: a number
    for a flat orbit, or ``(low, high)``: the elevation then swings once, sinusoidally, between
    the two over the turn (``mid + half_range * sin(2 pi k / n)``, starting at the middle).
    Names are ``orbit_000``, ``orbit_001``, ...
    """
    if int(n_views) != n_views or n_views < 1:
        raise ValueError(f"n_views must be a positive integer, got {n_views}")
    if np.ndim(elevations_deg) == 0:
        low = high = float(elevations_deg)  # type: ignore[arg-type]
    else:
        low, high = (float(v) for v in elevations_deg)  # type: ignore[union-attr]
    mid, amp = 0.5 * (low + high), 0.5 * (high - low)
    orbit = _Orbit(means, up, cameras, lower_pct, upper_pct)
    views = []
    for k in range(int(n_views)):
        phase = 2.0 * np.pi * k / n_views
        views.append(orbit.view(start_azimuth_deg + 360.0 * k / n_views, mid + amp * np.sin(phase), width,
                                height, fov_y_deg, distance_scale, f"orbit_{k:03d}"))
    return views
