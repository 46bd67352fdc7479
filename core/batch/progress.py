"""The batch's progress on stderr: one overall bar, and one line per finished scene.

``batch [#####.........] 5/20 done, 2 running, 1 failed, eta 3m10s``: on a terminal the bar is redrawn in place
(at most 4 times a second) and finished scenes print above it; otherwise (a log, CI) the bar is one line written
when a count changes or every 30 s. The ETA comes from the scenes finished in this run: their mean time, times
the scenes left, divided by the scenes that run at once.
"""

from __future__ import annotations

import sys
import time


def duration_text(seconds: float) -> str:
    """``seconds`` as ``42s``, ``3m05s`` or ``2h07m``."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class BatchProgress:
    """Counts and draws; ``slots``: how many scenes run at once on the cluster."""

    def __init__(self, total: int, slots: int, stream=None, clock=time.monotonic) -> None:
        self.total, self.slots = total, max(1, slots)
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.clock = clock
        self.done = self.failed = self.running = 0
        self.times: list[float] = []
        self.last_draw = -1e9
        self.last_text = ""
        self.drawn = False

    def eta_s(self) -> float | None:
        """Seconds left, from the mean time of the scenes computed in this run (None before the first)."""
        if not self.times:
            return None
        left = self.total - self.done - self.failed
        return sum(self.times) / len(self.times) * left / self.slots

    def text(self) -> str:
        finished = self.done + self.failed
        frac = finished / self.total if self.total else 1.0
        eta = self.eta_s()
        tail = f", eta {duration_text(eta)}" if eta is not None and finished < self.total else ""
        return (f"batch [{'#' * int(frac * 20):<20}] {self.done}/{self.total} done, {self.running} running, "
                f"{self.failed} failed{tail}")

    def update(self, running: int | None = None, force: bool = False) -> None:
        """Redraw the bar (rate-limited; ``running``: the scenes in flight now)."""
        if running is not None:
            self.running = min(running, self.slots)
        text = self.text()
        now = self.clock()
        changed = text.split(", eta")[0] != self.last_text.split(", eta")[0]
        if not force and now - self.last_draw < (0.25 if self.tty else (0.0 if changed else 30.0)):
            return
        if not self.tty and not changed and not force and now - self.last_draw < 30.0:
            return
        self.last_draw, self.last_text = now, text
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self.drawn = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finished(self, line: str, ok: bool, seconds: float | None = None) -> None:
        """A scene finished: print its line above the bar and count it (``seconds``: its compression time)."""
        if ok:
            self.done += 1
            if seconds is not None:
                self.times.append(seconds)
        else:
            self.failed += 1
        self.stream.write(("\r\x1b[K" if self.tty and self.drawn else "") + line + "\n")
        self.drawn = False
        self.update(force=True)

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
