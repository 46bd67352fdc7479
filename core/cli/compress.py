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

import argparse
import json
import logging
import time
from pathlib import Path

from core.cli.common import ProgressLine, check_output_path, parse_background, parse_up
from core.errors import ConfigError, InputFileError, UsageError

log = logging.getLogger(__name__)






# -- helpers ---------------------------------------------------------------------------------------------
def build_config(args):
    """CompressionConfig from the preset and the command-line overrides (ValueError -> UsageError)."""
    from core.pipeline.config import codec_overrides, config_from_preset, default_effort

    overrides = {}
    for arg, field_name in [("clusters", "n_clusters"), ("prune", "prune_ratio"), ("lambda_freq", "lambda_freq"),
                            ("fit_iters", "fit_iters"), ("finetune_iters", "finetune_iters"), ("hidden", "hidden"),
                            ("pe_freqs", "pe_freqs"), ("seed", "seed"), ("device", "device"), ("up", "up"),
                            ("background", "background"), ("views", "n_views"), ("view_size", "image_size"),
                            ("eval_size", "eval_size"), ("coadapt_iters", "coadapt_iters"),
                            ("qat_iters", "qat_iters"), ("threads", "threads")]:
        value = getattr(args, arg, None)
        if value is not None:
            overrides[field_name] = value
    preset = getattr(args, "preset", None)
    try:
        overrides.update(codec_overrides(
            preset, target_psnr=getattr(args, "target_psnr", None), target_size=getattr(args, "target_size", None),
            residuals=getattr(args, "residuals", None), format_version=getattr(args, "format_version", None),
            predictor=getattr(args, "predictor", None),
            importance_steps=not getattr(args, "no_importance_steps", False)))
        plain = config_from_preset(preset or "codec", **overrides)
        effort = getattr(args, "effort", None) or default_effort(bool(plain.target_psnr or plain.target_size))
        return config_from_preset(preset or "codec", effort=effort, **overrides)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def parse_byte_size(text: str) -> int:
    """'250000', '250k', '250KB', '1.5MB', '1.5M' -> bytes (k = 1000, as file managers show)."""
    import argparse
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)[bB]?\s*", text or "")
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (bytes, or with k/M/G, e.g. 300k or 1.2MB)")
    value = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2).lower()]
    if value < 1 or value > 2**40:
        raise argparse.ArgumentTypeError(f"size {text!r} is out of range")
    return int(round(value))


def parse_groups(text: str) -> tuple[str, ...]:
    """'all', 'none' or a comma list of residual groups -> a tuple of group names."""
    import argparse

    from core.pipeline.config import RESIDUAL_GROUPS

    t = (text or "").strip().lower()
    if t == "all":
        return RESIDUAL_GROUPS
    if t == "none":
        return ()
    names = tuple(x.strip() for x in t.split(",") if x.strip())
    if "sh_rest" in names:  # all higher SH bands
        names = tuple(n for n in names if n != "sh_rest") + ("sh_band1", "sh_band2", "sh_band3")
    bad = [x for x in names if x not in RESIDUAL_GROUPS]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"unknown residual group(s) {', '.join(bad) or repr(text)}; use all, none or "
                                         f"a comma list of {', '.join(RESIDUAL_GROUPS)}")
    return tuple(g for g in RESIDUAL_GROUPS if g in names)


def load_camera_source(args):
    """(cameras or None, use_images) from --dataset / --cameras."""
    return camera_source(args.dataset, args.cameras)


def camera_source(dataset, cameras):
    """(cameras or None, use_images) from a dataset folder (its images are the targets) or a cameras file."""
    if dataset and cameras:
        raise UsageError("give either --dataset (images are the targets) or --cameras (renders are), not both")
    source = dataset or cameras
    if not source:
        return None, None
    from core.cameras import load_cameras

    path = Path(source)
    if not path.exists():
        raise InputFileError(path, "no such file or folder")
    cams = load_cameras(path)
    if dataset and not all(c.image_path is not None for c in cams.cameras):
        raise InputFileError(path, "the dataset's cameras have no image files (use --cameras to render targets)")
    return cams, bool(dataset)


