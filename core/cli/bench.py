"""The ``bench`` commands: ``bench render``, ``bench ablation``, ``bench decode``, ``bench formats``.

The benchmarks themselves are in :mod:`core.bench`; this module parses their options and prints results.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from core.cli.common import EXIT_OK, EXIT_USAGE, ProgressLine, parse_size, parse_up
from core.errors import UsageError

log = logging.getLogger(__name__)


def cmd_bench_render(args) -> int:
    """``bench render``: CPU renderer and display renderer timings at the target sizes."""
    from core.bench.render import format_render_benchmark, run_render_benchmark

    if args.n < 1 or args.repeats < 1 or args.frames < 1:
        raise UsageError("--n, --repeats and --frames must be at least 1")
    result = run_render_benchmark(args.scene, n=args.n, size=args.size, display_size=args.display_size,
                                  repeats=args.repeats, frames=args.frames, seed=args.seed, up=args.up)
    print(json.dumps(result) if args.json else format_render_benchmark(result))
    return EXIT_OK

def cmd_bench_ablation(args) -> int:
    """``bench ablation --scene FILE``: the paper's Table 4 on a real scene."""
    from core.bench.ablation import format_ablation, run_ablation
    from core.cli.compress import build_config, load_camera_source
    from core.io import check_input_file

    check_input_file(Path(args.scene))
    config = build_config(args)
    cameras, use_images = load_camera_source(args)
    progress = ProgressLine()
    try:
        result = run_ablation(args.scene, config, cameras, use_images, progress)
    finally:
        progress.close()
    print(json.dumps(result) if args.json else format_ablation(result))
    return EXIT_OK

def cmd_bench_decode(args) -> int:
    """``bench decode``: .ngs -> GaussianScene time for N Gaussians (target: 1M in < 10 s)."""
    from core.bench.decode import run_decode_benchmark

    result = run_decode_benchmark(args.n, args.clusters, args.hidden, args.sh_degree, args.repeats)
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "" if result["pass"] is None else (" PASS" if result["pass"] else " FAIL")
        print(f"decoded {result['n']:,} Gaussians (SH {result['sh_degree']}, K={result['n_clusters']}, "
              f"hidden {result['hidden']}) from {result['bytes']:,} bytes in {result['seconds']:.2f} s "
              f"(parse {result['parse_seconds']:.2f} s, MLPs {result['mlp_seconds']:.2f} s); target < 10 s{verdict}")
    return EXIT_OK

def cmd_bench_formats(args) -> int:
    """``bench formats``: .ngs at several settings vs splat-transform's compressed .ply, .spz and .sog."""
    from core.bench.formats.plan import default_plan, default_scenes
    from core.bench.formats.run import check_output_dir, run_format_benchmark
    from core.io import check_input_file

    scenes = [check_input_file(Path(s)) for s in args.scenes] if args.scenes else default_scenes()
    if not scenes:
        raise UsageError("no scenes: the shared scenes folder was not found; give --scenes FILE ...")
    out = check_output_dir(Path(args.out), args.force)
    progress = ProgressLine()
    try:
        # the folder is new, an earlier run's (its reports are ours to replace) or --force
        plan = default_plan(quick=args.quick, only=args.only)
        result = run_format_benchmark(scenes, out, plan, progress, overwrite=True, reuse=not args.force)
    finally:
        progress.close()
    print(result["markdown"], end="")
    log.info("wrote %s", ", ".join(str(p) for p in result["files"]))
    for problem in result["failed_scenes"]:
        print(f"error: {problem} (scene skipped)", file=sys.stderr)
    return EXIT_USAGE if result["failed_scenes"] else EXIT_OK


