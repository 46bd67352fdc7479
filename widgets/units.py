"""Human-readable quantities for labels and tables."""

from __future__ import annotations


def human_bytes(n: int) -> str:
    """A byte count with three significant digits in binary units, as ``main.py info`` prints sizes:
    ``950 B``, ``28.1 KiB``, ``2.44 MiB``, ``1.07 GiB``."""
    n = int(n)
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"
    return f"{n} B"