def run_compression(scene, config, cameras, use_images, progress):
    """The pipeline's result for ``scene`` (``progress``: called with each record, or None); settings that do
    not fit this scene or dataset are a UsageError (any other ValueError is a bug)."""
    from core.pipeline.compress import compress
    from core.pipeline.progress import run_to_completion

    try:
        return run_to_completion(compress(scene, config, cameras=cameras, dataset_images=use_images), progress)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def ngs_chunks(result, source_name: str, info, scene) -> list[bytes]:
    """The ``.ngs`` file of a compression ``result`` as byte chunks, recording the source as the app does too (a
    .ngs opened over another scene is recognised by its fingerprint). No wall-clock time goes into the file: the
    same scene with the same settings and thread count gives the same bytes (``compress`` and ``batch`` alike)."""
    from core.pipeline.compress import file_meta, means_fingerprint, source_meta

    result.model.meta.pop("timings", None)
    result.model.meta["source"] = source_meta(source_name, info.bytes, info.format, scene.num_gaussians,
                                              means_fingerprint(scene.means))
    if result.encoded is not None:  # .ngs v2: the bytes the pipeline measured, with the source recorded
        result.encoded.set_meta(file_meta(result.model.meta))
        return list(result.encoded.chunks)
    from core.codec.ngs import encode_ngs

    return [encode_ngs(result.model)]


# -- commands ----------------------------------------------------------------------------------------------
def cmd_compress(args) -> int:
    """``compress IN -o OUT.ngs [...]``: run the pipeline, write the file, print a summary."""
    out = check_output_path(Path(args.output), args.force, ".ngs")
    from core.io.scene_files import load_scene_file

    loaded = load_scene_file(args.input)  # any readable format; a .ngs is decoded and compressed again
    scene, info = loaded.scene, loaded.info
    config = build_config(args)
    cameras, use_images = load_camera_source(args)

    from core.codec.ngs import write_chunks

    progress = ProgressLine()
    t0 = time.perf_counter()
    try:
        result = run_compression(scene, config, cameras, use_images, progress)
    finally:
        progress.close()
    n_bytes = write_chunks(ngs_chunks(result, Path(args.input).name, info, scene), out, overwrite=args.force)
    codec = result.codec or {}
    if codec.get("reached") is False:
        log.warning("%s", codec.get("message"))
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
        "effort": (result.model.meta.get("config") or {}).get("effort"),
        "codec": result.codec,
    }


def format_codec_report(c: dict) -> list[str]:
    """Lines saying what the v2 encoder and its rate control tried and chose."""
    b = c.get("bytes") or {}
    preds = c.get("predictors") or {}
    st = c.get("settings") or {}
    lines = [f"codec: .ngs v2, {b.get('positions', 0):,} B positions ({st.get('position_bits', 16)}-bit grid), "
             f"{b.get('predictor', 0):,} B predictors ({preds.get('mlp', 0)} MLP, {preds.get('constant', 0)} "
             f"constant), {b.get('residuals', 0):,} B residuals, {b.get('header', 0):,} B header"]
    if c.get("target_psnr") or c.get("target_size"):
        goal = f"{c['target_psnr']:.2f} dB" if c.get("target_psnr") else f"{c['target_size']:,} bytes"
        ceil = c.get("prune_search") or []
        if ceil:
            lines.append("search: prune ceilings " + ", ".join(
                f"{t['prune']:.2f}@{t['bits']}b {t['psnr']:.1f} dB{' co-adapted' if t.get('coadapted') else ''}"
                for t in ceil))
        trials = c.get("trials") or []
        lines.append(f"search: {len(trials)} encodings tried for the target {goal}; chose prune "
                     f"{c.get('prune_ratio', 0):.2f}, {c.get('variant')}")
        if c.get("reached") is False:
            lines.append(f"NOT REACHED: {c.get('message')}")
    return lines


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
    if s.get("codec"):
        lines += format_codec_report(s["codec"])
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in s["timings_s"].items())
    effort = f"effort {s['effort']}; " if s.get("effort") not in (None, "custom") else ""
    lines.append(f"time: {s['seconds']:.1f}s ({effort}{stages})")
    return "\n".join(lines)


