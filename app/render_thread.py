"""The viewport's render thread: latest request wins, errors come back inside the result.

One :class:`RenderThread` owns two ``core.display.DisplayRenderer`` (A = original, B = compressed) and
only it touches them. The GUI thread calls ``set_scene`` (a scene or a zero-argument function making
one, run here so that building it never blocks the GUI) and ``request`` (a camera); both replace
whatever was pending, so a burst of mouse moves renders only the newest camera. Each finished render
comes back through the ``rendered`` signal as a :class:`RenderResult`; PSNR/SSIM of the view are
computed for full-resolution renders only.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PySide6.QtCore import QThread, Signal

from core.camera import Camera

log = logging.getLogger(__name__)

RENDER_NICENESS = 5  # below the GUI thread, above the compression worker (Linux per-thread nice)
FAST_MAX_SPLATS = 150_000  # splats drawn while the camera moves (the most significant ones)


@dataclass
class RenderRequest:
    """One view to render. camera: full-resolution camera; full: False = reduced (``fast_scale``) while moving."""

    request_id: int
    camera: Camera
    full: bool = True
    fast_scale: float = 0.5
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass
class RenderResult:
    """What one render produced. images: uint8 [H, W, 3] for A and B (None where there is no scene);
    seconds: wall time of the pair; psnr (dB) / ssim of B against A (full renders with both images);
    n_drawn: splats drawn per side; error: a one-line message instead of raising."""

    request_id: int
    full: bool
    images: tuple[np.ndarray | None, np.ndarray | None]
    seconds: float
    psnr: float | None = None
    ssim: float | None = None
    n_drawn: tuple[int, int] = (0, 0)
    error: str | None = None
    backend: str = ""


def _make_renderer(width: int, height: int):
    from core.display import DisplayRenderer

    try:
        return DisplayRenderer(width, height)
    except Exception as exc:  # noqa: BLE001 - no EGL here: the CPU backend needs none
        log.info("display renderer: %s; using the CPU backend", exc)
        return DisplayRenderer(width, height, backend="cpu")


class RenderThread(QThread):
    """Renders A and B for the newest request; see the module docstring."""

    rendered = Signal(object)  # RenderResult
    sceneFailed = Signal(int, str)  # side (0 = A, 1 = B), message

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._pending: RenderRequest | None = None
        self._scene_jobs: dict[int, object] = {}
        self._stop = False
        self._renderers = [None, None]
        self._has_scene = [False, False]
        self.busy = False

    # -- GUI-thread API --------------------------------------------------------------------------
    def set_scene(self, side: int, scene_or_factory: object | Callable[[], object] | None) -> None:
        """Show this scene on side 0 (A) or 1 (B) from the next render on; None clears the side."""
        with self._cond:
            self._scene_jobs[side] = scene_or_factory
            self._cond.notify()

    def request(self, req: RenderRequest) -> None:
        """Render ``req`` next, dropping any request not started yet."""
        with self._cond:
            self._pending = req
            self._cond.notify()

    def idle(self) -> bool:
        """Nothing pending and nothing running."""
        with self._cond:
            return self._pending is None and not self._scene_jobs and not self.busy

    def stop(self, timeout_ms: int = 30_000) -> bool:
        """Ask the loop to end and wait for it (at most ``timeout_ms``: one render). True when it ended."""
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self.wait(timeout_ms):
            return True
        log.warning("the render thread did not stop within %.0f s", timeout_ms / 1000)
        return False

    # -- the thread ----------------------------------------------------------------------------
    def run(self) -> None:
        from app.compress_worker import lower_thread_priority

        lower_thread_priority(RENDER_NICENESS)
        try:
            while True:
                with self._cond:
                    while not self._stop and self._pending is None and not self._scene_jobs:
                        self._cond.wait()
                    if self._stop:
                        return
                    jobs, self._scene_jobs = self._scene_jobs, {}
                    req, self._pending = self._pending, None
                    self.busy = True
                try:
                    for side, job in jobs.items():
                        self._apply_scene(side, job)
                    if req is not None:
                        self.rendered.emit(self._render(req))
                finally:
                    self.busy = False
        finally:
            for r in self._renderers:
                if r is not None:
                    r.release()

    def _apply_scene(self, side: int, job) -> None:
        try:
            scene = job() if callable(job) else job
            if scene is None:
                self._has_scene[side] = False
                return
            if self._renderers[side] is None:
                self._renderers[side] = _make_renderer(64, 64)
            self._renderers[side].set_scene(scene)
            self._has_scene[side] = True
        except Exception as exc:
            log.exception("could not prepare the scene for display")
            self._has_scene[side] = False
            self.sceneFailed.emit(side, f"{type(exc).__name__}: {exc}")

    def _render(self, req: RenderRequest) -> RenderResult:
        t0 = time.perf_counter()
        cam = req.camera
        if not req.full:
            w = max(16, int(cam.width * req.fast_scale))
            h = max(16, int(cam.height * req.fast_scale))
            cam = cam.resized(w, h)
        images: list[np.ndarray | None] = [None, None]
        drawn = [0, 0]
        backend = ""
        try:
            for side in (0, 1):
                r = self._renderers[side]
                if r is None or not self._has_scene[side]:
                    continue
                images[side] = r.render(cam, req.background, max_splats=None if req.full else FAST_MAX_SPLATS)
                drawn[side] = int(r.last_frame_stats.get("drawn", 0))
                backend = r.backend
            seconds = time.perf_counter() - t0
            psnr = ssim = None
            if req.full and images[0] is not None and images[1] is not None:
                psnr, ssim = view_metrics(images[0], images[1])
            return RenderResult(req.request_id, req.full, (images[0], images[1]), seconds, psnr, ssim,
                                (drawn[0], drawn[1]), None, backend)
        except Exception as exc:
            log.exception("render failed")
            return RenderResult(req.request_id, req.full, (images[0], images[1]), time.perf_counter() - t0,
                                error=f"render failed: {type(exc).__name__}: {exc}")


def view_metrics(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM of uint8 image ``b`` against ``a`` (both [H, W, 3])."""
    from core.metrics import psnr, ssim

    fa = a.astype(np.float32) / 255.0
    fb = b.astype(np.float32) / 255.0
    return float(psnr(fb, fa)), float(ssim(fb, fa))
