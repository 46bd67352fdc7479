"""The display renderer (viewport): fast splatting for the viewport, Qt-free, offscreen.

It renders the image the differentiable renderer renders (gsplat 1.5.3 classic rasterisation; the
maths is in ``core.display.frame``). Two backends share the per-frame CPU work (numba projection,
SH colour, back-to-front sort of the visible splats; ``frame.project_frame``):

- ``"gl"``: moderngl in a standalone EGL context (no display needed; works with
  ``QT_QPA_PLATFORM=offscreen``; never GLX, which aborts after an EGL context in the same process).
  One instanced quad per splat (the oriented rectangle of its 1/255 ellipse) is blended back to front
  with premultiplied "over" into an RGBA32F texture; a last pass composites ``colour + T * background``
  and converts to 8 bits. Real-time on a GPU.
- ``"cpu"``: the same splats blended front to back per 8x8 tile by a vectorised numba kernel
  (``kernels.raster_tiles``), with gsplat's T <= 1e-4 stop. On llvmpipe (software OpenGL, 2 cores)
  this is 2-4x faster than the GL path, because llvmpipe's per-triangle and per-4x4-block costs
  dominate for ~100k small quads.

``backend="auto"`` (the default; ``$NEURALGS_DISPLAY_BACKEND`` overrides) creates the EGL context and
uses ``"gl"`` on a hardware renderer and ``"cpu"`` on a software one (llvmpipe, softpipe, swrast).
``"cpu"`` needs no EGL at all.

Threading: every GL call runs inside ``with self._ctx`` (makes this renderer's EGL context current and
restores the previous one), so several renderers can coexist in one process; the numba kernels
release the GIL. Use one renderer from one thread at a time.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from core.camera import Camera
from core.display.frame import INSTANCE_FLOATS, DisplayScene, project_frame, rasterize_cpu
from core.scene import GaussianScene

log = logging.getLogger(__name__)

BACKENDS = ("auto", "gl", "cpu")
SOFTWARE_GL = ("llvmpipe", "softpipe", "swrast", "swiftshader")
"""Substrings of GL_RENDERER (lower case) that mean OpenGL runs on the CPU."""

_SHADER_DIR = Path(__file__).resolve().parent
_GL_VERSION = 430
_availability: tuple[bool, str] | None = None


def _shader_source(name: str) -> str:
    return (_SHADER_DIR / name).read_text(encoding="utf-8")


def _create_context():
    import moderngl

    return moderngl.create_standalone_context(backend="egl", require=_GL_VERSION)


def display_available() -> tuple[bool, str]:
    """Whether an EGL OpenGL 4.3 context can be created here: ``(True, "renderer, version")`` or
    ``(False, reason)``. Computed once per process (creating a context takes about half a second)."""
    global _availability
    if _availability is None:
        try:
            ctx = _create_context()
            try:
                _availability = (True, f"{ctx.info['GL_RENDERER']}, OpenGL {ctx.info['GL_VERSION']}")
            finally:
                ctx.release()
        except Exception as exc:  # noqa: BLE001 - any failure means "no display renderer here"
            _availability = (False, f"cannot create an EGL OpenGL 4.3 context: {type(exc).__name__}: {exc}")
            log.info("display renderer unavailable: %s", _availability[1])
    return _availability


def _numba_threads() -> int:
    try:
        import numba

        return int(numba.get_num_threads())
    except ImportError:  # pragma: no cover - numba is a project dependency
        return 0


class DisplayRenderer:
    """Interactive splat renderer (see the module docstring).

    ``width`` x ``height``: initial framebuffer size in pixels; each render follows the camera's size.
    ``backend``: "auto" (default, or ``$NEURALGS_DISPLAY_BACKEND``), "gl" or "cpu"; the one in use is
    ``self.backend``. Use as a context manager or call ``release()``. With "auto" or "gl", raises
    whatever moderngl raises when no EGL context can be created (check ``display_available``).
    """

    def __init__(self, width: int = 800, height: int = 600, *, backend: str | None = None):
        requested = (backend or os.environ.get("NEURALGS_DISPLAY_BACKEND") or "auto").lower()
        if requested not in BACKENDS:
            raise ValueError(f"unknown display backend {requested!r}; choose one of {', '.join(BACKENDS)}")
        self._ctx = None
        self._released = False
        self._size = (int(width), int(height))
        self._accum = self._accum_fbo = self._out = self._out_fbo = None
        self._instances = self._splat_vao = self._splat_prog = self._comp_prog = self._comp_vao = None
        self._capacity = 0
        self._scene: DisplayScene | None = None
        self.last_frame_stats: dict = {}
        gl_info = ""
        if requested in ("auto", "gl"):
            self._ctx = _create_context()
            gl_info = f"{self._ctx.info['GL_RENDERER']}, OpenGL {self._ctx.info['GL_VERSION']}"
            software = any(s in gl_info.lower() for s in SOFTWARE_GL)
            chosen = "cpu" if requested == "auto" and software and _numba_threads() > 0 else requested
            chosen = "gl" if chosen == "auto" else chosen
        else:
            chosen = "cpu"
        self.backend = chosen
        try:
            if chosen == "gl":
                self._init_gl(int(width), int(height))
                self.renderer_info = gl_info
            else:
                if self._ctx is not None:  # probed only: the GL is software, the CPU path is faster
                    self._ctx.release()
                    self._ctx = None
                self.renderer_info = f"numba CPU tile rasteriser, {_numba_threads()} threads" + (
                    f" (instead of {gl_info})" if gl_info else "")
        except Exception:
            self.release()
            raise
        log.info("display renderer: %s backend, %s", self.backend, self.renderer_info)

    # -- resources -------------------------------------------------------------------------------
    def _init_gl(self, width: int, height: int) -> None:
        import moderngl

        with self._ctx:
            self._splat_prog = self._ctx.program(vertex_shader=_shader_source("splat_vert.glsl"),
                                                 fragment_shader=_shader_source("splat_frag.glsl"))
            self._comp_prog = self._ctx.program(vertex_shader=_shader_source("composite_vert.glsl"),
                                                fragment_shader=_shader_source("composite_frag.glsl"))
            self._comp_vao = self._ctx.vertex_array(self._comp_prog, [])
            self._ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
            self._ctx.blend_equation = moderngl.FUNC_ADD
            self._size = (0, 0)
            self._resize(width, height)

    def _resize(self, width: int, height: int) -> None:
        if (width, height) == self._size:
            return
        if self._ctx is None:
            self._size = (width, height)
            return
        for obj in (self._accum_fbo, self._accum, self._out_fbo, self._out):
            if obj is not None:
                obj.release()
        self._accum = self._ctx.texture((width, height), 4, dtype="f4")
        self._accum_fbo = self._ctx.framebuffer(color_attachments=[self._accum])
        self._out = self._ctx.texture((width, height), 4, dtype="f1")
        self._out_fbo = self._ctx.framebuffer(color_attachments=[self._out])
        self._size = (width, height)

    def _ensure_capacity(self, count: int) -> None:
        if self._ctx is None or count <= self._capacity:
            return
        for obj in (self._splat_vao, self._instances):
            if obj is not None:
                obj.release()
        self._capacity = max(count, 1024)
        self._instances = self._ctx.buffer(reserve=self._capacity * INSTANCE_FLOATS * 4, dynamic=True)
        self._splat_vao = self._ctx.vertex_array(
            self._splat_prog, [(self._instances, "4f 4f 4f 4f/i", "i_quad0", "i_quad1", "i_color", "i_conic")])

    @property
    def num_splats(self) -> int:
        """Number of drawable splats in the current scene (opacity >= 1/255, finite values)."""
        return 0 if self._scene is None else len(self._scene)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels of the last render (or the initial size)."""
        return self._size

    def set_scene(self, scene: GaussianScene) -> None:
        """Activate ``scene`` (any device, SH degree 0-3) for drawing; replaces the previous scene."""
        self._check_alive()
        ds = DisplayScene(scene)
        if self._ctx is not None:
            with self._ctx:
                self._ensure_capacity(len(ds))
        self._scene = ds
        log.debug("display: scene with %d drawable splats, SH degree %d", len(ds), scene.sh_degree)

    # -- drawing ---------------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._released:
            raise RuntimeError("DisplayRenderer used after release()")

    def _project(self, camera: Camera, max_splats: int | None) -> np.ndarray:
        t0 = time.perf_counter()
        inst = (project_frame(self._scene, camera, max_splats) if self._scene is not None
                else np.zeros((0, INSTANCE_FLOATS), np.float32))
        self.last_frame_stats = {"drawn": int(inst.shape[0]), "project_ms": 1000.0 * (time.perf_counter() - t0)}
        return inst

    def _draw_gl(self, camera: Camera, inst: np.ndarray) -> None:
        """Fill the accumulation texture (premultiplied rgb, a = 1 - T). Call inside the context."""
        import moderngl

        self._resize(camera.width, camera.height)
        self._accum_fbo.use()
        self._accum_fbo.clear(0.0, 0.0, 0.0, 0.0)
        m = inst.shape[0]
        if m:
            self._ensure_capacity(m)
            self._instances.write(inst)
            self._splat_prog["u_size"] = (float(camera.width), float(camera.height))
            self._ctx.enable_only(moderngl.BLEND)
            self._ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
            self._splat_vao.render(moderngl.TRIANGLE_STRIP, vertices=4, instances=m)
            self._ctx.enable_only(moderngl.NOTHING)

    def render_rgba_float(self, camera: Camera, *, max_splats: int | None = None) -> np.ndarray:
        """Colour before the background and alpha, float32 [H, W, 4] (rgb premultiplied, a = 1 - T)."""
        self._check_alive()
        inst = self._project(camera, max_splats)
        if self._ctx is None:
            self._size = (camera.width, camera.height)
            return rasterize_cpu(inst, camera.width, camera.height)
        with self._ctx:
            self._draw_gl(camera, inst)
            raw = self._accum.read()
        return np.frombuffer(raw, dtype=np.float32).reshape(camera.height, camera.width, 4).copy()

    def render_float(self, camera: Camera, background=(0.0, 0.0, 0.0), *,
                     max_splats: int | None = None) -> np.ndarray:
        """The image for ``camera``, float32 [H, W, 3] in [0, 1], row 0 = top, on ``background`` (RGB)."""
        acc = self.render_rgba_float(camera, max_splats=max_splats)
        bg = np.asarray(background, dtype=np.float32).reshape(1, 1, 3)
        return np.clip(acc[..., :3] + (1.0 - acc[..., 3:4]) * bg, 0.0, 1.0)

    def render(self, camera: Camera, background=(0.0, 0.0, 0.0), *,
               max_splats: int | None = None) -> np.ndarray:
        """The image for ``camera``, uint8 [H, W, 3], row 0 = top, on ``background`` (RGB in [0, 1]).

        ``max_splats``: draw only that many of the most significant splats (for interactive motion).
        """
        import moderngl

        self._check_alive()
        bg = tuple(float(c) for c in np.asarray(background, dtype=np.float64).reshape(3))
        inst = self._project(camera, max_splats)
        if self._ctx is None:
            self._size = (camera.width, camera.height)
            return rasterize_cpu(inst, camera.width, camera.height, bg, to_uint8=True)
        with self._ctx:
            self._draw_gl(camera, inst)
            self._out_fbo.use()
            self._accum.use(0)
            self._comp_prog["u_accum"] = 0
            self._comp_prog["u_background"] = bg
            self._ctx.enable_only(moderngl.NOTHING)
            self._comp_vao.render(moderngl.TRIANGLES, vertices=3)
            raw = self._out_fbo.read(components=3, alignment=1)
        return np.frombuffer(raw, dtype=np.uint8).reshape(camera.height, camera.width, 3).copy()

    # -- lifetime --------------------------------------------------------------------------------
    def release(self) -> None:
        """Free every GL object and the EGL context. Idempotent; the renderer is unusable afterwards."""
        self._released = True
        self._scene = None
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        with ctx:
            for name in ("_splat_vao", "_instances", "_comp_vao", "_accum_fbo", "_accum", "_out_fbo",
                         "_out", "_splat_prog", "_comp_prog"):
                obj = getattr(self, name, None)
                if obj is not None:
                    obj.release()
                    setattr(self, name, None)
        ctx.release()

    def __enter__(self) -> "DisplayRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def benchmark_display(scene: GaussianScene, camera: Camera, frames: int = 20,
                      background=(0.0, 0.0, 0.0), max_splats: int | None = None,
                      backend: str | None = None) -> dict:
    """Time ``frames`` full ``render`` calls (project, sort, blend, composite, uint8 image in memory)
    after one warm-up frame, with a fresh renderer.

    Returns ``{"fps", "ms_per_frame", "project_ms" (CPU projection + sort, mean), "n_splats" (drawable),
    "drawn" (visible in this view), "width", "height", "backend", "renderer"}``.
    """
    frames = max(1, int(frames))
    with DisplayRenderer(camera.width, camera.height, backend=backend) as r:
        r.set_scene(scene)
        r.render(camera, background, max_splats=max_splats)
        project_ms = 0.0
        t0 = time.perf_counter()
        for _ in range(frames):
            r.render(camera, background, max_splats=max_splats)
            project_ms += r.last_frame_stats["project_ms"]
        dt = (time.perf_counter() - t0) / frames
        return {"fps": 1.0 / dt, "ms_per_frame": 1000.0 * dt, "project_ms": project_ms / frames,
                "n_splats": r.num_splats if max_splats is None else min(r.num_splats, max_splats),
                "drawn": r.last_frame_stats["drawn"], "width": camera.width, "height": camera.height,
                "backend": r.backend, "renderer": r.renderer_info}
