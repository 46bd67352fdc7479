"""CompareView: original (A) and compressed (B) renders of one shared camera, with navigation.

The view only draws numpy images it is given (uint8 [H, W, 3], row 0 = top) and turns mouse and
key input into changes of its :class:`~widgets.navigation.CameraRig`; it never renders. Whoever owns
it listens to ``cameraChanged`` / ``viewportChanged`` and sends new images with ``set_images``.

Modes: ``"side"`` (A | B, each in half the width), ``"split"`` (one image, A left of a draggable
divider, B right of it), ``"flip"`` (A or B, the B key swaps), ``"diff"`` (heat map of |A - B|).
An image whose shape is not the pane's (the last frame of another mode, until the new one comes) is
drawn at its own shape, centred, never stretched. The overlay (``set_overlay``) is wrapped to its pane;
in side by side, A's lines sit in A's pane and the others in B's (all in A's while B shows no image).
Navigation: left drag orbits (looks around in fly mode), right / middle / Shift+left drag pans,
the wheel zooms, W/A/S/D/Q/E fly, arrow keys orbit, +/- zoom; F frames the scene.
"""

from __future__ import annotations

import logging

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QFont, QImage, QKeySequence, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from widgets.images import HEAT_FULL_SCALE, difference_heatmap, heat_colors, to_qimage
from widgets.navigation import CameraRig

log = logging.getLogger(__name__)

MODES = {"side": "Side by side", "split": "Split", "flip": "A/B flip", "diff": "Difference"}
MODE_KEYS = {"side": "1", "split": "2", "flip": "3", "diff": "4"}
DIVIDER_GRAB_PX = 6
ORBIT_DEG_PER_PX = 0.4
FLY_STEP = 0.05  # fraction of the distance to the target per key press
_BG = QColor(24, 24, 28)


