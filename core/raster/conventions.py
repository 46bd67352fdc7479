"""Rasterisation conventions of gsplat 1.5.3's classic mode, shared by ``core.render`` and ``core.display``.

Plain numbers only (no imports), so any module may import them cheaply. Pixel units; depths are
camera-space z in world units.
"""

from __future__ import annotations

NEAR_PLANE = 0.01
"""Gaussians whose camera-space z is below this (world units) are culled (gsplat's ``near_plane``)."""
FAR_PLANE = 1e10
"""... and above this (gsplat's ``far_plane``)."""

EPS2D = 0.3
"""Pixels^2 added to the projected 2D covariance's diagonal: a one-pixel low-pass filter (gsplat's
``eps2d``, classic mode)."""

FOV_CLAMP_MARGIN = 0.3
"""The EWA Jacobian is evaluated at the Gaussian's mean clamped, in normalised image coordinates
(x/z, y/z), to the image edge plus this fraction of the half-FOV tangent: ``x/z`` in
``[-(cx/fx + m*tan_fovx), (W - cx)/fx + m*tan_fovx]`` with ``tan_fovx = W / (2 fx)`` (1.3x the half
FOV for a centred principal point), likewise y. Same value as ``EPS2D`` by coincidence only."""

MAX_EXTEND = 3.33
"""Footprint half-size in standard deviations (gsplat 1.5.3's opacity-aware bounding box:
``min(MAX_EXTEND, sqrt(2 ln(opacity / ALPHA_THRESHOLD)))``)."""

ALPHA_THRESHOLD = 1.0 / 255.0
"""A Gaussian contributes to a pixel only where its alpha reaches this (gsplat's ALPHA_THRESHOLD)."""
ALPHA_MAX = 0.999
"""Per-Gaussian alpha is clamped to at most this: ``alpha = min(ALPHA_MAX, opacity * exp(-sigma))``."""
T_MIN = 1e-4
"""A pixel stops blending before the Gaussian that would bring its transmittance to ``<= T_MIN``."""

TILE = 8
"""Side in pixels of the square tiles of the CPU rasterisers (``core.raster.tiles``)."""
