"""Viewport: joins the CompareView (widgets) to the RenderThread (core display renderer).

While the camera moves, each change asks for a reduced-resolution render (the newest wins); once it
has been still for ``SETTLE_MS``, a full-resolution render follows, with the view's PSNR/SSIM.
The overlay shows the file facts the window sets (``set_facts``) plus the last render's metrics,
size and speed.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import deque

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from app.render_thread import RenderRequest, RenderResult, RenderThread
from core.camera import Camera
from widgets.compare_view import CompareView

log = logging.getLogger(__name__)

SETTLE_MS = 180


class Viewport(QObject):
    """Owns the render thread of one CompareView."""

    frameShown = Signal(bool)  # a result is on screen; True for a full-resolution one

    def __init__(self, view: CompareView, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.background = (1.0, 1.0, 1.0)
        self.thread = RenderThread(self)
        self.thread.rendered.connect(self._on_rendered)
        self.thread.sceneFailed.connect(self._on_scene_failed)
        self._ids = itertools.count(1)
        self._last_full_id = 0
        self._shown_full_id = 0
        self._has = [False, False]
        self.facts: list[str] = []
        self.last_result: RenderResult | None = None
        self.scene_errors = ["", ""]
        self._frame_times: deque[float] = deque(maxlen=20)
        self._settle = QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self.request_full)
        view.cameraChanged.connect(self._moved)
        view.viewportChanged.connect(self._resized)

    def start(self) -> None:
        self.thread.start()

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Stop the settle timer and the render thread (waiting up to ``timeout_ms`` for its current render)."""
        self._settle.stop()
        self.thread.stop(timeout_ms)

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

    @Slot()
    def _moved(self) -> None:
        if any(self._has):
            self.thread.request(RenderRequest(next(self._ids), self.camera(), False, background=self.background))
        self._settle.start()

    @Slot()
    def _resized(self) -> None:
        self._settle.start()

    def set_scene(self, side: int, scene_or_factory) -> None:
        """Draw this scene (or the scene a zero-argument function returns, built off the GUI thread) on
        side 0 (A, original) or 1 (B, compressed); None clears the side."""
        self._has[side] = scene_or_factory is not None
        self.scene_errors[side] = ""
        self.thread.set_scene(side, scene_or_factory)
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
        self._frame_times.append(time.monotonic())
        self._update_overlay()
        self.frameShown.emit(res.full)

    @Slot(int, str)
    def _on_scene_failed(self, side: int, message: str) -> None:
        self.scene_errors[side] = message
        msgs = list(self.view.messages)
        msgs[side] = f"Cannot display this scene: {message}"
        self.view.set_messages(*msgs)
        self._has[side] = False

    def render_lines(self) -> list[str]:
        """Overlay lines about the last render: metrics of this view, size, time, backend."""
        res = self.last_result
        if res is None:
            return []
        lines = []
        if res.error:
            lines.append(res.error)
        if res.psnr is not None:
            psnr = "∞" if math.isinf(res.psnr) else f"{res.psnr:.2f}"
            lines.append(f"This view: PSNR {psnr} dB · SSIM {res.ssim:.4f} (B against A)")
        elif res.images[0] is not None and res.images[1] is not None:
            lines.append("This view: PSNR/SSIM once the camera stops")
        img = next((i for i in res.images if i is not None), None)
        if img is not None:
            fps = 1.0 / res.seconds if res.seconds > 0 else float("inf")
            quality = "full" if res.full else "moving: reduced"
            lines.append(f"{img.shape[1]}×{img.shape[0]} per image ({quality}) · {1000 * res.seconds:.0f} ms · "
                         f"{fps:.1f} fps · {res.backend} renderer")
        return lines

    def _update_overlay(self) -> None:
        self.view.set_overlay([*self.facts, *self.render_lines()])