def cmd_decompress(args) -> int:
    """``decompress IN.ngs -o OUT.ply [--clusters n]``: decode (optionally the first n clusters) to a .ply."""
    from core.io import check_input_file

    src = check_input_file(Path(args.input))
    out = check_output_path(Path(args.output), args.force, ".ply")
    if args.clusters is not None and args.clusters < 1:
        raise UsageError("--clusters must be at least 1")
    from core.codec.ngs import read_ngs_scene
    from core.io import write_ply

    t0 = time.perf_counter()
    model, scene = read_ngs_scene(src, n_clusters=args.clusters)
    write_ply(scene, out, overwrite=args.force)
    print(f"wrote {out}: {scene.num_gaussians:,} Gaussians from {model.n_clusters} clusters, "
          f"{out.stat().st_size:,} bytes, in {time.perf_counter() - t0:.2f} s")
    return 0


def cmd_eval(args) -> int:
    """``eval ORIGINAL COMPRESSED [--dataset DIR] [--eval-size PX] [--json]``: sizes, ratio, held-out PSNR/SSIM
    and the view size (pixels, long side) they were measured at."""
    from core.pipeline.evaluation import evaluate_pair

    config = build_config(args)  # bad options fail before any work
    from core.io.scene_files import load_scene_file

    a, b = load_scene_file(args.original), load_scene_file(args.compressed)
    original, original_bytes = a.scene, a.info.bytes
    compressed, compressed_bytes, model = b.scene, b.info.bytes, b.model
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
        "codec": _codec_info(hdr),
    }


def _codec_info(hdr: dict) -> dict | None:
    """For a v2 header: position bits, coded groups and their steps, predictors, bytes per cluster section."""
    if hdr.get("version") != 2:
        return None
    from core.codec.ngs_format_v2 import describe_codec

    return {**describe_codec(hdr), "position_bits": hdr.get("position_bits"),
            "section_bytes": [s["length"] for s in hdr.get("sections", [])],
            "target": (hdr.get("meta") or {}).get("codec")}


# -- the parsers ----------------------------------------------------------------------------------------
def pipeline_options(p: argparse.ArgumentParser) -> None:
    """Options shared by compress and eval: the preset and what decides the views."""
    p.add_argument("--preset", choices=("codec", "preview", "balanced", "paper"), default=None,
                   help="settings bundle. Default codec: .ngs v2 with residuals and rate control (no target: "
                        "--target-psnr 40, visually lossless). preview, balanced, paper: the paper's pure NeuralGS "
                        "(no residuals unless a target is given; paper: 60k/25k iterations, for a CUDA machine)")
    p.add_argument("--up", type=parse_up, metavar="AXIS",
                   help="world up for generated views: +z (Blender), -y (COLMAP/3DGS, the default)")
    p.add_argument("--background", type=parse_background, metavar="R,G,B",
                   help="background of targets and renders (default white)")
    p.add_argument("--seed", type=int, help="random seed (default 0): the same seed gives the same file")
    p.add_argument("--eval-size", type=int, metavar="PX",
                   help="long side in pixels of the generated held-out views PSNR/SSIM are measured at (default "
                        "800, the evaluation protocol; eval: the one the .ngs records). A dataset's views keep "
                        "its own size")


