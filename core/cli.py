"""The NeuralGS Studio command line: ``python main.py <command> ...``.

Commands: ``info`` (what a scene file holds), ``render`` (one view to a PNG), ``bench render``
(renderer speed against the targets), ``demo`` (summarise and render the demo scene). ``main.py`` without
a command starts the desktop application (``app.main``; main.py routes there, core never imports Qt);
``main(argv)`` called here without a command still runs ``demo``.

Results go to stdout; logging (INFO, or DEBUG with ``-v``) goes to stderr. A user error (a bad file, a
bad option, an output that exists) prints one line ``error: <path>: <problem>`` and exits with 2, never
a traceback; Ctrl-C exits with 130. Heavy modules are imported inside the command functions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from core.cli_common import UsageError, parse_background, parse_size, parse_up
from core.errors import InputFileError

log = logging.getLogger("core.cli")

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _StderrFormatter(logging.Formatter):
    """``message`` for INFO, ``warning: message`` / ``error: message`` otherwise; more detail with -v."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("%(asctime)s %(name)s: %(message)s" if verbose else "%(message)s", "%H:%M:%S")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno == logging.INFO and not self.verbose:
            return text
        return f"{record.levelname.lower()}: {text}"


def configure_logging(verbose: bool) -> None:
    """INFO (or DEBUG) to stderr through one handler on the root logger; quiet third-party loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_StderrFormatter(verbose))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("numba", "matplotlib", "PIL", "moderngl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# -- commands -------------------------------------------------------------------------------------------
def cmd_info(args) -> int:
    """``info FILE [--json]``: format, Gaussian count, SH degree, bounds, size and reader warnings."""
    from core.cli_common import format_summary, scene_summary
    from core.io import check_input_file, read_scene_with_info
    from core.cli_compress import ngs_summary
    from core.codec import is_ngs_file

    path = check_input_file(Path(args.file))
    if is_ngs_file(path):
        summary = ngs_summary(path)
    else:
        scene, info = read_scene_with_info(path)
        summary = scene_summary(scene, info)
    print(json.dumps(summary) if args.json else format_summary(summary))
    return EXIT_OK


def cmd_compress(args) -> int:
    from core.cli_compress import cmd_compress as run

    return run(args)


def cmd_decompress(args) -> int:
    from core.cli_compress import cmd_decompress as run

    return run(args)


def cmd_eval(args) -> int:
    from core.cli_compress import cmd_eval as run

    return run(args)


def cmd_bench_render(args) -> int:
    """``bench render``: CPU renderer and display renderer timings at the target sizes."""
    from core.bench import format_render_benchmark, run_render_benchmark

    if args.n < 1 or args.repeats < 1 or args.frames < 1:
        raise UsageError("--n, --repeats and --frames must be at least 1")
    result = run_render_benchmark(args.scene, n=args.n, size=args.size, display_size=args.display_size,
                                  repeats=args.repeats, frames=args.frames, seed=args.seed, up=args.up)
    print(json.dumps(result) if args.json else format_render_benchmark(result))
    return EXIT_OK


def cmd_bench_ablation(args) -> int:
    """``bench ablation --scene FILE``: the paper's Table 4 on a real scene."""
    from core.bench_compress import format_ablation, run_ablation
    from core.cli_compress import ProgressLine, build_config, load_camera_source

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
    from core.bench_compress import run_decode_benchmark

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
    from core.bench_formats import check_output_dir, default_plan, default_scenes, run_format_benchmark
    from core.io import check_input_file
    from core.cli_compress import ProgressLine

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


def cmd_render(args) -> int:
    from core.cli_render import cmd_render as run

    return run(args)


def cmd_demo(args) -> int:
    from core.cli_render import cmd_demo as run

    return run(args)


