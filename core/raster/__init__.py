"""What the two splat rasterisers share: the differentiable renderer (``core.render``, torch) and the
viewport renderer (``core.display``, numpy/numba/GL) both draw gsplat 1.5.3's classic rasterisation.

- ``conventions``: its constants (near plane, eps2d, the Jacobian's FOV clamp, the 3.33-sigma
  footprint, alpha and transmittance cut-offs, the CPU tile size). Plain numbers, no imports.
- ``tiles``: numba binning of screen-space footprints into per-tile, depth-ordered lists.

This package imports neither ``core.render`` nor ``core.display``; they import it and not each other.
"""
