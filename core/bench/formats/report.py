"""Reports of ``bench formats``: ``results.csv``, ``results.md``, one rate-quality plot per scene, and
the per-scene verdict against the goal (a ``.ngs`` point at least 2x smaller than each peer format at
equal quality).

Equal quality: PSNR against the original's renders at least the peer's, where anything of
:data:`EQUAL_DB` or more counts as equal (not visible); against dataset images (lego), at least the peer's.
Every number is measured at the scene's held-out views, whose size (pixels, long side: 800 for generated
views, DESIGN §7; the dataset's own for lego) the reports state per row (CSV) and per scene (Markdown).
Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

log = logging.getLogger(__name__)

EQUAL_DB = 40.0
GOAL_FACTOR = 2.0
CSV_COLUMNS = ["scene", "method", "setting", "detail", "n_gaussians", "bytes", "ratio", "psnr", "ssim", "psnr_gt",
               "ssim_gt", "view_size", "encode_s", "decode_s", "note"]
"""ratio: bytes of the scene's .ply (for another format, the scene rewritten as a standard 3DGS .ply, normals
included) / bytes; psnr/ssim: against the original's renders;
psnr_gt/ssim_gt: against the dataset's held-out images (empty without a dataset);
view_size: pixels, the long side of the held-out views the quality was measured at."""
NON_PEERS = ("ply", "ngs")
_DIGITS = {"ratio": 3, "psnr": 3, "ssim": 5, "psnr_gt": 3, "ssim_gt": 5, "encode_s": 2, "decode_s": 2}


def _cell(key: str, value) -> str:
    if value is None:
        return ""
    if key in _DIGITS:
        return f"{value:.{_DIGITS[key]}f}" if math.isfinite(value) else str(value)
    return str(value)


def format_csv(rows: list[dict]) -> str:
    """The rows as CSV text with :data:`CSV_COLUMNS` (empty cell = not available; ``inf`` = identical renders)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([_cell(k, r.get(k)) for k in CSV_COLUMNS])
    return buf.getvalue()


def scenes_of(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["scene"] for r in rows))


# -- the verdict ------------------------------------------------------------------------------------------
def compare_with_peers(rows: list[dict], key: str = "psnr", cap: float | None = EQUAL_DB) -> list[dict]:
    """For each peer format of one scene: the smallest ``.ngs`` point with ``key`` >= min(peer, cap).

    Returns one dict per peer with a quality: key, peer, peer_bytes, peer_quality, target, match (the .ngs
    row or None), factor (peer bytes / .ngs bytes, None without a match), best (the best .ngs row).
    """
    ngs = sorted((r for r in rows if r["method"] == "ngs" and r.get(key) is not None and r["bytes"]),
                 key=lambda r: r["bytes"])
    best = max(ngs, key=lambda r: r[key], default=None)
    out = []
    for peer in rows:
        if peer["method"] in NON_PEERS or peer.get(key) is None or not peer["bytes"]:
            continue
        target = peer[key] if cap is None else min(peer[key], cap)
        match = next((r for r in ngs if r[key] >= target), None)
        out.append({"key": key, "peer": peer["method"], "peer_bytes": peer["bytes"], "peer_quality": peer[key],
                    "target": target, "match": match, "factor": peer["bytes"] / match["bytes"] if match else None,
                    "best": best})
    return out


def verdict_line(c: dict, against: str = "") -> str:
    """One sentence: where ``.ngs`` is ahead or behind this peer, and by how much."""
    key, m, f = c["key"], c["match"], c["factor"]
    head = f"vs {c['peer']} ({c['peer_bytes']:,} B, {c['peer_quality']:.2f} dB{against}): "
    if m is None:
        best = c["best"]
        if best is None:
            return head + "no .ngs point to compare"
        return (head + f"no .ngs point reaches {c['target']:.2f} dB; the best, {best['setting']} "
                f"({best['bytes']:,} B, {best[key]:.2f} dB), is {c['target'] - best[key]:.2f} dB short: behind")
    quality = m[key]
    size = f"{f:.2f}x smaller" if f >= 1 else f"{1 / f:.2f}x larger"
    status = ("ahead, goal met" if f >= GOAL_FACTOR else "ahead, short of the 2x goal") if f >= 1 else "behind"
    return (head + f".ngs {m['setting']} ({m['bytes']:,} B, {quality:.2f} dB) is {size} "
            f"at >= {c['target']:.2f} dB: {status}")


