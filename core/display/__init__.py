"""Display renderer (viewport): fast, Qt-free splatting with moderngl into an offscreen EGL framebuffer.

Public API (heavy modules load on first use)::

    from core.display import DisplayRenderer, display_available, benchmark_display

    ok, why = display_available()
    with DisplayRenderer(800, 600) as r:
        r.set_scene(scene)
        rgb = r.render(camera, background=(1, 1, 1))          # uint8 [H, W, 3], row 0 = top
        fast = r.render(camera, max_splats=30_000)            # subset while the camera moves

``warm_up()`` compiles or loads the numba kernels (14 s the first time on a 2-core machine, 0.6 s
from numba's cache): call it from a worker thread at application start.

Modules: ``renderer`` (GL side), ``frame`` (activation, per-frame projection and sort),
``kernels`` (numba), ``*.glsl`` (shaders).
"""

from __future__ import annotations

__all__ = ["DisplayRenderer", "display_available", "benchmark_display", "warm_up"]


def __getattr__(name: str):
    if name == "warm_up":
        from core.display.frame import warm_up

        return warm_up
    if name in __all__:
        from core.display import renderer

        return getattr(renderer, name)
    raise AttributeError(f"module 'core.display' has no attribute {name!r}")