# -- the parser ------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command (cheap to build: no heavy imports)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log debug messages (and tracebacks of internal errors)")

    p = argparse.ArgumentParser(
        prog="main.py", parents=[common],
        description="NeuralGS Studio: compress 3D Gaussian Splatting scenes with NeuralGS. "
                    "Without a command, main.py starts the desktop application: main.py [SCENE] [--cameras PATH] "
                    "[--screenshot OUT.png [--force]] [--window-size WxH] (--screenshot needs no display: it "
                    "saves a PNG of the window and exits). 'demo' summarises and renders the bundled demo scene.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    info = sub.add_parser("info", parents=[common], help="what a scene file holds",
                          description="Format, Gaussian count, SH degree, bounds, file size and warnings.")
    info.add_argument("file", help="scene file (.ply, .compressed.ply, .splat, .ngs)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    r = sub.add_parser("render", parents=[common], help="render one view of a scene to a PNG",
                       description="Render one view: camera N of a cameras file, or an orbit view around "
                                   "the scene's robust bounds (default azimuth 0, elevation 20).")
    r.add_argument("file", help="scene file")
    r.add_argument("--out", "-o", required=True, help="output .png (refused if it exists, unless --force)")
    r.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    r.add_argument("--cameras", metavar="PATH",
                   help="cameras.json, transforms*.json, a COLMAP model folder or a dataset folder")
    r.add_argument("--camera", metavar="N", help="camera index (or name) in --cameras (default 0)")
    r.add_argument("--orbit", type=float, metavar="DEGREES", help="orbit view at this azimuth")
    r.add_argument("--elevation", type=float, metavar="DEG", help="orbit elevation (default 20)")
    r.add_argument("--up", type=parse_up, metavar="AXIS",
                   help="world up for orbit views: +z, -y, ... or X,Y,Z (default -y, as COLMAP/3DGS "
                        "captures; Blender scenes such as NeRF-synthetic are +z)")
    r.add_argument("--size", type=parse_size, metavar="WxH",
                   help="image size (default: the camera's size, 800x600 for orbits)")
    r.add_argument("--background", type=parse_background, default=(0.0, 0.0, 0.0), metavar="R,G,B",
                   help="background colour, values in [0, 1], or white/black/gray (default black)")
    r.add_argument("--backend", choices=("auto", "cpu", "gsplat"), default="auto",
                   help="renderer: gsplat needs CUDA; auto uses it when it works, else cpu")
    r.set_defaults(func=cmd_render)

    add_compression_commands(sub, common)

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
    _pipeline_options(ba)
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

    d = sub.add_parser("demo", parents=[common], help="summarise and render the bundled demo scene",
                       description="Summarise the bundled demo scene and render it to demo-render.png.")
    d.add_argument("--out", "-o", help="output .png (default demo-render.png in the current folder)")
    d.set_defaults(func=cmd_demo)
    return p


def _pipeline_options(p: argparse.ArgumentParser) -> None:
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


def add_compression_commands(sub, common) -> None:
    """compress, decompress, eval."""
    c = sub.add_parser("compress", parents=[common], help="compress a scene to .ngs with NeuralGS",
                       description="Importance pruning, k-means clusters, one tiny MLP per cluster, fine-tuning "
                                   "through the renderer; writes OUT.ngs atomically (Ctrl-C leaves nothing).")
    c.add_argument("input", help="scene file (.ply, .compressed.ply, .splat)")
    c.add_argument("-o", "--output", required=True, help="output .ngs (refused if it exists, unless --force)")
    c.add_argument("--force", action="store_true", help="replace --output if it exists")
    _pipeline_options(c)
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
    c.add_argument("--dataset", metavar="DIR", help="dataset whose images are the fine-tuning targets "
                                                     "(every 8th image held out)")
    c.add_argument("--cameras", metavar="PATH", help="cameras to render targets of the original from")
    c.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to compute (default auto)")
    from core.cli_compress import parse_groups, parse_size

    g = c.add_argument_group(".ngs v2 codec and rate control")
    g.add_argument("--target-psnr", type=float, metavar="DB",
                   help="smallest file reaching this PSNR on the held-out views (against the original's renders, or "
                        "the images with --dataset); default 40 without a preset")
    g.add_argument("--target-size", type=parse_size, metavar="BYTES",
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
    g.add_argument("--format-version", type=int, choices=(1, 2),
                   help="2 (default): entropy-coded .ngs v2; 1: the paper's storage (pure NeuralGS presets only)")
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
    _pipeline_options(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_eval)


def _interrupt_on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the command and return the process exit status.

    SIGTERM (``kill``, a job scheduler's stop) is handled like Ctrl-C: the command unwinds, removes its
    scratch files and partial outputs, and exits with status 130. SIGINT raises KeyboardInterrupt even when
    the process inherited it ignored (started with ``&`` by a non-interactive shell).
    """
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    verbose = bool(getattr(args, "verbose", False))
    configure_logging(verbose)
    func = getattr(args, "func", cmd_demo)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt_on_sigterm) if in_main_thread else None
    # A process started in the background by a non-interactive shell (`cmd &`, nohup, some CI runners) inherits
    # SIGINT ignored, and Python then never raises KeyboardInterrupt: Ctrl-C / `kill -INT` would be lost and a
    # compression would run on. Measured: the suite's Ctrl-C test failed only when pytest itself ran that way.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler) if in_main_thread else None
    try:
        return func(args)
    except (InputFileError, UsageError) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `main.py info --json | head -c 10`: stop quietly, as the docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INTERNAL
    except MemoryError:
        log.error("out of memory (try a smaller --size or --n)")
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - a bug, not bad input: one line, the traceback with -v
        if verbose:
            log.exception("internal error")
        else:
            log.error("internal error: %s: %s (run with -v for the traceback)", type(exc).__name__, exc)
        return EXIT_INTERNAL
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_int)
