"""``bench formats``: running one benchmark: peers through splat-transform, .ngs points through the pipeline,
every result rendered at the same held-out views; the output folder's checks."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

from core.bench.formats.plan import (KNOWN_SCENES, PEER_TIMEOUT_S, RENDER_TARGETS_KEY, BenchPlan, PeerFormat, SceneRun,
                                     peer_formats, scene_label, v2_settings)
from core.bench.formats.points import point_key, reused_point, save_point, scene_fingerprint, views_fingerprint
from core.errors import InputFileError
from core.paths import shared_data_dir

log = logging.getLogger(__name__)


def read_decoded_ply(path: Path):
    """A ``.ply`` that splat-transform decoded, as a GaussianScene.

    splat-transform writes opacity +/-inf for an alpha byte of 255/0 (compressed ``.ply``, ``.spz``);
    those become logits +/-40, as our compressed-``.ply`` reader and the PlayCanvas engine do. Any
    other non-finite value is an error (InputFileError).
    """
    from core.io.compressed_ply import OPACITY_LIMIT
    from core.io.ply import read_graphdeco_ply

    return read_graphdeco_ply(path.read_bytes(), path, infinite_opacity_logit=OPACITY_LIMIT)[0]


# -- one scene ------------------------------------------------------------------------------------------
def _row(run: SceneRun, method: str, setting: str, detail: str = "", n_bytes: int | None = None,
         n_gaussians: int | None = None, encode_s: float | None = None, decode_s: float | None = None,
         quality: dict | None = None, note: str = "") -> dict:
    q = quality or {}
    return {"scene": run.label, "method": method, "setting": setting, "detail": detail,
            "n_gaussians": n_gaussians, "bytes": n_bytes,
            "ratio": run.ply_bytes / n_bytes if n_bytes else None,
            "psnr": q.get("psnr"), "ssim": q.get("ssim"), "psnr_gt": q.get("psnr_gt"), "ssim_gt": q.get("ssim_gt"),
            "view_size": q.get("view_size", run.view_size), "encode_s": encode_s, "decode_s": decode_s, "note": note}


def _evaluate(run: SceneRun, decoded) -> dict:
    from core.pipeline.evaluation import evaluate_pair

    result = evaluate_pair(run.scene, decoded, run.config.replace(render_backend="cpu"), run.cameras, run.on_progress,
                           run.reference_renders)
    if result["psnr_gt_original"] is not None:
        run.original_gt = {"psnr_gt": result["psnr_gt_original"], "ssim_gt": result["ssim_gt_original"]}
    return result


def _peer_rows(run: SceneRun, cli: Path | None, peers: list[PeerFormat]) -> list[dict]:
    """A row per splat-transform format: its saved point, else (with ``cli``) computed now; without
    ``cli`` (not run, or unavailable) only the saved points."""
    from core.splat_transform import SPLAT_TRANSFORM_VERSION, run_splat_transform

    rows = []
    for peer in peers:
        setting = " ".join(("splat-transform", SPLAT_TRANSFORM_VERSION) + peer.args)
        encoded = run.work_dir / f"{run.label}{peer.suffix}"
        decoded_ply = run.work_dir / f"{run.label}.{peer.method}.decoded.ply"
        key = point_key(run, {"method": peer.method, "tool": setting})
        saved = reused_point(run, peer.method, "splat-transform", key, run.out_dir / encoded.name)
        if saved is not None:
            rows.append(saved)
            continue
        if cli is None:  # splat-transform not run: saved points only
            continue
        log.info("%s: %s with splat-transform", run.label, peer.method)
        try:
            encode_s = run_splat_transform(cli, run.ref_ply, encoded, *peer.args, timeout_s=PEER_TIMEOUT_S)
            decode_s = run_splat_transform(cli, encoded, decoded_ply, timeout_s=PEER_TIMEOUT_S)
            decoded = read_decoded_ply(decoded_ply)
        except (RuntimeError, OSError, ValueError) as exc:  # InputFileError is a ValueError
            log.warning("%s: %s skipped: %s", run.label, peer.method, exc)
            rows.append(_row(run, peer.method, setting, note=f"failed: {exc}"[:300]))
            save_point(run, peer.method, "splat-transform", key, rows[-1], None)
            continue
        finally:
            decoded_ply.unlink(missing_ok=True)
        n_bytes = encoded.stat().st_size
        os.replace(encoded, run.out_dir / encoded.name)
        quality = _evaluate(run, decoded)
        rows.append(_row(run, peer.method, setting, n_bytes=n_bytes, n_gaussians=decoded.num_gaussians,
                         encode_s=encode_s, decode_s=decode_s, quality=quality))
        save_point(run, peer.method, "splat-transform", key, rows[-1], run.out_dir / encoded.name)
        log.info("%s: %s: %s bytes (%.1fx), PSNR %.2f dB", run.label, peer.method, f"{n_bytes:,}",
                 rows[-1]["ratio"], quality["psnr"])
    return rows


def _ngs_rows(run: SceneRun, settings: list[tuple[str, dict]], compute: bool = True) -> list[dict]:
    """A row per ``.ngs`` setting: its saved point, else (``compute``) compressed and evaluated now."""
    import torch

    from core.codec.ngs import read_ngs, write_chunks, write_ngs
    from core.io import write_ply
    from core.pipeline.compress import compress
    from core.pipeline.progress import run_to_completion

    rows = []
    for name, overrides in settings:
        vs_renders = bool(overrides.get(RENDER_TARGETS_KEY))  # a dataset scene's point aiming at the renders
        config = run.config.replace(**{k: v for k, v in overrides.items() if k != RENDER_TARGETS_KEY},
                                    evaluate=False)  # evaluated below, like every method
        path = run.out_dir / f"{run.label}.{name}.ngs"
        key = point_key(run, {"method": "ngs", "setting": name, "overrides": overrides})
        saved = reused_point(run, "ngs", name, key, path)
        if saved is not None:
            rows.append(saved)
            continue
        if not compute:  # .ngs not run: saved points only
            continue
        log.info("%s: .ngs setting %s (%s)", run.label, name, ", ".join(f"{k}={v}" for k, v in overrides.items()))
        t0 = time.perf_counter()
        try:
            images = None if run.cameras is None else not vs_renders
            result = run_to_completion(compress(run.scene, config, cameras=run.cameras, dataset_images=images),
                                       run.on_progress)
            if result.encoded is not None:  # .ngs v2: the bytes compress() measured
                n_bytes = write_chunks(result.encoded.chunks, path, overwrite=True)
            else:
                n_bytes = write_ngs(result.model, path, overwrite=True)
        except ValueError as exc:  # a setting this scene cannot take (e.g. more clusters than Gaussians)
            log.warning("%s: .ngs setting %s failed: %s", run.label, name, exc)
            rows.append(_row(run, "ngs", name, note=f"failed: {exc}"[:300]))
            continue
        encode_s = time.perf_counter() - t0
        decoded_ply = run.work_dir / f"{run.label}.{name}.decoded.ply"
        t0 = time.perf_counter()
        model = read_ngs(path)
        with torch.no_grad():
            decoded = model.decode().detach()
        write_ply(decoded, decoded_ply, overwrite=True)
        decode_s = time.perf_counter() - t0
        decoded_ply.unlink()
        codec = result.codec or {}
        detail = (f"K={model.n_clusters} width={model.arch.hidden} kept={model.num_gaussians} "
                  f"prune={codec.get('prune_ratio', config.prune_ratio):g} preset={config.preset}")
        if codec.get("target_psnr"):
            preds = codec.get("predictors") or {}
            detail += (f" target={codec['target_psnr']:g}dB {'reached' if codec.get('reached') else 'NOT reached'}"
                       f" bits={(codec.get('settings') or {}).get('position_bits')} mlp={preds.get('mlp', 0)}"
                       f" const={preds.get('constant', 0)} {codec.get('variant', '')}")
        elif result.encoded is not None:
            detail += " v2 pure NeuralGS"
        quality = _evaluate(run, decoded)
        rows.append(_row(run, "ngs", name, detail, n_bytes, decoded.num_gaussians, encode_s, decode_s, quality))
        save_point(run, "ngs", name, key, rows[-1], path)
        log.info("%s: ngs %s: %s bytes (%.1fx), PSNR %.2f dB, %.0f s", run.label, name, f"{n_bytes:,}",
                 rows[-1]["ratio"], quality["psnr"], encode_s)
    return rows


def _scene_config(path: Path, plan: BenchPlan):
    """(CompressionConfig, dataset CameraSet or None) for one scene."""
    from core.pipeline.config import config_from_preset

    known = KNOWN_SCENES.get(path.name, {})
    config = config_from_preset(plan.preset, **{"up": known.get("up"), **plan.overrides})
    cameras = None
    if known.get("dataset"):
        folder = shared_data_dir() / "datasets" / known["dataset"]
        if folder.is_dir():
            from core.cameras import load_cameras

            cameras = load_cameras(folder)
        else:
            log.warning("%s: dataset %s not found; no comparison with ground-truth images", path.name, folder)
    return config, cameras


def bench_scene(path: Path, out_dir: Path, plan: BenchPlan, cli: Path | None, on_progress=None,
                label: str | None = None, reuse: bool = True) -> list[dict]:
    """Every method on one scene; compressed files go to ``out_dir/<label>/``. Returns result rows.

    ``cli``: splat-transform's cli.mjs, or None to run none of its formats. ``label``: the scene's name
    in the results (default :func:`scene_label`). ``reuse``: take finished points saved by an earlier
    run whose fingerprint matches (see the module docstring) instead of recomputing them; methods the
    plan leaves out (and splat-transform's, without ``cli``) contribute their saved points only.
    """
    from core.io import read_scene_with_info
    from core.io import write_ply
    from core.pipeline.compress import limited_threads, thread_count
    from core.pipeline.evaluation import heldout_cameras, view_size

    label = label or scene_label(path)
    scene, info = read_scene_with_info(path)
    scene_dir = out_dir / label
    scene_dir.mkdir(exist_ok=True)
    work_dir = out_dir / f".work-{label}-{os.getpid()}"
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir()
    try:
        if info.format == "ply" and not info.warnings:
            ref_ply = path
        else:  # splat-transform gets what our reader read (clean, standard), not a file it may read differently
            ref_ply = work_dir / f"{label}.ply"
            write_ply(scene, ref_ply)
            log.info("%s: %s file%s; the reference .ply is the scene rewritten in the standard layout",
                     label, info.format, " with warnings" if info.warnings else "")
        config, cameras = _scene_config(path, plan)
        heldout = heldout_cameras(scene, config, cameras)
        run = SceneRun(label, scene, ref_ply, ref_ply.stat().st_size, config, cameras, scene_dir, work_dir,
                        on_progress, scene_fingerprint(path), views_fingerprint(cameras), reuse,
                        view_size=view_size(heldout))
        log.info("%s: %s Gaussians, SH degree %d, %s bytes as .ply; held-out views: %d %s at %s px", label,
                 f"{scene.num_gaussians:,}", scene.sh_degree, f"{run.ply_bytes:,}", len(heldout),
                 "dataset images" if cameras is not None else "generated", run.view_size)
        with limited_threads(thread_count(config.threads)):
            rows = _peer_rows(run, cli if plan.peers else None, peer_formats())
            rows += _ngs_rows(run, plan.ngs_settings, compute=plan.ngs)
            targets = plan.v2_dataset_targets if cameras is not None else plan.v2_targets
            renders = plan.v2_dataset_render_targets if cameras is not None else ()
            v2 = [(name, {**o, **plan.v2_overrides}) for name, o in v2_settings(targets, renders, plan.v2_efforts)]
            rows += _ngs_rows(run, v2, compute=plan.v2)
        original = _row(run, "ply", "original", path.name, run.ply_bytes, scene.num_gaussians,
                        quality=run.original_gt)
        return [original] + rows
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


# -- the benchmark -------------------------------------------------------------------------------------------
RUN_MARKER = ".bench-formats"


def check_output_dir(path: Path, force: bool) -> Path:
    """The results folder, created if missing (its parent must exist), and marked as a benchmark's.

    A folder an earlier ``bench formats`` run wrote (it holds :data:`RUN_MARKER`) is resumed; any other
    non-empty folder is refused unless ``force``. Refuses a file. UsageError for every refusal.
    """
    from core.errors import UsageError

    if path.exists() and not path.is_dir():
        raise UsageError(f"{path}: exists and is not a folder")
    if path.is_dir():
        if any(path.iterdir()) and not force and not (path / RUN_MARKER).is_file():
            raise UsageError(f"{path}: folder is not empty and holds no earlier 'bench formats' run "
                             "(use --force to write into it anyway)")
    else:
        parent = path.parent if str(path.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"{path}: folder {parent} does not exist")
        path.mkdir()
    (path / RUN_MARKER).write_text("results of 'python main.py bench formats'; finished points are reused\n")
    return path


def remove_stale_work_dirs(out_dir: Path) -> list[Path]:
    """Remove ``.work-<scene>-<pid>`` scratch folders whose process is gone (killed without cleaning up);
    those of a running process (another run into the same folder) stay. Returns the removed folders."""
    removed = []
    for d in out_dir.glob(".work-*-*"):
        pid = d.name.rsplit("-", 1)[1]
        if not d.is_dir() or not pid.isdigit() or _process_alive(int(pid)):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # someone else's process, or we cannot tell: leave it
        return True
    return True


def splat_transform_or_reason() -> tuple[Path | None, str | None]:
    """(cli.mjs, None) when splat-transform is ready (installing it if needed), else (None, reason)."""
    from core.splat_transform import SplatTransformUnavailable, ensure_splat_transform

    try:
        return ensure_splat_transform(), None
    except SplatTransformUnavailable as exc:
        return None, str(exc)


def run_format_benchmark(scenes: list[Path], out_dir: Path, plan: BenchPlan, on_progress=None,
                         overwrite: bool = False, reuse: bool = True) -> dict:
    """Run the benchmark and write its reports into ``out_dir`` (which must exist).

    Reports are rewritten after every scene (atomically), so an interrupted run keeps those of the
    scenes it finished; with ``reuse``, finished points of an earlier run are taken, not recomputed.
    A scene that cannot be read (InputFileError: malformed file, unreadable dataset) is logged, named in
    the reports and skipped; the others still run.
    Returns {"rows", "skipped_formats" (reason or None), "failed_scenes" ("<path>: <problem>" each),
    "files", "verdicts", "markdown"}.
    """
    from core.bench.formats.report import write_reports

    for d in remove_stale_work_dirs(out_dir):
        log.info("removed %s, the scratch folder of an earlier run that was killed", d)
    cli, reason = splat_transform_or_reason() if plan.peers else (None, "not requested")
    if cli is None:
        (log.warning if plan.peers else log.info)(
            "splat-transform formats (compressed .ply, .spz, .sog) not run: %s; saved results are reused", reason)
    rows: list[dict] = []
    report: dict = {"files": [], "verdicts": {}, "markdown": ""}
    labels: list[str] = []
    failed: list[str] = []
    for path in scenes:
        label = scene_label(path)
        if label in labels:  # e.g. guitar.ply and guitar.compressed.ply
            label = f"{label}-{len(labels) + 1}"
        labels.append(label)
        try:
            rows += bench_scene(path, out_dir, plan, cli, on_progress, label, reuse)
        except InputFileError as exc:
            log.error("%s; scene skipped", exc)
            failed.append(str(exc))
        report = write_reports(rows, out_dir, skipped_formats=reason, overwrite=overwrite, failed_scenes=failed)
        overwrite = True  # our own reports from the previous scene
    return {"rows": rows, "skipped_formats": reason, "failed_scenes": failed, **report}
