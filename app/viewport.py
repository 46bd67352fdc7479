"""Viewport: joins the CompareView (widgets) to the RenderThread (core display renderer).

While the camera moves, each change asks for a reduced-resolution render (the newest wins); once it
has been still for ``SETTLE_MS``, a full-resolution render follows. A new pane shape (a mode switch, a
resize) asks for a reduced frame at once too. The view's PSNR/SSIM arrive after the frame (the render
thread's ``measured``) and fill in the shown result; they say what they measure: the file as decoded,
the shown subset of its clusters, or nothing when B shows false colours (``set_scene``'s ``note``).
The overlay shows the file facts the window sets (``set_facts``; the "A ·" ones in A's pane) plus the
last render's metrics, size, render time and the user's wait: from the request (the camera move, the
cluster toggle) to the frame on screen, which is what the fps counts.

Keyboard focus: when the focused widget is disabled (Run, Pause or an edited knob when a run starts or
ends), Qt hands the focus to the next widget in the chain, e.g. the cluster table, whose arrow keys then
change its row and grey B out; the viewport gives it to the compare view instead, whose arrow keys orbit.

Both sides render on one background colour (:meth:`Viewport.set_background`), so the view's PSNR/SSIM compare
like with like. :meth:`Viewport.still_job` makes a render-only still of the view at any resolution (the same
camera pose and vertical field of view, the aspect of the requested size) of A, B or both side by side, to run
off the GUI thread (File > Save render…).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QApplication

from app.render_thread import RenderRequest, RenderResult, RenderThread, ViewMetrics
from core.camera import Camera
from widgets.compare_view import CompareView

log = logging.getLogger(__name__)

SETTLE_MS = 180
MAX_STILL_SIZE = 16384  # the largest width or height of a render-only still
STILL_SIDES = {"A": (0,), "B": (1,), "AB": (0, 1)}  # which sides a still shows (AB: side by side, A left)
SIDE_NAMES = {"A": "A (original)", "B": "B (compressed)", "AB": "A | B side by side"}


def still_pane_widths(width: int, n: int) -> list[int]:
    """The widths of ``n`` panes side by side filling ``width`` pixels (the left one gets the odd pixel less)."""
    return [width // n] * (n - 1) + [width - (width // n) * (n - 1)]


def render_still(panes: list[tuple[str, object, Camera]], background, progress) -> np.ndarray:
    """Render each (label, scene or zero-argument function making one, camera) and put the images side by side:
    uint8 [H, W, 3]. Runs in a worker thread, with a renderer of its own (the display renderer the view uses,
    or the CPU one); ``progress``: an :class:`app.tasks.Progress` (two steps per pane; raises Cancelled)."""
    from app.render_thread import _make_renderer

    images = []
    for label, source, cam in panes:
        progress.step(f"Preparing {label}…")
        scene = source() if callable(source) else source
        renderer = _make_renderer(cam.width, cam.height)
        try:
            renderer.set_scene(scene)
            progress.step(f"Rendering {label} ({cam.width}×{cam.height}, {renderer.backend} renderer)…")
            images.append(renderer.render(cam, background))
        finally:
            renderer.release()
    return images[0] if len(images) == 1 else np.concatenate(images, axis=1)


class Viewport(QObject):
    """Owns the render thread of one CompareView."""

    frameShown = Signal(bool)  # a result is on screen; True for a full-resolution one
    metricsShown = Signal()  # PSNR (then SSIM) of the frame on screen arrived

    def __init__(self, view: CompareView, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.background = (1.0, 1.0, 1.0)
        self.sources: list[object] = [None, None]  # what each side draws (a scene or a function making one)
        self.thread = RenderThread(self)
        self.thread.rendered.connect(self._on_rendered)
        self.thread.measured.connect(self._on_measured)
        self.thread.sceneFailed.connect(self._on_scene_failed)
        self._ids = itertools.count(1)
        self._last_full_id = 0
        self._shown_full_id = 0
        self._has = [False, False]
        self.facts: list[str] = []
        self.last_result: RenderResult | None = None
        self.scene_errors = ["", ""]
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self.request_full)
        view.cameraChanged.connect(self._moved)
        view.viewportChanged.connect(self._resized)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._focus_changed)

    def start(self) -> None:
        self.thread.start()

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop the settle timer and the render thread (waiting up to ``timeout_ms`` for its current render)."""
        self._settle.stop()
        self.thread.stop(timeout_ms)

    def set_background(self, rgb) -> None:
        """Render both sides on ``rgb`` (3 floats in [0, 1]) from now on."""
        rgb = tuple(min(1.0, max(0.0, float(c))) for c in rgb)
        if len(rgb) != 3:
            raise ValueError(f"a background is 3 values, got {rgb}")
        self.background = rgb
        self.request_full()

    def sides(self) -> list[int]:
        """The sides that have a scene (0: A, 1: B)."""
        return [side for side in (0, 1) if self._has[side]]

    def still_job(self, width: int, height: int, which: str = "AB") -> tuple[int, Callable]:
        """A render-only still of this view as ``(steps, work)``: ``work(progress)`` (call it in a worker thread)
        returns uint8 [height, width, 3] of A, B or both side by side (``which``: a key of ``STILL_SIDES``), each
        pane with the view's camera pose and vertical field of view at its own size, on this background.
        ``steps``: the progress steps it makes. ValueError for a side without a scene or a size out of range."""
        width, height = int(width), int(height)
        if not (1 <= width <= MAX_STILL_SIZE and 1 <= height <= MAX_STILL_SIZE):
            raise ValueError(f"{width}x{height}: width and height must be 1 to {MAX_STILL_SIZE} pixels")
        sides = STILL_SIDES[which]
        missing = [("A", "B")[s] for s in sides if not self._has[s]]
        if missing:
            raise ValueError(f"side {' and '.join(missing)} shows no scene")
        if width < len(sides):
            raise ValueError(f"{width} pixels are too narrow for {len(sides)} panes")
        w2c = self.view.rig.world_to_camera()
        panes = []
        for side, w in zip(sides, still_pane_widths(width, len(sides))):
            fx, fy, cx, cy = self.view.rig.intrinsics(w, height)
            panes.append((("A", "B")[side], self.sources[side], Camera(w2c.copy(), fx, fy, cx, cy, w, height,
                                                                         name=f"still {('A', 'B')[side]}")))
        background = self.background
        return 2 * len(panes), lambda progress: render_still(panes, background, progress)

    # -- requests ------------------------------------------------------------------------------
    def camera(self) -> Camera:
        """The rig's camera at the current pane size (pixels)."""
        w, h = self.view.pane_size()
        fx, fy, cx, cy = self.view.rig.intrinsics(w, h)
        return Camera(self.view.rig.world_to_camera(), fx, fy, cx, cy, w, h, name="viewport")

    @property
    def pending(self) -> bool:
        """A full-resolution render was asked for and its result has not been shown yet."""
        return self._settle.isActive() or self._shown_full_id < self._last_full_id

    def request_full(self) -> None:
        self._settle.stop()
        if not any(self._has):
            return
        self._last_full_id = next(self._ids)
        self.thread.request(RenderRequest(self._last_full_id, self.camera(), True, background=self.background))

    def _request_fast(self) -> None:
        if any(self._has):
            self.thread.request(RenderRequest(next(self._ids), self.camera(), False, background=self.background))

    @Slot()
    def _moved(self) -> None:
        self._request_fast()
        self._settle.start()

    @Slot()
    def _resized(self) -> None:
        self._request_fast()  # the new pane shape gets a frame now, the full one when it stops changing
        self._settle.start()

    @Slot(object, object)
    def _focus_changed(self, old, new) -> None:
        """The focused widget was disabled and Qt moved the focus on: the compare view takes it (module docstring)."""
        try:
            moved_on = old is not None and not old.isEnabled() and old.window() is self.view.window()
        except RuntimeError:  # a widget being deleted
            return
        if moved_on and new is not self.view:
            QTimer.singleShot(0, self, self._refocus)

    def _refocus(self) -> None:
        try:
            if self.view.isVisible() and self.view.isEnabled():
                self.view.setFocus(Qt.FocusReason.OtherFocusReason)
        except RuntimeError:  # the window is gone
            pass

    def set_scene(self, side: int, scene_or_factory, measure: bool = True, note: str = "") -> None:
        """Draw this scene (or the scene a zero-argument function returns, built off the GUI thread) on
        side 0 (A, original) or 1 (B, compressed); None clears the side. ``measure`` False: no PSNR/SSIM
        with this side (false colours); ``note``: what it shows when it is not the file as decoded (the
        overlay names it beside the metrics, e.g. "B shows 2 of 3 clusters")."""
        self._has[side] = scene_or_factory is not None
        self.sources[side] = scene_or_factory
        self.scene_errors[side] = ""
        self.thread.set_scene(side, scene_or_factory, measure, note)
        if not self._has[side]:
            images = [self.view.image(0), self.view.image(1)]
            images[side] = None
            self.view.set_images(*images)
        self.request_full()

    def set_facts(self, lines: list[str]) -> None:
        """File facts for the overlay (counts, sizes); the render's own lines are appended."""
        self.facts = list(lines)
        self._update_overlay()

    # -- results -------------------------------------------------------------------------------
    @Slot(object)
    def _on_rendered(self, res: RenderResult) -> None:
        self.last_result = res
        if res.full:
            self._shown_full_id = max(self._shown_full_id, res.request_id)
        a, b = res.images
        self.view.set_images(a if self._has[0] else None, b if self._has[1] else None)
        if res.error:
            self.view.set_messages(res.error, res.error)
        res.waited = time.perf_counter() - res.since if res.since else res.seconds
        self._update_overlay()
        self.frameShown.emit(res.full)

    @Slot(object)
    def _on_measured(self, m: ViewMetrics) -> None:
        res = self.last_result
        if res is None or res.request_id != m.request_id:
            return  # the metrics of a frame no longer on screen
        res.psnr, res.ssim = m.psnr, m.ssim
        self._update_overlay()
        self.metricsShown.emit()

    @Slot(int, str)
    def _on_scene_failed(self, side: int, message: str) -> None:
        self.scene_errors[side] = message
        msgs = list(self.view.messages)
        msgs[side] = f"Cannot display this scene: {message}"
        self.view.set_messages(*msgs)
        self._has[side] = False

    def render_lines(self) -> list[str]:
        """Overlay lines about the last render: metrics of this view (and what they measure), size, times."""
        res = self.last_result
        if res is None:
            return []
        lines = []
        if res.error:
            lines.append(res.error)
        if res.images[0] is not None and res.images[1] is not None:
            if not res.full:
                lines.append("This view: PSNR/SSIM once the camera stops")
            elif not res.measure:
                lines.append(f"This view: no PSNR/SSIM ({res.note}: not the file's colours)" if res.note
                             else "This view: no PSNR/SSIM")
            else:
                psnr = "…" if res.psnr is None else "∞" if math.isinf(res.psnr) else f"{res.psnr:.2f}"
                ssim = "…" if res.ssim is None else f"{res.ssim:.4f}"
                head = f"This view ({res.note})" if res.note else "This view"
                lines.append(f"{head}: PSNR {psnr} dB · SSIM {ssim} (B against A)")
        img = next((i for i in res.images if i is not None), None)
        if img is not None:
            waited = res.waited if res.waited is not None else res.seconds
            fps = 1.0 / waited if waited > 0 else float("inf")
            quality = "full" if res.full else "moving: reduced"
            lines.append(f"{img.shape[1]}×{img.shape[0]} per image ({quality}) · on screen {1000 * waited:.0f} ms "
                         f"after the request ({fps:.1f} fps) · render {1000 * res.seconds:.0f} ms · "
                         f"{res.backend} renderer")
        return lines

    def _update_overlay(self) -> None:
        a_facts = [f for f in self.facts if f.startswith("A ·")]
        rest = [f for f in self.facts if not f.startswith("A ·")]
        self.view.set_overlay([*rest, *self.render_lines()], a_lines=a_facts)
