"""Display renderer (viewport): fast, Qt-free splatting with moderngl into an offscreen EGL framebuffer.

Public API (heavy modules load on first use)::

    from core.display import DisplayRenderer, display_available, benchmark_display

    ok, why = display_available()
    with DisplayRenderer(800, 600) as r:
        r.set_scene(scene)
        rgb = r.render(camera, background=(1, 1, 1))          # uint8 [H, W, 3], row 0 = top
        fast = r.render(camera, max_splats=30_000)            # subset while the camera moves

Modules: ``renderer`` (GL side), ``frame`` (activation, per-frame projection and sort),
``kernels`` (numba), ``*.vert``/``*.frag`` (GLSL).
"""

from __future__ import annotations

__all__ = ["DisplayRenderer", "display_available", "benchmark_display"]


def __getattr__(name: str):
    if name in __all__:
        from core.display import renderer

        return getattr(renderer, name)
    raise AttributeError(f"module 'core.display' has no attribute {name!r}")
