"""The ``batch`` command: many scenes compressed on Ray, each exactly as ``compress`` would.

``batch INPUT... -o OUTDIR`` takes every option ``compress`` takes (:func:`core.cli.compress.compression_options`,
applied to every scene; a plan row can add its own), finds the scenes (:mod:`core.batch.inputs`), and runs
:func:`compress_job` for each as one Ray task (:mod:`core.batch.runner`). ``compress_job`` is ``compress``'s own
path (:func:`core.cli.compress.run_compression`, :func:`core.cli.compress.ngs_chunks`), so a scene compressed
here is byte-identical to ``compress`` with the same options and ``--threads``.

Exit status: 0 when every scene succeeded (or was already done, ``--resume``), :data:`EXIT_SOME_FAILED` (3)
when any failed, 2 for a usage error (nothing run), 130 on Ctrl-C (finished outputs and the manifest kept).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from pathlib import Path

from core.cli.compress import build_config, camera_source, compress_summary, compression_options, ngs_chunks, \
    run_compression
from core.errors import UsageError

log = logging.getLogger(__name__)

EXIT_SOME_FAILED = 3
"""Exit status of a batch in which at least one scene failed (the others were written)."""

DEFAULT_THREADS = 1


def compress_job(scene_path: Path, dataset: Path | None, config) -> tuple[bytes, dict]:
    """One scene as ``compress`` does it (no progress line): the ``.ngs`` bytes and ``compress``'s summary."""
    import time

    from core.io.scene_files import load_scene_file

    loaded = load_scene_file(scene_path)
    cameras, use_images = camera_source(str(dataset) if dataset else None, None)
    t0 = time.perf_counter()
    result = run_compression(loaded.scene, config, cameras, use_images, None)
    data = b"".join(ngs_chunks(result, scene_path.name, loaded.info, loaded.scene))
    summary = compress_summary(scene_path.name, "", loaded.info.bytes, len(data), result, time.perf_counter() - t0)
    summary.pop("codec", None)  # the rate control's trials: long, and in the file's header already
    return data, summary


def scene_options_parser() -> argparse.ArgumentParser:
    """A parser of the compression options alone (a plan row's ``options``)."""
    p = argparse.ArgumentParser(prog="plan options", add_help=False, exit_on_error=False)
    compression_options(p)
    return p


def scene_args(args, options: tuple[str, ...], parser: argparse.ArgumentParser, where: str):
    """``args`` with a plan row's options laid over it (only those the row gives)."""
    if not options:
        return args
    try:
        row, extra = parser.parse_known_args(list(options))
    except (argparse.ArgumentError, SystemExit) as exc:
        raise UsageError(f"{where}: bad options {' '.join(options)!r} ({exc})") from None
    if extra:
        raise UsageError(f"{where}: options {' '.join(extra)!r} cannot be given per scene")
    out = copy.copy(args)
    for key, value in vars(row).items():
        if value is not None and value is not False:
            setattr(out, key, value)
    return out


def prepare(args, outdir: Path):
    """The jobs with their settings, checked before any work (bad options, clashing outputs: UsageError)."""
    from core.batch.inputs import check_outputs, collect
    from core.batch.plan import merge, read_plan
    from core.batch.runner import PreparedJob

    jobs = collect(args.inputs, args.recursive, outdir)
    if args.plan:
        jobs = merge(jobs, read_plan(Path(args.plan)))
    if not jobs:
        raise UsageError("no scenes: give INPUT files, folders or globs, or --plan FILE")
    check_outputs(jobs, outdir)
    parser = scene_options_parser()
    prepared = []
    for job in jobs:
        where = f"{args.plan}: row {job.extra['plan_row']}" if "plan_row" in job.extra else str(job.input)
        sargs = scene_args(args, job.options, parser, where)
        if sargs.threads is None:
            sargs.threads = DEFAULT_THREADS
        if sargs.threads < 1:
            raise UsageError(f"{where}: --threads must be at least 1 in a batch (the CPUs each scene's task takes)")
        prepared.append(PreparedJob(job, build_config(sargs), sargs.threads))
    if not (args.force or args.resume):
        existing = [outdir / j.job.output for j in prepared if j.job.output and (outdir / j.job.output).exists()]
        if existing:
            raise UsageError(f"{existing[0]}: already exists ({len(existing)} output(s) in all; --resume skips "
                             f"scenes done with the same settings, --force recomputes them)")
    return prepared


def cmd_batch(args) -> int:
    """``batch INPUT... -o OUTDIR [...]``: compress every scene on Ray, write the outputs and the manifest."""
    from core.batch.runtime import resolve_address
    from core.batch.runner import run_batch

    outdir = Path(args.output)
    if outdir.exists() and not outdir.is_dir():
        raise UsageError(f"{outdir}: not a folder (-o names the output folder)")
    prepared = prepare(args, outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{outdir}: cannot create the folder ({exc.strerror or exc})") from None
    result = run_batch(prepared, compress_job, outdir, address=resolve_address(args.ray_address),
                       resume=args.resume, verbose=bool(getattr(args, "verbose", False)))
    summary = {k: result[k] for k in ("ok", "failed", "cancelled", "resumed")}
    summary.update(total=len(result["rows"]), seconds=round(result["seconds"], 2), outdir=str(outdir),
                   manifest=[str(outdir / "batch.csv"), str(outdir / "batch.json")], ray=result["ray"])
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"batch: {summary['ok']} of {summary['total']} scenes ok ({summary['resumed']} already done), "
              f"{summary['failed']} failed, in {summary['seconds']:.1f} s; manifest {outdir / 'batch.csv'}")
    return 0 if summary["failed"] == 0 and summary["cancelled"] == 0 else EXIT_SOME_FAILED


def add_commands(sub, common) -> None:
    """batch."""
    b = sub.add_parser("batch", parents=[common], help="compress many scenes (files, folders, globs) on Ray",
                       description="Compress every scene of the INPUTs to OUTDIR (names mirror the input tree) "
                                   "with the options compress takes, one Ray task per scene: a private local Ray "
                                   "by default, a cluster with --ray-address. Writes OUTDIR/batch.csv and "
                                   "batch.json. Exit 0: all succeeded; 3: some failed; 2: usage; 130: Ctrl-C.")
    b.add_argument("inputs", nargs="*", metavar="INPUT", help="scene files, folders or globs (quote them)")
    b.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    b.add_argument("-r", "--recursive", action="store_true", help="search folders' subfolders too")
    b.add_argument("--plan", metavar="FILE", help="CSV with one row per scene: scene, dataset, options, output")
    b.add_argument("--resume", action="store_true",
                   help="skip scenes an earlier run finished with the same settings hash; recompute the others")
    b.add_argument("--force", action="store_true", help="recompute and replace outputs that exist")
    b.add_argument("--ray-address", metavar="ADDR",
                   help="join this Ray cluster (default: RAY_ADDRESS, else a private local Ray)")
    compression_options(b)
    b.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    b.set_defaults(func=cmd_batch)
