"""The viewport's render thread: latest request wins, the frame first, its metrics after, errors in the result.

One :class:`RenderThread` owns two ``core.display.DisplayRenderer`` (A = original, B = compressed) and
only it touches them. The GUI thread calls ``set_scene`` (a scene or a zero-argument function making
one, run here so that building it never blocks the GUI) and ``request`` (a camera); both replace
whatever was pending, so a burst of mouse moves renders only the newest camera. Each finished render
comes back at once through the ``rendered`` signal as a :class:`RenderResult`, without metrics.

PSNR/SSIM of a full-resolution view follow through ``measured`` (:class:`ViewMetrics`), never before
the frame: PSNR at once (a few milliseconds), then SSIM, computed in bands of rows (numpy, no torch
thread pool to fight the compression's) with a look between bands for newer work: a newer request or
scene gives the SSIM up, so a pending SSIM never holds a frame back (issue 14: a 1074x477 SSIM took
20 s on a busy machine and the toggled frame waited for it). A side whose scene is not the file as
decoded (``set_scene(..., measure=False)``: false colours, a highlighted cluster) is not measured.

The image of a side whose scene and camera did not change since its last render is reused: toggling a
cluster renders B only.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PySide6.QtCore import QThread, Signal

from core.camera import Camera

log = logging.getLogger(__name__)

RENDER_NICENESS = 5  # below the GUI thread, above the compression worker (Linux per-thread nice)
FAST_MAX_SPLATS = 150_000  # splats drawn while the camera moves (the most significant ones)
SSIM_BAND_ROWS = 48  # rows of SSIM per step: about 10-20 ms on an idle core for a 1000-pixel-wide view


@dataclass
class RenderRequest:
    """One view to render. camera: full-resolution camera; full: False = reduced (``fast_scale``) while moving;
    since: when the user started waiting for it (``time.perf_counter``; a request that replaces one not
    started yet keeps the older time)."""

    request_id: int
    camera: Camera
    full: bool = True
    fast_scale: float = 0.5
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    since: float = field(default_factory=time.perf_counter)


@dataclass
class RenderResult:
    """What one render produced. images: uint8 [H, W, 3] for A and B (None where there is no scene);
    seconds: wall time of the renders; since: when the user started waiting (see RenderRequest);
    psnr (dB) / ssim of B against A: None until ``measured`` brings them (the viewport fills them in);
    measure: whether they will come (a full render of both sides, B measurable); note: what B showed
    (``set_scene``'s note, "" = the file as decoded); waited: seconds from ``since`` to the frame on screen
    (the viewport sets it); n_drawn: splats drawn per side; error: a one-line message instead of raising."""

    request_id: int
    full: bool
    images: tuple[np.ndarray | None, np.ndarray | None]
    seconds: float
    psnr: float | None = None
    ssim: float | None = None
    n_drawn: tuple[int, int] = (0, 0)
    error: str | None = None
    backend: str = ""
    since: float = 0.0
    measure: bool = False
    note: str = ""
    waited: float | None = None


@dataclass
class ViewMetrics:
    """PSNR (dB) and SSIM of B against A for the render ``request_id``; ssim None: still being computed."""

    request_id: int
    psnr: float
    ssim: float | None = None


def _make_renderer(width: int, height: int):
    from core.display import DisplayRenderer

    try:
        return DisplayRenderer(width, height)
    except Exception as exc:  # noqa: BLE001 - no EGL here: the CPU backend needs none
        log.info("display renderer: %s; using the CPU backend", exc)
        return DisplayRenderer(width, height, backend="cpu")


class RenderThread(QThread):
    """Renders A and B for the newest request, then measures it; see the module docstring."""

    rendered = Signal(object)  # RenderResult, without metrics
    measured = Signal(object)  # ViewMetrics: PSNR first, then PSNR and SSIM
    sceneFailed = Signal(int, str)  # side (0 = A, 1 = B), message

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._pending: RenderRequest | None = None
        self._scene_jobs: dict[int, tuple[object, bool, str]] = {}
        self._metrics: _MetricsJob | None = None
        self._stop = False
        self._renderers = [None, None]
        self._has_scene = [False, False]
        self._measurable = [True, True]
        self._notes = ["", ""]
        self._cache: list[tuple | None] = [None, None]  # (key, image, drawn) of each side's last render
        self.busy = False

    # -- GUI-thread API --------------------------------------------------------------------------
    def set_scene(self, side: int, scene_or_factory: object | Callable[[], object] | None,
                  measure: bool = True, note: str = "") -> None:
        """Show this scene on side 0 (A) or 1 (B) from the next render on; None clears the side.
        ``measure`` False: renders with this side get no PSNR/SSIM (it does not show the file's colours);
        ``note``: what the side shows when it is not the file as decoded (B's note comes back in each result)."""
        with self._cond:
            self._scene_jobs[side] = (scene_or_factory, bool(measure), str(note))
            self._cond.notify()

    def request(self, req: RenderRequest) -> None:
        """Render ``req`` next, dropping any request not started yet (the user has waited since the older one)."""
        with self._cond:
            if self._pending is not None:
                req.since = min(req.since, self._pending.since)
            self._pending = req
            self._cond.notify()

    def idle(self) -> bool:
        """Nothing pending, nothing running, no metrics being computed."""
        with self._cond:
            return self._pending is None and not self._scene_jobs and not self.busy and self._metrics is None

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
    def _newer_work(self) -> bool:
        return self._stop or self._pending is not None or bool(self._scene_jobs)

    def run(self) -> None:
        from app.compress_worker import lower_thread_priority

        lower_thread_priority(RENDER_NICENESS)
        try:
            while True:
                with self._cond:
                    while not self._newer_work() and self._metrics is None:
                        self._cond.wait()
                    if self._stop:
                        return
                    if self._newer_work():
                        if self._metrics is not None:
                            log.debug("metrics of render %d given up for newer work", self._metrics.request_id)
                        self._metrics = None  # superseded: the next frame gets its own
                        jobs, self._scene_jobs = self._scene_jobs, {}
                        req, self._pending = self._pending, None
                        metrics = None
                    else:
                        jobs, req, metrics = {}, None, self._metrics
                    self.busy = True
                try:
                    if metrics is not None:
                        self._measure_step(metrics)
                        continue
                    for side, (job, measure, note) in jobs.items():
                        self._apply_scene(side, job, measure, note)
                    if req is not None:
                        res = self._render(req)
                        self.rendered.emit(res)  # the frame first ...
                        if res.measure:  # ... its metrics after, unless newer work comes first
                            with self._cond:
                                if not self._newer_work():
                                    self._metrics = _MetricsJob(res.request_id, *res.images)
                finally:
                    self.busy = False
        finally:
            for r in self._renderers:
                if r is not None:
                    r.release()

    def _measure_step(self, job: _MetricsJob) -> None:
        """One step of ``job``: PSNR, or one band of SSIM; emits ``measured`` after PSNR and at the end."""
        try:
            out = job.step()
        except Exception:
            log.exception("view metrics failed")
            out, job.done = None, True
        if out is not None:
            self.measured.emit(out)
        if job.done:
            with self._cond:
                if self._metrics is job:
                    self._metrics = None

    def _apply_scene(self, side: int, job, measure: bool, note: str) -> None:
        self._cache[side] = None
        self._measurable[side], self._notes[side] = measure, note
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
        key = (cam.world_to_camera.tobytes(), cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height,
               tuple(req.background), req.full)
        images: list[np.ndarray | None] = [None, None]
        drawn = [0, 0]
        backend = ""
        try:
            for side in (0, 1):
                r = self._renderers[side]
                if r is None or not self._has_scene[side]:
                    continue
                backend = r.backend
                cached = self._cache[side]
                if cached is not None and cached[0] == key:  # same scene, same view: nothing to draw again
                    images[side], drawn[side] = cached[1], cached[2]
                    continue
                images[side] = r.render(cam, req.background, max_splats=None if req.full else FAST_MAX_SPLATS)
                drawn[side] = int(r.last_frame_stats.get("drawn", 0))
                self._cache[side] = (key, images[side], drawn[side])
            measure = bool(req.full and images[0] is not None and images[1] is not None and self._measurable[1])
            return RenderResult(req.request_id, req.full, (images[0], images[1]), time.perf_counter() - t0,
                                n_drawn=(drawn[0], drawn[1]), backend=backend, since=req.since, measure=measure,
                                note=self._notes[1])
        except Exception as exc:
            log.exception("render failed")
            return RenderResult(req.request_id, req.full, (images[0], images[1]), time.perf_counter() - t0,
                                error=f"render failed: {type(exc).__name__}: {exc}", since=req.since)


# -- metrics -----------------------------------------------------------------------------------------------
_WINDOW = 11
_SIGMA = 1.5
_C1, _C2 = 0.01**2, 0.03**2


def _gaussian_1d() -> np.ndarray:
    x = np.arange(_WINDOW, dtype=np.float64) - (_WINDOW - 1) / 2
    g = np.exp(-(x**2) / (2 * _SIGMA**2))
    return (g / g.sum()).astype(np.float32)


_G = _gaussian_1d()


def view_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of uint8 image ``b`` against ``a`` (both [H, W, 3]), as ``core.metrics.psnr`` of the images / 255."""
    d = a.astype(np.int32) - b.astype(np.int32)
    sse = float(np.einsum("ijk,ijk->", d, d, dtype=np.int64))
    if sse == 0.0:
        return float("inf")
    mse = sse / (d.size * 255.0**2)
    return float(10.0 * np.log10(1.0 / mse))


def _blur(p: np.ndarray) -> np.ndarray:
    """The 11x11 Gaussian filter (separable) of the rows of ``p`` [h + 10, W, C] that have 5 rows of context
    above and below (zero rows at the image's edges); zero padding left and right, as ``core.metrics.ssim_map``.
    Returns [h, W, C]."""
    h = p.shape[0] - (_WINDOW - 1)
    v = _G[0] * p[0:h]
    for k in range(1, _WINDOW):
        v += _G[k] * p[k:k + h]
    half = _WINDOW // 2
    q = np.zeros((h, v.shape[1] + 2 * half, v.shape[2]), dtype=np.float32)
    q[:, half:-half] = v
    w = v.shape[1]
    out = _G[0] * q[:, 0:w]
    for k in range(1, _WINDOW):
        out += _G[k] * q[:, k:k + w]
    return out


def _ssim_band(xp: np.ndarray, yp: np.ndarray, r0: int, r1: int) -> float:
    """Sum of the SSIM map over rows [r0, r1) of two float32 images in [0, 1] zero-padded by 5 rows above and
    below (``xp``, ``yp``: [H + 10, W, C])."""
    x, y = xp[r0:r1 + _WINDOW - 1], yp[r0:r1 + _WINDOW - 1]
    mx, my = _blur(x), _blur(y)
    sxx = _blur(x * x) - mx * mx
    syy = _blur(y * y) - my * my
    sxy = _blur(x * y) - mx * my
    m = ((2 * mx * my + _C1) * (2 * sxy + _C2)) / ((mx * mx + my * my + _C1) * (sxx + syy + _C2))
    return float(m.sum(dtype=np.float64))


class _MetricsJob:
    """PSNR, then SSIM band by band, of one pair of uint8 images ([H, W, 3]); ``step`` does one piece."""

    def __init__(self, request_id: int, a: np.ndarray, b: np.ndarray, band_rows: int = SSIM_BAND_ROWS) -> None:
        self.request_id, self.a, self.b = request_id, a, b
        self.band_rows = max(1, int(band_rows))
        self.psnr: float | None = None
        self.row = 0
        self.total = 0.0
        self.done = False
        self._xp = self._yp = None

    def step(self) -> ViewMetrics | None:
        if self.psnr is None:
            self.psnr = view_psnr(self.a, self.b)
            return ViewMetrics(self.request_id, self.psnr)
        if self._xp is None:
            half = _WINDOW // 2
            h, w, c = self.a.shape
            self._xp = np.zeros((h + 2 * half, w, c), dtype=np.float32)
            self._yp = np.zeros_like(self._xp)
            self._xp[half:-half] = self.a / np.float32(255.0)
            self._yp[half:-half] = self.b / np.float32(255.0)
        h = self.a.shape[0]
        r1 = min(h, self.row + self.band_rows)
        self.total += _ssim_band(self._xp, self._yp, self.row, r1)
        self.row = r1
        if self.row < h:
            return None
        self.done = True
        self._xp = self._yp = None
        return ViewMetrics(self.request_id, self.psnr, self.total / self.a.size)


def view_metrics(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM of uint8 image ``b`` against ``a`` (both [H, W, 3]), all at once."""
    job = _MetricsJob(0, a, b)
    out = None
    while not job.done:
        out = job.step() or out
    return out.psnr, out.ssim