class CompareView(QWidget):
    """Side-by-side / split / flip / difference view of two renders, plus the navigation rig."""

    cameraChanged = Signal()  # the rig changed: render again (the owner decides the resolution)
    viewportChanged = Signal()  # pane size or mode changed
    modeChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rig = CameraRig()
        self.bounds: tuple[np.ndarray, np.ndarray] | None = None
        self.mode = "side"
        self.split = 0.5
        self.show_b = True  # flip mode: which image is shown
        self.fly_mode = False
        self.titles = ("A · Original", "B · NeuralGS")
        self.messages = ("No scene loaded", "No compressed scene yet: press Run (F5) or open a .ngs file")
        self.overlay: list[str] = []  # every overlay line, A's first
        self._overlay_a: list[str] = []
        self._overlay_rest: list[str] = []
        self._np = [None, None]
        self._qimg: list[QImage | None] = [None, None]
        self._diff: QImage | None = None
        self._drag: tuple[str, QPointF] | None = None
        self.setMinimumSize(240, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setToolTip("Left drag: orbit (fly mode: look) · right/middle or Shift+left drag: pan · wheel: zoom\n"
                        "W/A/S/D/Q/E: fly · arrows: orbit · +/-: zoom · F: frame scene · B: flip A/B\n"
                        "1-4: side by side, split (drag the divider), A/B flip, difference heat map")
        self._make_actions()

    # -- actions (shortcuts; the main window also lists them in its View menu) -------------------
    def _make_actions(self) -> None:
        self.mode_group = QActionGroup(self)
        self.mode_actions: dict[str, QAction] = {}
        for mode, label in MODES.items():
            act = QAction(label, self, checkable=True)
            act.setShortcut(QKeySequence(MODE_KEYS[mode]))
            act.setToolTip(f"{label} ({MODE_KEYS[mode]})")
            act.triggered.connect(lambda _=False, m=mode: self.set_mode(m))
            self.mode_group.addAction(act)
            self.mode_actions[mode] = act
        self.mode_actions[self.mode].setChecked(True)
        self.flip_action = QAction("Flip A/B", self, shortcut=QKeySequence("B"),
                                   toolTip="Show the other image (switches to A/B flip mode) (B)")
        self.flip_action.triggered.connect(self.flip)
        self.frame_action = QAction("Frame scene", self, shortcut=QKeySequence("F"),
                                    toolTip="Look at the whole scene from the default angle, orbiting around the "
                                            "world up again (F)")
        self.frame_action.triggered.connect(self.frame_scene)
        self.fly_action = QAction("Fly mode", self, checkable=True, shortcut=QKeySequence("G"),
                                  toolTip="Left drag turns the camera in place instead of orbiting (G)")
        self.fly_action.toggled.connect(self._set_fly)
        self.view_actions = [*self.mode_actions.values(), self.flip_action, self.frame_action, self.fly_action]
        for act in self.view_actions:
            act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(act)

    # -- state ---------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """One of ``MODES``."""
        if mode not in MODES:
            raise ValueError(f"unknown compare mode {mode!r}; choose one of {', '.join(MODES)}")
        if mode == self.mode:
            return
        self.mode = mode
        self.mode_actions[mode].setChecked(True)
        self._keep_framed()
        self.update()
        self.modeChanged.emit(mode)
        self.viewportChanged.emit()

    def flip(self) -> None:
        """A/B flip: show the other image; from another mode, enter flip mode showing B."""
        if self.mode != "flip":
            self.show_b = True
            self.set_mode("flip")
        else:
            self.show_b = not self.show_b
            self.update()

    def set_split(self, fraction: float) -> None:
        """Divider position as a fraction of the width (split mode)."""
        self.split = float(np.clip(fraction, 0.0, 1.0))
        self.update()

    def _set_fly(self, on: bool) -> None:
        self.fly_mode = bool(on)

    def set_scene_bounds(self, lo, hi, up=None, frame: bool = True) -> None:
        """The box to frame (world units, [3] each) and optionally the world up; frames the view."""
        self.bounds = (np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))
        if up is not None:
            self.rig.set_up(up)
        if frame:
            self.frame_scene()

    def frame_scene(self) -> None:
        """Look at the scene bounds from the default orbit angle (F)."""
        if self.bounds is None:
            return
        self.rig.azimuth_deg, self.rig.elevation_deg = 30.0, 20.0
        w, h = self.pane_size()
        self.rig.frame(*self.bounds, aspect=w / max(1, h))
        self.cameraChanged.emit()

    def _keep_framed(self) -> None:
        """A framed scene (not zoomed, panned or flown since) is framed again for the new pane shape: framed
        for two half-width panes, it looked small in the full-width split or flip view."""
        w, h = self.pane_size()
        self.rig.reframe(w / max(1, h))

    def pane_size(self) -> tuple[int, int]:
        """(width, height) in pixels that each render should have for the current mode."""
        w, h = max(1, self.width()), max(1, self.height())
        return (max(1, w // 2), h) if self.mode == "side" else (w, h)

    def set_images(self, a: np.ndarray | None, b: np.ndarray | None) -> None:
        """New renders (uint8 [H, W, 3]) for A and B; None keeps the placeholder message."""
        self._np = [a, b]
        self._qimg = [None if img is None else to_qimage(img) for img in (a, b)]
        self._diff = None
        self.update()

    def image(self, which: int) -> np.ndarray | None:
        """The last image given for A (0) or B (1)."""
        return self._np[which]

    def set_messages(self, a: str, b: str) -> None:
        """Texts shown where an image is missing (or an error)."""
        self.messages = (a, b)
        self.update()

    def set_overlay(self, lines: list[str], a_lines: list[str] | tuple = ()) -> None:
        """Text lines drawn in the bottom-left corner (metrics, counts, sizes, fps). ``a_lines``: lines about A
        alone, drawn in A's pane in side by side mode (above the others in the other modes)."""
        self._overlay_a, self._overlay_rest = list(a_lines), list(lines)
        self.overlay = [*self._overlay_a, *self._overlay_rest]
        self.update()

    def set_titles(self, a: str, b: str) -> None:
        self.titles = (a, b)
        self.update()

    # -- drawing -------------------------------------------------------------------------------
    def _diff_image(self) -> QImage | None:
        a, b = self._np
        if a is None or b is None or a.shape != b.shape:
            return None
        if self._diff is None:
            self._diff = to_qimage(difference_heatmap(a, b))
        return self._diff

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), _BG)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        w, h = self.width(), self.height()
        if self.mode == "side":
            self._draw_pane(p, QRect(0, 0, w // 2, h), 0)
            self._draw_pane(p, QRect(w // 2, 0, w - w // 2, h), 1)
            p.setPen(QPen(QColor(90, 90, 100), 1))
            p.drawLine(w // 2, 0, w // 2, h)
        elif self.mode == "split":
            x = int(round(self.split * w))
            p.save()
            p.setClipRect(QRect(0, 0, x, h))
            self._draw_pane(p, self.rect(), 0, title_at_right=False)
            p.setClipRect(QRect(x, 0, w - x, h))
            self._draw_pane(p, self.rect(), 1, title_at_right=True)
            p.restore()
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(x, 0, x, h)
            p.setBrush(QColor(255, 255, 255, 220))
            p.drawEllipse(QPointF(x, h / 2), 7, 7)
        elif self.mode == "flip":
            self._draw_pane(p, self.rect(), 1 if self.show_b else 0)
        else:
            self._draw_diff(p)
        self._draw_overlay(p)
        p.end()

    @staticmethod
    def _fit(rect: QRect, img: QImage) -> QRectF:
        """Where ``img`` goes in ``rect``: all of it when the shapes agree (within a pixel of rounding), else
        the largest rectangle of the image's shape, centred (a frame of another pane shape is not stretched)."""
        r = QRectF(rect)
        iw, ih = img.width(), img.height()
        if iw <= 0 or ih <= 0 or abs(iw * r.height() - ih * r.width()) <= max(r.width(), r.height()):
            return r
        scale = min(r.width() / iw, r.height() / ih)
        w, h = iw * scale, ih * scale
        return QRectF(r.left() + (r.width() - w) / 2, r.top() + (r.height() - h) / 2, w, h)

    def _draw_pane(self, p: QPainter, rect: QRect, which: int, title_at_right: bool = False) -> None:
        img = self._qimg[which]
        if img is not None:
            p.drawImage(self._fit(rect, img), img)
        else:
            p.setPen(QColor(170, 170, 180))
            p.drawText(rect.adjusted(20, 20, -20, -20), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.messages[which])
        self._draw_label(p, rect, self.titles[which], right=title_at_right)

    def _draw_label(self, p: QPainter, rect: QRect, text: str, right: bool = False) -> None:
        font = QFont(self.font())
        font.setBold(True)
        p.setFont(font)
        fm = p.fontMetrics()
        tw, th = fm.horizontalAdvance(text) + 12, fm.height() + 6
        x = rect.right() - tw - 8 if right else rect.left() + 8
        box = QRect(x, rect.top() + 8, tw, th)
        p.fillRect(box, QColor(0, 0, 0, 150))
        p.setPen(QColor(255, 255, 255))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
        p.setFont(self.font())

    def _draw_diff(self, p: QPainter) -> None:
        img = self._diff_image()
        if img is None:
            p.setPen(QColor(170, 170, 180))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "The difference needs both renders")
            return
        p.drawImage(self._fit(self.rect(), img), img)
        self._draw_label(p, self.rect(), "|A − B| heat map")
        # colour bar, top right: 0 .. HEAT_FULL_SCALE
        bar = heat_colors(np.linspace(0.0, 1.0, 128))[None].repeat(10, axis=0)
        x0, y0 = self.width() - 160, 12
        p.drawImage(QRect(x0, y0, 128, 10), to_qimage(np.ascontiguousarray(bar)))
        p.setPen(QColor(255, 255, 255))
        p.drawText(QRect(x0 - 30, y0 + 12, 60, 16), Qt.AlignmentFlag.AlignCenter, "0")
        p.drawText(QRect(x0 + 98, y0 + 12, 60, 16), Qt.AlignmentFlag.AlignCenter, f"≥{HEAT_FULL_SCALE:g}")

    def _draw_overlay(self, p: QPainter) -> None:
        w, h = self.width(), self.height()
        if self.mode == "side" and self._qimg[1] is None:  # nothing in B's pane: every line under A
            self._draw_box(p, self.overlay, QRect(0, 0, w // 2, h))
        elif self.mode == "side":
            self._draw_box(p, self._overlay_a, QRect(0, 0, w // 2, h))
            self._draw_box(p, self._overlay_rest, QRect(w // 2, 0, w - w // 2, h))
        else:
            self._draw_box(p, self.overlay, self.rect())

    @staticmethod
    def _wrap(fm, line: str, width: int) -> list[str]:
        """``line`` broken at spaces into rows at most ``width`` pixels wide (a longer word stays whole)."""
        rows, row = [], ""
        for word in line.split(" "):
            candidate = f"{row} {word}" if row else word
            if row and fm.horizontalAdvance(candidate) > width:
                rows.append(row)
                row = word
            else:
                row = candidate
        rows.append(row)
        return rows

    def _draw_box(self, p: QPainter, lines: list[str], pane: QRect) -> None:
        """``lines`` in a translucent box at the bottom left of ``pane``, wrapped to stay inside it."""
        if not lines:
            return
        fm = p.fontMetrics()
        lh = fm.height()
        inner = max(40, pane.width() - 32)
        rows = [r for line in lines for r in self._wrap(fm, line, inner)]
        tw = min(pane.width() - 16, max(fm.horizontalAdvance(r) for r in rows) + 16)
        box = QRect(pane.left() + 8, pane.bottom() + 1 - lh * len(rows) - 16, tw, lh * len(rows) + 8)
        p.save()
        p.setClipRect(pane)
        p.fillRect(box, QColor(0, 0, 0, 160))
        p.setPen(QColor(235, 235, 235))
        for i, row in enumerate(rows):
            p.drawText(box.left() + 8, box.top() + 4 + fm.ascent() + i * lh, row)
        p.restore()

    # -- input ---------------------------------------------------------------------------------
    def _near_divider(self, x: float) -> bool:
        return self.mode == "split" and abs(x - self.split * self.width()) <= DIVIDER_GRAB_PX

    def mousePressEvent(self, event) -> None:  # noqa: N802
        pos, button = event.position(), event.button()
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if button == Qt.MouseButton.LeftButton and self._near_divider(pos.x()):
            self._drag = ("divider", pos)
        elif button in (Qt.MouseButton.RightButton, Qt.MouseButton.MiddleButton) or (
                button == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            self._drag = ("pan", pos)
        elif button == Qt.MouseButton.LeftButton:
            self._drag = ("orbit", pos)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        pos = event.position()
        if self._drag is None:
            self.setCursor(Qt.CursorShape.SplitHCursor if self._near_divider(pos.x()) else Qt.CursorShape.ArrowCursor)
            return
        kind, last = self._drag
        dx, dy = pos.x() - last.x(), pos.y() - last.y()
        self._drag = (kind, pos)
        if kind == "divider":
            self.set_split(pos.x() / max(1, self.width()))
            return
        if kind == "pan":
            self.rig.pan(dx, dy, self.pane_size()[1])
        elif self.fly_mode:
            self.rig.look(-dx * ORBIT_DEG_PER_PX, dy * ORBIT_DEG_PER_PX)
        else:
            self.rig.orbit(-dx * ORBIT_DEG_PER_PX, dy * ORBIT_DEG_PER_PX)
        self.cameraChanged.emit()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        self._drag = None

    def wheelEvent(self, event) -> None:  # noqa: N802
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.rig.zoom(0.9 ** steps)
            self.cameraChanged.emit()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        k = event.key()
        fast = 4.0 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1.0
        s = FLY_STEP * fast
        fly = {Qt.Key.Key_W: (s, 0, 0), Qt.Key.Key_S: (-s, 0, 0), Qt.Key.Key_A: (0, -s, 0),
               Qt.Key.Key_D: (0, s, 0), Qt.Key.Key_E: (0, 0, s), Qt.Key.Key_Q: (0, 0, -s)}
        turn = {Qt.Key.Key_Left: (-5, 0), Qt.Key.Key_Right: (5, 0), Qt.Key.Key_Up: (0, 5), Qt.Key.Key_Down: (0, -5)}
        if k in fly:
            self.rig.fly(*fly[k])
        elif k in turn:
            self.rig.orbit(turn[k][0] * fast, turn[k][1] * fast)
        elif k in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.rig.zoom(0.9)
        elif k == Qt.Key.Key_Minus:
            self.rig.zoom(1 / 0.9)
        else:
            super().keyPressEvent(event)
            return
        self.cameraChanged.emit()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._keep_framed()
        self.viewportChanged.emit()
