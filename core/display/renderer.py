"""The display renderer (viewport): splats blended with moderngl into an offscreen EGL framebuffer.

Qt-free; works with no display and with ``QT_QPA_PLATFORM=offscreen`` (EGL only, never GLX: a GLX
context after an EGL one in the same process aborts). It renders the image the differentiable
renderer renders (gsplat 1.5.3 classic rasterisation; see ``core.display.frame`` for the maths):

1. ``set_scene`` activates the attributes once (``frame.DisplayScene``), most significant first;
2. per frame, numba projects every splat, evaluates its SH colour and sorts the visible ones back to
   front (``frame.project_frame``); the instance table (48 bytes per splat) is uploaded;
3. one instanced quad per splat (the oriented rectangle of its 1/255 ellipse) is blended back to
   front with premultiplied "over" (ONE, ONE_MINUS_SRC_ALPHA) into an RGBA32F texture, so nothing
   accumulates in 8 bits; alpha ends as 1 - T;
4. ``render`` composites ``colour + T * background`` on the GPU and reads 8 bits back;
   ``render_float`` reads the float texture and composites in numpy.

Threading: every GL call runs inside ``with self._ctx`` (makes this renderer's EGL context current and
restores the previous one), so several renderers can coexist in one process; use one renderer from
one thread at a time.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from core.camera import Camera
from core.display.frame import INSTANCE_FLOATS, DisplayScene, project_frame
from core.scene import GaussianScene

log = logging.getLogger(__name__)

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


class DisplayRenderer:
    """Interactive splat renderer into an offscreen EGL framebuffer (see the module docstring).

    ``width`` x ``height``: initial framebuffer size in pixels; each ``render`` resizes it to the
    camera's size when they differ. Use as a context manager or call ``release()``.
    Raises whatever moderngl raises when no EGL context can be created (check ``display_available``).
    """

    def __init__(self, width: int = 800, height: int = 600):
        import moderngl

        self._ctx = _create_context()
        self._size = (0, 0)
        self._accum = self._accum_fbo = self._out = self._out_fbo = None
        self._instances = self._splat_vao = None
        self._capacity = 0
        self._scene: DisplayScene | None = None
        self.last_frame_stats: dict = {}
        try:
            with self._ctx:
                self._splat_prog = self._ctx.program(vertex_shader=_shader_source("splat.vert"),
                                                     fragment_shader=_shader_source("splat.frag"))
                self._comp_prog = self._ctx.program(vertex_shader=_shader_source("composite.vert"),
                                                    fragment_shader=_shader_source("composite.frag"))
                self._comp_vao = self._ctx.vertex_array(self._comp_prog, [])
                self._ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
                self._ctx.blend_equation = moderngl.FUNC_ADD
                self._resize(int(width), int(height))
                self.renderer_info = f"{self._ctx.info['GL_RENDERER']}, OpenGL {self._ctx.info['GL_VERSION']}"
        except Exception:
            self.release()
            raise
        log.debug("display renderer on %s", self.renderer_info)

    # -- resources -------------------------------------------------------------------------------
    def _resize(self, width: int, height: int) -> None:
        if (width, height) == self._size:
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
        if count <= self._capacity:
            return
        for obj in (self._splat_vao, self._instances):
            if obj is not None:
                obj.release()
        self._capacity = max(count, 1024)
        self._instances = self._ctx.buffer(reserve=self._capacity * INSTANCE_FLOATS * 4, dynamic=True)
        self._splat_vao = self._ctx.vertex_array(
            self._splat_prog, [(self._instances, "4f 4f 4f/i", "i_quad0", "i_quad1", "i_color")])

    @property
    def num_splats(self) -> int:
        """Number of drawable splats in the current scene (opacity >= 1/255, finite values)."""
        return 0 if self._scene is None else len(self._scene)

    @property
    def size(self) -> tuple[int, int]:
        """Current framebuffer (width, height) in pixels."""
        return self._size

    def set_scene(self, scene: GaussianScene) -> None:
        """Activate ``scene`` (any device, SH degree 0-3) for drawing; replaces the previous scene."""
        self._check_alive()
        ds = DisplayScene(scene)
        with self._ctx:
            self._ensure_capacity(len(ds))
        self._scene = ds
        log.debug("display: scene with %d drawable splats, SH degree %d", len(ds), scene.sh_degree)

    # -- drawing ---------------------------------------------------------------------------------
    def _check_alive(self) -> None:
        if self._ctx is None:
            raise RuntimeError("DisplayRenderer used after release()")

    def _draw(self, camera: Camera, max_splats: int | None) -> None:
        """Fill the accumulation texture for ``camera`` (premultiplied rgb, a = 1 - T). In the context."""
        import moderngl

        t0 = time.perf_counter()
        inst = (project_frame(self._scene, camera, max_splats) if self._scene is not None
                else np.zeros((0, INSTANCE_FLOATS), np.float32))
        t1 = time.perf_counter()
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
        self.last_frame_stats = {"drawn": m, "project_ms": 1000.0 * (t1 - t0)}

    def render_rgba_float(self, camera: Camera, *, max_splats: int | None = None) -> np.ndarray:
        """Colour before the background and alpha, float32 [H, W, 4] (rgb premultiplied, a = 1 - T)."""
        self._check_alive()
        with self._ctx:
            self._draw(camera, max_splats)
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
        with self._ctx:
            self._draw(camera, max_splats)
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
        self._scene = None

    def __enter__(self) -> "DisplayRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def benchmark_display(scene: GaussianScene, camera: Camera, frames: int = 20,
                      background=(0.0, 0.0, 0.0), max_splats: int | None = None) -> dict:
    """Time ``frames`` full ``render`` calls (project, sort, upload, blend, composite, read back uint8)
    after one warm-up frame, with a fresh renderer.

    Returns ``{"fps", "ms_per_frame", "project_ms" (CPU projection + sort, mean), "n_splats" (drawable),
    "drawn" (visible in this view), "width", "height", "renderer"}``.
    """
    frames = max(1, int(frames))
    with DisplayRenderer(camera.width, camera.height) as r:
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
                "renderer": r.renderer_info}
