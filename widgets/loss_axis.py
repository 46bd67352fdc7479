"""A pyqtgraph axis for loss values: plain numbers (no SI prefix), and on a log scale a few readable ticks.

pyqtgraph's own log axis labels every 1..9 multiple of each decade as ``9·10¹`` and, with its automatic SI
prefix, rescales small losses ("x0.001"), so a loss of 0.019 read "2·10¹". Here the labelled ticks are
chosen by :func:`log_ticks`: decades, 1-2-5 or 1..9 multiples, or plain linear steps for a range narrower
than a decade, whichever gives the most labels that stay ``MIN_LABEL_GAP_PX`` apart (on a short axis at
least two, a little closer); the other 1..9 multiples become short unlabelled ticks (and grid lines)
where they are not crowded.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

MIN_LABEL_GAP_PX = 22.0  # a tick label is about 14 px high
MIN_TIGHT_GAP_PX = 15.0  # a short axis: two labels this close still read
MAX_LABELS = 6
MIN_MINOR_GAP_PX = 4.0
_MINOR = -1.0  # the spacing that marks the unlabelled level (pyqtgraph passes it back to tickStrings)


def format_loss(value: float, digits: int = 3) -> str:
    """A tick label with ``digits`` significant digits: ``0.02``, ``0.0015``, ``150``; ``5e-4`` / ``2e6``
    outside 0.001 .. 10000."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    mantissa, exponent = f"{value:.{digits - 1}e}".split("e")
    return f"{float(mantissa):g}e{int(exponent)}"


def format_ticks(values: list[float]) -> list[str]:
    """Labels for one level of ticks: as few significant digits (3 or more) as keep them distinct."""
    for digits in range(3, 8):
        labels = [format_loss(v, digits) for v in values]
        if len(set(labels)) == len(labels):
            break
    return labels


def _candidates(lo: float, hi: float):
    """Candidate major tick sets (values) for [lo, hi], lo > 0: decade-based first, then linear steps."""
    d0, d1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = [10.0 ** d for d in range(d0, d1 + 1)]
    for every in (1, 2, 3, 5, 10, 20, 50):  # every n-th decade (a huge range on a short axis)
        yield [v for i, v in enumerate(decades) if (d0 + i) % every == 0]
    for mantissas in ((1, 2, 5), tuple(range(1, 10))):
        yield [m * v for v in decades for m in mantissas]
    span = hi - lo
    if span > 0:
        k0 = math.floor(math.log10(span / (MAX_LABELS + 1)))
        for k in range(k0, k0 + 3):
            for m in (1, 2, 5):
                step = m * 10.0 ** k
                first = math.ceil(lo / step - 1e-9)
                n = math.floor(hi / step + 1e-9) - first + 1
                if 0 < n <= MAX_LABELS + 1:
                    yield [(first + i) * step for i in range(n)]


def log_ticks(log_lo: float, log_hi: float, length_px: float) -> tuple[list[float], list[float]]:
    """(major, minor) tick positions, as log10 values, for a log axis showing 10**log_lo .. 10**log_hi
    on ``length_px`` pixels: majors get labels, minors do not. The most labels (at most ``MAX_LABELS``)
    that stay ``MIN_LABEL_GAP_PX`` apart; where that leaves fewer than two, the two or more that are
    furthest apart, down to ``MIN_TIGHT_GAP_PX``."""
    log_lo, log_hi = sorted((float(log_lo), float(log_hi)))
    if not (math.isfinite(log_lo) and math.isfinite(log_hi)) or log_hi - log_lo < 1e-12 or length_px <= 0:
        return [], []
    px_per_decade = length_px / (log_hi - log_lo)
    lo, hi = 10.0 ** log_lo, 10.0 ** log_hi
    eps = 1e-9 * (log_hi - log_lo)
    best: list[float] = []
    tight: tuple[float, list[float]] = (0.0, [])  # (smallest gap in px, ticks) of the best set of 2+
    for values in _candidates(lo, hi):
        logs = sorted({round(math.log10(v), 12) for v in values if v > 0})
        logs = [v for v in logs if log_lo - eps <= v <= log_hi + eps]
        if len(logs) > MAX_LABELS:
            continue
        gap = min(np.diff(logs)) * px_per_decade if len(logs) > 1 else math.inf
        if len(logs) > 1 and gap > tight[0]:
            tight = (gap, logs)
        if gap >= MIN_LABEL_GAP_PX and len(logs) > len(best):
            best = logs
    if len(best) < 2 and tight[0] >= MIN_TIGHT_GAP_PX:
        best = tight[1]
    d0, d1 = math.floor(log_lo), math.ceil(log_hi)
    minor = [d + math.log10(m) for d in range(d0, d1 + 1) for m in range(1, 10)]
    minor = [v for v in minor if log_lo <= v <= log_hi and all(abs(v - b) > 1e-9 for b in best)]
    if minor and math.log10(10 / 9) * px_per_decade < MIN_MINOR_GAP_PX:  # crowded: decades only
        minor = [v for v in minor if abs(v - round(v)) < 1e-9]
    return best, minor


class LossAxis(pg.AxisItem):
    """Left axis of a loss plot: no automatic SI prefix; readable log ticks (see the module docstring)."""

    def __init__(self, orientation: str = "left", **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickValues(self, minVal, maxVal, size):  # noqa: N802, N803 - pyqtgraph override
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        major, minor = log_ticks(minVal, maxVal, size)
        return [(1.0, major), (_MINOR, minor)]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph override
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        if spacing == _MINOR:
            return ["" for _ in values]
        return format_ticks([10.0 ** v for v in values])