def scene_verdicts(rows: list[dict]) -> list[str]:
    """The verdict lines of one scene: against the original's renders, and dataset images where present."""
    lines = [verdict_line(c) for c in compare_with_peers(rows)]
    lines += [verdict_line(c, " vs dataset images") for c in compare_with_peers(rows, "psnr_gt", cap=None)]
    return lines


def summary_cell(c: dict) -> str:
    """A short form of :func:`verdict_line` for the summary table."""
    m, f = c["match"], c["factor"]
    if m is None:
        best = c["best"]
        if best is None:
            return "no .ngs point"
        return f"behind: no point >= {c['target']:.2f} dB (best {best[c['key']]:.2f} dB, {best['setting']})"
    if f >= 1:
        return f"ahead: {f:.2f}x smaller ({m['setting']})" + (" - goal met" if f >= GOAL_FACTOR else "")
    return f"behind: {1 / f:.2f}x larger ({m['setting']})"


def summary_table(rows: list[dict]) -> list[str]:
    """Markdown lines: one row per scene (and per scene with dataset images), one column per peer, each
    cell where the smallest ``.ngs`` point of equal quality stands against that peer. Empty without peers."""
    peers = list(dict.fromkeys(r["method"] for r in rows if r["method"] not in NON_PEERS and r["bytes"]))
    if not peers:
        return []
    lines = ["| scene | " + " | ".join(f"vs {p}" for p in peers) + " |", "|---|" + "---|" * len(peers)]
    for scene in scenes_of(rows):
        srows = [r for r in rows if r["scene"] == scene]
        for label, comparisons in ((scene, compare_with_peers(srows)),
                                   (f"{scene} (vs dataset images)", compare_with_peers(srows, "psnr_gt", cap=None))):
            by_peer = {c["peer"]: summary_cell(c) for c in comparisons}
            if by_peer:
                lines.append(f"| {label} | " + " | ".join(by_peer.get(p, "no result") for p in peers) + " |")
            elif label == scene:
                lines.append(f"| {label} | " + " | ".join("no result" for _ in peers) + " |")
    return lines


# -- Markdown ----------------------------------------------------------------------------------------------
def view_size_line(rows: list[dict]) -> str:
    """One scene's sentence naming the held-out view size(s) its numbers were measured at ("" when unknown)."""
    sizes = sorted({r["view_size"] for r in rows if r.get("view_size")})
    if not sizes:
        return ""
    return f"Held-out views: {' / '.join(str(v) for v in sizes)} px on the long side."


def _md_num(value, fmt: str) -> str:
    if value is None:
        return "-"
    return format(value, fmt) if math.isfinite(value) else "inf"


