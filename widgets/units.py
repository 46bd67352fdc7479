"""Human-readable quantities for labels and tables."""

from __future__ import annotations

import math


def human_bytes(n: int) -> str:
    """A byte count with three significant digits in binary units, as ``main.py info`` prints sizes:
    ``950 B``, ``28.1 KiB``, ``2.44 MiB``, ``1.07 GiB``."""
    n = int(n)
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"
    return f"{n} B"


def number_column(values: list[float | None], significant: int = 3, missing: str = "—") -> list[str]:
    """One format for a table column of numbers: fixed decimals, as many as give the smallest non-zero value
    ``significant`` digits (``0.04000``, ``0.07080``, ``0.00312``), or, when the values span more than that
    allows (below 1e-4 or from 1e5 on), scientific notation for all (``4.00e-02``). None shows ``missing``."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(v) and v != 0]
    if not finite:
        return [missing if v is None else f"{float(v):g}" for v in values]
    lo, hi = min(finite), max(finite)
    decimals = max(0, significant - 1 - math.floor(math.log10(lo)))
    if lo < 1e-4 or hi >= 1e5 or decimals > 6:
        fmt = f".{significant - 1}e"
    else:
        fmt = f".{decimals}f"
    return [missing if v is None else format(float(v), fmt) for v in values]


def bytes_column(counts: list[int]) -> list[str]:
    """One unit and one format for a table column of byte counts: the unit of the largest count (binary, as
    :func:`human_bytes`), one decimal (``0.9 KiB``, ``28.0 KiB``, ``55.3 KiB``); plain bytes below 1 KiB."""
    counts = [int(n) for n in counts]
    top = max((abs(n) for n in counts), default=0)
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if top >= size:
            return [f"{n / size:.1f} {unit}" for n in counts]
    return [f"{n} B" for n in counts]
