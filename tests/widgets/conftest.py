"""Widget tests run without a display: Qt's offscreen platform (set before any Qt import), or under Xvfb
with ``QT_QPA_PLATFORM=xcb``, where :func:`show_active` matters: with no window manager a shown window is
not active, and window shortcuts (B, 1-4, G, F5) only reach an active window."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def show_active(qtbot, widget) -> None:
    """Show ``widget`` and wait until it is exposed and the active window."""
    widget.show()
    qtbot.waitExposed(widget)
    widget.activateWindow()
    qtbot.waitUntil(widget.isActiveWindow, timeout=5000)