def format_markdown(rows: list[dict], skipped_formats: str | None = None, plots: dict | None = None,
                    failed_scenes: list[str] | None = None) -> str:
    """results.md: one table per scene with its verdict lines and plot (and the scenes that could not be read)."""
    lines = ["# Rate-quality: .ngs vs splat-transform formats", "",
             "PSNR/SSIM: against renders of the original at the held-out views (same CPU renderer; generated "
             "views at 800 px on the long side unless a scene says otherwise, a dataset's at its own size; "
             f">= {EQUAL_DB:.0f} dB counts as visually equal). PSNR gt/SSIM gt: against the dataset's held-out "
             "images. ratio: the scene's .ply bytes (another format: the scene rewritten as a standard 3DGS .ply, "
             "normals included) / bytes. Times: encode, and decode to a .ply, in seconds.", ""]
    if skipped_formats:
        shown = any(r["method"] not in NON_PEERS for r in rows)
        lines += [f"splat-transform formats not run: {skipped_formats}"
                  + ("; the rows of its formats are results saved by an earlier run" if shown else ""), ""]
    if failed_scenes:
        lines += ["Scenes not run (could not be read):", ""] + [f"- {problem}" for problem in failed_scenes] + [""]
    summary = summary_table(rows)
    if summary:
        lines += ["## Summary", "",
                  f"The smallest .ngs point whose PSNR reaches the peer's (capped at {EQUAL_DB:.0f} dB against the "
                  "original's renders; uncapped against dataset images), and how many times smaller or larger "
                  f"than the peer it is (the goal: {GOAL_FACTOR:g}x smaller).", ""] + summary + [""]
    for scene in scenes_of(rows):
        srows = [r for r in rows if r["scene"] == scene]
        size_line = view_size_line(srows)
        lines += [f"## {scene}", ""] + ([size_line, ""] if size_line else []) + [
                  "| method | setting | bytes | ratio | PSNR | SSIM | PSNR gt | SSIM gt | encode s | decode s |",
                  "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"]
        for r in srows:
            setting = r["setting"] + (f" ({r['detail']})" if r["method"] == "ngs" and r["detail"] else "")
            if r["note"]:
                setting += f" - {r['note']}"
            lines.append(f"| {r['method']} | {setting} | {_md_num(r['bytes'], ',')} | {_md_num(r['ratio'], '.1f')} | "
                         f"{_md_num(r['psnr'], '.2f')} | {_md_num(r['ssim'], '.4f')} | "
                         f"{_md_num(r['psnr_gt'], '.2f')} | {_md_num(r['ssim_gt'], '.4f')} | "
                         f"{_md_num(r['encode_s'], '.1f')} | "
                         f"{_md_num(r['decode_s'], '.2f')} |")
        verdicts = scene_verdicts(srows)
        lines += [""] + [f"- {v}" for v in verdicts] + ([""] if verdicts else [])
        if plots and scene in plots:
            lines += [f"![{scene} rate-quality]({plots[scene].name})", ""]
    return "\n".join(lines).rstrip() + "\n"


# -- the plot ----------------------------------------------------------------------------------------------
PEER_STYLE = {"compressed.ply": ("s", "tab:orange"), "spz": ("^", "tab:green"), "sog": ("D", "tab:red")}