def add_commands(sub, common) -> None:
    """``bench`` and its sub-commands."""
    from core.cli.compress import pipeline_options

    b = sub.add_parser("bench", parents=[common], help="benchmarks", description="Benchmarks.")
    bsub = b.add_subparsers(dest="bench_command", metavar="BENCHMARK", required=True)
    br = bsub.add_parser("render", parents=[common], help="renderer speed and memory against the targets",
                         description="CPU differentiable renderer (forward, forward+backward) and display "
                                     "renderer (fps) on N Gaussians; medians after a warm-up.")
    br.add_argument("--json", action="store_true", help="print one JSON object")
    br.add_argument("--scene", metavar="FILE",
                    help="scene to sample from (default: ../shared/data/scenes/lego-3dgs.ply, else synthetic)")
    br.add_argument("--n", type=int, default=100_000, help="number of Gaussians (default 100000)")
    br.add_argument("--size", type=parse_size, default=(512, 512), metavar="WxH",
                    help="CPU render size (default 512x512)")
    br.add_argument("--display-size", type=parse_size, default=(800, 600), metavar="WxH",
                    help="display render size (default 800x600)")
    br.add_argument("--repeats", type=int, default=5, help="timed repeats after the warm-up (default 5)")
    br.add_argument("--frames", type=int, default=20, help="display frames to time (default 20)")
    br.add_argument("--seed", type=int, default=0, help="seed for the subset and the loss weights")
    br.add_argument("--up", type=parse_up, metavar="AXIS",
                    help="world up of the benchmark view (default: +z for lego-3dgs, else -y)")
    br.set_defaults(func=cmd_bench_render)

    ba = bsub.add_parser("ablation", parents=[common], help="the paper's Table-4 ablation on a real scene",
                         description="Compress one scene four times: one MLP; + clusters; + importance weights; "
                                     "+ frequency loss. Sizes are encoded .ngs bytes; PSNR/SSIM held-out means.")
    ba.add_argument("--scene", required=True, metavar="FILE", help="scene file")
    pipeline_options(ba)
    ba.add_argument("--clusters", type=int, metavar="K", help="clusters for the clustered rows")
    for flag in ("--fit-iters", "--finetune-iters", "--hidden", "--views", "--view-size"):
        ba.add_argument(flag, type=int, metavar="N")
    ba.add_argument("--dataset", metavar="DIR", help="dataset whose images are the targets")
    ba.add_argument("--cameras", metavar="PATH", help="cameras to render targets of the original from")
    ba.add_argument("--json", action="store_true", help="print one JSON object")
    ba.set_defaults(func=cmd_bench_ablation)

    bd = bsub.add_parser("decode", parents=[common], help=".ngs decoding speed (target: 1M Gaussians < 10 s)",
                         description="Encode a random NeuralGS model of N Gaussians, then time decoding it back "
                                     "to a scene on the CPU (fastest of --repeats).")
    bd.add_argument("--n", type=int, default=1_000_000, help="Gaussians (default 1000000)")
    bd.add_argument("--clusters", type=int, default=50, help="clusters (default 50)")
    bd.add_argument("--hidden", type=int, default=64, help="MLP width (default 64)")
    bd.add_argument("--sh-degree", type=int, default=3, choices=(0, 1, 2, 3), help="SH degree (default 3)")
    bd.add_argument("--repeats", type=int, default=3, help="timed runs (default 3)")
    bd.add_argument("--json", action="store_true", help="print one JSON object")
    bd.set_defaults(func=cmd_bench_decode)

    bf = bsub.add_parser("formats", parents=[common], help=".ngs vs compressed .ply, .spz and .sog: size and quality",
                         description="Per scene: compressed .ply, .spz and .sog written and decoded by PlayCanvas "
                                     "splat-transform (installed with npm on first use; skipped without npm), and "
                                     ".ngs at several settings; all rendered at the same held-out views. Writes "
                                     "OUT/results.csv, OUT/results.md and a rate-quality plot per scene.")
    bf.add_argument("--scenes", nargs="+", metavar="FILE",
                    help="scene files (default: every scene in ../shared/data/scenes)")
    bf.add_argument("--out", "-o", required=True, metavar="DIR",
                    help="results folder (created if missing). A folder of an earlier run is resumed: finished "
                         "points with the same settings are reused, the rest computed")
    bf.add_argument("--force", action="store_true",
                    help="recompute every point, and write into a non-empty folder that is not an earlier run's")
    bf.add_argument("--only", choices=("peers", "ngs", "v2"),
                    help="run only splat-transform's formats (peers), only the pure-NeuralGS .ngs points (ngs) or "
                         "only the .ngs v2 rate-controlled curve (v2) (the others' saved points "
                         "still appear in the reports); a later run into the same folder reuses them (so scenes "
                         "and methods can run in separate processes)")
    bf.add_argument("--quick", action="store_true", help="tiny schedules (seconds per point): checks the "
                                                         "machinery, the numbers mean nothing")
    bf.set_defaults(func=cmd_bench_formats)