def compression_options(c: argparse.ArgumentParser) -> None:
    """Every option that decides how one scene is compressed (``compress`` and ``batch`` take the same)."""
    pipeline_options(c)
    c.add_argument("--clusters", type=int, metavar="K", help="number of clusters (one MLP each)")
    c.add_argument("--prune", type=float, metavar="R", help="fraction of the least important Gaussians removed "
                                                            "(default 0.4)")
    c.add_argument("--lambda-freq", type=float, metavar="F", help="weight of the frequency loss (default 0.01)")
    c.add_argument("--fit-iters", type=int, metavar="N", help="MLP fitting iterations")
    c.add_argument("--finetune-iters", type=int, metavar="N", help="fine-tuning iterations")
    c.add_argument("--hidden", type=int, metavar="W", help="MLP hidden width")
    c.add_argument("--pe-freqs", type=int, metavar="L", help="positional-encoding frequencies (default 10)")
    c.add_argument("--views", type=int, metavar="N", help="generated training views (without --dataset)")
    c.add_argument("--view-size", type=int, metavar="PX", help="generated training view size in pixels")
    c.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to compute (default auto)")
    g = c.add_argument_group(".ngs v2 codec and rate control")
    g.add_argument("--target-psnr", type=float, metavar="DB",
                   help="smallest file reaching this PSNR on the held-out views (against the original's renders, or "
                        "the images with --dataset); default 40 without a preset")
    g.add_argument("--target-size", type=parse_byte_size, metavar="BYTES",
                   help="best quality within this size (bytes; 300k, 1.2MB also accepted)")
    g.add_argument("--residuals", type=parse_groups, metavar="GROUPS",
                   help="attribute groups that may carry residuals: all (default with a target), none, or a comma "
                        "list of opacity, log_scales, rotation, sh_dc, sh_band1, sh_band2, sh_band3 (sh_rest: all "
                        "three bands)")
    g.add_argument("--predictor", choices=("auto", "mlp", "constant"),
                   help="per-cluster predictor: auto (default: whichever of the cluster's MLP and a constant gives "
                        "fewer bytes), mlp, constant")
    g.add_argument("--no-importance-steps", action="store_true",
                   help="one residual step for every Gaussian (default: coarser steps for less important ones)")
    g.add_argument("--effort", choices=("fast", "default", "max"),
                   help="how much the codec learns from the pictures: fast (no learning: co-adaptation and "
                        "quantisation-aware fine-tuning off), default (300 + 150 steps through the renderer; the "
                        "default with a target), max (1000 + 400). Without a target the default is fast")
    g.add_argument("--coadapt-iters", type=int, metavar="N",
                   help="steps co-adapting the kept Gaussians after pruning (overrides the effort's)")
    g.add_argument("--qat-iters", type=int, metavar="N",
                   help="steps of quantisation-aware fine-tuning at the chosen residual step (overrides the effort's)")
    g.add_argument("--format-version", type=int, choices=(1, 2),
                   help="2 (default): entropy-coded .ngs v2; 1: the paper's storage (pure NeuralGS presets only)")
    c.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for one compression (default: CPU count - 1; batch: 1 per scene). The same "
                        "scene, settings and thread count give the same file")


def add_commands(sub, common) -> None:
    """compress, decompress, eval."""
    c = sub.add_parser("compress", parents=[common], help="compress a scene to .ngs with NeuralGS",
                       description="Importance pruning, k-means clusters, one tiny MLP per cluster, fine-tuning "
                                   "through the renderer; writes OUT.ngs atomically (Ctrl-C leaves nothing).")
    c.add_argument("input", help="scene file (.ply, .compressed.ply, .splat)")
    c.add_argument("-o", "--output", required=True, help="output .ngs (refused if it exists, unless --force)")
    c.add_argument("--force", action="store_true", help="replace --output if it exists")
    compression_options(c)
    c.add_argument("--dataset", metavar="DIR", help="dataset whose images are the fine-tuning targets "
                                                     "(every 8th image held out)")
    c.add_argument("--cameras", metavar="PATH", help="cameras to render targets of the original from")
    c.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    c.set_defaults(func=cmd_compress)

    d = sub.add_parser("decompress", parents=[common], help="decode a .ngs file to a standard .ply",
                       description="Decode a .ngs file (optionally only its first, largest n clusters) to .ply.")
    d.add_argument("input", help=".ngs file")
    d.add_argument("-o", "--output", required=True, help="output .ply (refused if it exists, unless --force)")
    d.add_argument("--clusters", type=int, metavar="N", help="decode only the first N clusters (progressive)")
    d.add_argument("--force", action="store_true", help="replace --output if it exists")
    d.set_defaults(func=cmd_decompress)

    e = sub.add_parser("eval", parents=[common], help="sizes and held-out PSNR/SSIM of a compressed scene",
                       description="Render ORIGINAL and COMPRESSED at the held-out views the compression used "
                                   "and compare; with --dataset, also against the dataset's images.")
    e.add_argument("original", help="original scene file")
    e.add_argument("compressed", help="compressed scene (.ngs or any scene file)")
    e.add_argument("--dataset", metavar="DIR", help="dataset with images (held-out: every 8th)")
    pipeline_options(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_eval)