def plot_scene(rows: list[dict]) -> bytes:
    """PNG bytes of one scene's rate-quality plot: bytes (log) against PSNR; a second panel against the
    dataset images when there are any."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    panels = [("psnr", "PSNR vs original's renders (dB)")]
    if any(r.get("psnr_gt") is not None and r["method"] != "ply" for r in rows):
        panels.append(("psnr_gt", "PSNR vs dataset images (dB)"))
    fig = Figure(figsize=(5.2 * len(panels) + 2.2, 4.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    original = next((r for r in rows if r["method"] == "ply"), None)
    for i, (key, ylabel) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        _plot_panel(ax, rows, key, original)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(_bytes_label))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("file size (log scale)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    # one legend for all panels, beside them (inside, it hides points)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    for ax in fig.axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="outside right center", fontsize=8, frameon=False)
    scene = rows[0]["scene"] if rows else "?"
    n = original["n_gaussians"] if original and original["n_gaussians"] else None
    fig.suptitle(f"{scene}: rate vs quality" + (f" ({n:,} Gaussians)" if n else ""), fontsize=12)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _bytes_label(value: float, _pos=None) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} B"


def is_v2(row: dict) -> bool:
    """Whether an .ngs row is a point of a v2 rate-controlled curve (its setting is named ``v2-<target>dB``, or
    ``v2-<effort>-<target>dB``)."""
    return str(row.get("setting", "")).startswith("v2-")


def v2_curve(row: dict) -> str | None:
    """The curve an .ngs row belongs to: "pure" (pure NeuralGS), "fast" (v2 without learning) or "default"."""
    if not is_v2(row):
        return "pure"
    return "fast" if str(row.get("setting", "")).startswith("v2-fast-") else "default"


def _plot_panel(ax, rows: list[dict], key: str, original: dict | None) -> None:
    pts = [r for r in rows if r["method"] != "ply" and r.get(key) is not None and r["bytes"]]
    finite = [r[key] for r in pts if math.isfinite(r[key])]
    top = max(finite, default=EQUAL_DB) + 3.0  # where identical renders (inf dB) are drawn
    y = lambda r: r[key] if math.isfinite(r[key]) else top
    for curve, color, label in (("pure", "tab:blue", ".ngs pure NeuralGS"),
                                ("fast", "tab:gray", ".ngs v2, effort fast (no learning)"),
                                ("default", "tab:purple", ".ngs v2 (rate control, learning)")):
        ngs = sorted((r for r in pts if r["method"] == "ngs" and v2_curve(r) == curve), key=lambda r: r["bytes"])
        if not ngs:
            continue
        ax.plot([r["bytes"] for r in ngs], [y(r) for r in ngs], "o-", color=color, label=label, zorder=3)
        for r in ngs:
            ax.annotate(r["setting"], (r["bytes"], y(r)), textcoords="offset points", xytext=(0, 7), ha="center",
                        fontsize=8, color=color)
    for r in pts:
        if r["method"] in PEER_STYLE:
            marker, color = PEER_STYLE[r["method"]]
            ax.plot([r["bytes"]], [y(r)], marker, color=color, markersize=8, label=r["method"], zorder=4)
            if not math.isfinite(r[key]):
                ax.annotate("identical renders", (r["bytes"], y(r)), textcoords="offset points", xytext=(8, -3),
                            fontsize=8, color=color)
    line = EQUAL_DB if key == "psnr" else (original or {}).get(key)
    if line is not None:
        label = f"{EQUAL_DB:.0f} dB: visually equal" if key == "psnr" else f"original .ply vs images ({line:.2f} dB)"
        ax.axhline(line, color="0.3", linestyle="--" if key == "psnr" else "-.", linewidth=1, label=label)
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, line - 1.0), max(high, line + 1.0))
    if original is not None and original["bytes"]:
        ax.axvline(original["bytes"], color="0.5", linestyle=":", linewidth=1,
                   label=f"original .ply size ({_bytes_label(original['bytes'])})")
    sizes = [r["bytes"] for r in pts] + ([original["bytes"]] if original and original["bytes"] else [])
    if sizes:
        ax.set_xlim(min(sizes) / 1.6, max(sizes) * 1.6)


# -- writing ------------------------------------------------------------------------------------------------
def write_reports(rows: list[dict], out_dir: Path, skipped_formats: str | None = None,
                  overwrite: bool = False, failed_scenes: list[str] | None = None) -> dict:
    """Write results.csv, results.md and ``<scene>.png`` per scene into ``out_dir``, atomically.

    ``failed_scenes``: one ``"<path>: <problem>"`` per scene that could not be read (named in results.md).

    Returns {"files": [paths], "verdicts": {scene: [lines]}, "markdown": results.md's text}. A plot that cannot be
    drawn (no matplotlib) is logged and left out, never fatal: the numbers matter more.
    """
    from core.io.atomic import atomic_write_bytes

    files, plots = [], {}
    out_dir = Path(out_dir)
    for scene in scenes_of(rows):
        try:
            png = plot_scene([r for r in rows if r["scene"] == scene])
        except ImportError as exc:
            log.warning("no plot for %s: %s (pip install the project's dependencies)", scene, exc)
            continue
        plots[scene] = out_dir / f"{scene}.png"
        atomic_write_bytes(plots[scene], png, overwrite=overwrite)
        files.append(plots[scene])
    markdown = format_markdown(rows, skipped_formats, plots, failed_scenes)
    for name, text in (("results.csv", format_csv(rows)), ("results.md", markdown)):
        atomic_write_bytes(out_dir / name, text.encode("utf-8"), overwrite=overwrite)
        files.append(out_dir / name)
    verdicts = {scene: scene_verdicts([r for r in rows if r["scene"] == scene]) for scene in scenes_of(rows)}
    return {"files": files, "verdicts": verdicts, "markdown": markdown}
