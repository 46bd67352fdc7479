"""The ``compress``, ``decompress`` and ``eval`` commands.

``compress`` runs the NeuralGS pipeline (``core.pipeline``) with a progress line on stderr and
writes the ``.ngs`` file atomically only once everything succeeded: a failure or Ctrl-C leaves no
file behind and never touches an existing one. ``eval`` renders the original and the compressed
scene at the held-out views the compression used (their settings travel in the ``.ngs`` header)
and reports sizes, ratio and PSNR/SSIM. Generated held-out views are ``eval_size`` pixels square (800
by default: DESIGN §7's evaluation protocol), a dataset's follow the dataset; both commands name the
view size they measured at.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from pathlib import Path

from core.cli_common import UsageError, check_input_file, check_output_path, load_scene
from core.errors import InputFileError

log = logging.getLogger(__name__)


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
        eta = f" eta {_duration(rec.eta_s)}" if rec.eta_s is not None and math.isfinite(rec.eta_s) else ""
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


def _duration(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# -- helpers ---------------------------------------------------------------------------------------------
def load_any_scene(path: str | Path):
    """(GaussianScene, format, bytes, NeuralGSModel or None) for a scene file or a ``.ngs`` file (decoded)."""
    from core.codec import is_ngs_file

    path = check_input_file(Path(path))
    if is_ngs_file(path):
        from core.codec.ngs import read_ngs

        model = read_ngs(path)
        import torch

        with torch.no_grad():
            return model.decode().detach(), "ngs", path.stat().st_size, model
    scene, info = load_scene(path)
    return scene, info.format, info.bytes, None


def build_config(args):
    """CompressionConfig from the preset and the command-line overrides (ValueError -> UsageError)."""
    from core.pipeline.config import config_from_preset

    overrides = {}
    for arg, field_name in [("clusters", "n_clusters"), ("prune", "prune_ratio"), ("lambda_freq", "lambda_freq"),
                            ("fit_iters", "fit_iters"), ("finetune_iters", "finetune_iters"), ("hidden", "hidden"),
                            ("pe_freqs", "pe_freqs"), ("seed", "seed"), ("device", "device"), ("up", "up"),
                            ("background", "background"), ("views", "n_views"), ("view_size", "image_size"),
                            ("eval_size", "eval_size")]:
        value = getattr(args, arg, None)
        if value is not None:
            overrides[field_name] = value
    try:
        return config_from_preset(args.preset, **overrides)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def load_camera_source(args):
    """(cameras or None, use_images) from --dataset / --cameras."""
    if args.dataset and args.cameras:
        raise UsageError("give either --dataset (images are the targets) or --cameras (renders are), not both")
    source = args.dataset or args.cameras
    if not source:
        return None, None
    from core.cameras import load_cameras

    path = Path(source)
    if not path.exists():
        raise InputFileError(path, "no such file or folder")
    cams = load_cameras(path)
    if args.dataset and not all(c.image_path is not None for c in cams.cameras):
        raise InputFileError(path, "the dataset's cameras have no image files (use --cameras to render targets)")
    return cams, bool(args.dataset)


# -- commands ----------------------------------------------------------------------------------------------
def cmd_compress(args) -> int:
    """``compress IN -o OUT.ngs [...]``: run the pipeline, write the file, print a summary."""
    out = check_output_path(Path(args.output), args.force, ".ngs")
    scene, info = load_scene(args.input)
    config = build_config(args)
    cameras, use_images = load_camera_source(args)

    from core.codec.ngs import write_ngs
    from core.pipeline.compress import compress
    from core.pipeline.progress import run_to_completion

    progress = ProgressLine()
    t0 = time.perf_counter()
    try:
        result = run_to_completion(compress(scene, config, cameras=cameras, dataset_images=use_images), progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        progress.close()
    result.model.meta["source"] = {"file": Path(args.input).name, "bytes": info.bytes, "format": info.format}
    n_bytes = write_ngs(result.model, out, overwrite=args.force)
    summary = compress_summary(args.input, out, info.bytes, n_bytes, result, time.perf_counter() - t0)
    print(json.dumps(summary) if args.json else format_compress_summary(summary))
    return 0


def compress_summary(src, out, original_bytes: int, compressed_bytes: int, result, seconds: float) -> dict:
    """The JSON summary of a compression. ``view_size``: pixels, the long side of the held-out views the
    PSNR/SSIM were measured at (None without an evaluation); sizes in bytes, ``seconds`` wall time."""
    from core.pipeline.evaluation import view_size

    m = result.metrics or {}
    return {
        "input": str(src), "output": str(out), "original_bytes": int(original_bytes),
        "compressed_bytes": int(compressed_bytes), "ratio": original_bytes / max(1, compressed_bytes),
        "n_original": result.n_original, "n_kept": result.n_kept, "n_clusters": result.model.n_clusters,
        "psnr": m.get("psnr"), "ssim": m.get("ssim"), "heldout_views": m.get("n_test"),
        "view_size": view_size(result.views.test_cameras) if m else None,
        "target_source": m.get("target_source"), "seconds": seconds,
        "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
    }


def format_compress_summary(s: dict) -> str:
    """The summary as the text ``compress`` prints (sizes, kept Gaussians, held-out quality and its view size)."""
    lines = [
        f"wrote {s['output']}: {s['compressed_bytes']:,} bytes ({s['ratio']:.1f}x smaller than "
        f"{s['original_bytes']:,})",
        f"gaussians: {s['n_kept']:,} kept of {s['n_original']:,} in {s['n_clusters']} clusters",
    ]
    if s["psnr"] is not None:
        against = "dataset images" if s["target_source"] == "dataset" else "the original's renders"
        size = f" at {s['view_size']} px" if s.get("view_size") else ""
        lines.append(f"held-out: PSNR {s['psnr']:.2f} dB, SSIM {s['ssim']:.4f} over {s['heldout_views']} views{size} "
                     f"(against {against})")
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in s["timings_s"].items())
    lines.append(f"time: {s['seconds']:.1f}s ({stages})")
    return "\n".join(lines)


def cmd_decompress(args) -> int:
    """``decompress IN.ngs -o OUT.ply [--clusters n]``: decode (optionally the first n clusters) to a .ply."""
    src = check_input_file(Path(args.input))
    out = check_output_path(Path(args.output), args.force, ".ply")
    if args.clusters is not None and args.clusters < 1:
        raise UsageError("--clusters must be at least 1")
    import torch

    from core.codec.ngs import read_ngs
    from core.io import write_ply

    t0 = time.perf_counter()
    model = read_ngs(src, n_clusters=args.clusters)
    with torch.no_grad():
        scene = model.decode().detach()
    write_ply(scene, out, overwrite=args.force)
    print(f"wrote {out}: {scene.num_gaussians:,} Gaussians from {model.n_clusters} clusters, "
          f"{out.stat().st_size:,} bytes, in {time.perf_counter() - t0:.2f} s")
    return 0


def cmd_eval(args) -> int:
    """``eval ORIGINAL COMPRESSED [--dataset DIR] [--eval-size PX] [--json]``: sizes, ratio, held-out PSNR/SSIM
    and the view size (pixels, long side) they were measured at."""
    from core.pipeline.evaluation import evaluate_pair

    config = build_config(args)  # bad options fail before any work
    original, _, original_bytes, _ = load_any_scene(args.original)
    compressed, fmt, compressed_bytes, model = load_any_scene(args.compressed)
    if model is not None and "config" in model.meta:  # the held-out views the compression used
        config = _views_config_from(model.meta["config"], config, explicit_eval_size=args.eval_size is not None)
    cameras = None
    if args.dataset:
        from core.cameras import load_cameras

        cameras = load_cameras(Path(args.dataset))
    progress = ProgressLine()
    try:
        result = evaluate_pair(original, compressed, config, cameras, progress)
    finally:
        progress.close()
    result.update(original=str(args.original), compressed=str(args.compressed), original_bytes=original_bytes,
                  compressed_bytes=compressed_bytes, ratio=original_bytes / max(1, compressed_bytes))
    print(json.dumps(result) if args.json else format_eval(result))
    return 0


VIEW_FIELDS = ("n_views", "n_test_views", "image_size", "eval_size", "up", "elevation_range_deg",
               "dataset_max_size", "test_every", "background", "seed")


def _views_config_from(saved: dict, config, explicit_eval_size: bool = False):
    """``config`` with the view settings a compression recorded (so eval uses the same held-out views).

    ``eval_size``: the recorded one, unless ``explicit_eval_size`` (``--eval-size`` given: ``config``'s
    wins). A file written before held-out views had their own size records none: ``config``'s (800 px by
    default, the evaluation protocol) is used, not the file's ``image_size``, and a log line says so.
    """
    keep = {k: saved[k] for k in VIEW_FIELDS if k in saved and saved[k] is not None}
    if explicit_eval_size:
        keep.pop("eval_size", None)
    elif "eval_size" not in keep:
        log.info("the file records no held-out view size (written before the 800 px evaluation protocol; its own "
                 "evaluation used %s px views): generated held-out views are rendered at %d px",
                 saved.get("image_size", "?"), config.eval_size)
    for k in ("up", "elevation_range_deg", "background"):
        if k in keep:
            keep[k] = tuple(keep[k])
    try:
        return config.replace(**keep)
    except (ValueError, TypeError) as exc:
        log.warning("ignoring the view settings stored in the file (%s)", exc)
        return config


def format_eval(r: dict) -> str:
    lines = [
        f"original:   {r['original']} ({r['original_bytes']:,} bytes, {r['n_original']:,} Gaussians)",
        f"compressed: {r['compressed']} ({r['compressed_bytes']:,} bytes, {r['n_compressed']:,} Gaussians)",
        f"ratio:      {r['ratio']:.2f}x",
        f"vs original renders: PSNR {r['psnr']:.2f} dB, SSIM {r['ssim']:.4f} ({r['n_views']} held-out views, "
        f"{r['view_size']} px)",
    ]
    if r.get("psnr_gt") is not None:
        lines.append(f"vs dataset images:   PSNR {r['psnr_gt']:.2f} dB, SSIM {r['ssim_gt']:.4f} "
                     f"(original: {r['psnr_gt_original']:.2f} dB, {r['ssim_gt_original']:.4f})")
    return "\n".join(lines)


def ngs_summary(path: Path) -> dict:
    """``info`` for a .ngs file, from its header only (cheap)."""
    from core.codec import read_ngs_header

    hdr = read_ngs_header(path)
    meta = hdr.get("meta") or {}
    lo, hi = hdr["pos_lo"], hdr["pos_hi"]
    return {
        "path": str(path), "format": "ngs", "encoding": f"v{hdr['version']}", "n_gaussians": hdr["n_gaussians"],
        "sh_degree": hdr["sh_degree"], "bytes": hdr["file_size"],
        "bounds": {"min": lo, "max": hi, "p02": lo, "p98": hi, "robust_extent": [b - a for a, b in zip(lo, hi)]},
        "warnings": [], "n_clusters": hdr["n_clusters"], "cluster_sizes": hdr["cluster_sizes"],
        "arch": hdr["arch"], "heldout": meta.get("heldout"), "source": meta.get("source"),
    }
