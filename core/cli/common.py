"""Helpers shared by the command-line commands: exit statuses, argument parsing, summaries, progress, PNG output.

Everything heavy (torch, numpy, the readers, the renderer) is imported inside the functions, so that
``python main.py --help`` stays fast.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

from core.errors import OutputFileError, UsageError


log = logging.getLogger(__name__)

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
"""Exit statuses: success, a bug (internal error), bad input or usage, interrupted (Ctrl-C, SIGTERM)."""

NAMED_BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "gray": (0.5, 0.5, 0.5),
                     "grey": (0.5, 0.5, 0.5)}




# -- argument parsing --------------------------------------------------------------------------------
def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (width, height), both positive integers no larger than 16384."""
    import argparse

    parts = text.lower().replace(" ", "").split("x")
    try:
        if len(parts) != 2:
            raise ValueError
        w, h = int(parts[0]), int(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like WIDTHxHEIGHT (e.g. 800x600), got {text!r}") from None
    if not (0 < w <= 16384 and 0 < h <= 16384):
        raise argparse.ArgumentTypeError(f"size must be between 1x1 and 16384x16384, got {text!r}")
    return w, h


def parse_background(text: str) -> tuple[float, float, float]:
    """``"R,G,B"`` with values in [0, 1], or a name (black, white, gray) -> an RGB triple."""
    import argparse

    key = text.strip().lower()
    if key in NAMED_BACKGROUNDS:
        return NAMED_BACKGROUNDS[key]
    try:
        values = tuple(float(v) for v in key.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values):
        raise argparse.ArgumentTypeError(
            f"background must be R,G,B with values in [0, 1] (e.g. 1,1,1) or one of "
            f"{', '.join(sorted(NAMED_BACKGROUNDS))}; got {text!r}")
    return values  # type: ignore[return-value]


def parse_up(text: str) -> tuple[float, float, float]:
    """World up for orbit views: an axis (``+z``, ``-y``, ``x``) or ``X,Y,Z`` (non-zero)."""
    import argparse

    key = text.strip().lower()
    axes = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
    if key.lstrip("+-") in axes and len(key) <= 2:
        sign = -1.0 if key.startswith("-") else 1.0
        return tuple(sign * v for v in axes[key[-1]])  # type: ignore[return-value]
    try:
        values = tuple(float(v) for v in key.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not any(values) or not all(abs(v) < float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"up must be an axis (+z, -y, ...) or X,Y,Z (non-zero); got {text!r}")
    return values  # type: ignore[return-value]


# -- input ---------------------------------------------------------------------------------------------
# -- summaries ---------------------------------------------------------------------------------------------
def scene_bounds(means) -> dict | None:
    """Axis-aligned bounds of the Gaussian centres: min/max and the robust 2nd/98th percentiles."""
    import numpy as np

    m = np.asarray(means.detach().cpu().numpy(), dtype=np.float64)
    m = m[np.isfinite(m).all(axis=1)]
    if m.shape[0] == 0:
        return None
    lo, hi = np.percentile(m, [2.0, 98.0], axis=0)
    r = lambda a: [float(f"{v:.6g}") for v in a]
    return {"min": r(m.min(axis=0)), "max": r(m.max(axis=0)), "p02": r(lo), "p98": r(hi),
            "robust_extent": r(hi - lo)}


def scene_summary(scene, info) -> dict:
    """A JSON-ready summary of a scene and the file it came from."""
    path = Path(getattr(info, "path", ""))
    return {
        "path": str(path),
        "format": getattr(info, "format", None),
        "encoding": getattr(info, "encoding", None),
        "n_gaussians": int(scene.num_gaussians),
        "sh_degree": int(scene.sh_degree),
        "bytes": int(getattr(info, "bytes", path.stat().st_size if path.is_file() else 0)),
        "bounds": scene_bounds(scene.means),
        "warnings": list(getattr(info, "warnings", None) or []),
    }


def format_summary(summary: dict) -> str:
    """The human-readable form of :func:`scene_summary`, one fact per line."""
    fmt = summary["format"] + (f" ({summary['encoding']})" if summary.get("encoding") else "")
    size = summary["bytes"]
    lines = [
        f"file:         {summary['path']}",
        f"format:       {fmt}",
        f"gaussians:    {summary['n_gaussians']:,}",
        f"sh degree:    {summary['sh_degree']}",
        f"size:         {size:,} bytes ({size / 2**20:.2f} MiB)",
    ]
    b = summary["bounds"]
    if b is None:
        lines.append("bounds:       (no finite positions)")
    else:
        v = lambda a: "(" + ", ".join(f"{x:.4g}" for x in a) + ")"
        lines += [
            f"bounds min:   {v(b['min'])}",
            f"bounds max:   {v(b['max'])}",
            f"robust 2%:    {v(b['p02'])}",
            f"robust 98%:   {v(b['p98'])}",
        ]
    warnings = summary["warnings"]
    lines.append(f"warnings:     {len(warnings) if warnings else 'none'}")
    lines += [f"  - {w}" for w in warnings]
    return "\n".join(lines)


# -- output -------------------------------------------------------------------------------------------------
def check_output_path(path: Path, force: bool, suffix: str | tuple[str, ...] = ".png") -> Path:
    """Before any work: refuse an output path with another extension than ``suffix`` (one or several), that
    exists (unless ``force``), is a folder, lies in a missing folder, or cannot be written (a read-only or full
    folder, a name too long, a dangling link): :func:`core.io.atomic.check_writable`'s checks, as UsageErrors."""
    from core.io.atomic import check_writable

    suffixes = (suffix,) if isinstance(suffix, str) else suffix
    if not any(path.name.lower().endswith(s) for s in suffixes):
        raise UsageError(f"{path}: the output must be a {' or '.join(suffixes)} file")
    try:  # the folder, the existing file, the missing folder, a name the file system refuses: one check
        check_writable(path, overwrite=force)
    except FileExistsError:
        raise UsageError(f"{path}: already exists (use --force to overwrite)") from None
    except OutputFileError as exc:
        raise UsageError(str(exc)) from None
    return path


def write_png(path: Path, image, overwrite: bool = False) -> None:
    """Write an image ([H, W, 3] float, clamped to [0, 1]; NaN -> 0) as a PNG, atomically.

    Goes through ``core.images.save_png`` (temp file + rename): an interrupted write never leaves a
    half-written PNG, and an existing file is replaced only with ``overwrite``.
    """
    from core.images import save_png, to_uint8

    try:
        save_png(path, to_uint8(image), overwrite=overwrite)
    except FileExistsError as exc:
        raise UsageError(f"{path}: already exists (use --force to overwrite)") from exc


# -- progress on stderr ------------------------------------------------------------------------------
class ProgressLine:
    """Draws ``stage [#####.....] 42% step/total eta 1m20s  message`` on stderr.

    On a terminal the line is redrawn in place (at most 10 times a second); otherwise (a log file,
    CI) one line per stage change or every 10 s, so logs stay readable.
    """

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last_draw = 0.0
        self.stage = None
        self.width = 0

    def __call__(self, rec) -> None:
        now = time.monotonic()
        changed = rec.stage != self.stage
        if not changed and now - self.last_draw < (0.1 if self.tty else 10.0):
            return
        if changed and self.stage is not None and self.tty:
            self.stream.write("\n")
        self.stage, self.last_draw = rec.stage, now
        frac = min(1.0, rec.step / rec.total) if rec.total else 0.0
        bar = "#" * int(frac * 20)
        eta = f" eta {duration_text(rec.eta_s)}" if rec.eta_s is not None and math.isfinite(rec.eta_s) else ""
        text = f"{rec.stage:<10} [{bar:<20}] {frac:4.0%} {rec.step}/{rec.total}{eta}  {rec.message}"
        if self.tty:
            pad = max(0, self.width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.stage is not None:
            self.stream.write("\n")
            self.stream.flush()


def duration_text(seconds: float) -> str:
    """``seconds`` as ``42s`` or ``3m05s``."""
    s = int(round(seconds))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
