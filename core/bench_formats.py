"""``bench formats``: rate and quality of ``.ngs`` against the formats artists use today (issue 5).

For each scene: PlayCanvas compressed ``.ply``, ``.spz`` and ``.sog`` written and decoded back to a
``.ply`` by splat-transform (:mod:`core.splat_transform`, skipped with the reason when npm/node is
unavailable), and ``.ngs`` at the settings of :data:`NGS_SETTINGS` (a curve, small to large). The
original and every decoded result are rendered with the same CPU renderer at the same held-out views
(:func:`core.pipeline.evaluation.evaluate_pair`) and, for scenes with a dataset (lego), compared with
its held-out images as well. Held-out views follow DESIGN §7's evaluation protocol: generated orbit
views at ``eval_size`` = 800 pixels on the long side (the preset's default), or the dataset's own
(lego: 400x400); every row records that size (``view_size``). Reports: :mod:`core.bench_formats_report`.

Timings: ``encode_s`` is splat-transform's process (Node start-up included, about 0.3 s) or the
whole NeuralGS compression plus writing the file; ``decode_s`` is file -> standard ``.ply`` on disk
for every method (``.ngs``: read, decode the MLPs, write the ``.ply``).

Resuming: every finished point leaves its result row beside its file
(``DIR/<scene>/.points/<method>.<setting>.json``) with a fingerprint of what produced it (the scene
file's name, size and CRC-32, the full configuration (with generated views, ``eval_size`` included:
another held-out view size is another point), the views it was trained and evaluated on,
splat-transform's version and arguments) and the size and CRC-32 of the file it wrote. A later run
into the same folder reuses a point whose fingerprint and file still match and recomputes the
others, so an interrupted benchmark (hours on a CPU) goes on where it stopped, and scenes can run in
separate processes into one folder before a last run writes the combined reports. ``--force``
recomputes everything. The fingerprint does not cover this project's own code (pipeline, ``.ngs``
writer): after changing it, run with ``--force`` or into a new folder. A method left out of a run
(``--only``, or splat-transform unavailable) still has its saved points in the reports, so every
run writes the whole folder's results. A splat-transform failure (a timeout: hours) is saved too and
not retried until ``--force``.

Repeatability: ``.ngs`` points are seeded (the same numbers every run on one machine); SOG is not
(splat-transform 2.7.1 seeds its k-means with ``Math.random``), so its bytes and PSNR vary a little
between runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.errors import InputFileError

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
SCENE_SUFFIXES = (".ply", ".splat")

# NeuralGS settings of the curve, smallest first: the preset's schedule (iterations, learning rates,
# views) with these overrides. Fewer kept Gaussians (prune_ratio) and smaller MLPs (K x width) give
# smaller files. max_params_per_gaussian narrows the MLPs of tiny scenes only (sh3-capture,
# truncated-sh3), where a fixed width would cost more than the Gaussians themselves; it does not bind
# on donut or lego. Tune here; the labels name the points in the tables and plots.
NGS_PRESET = "balanced"
NGS_SETTINGS: list[tuple[str, dict]] = [
    ("xs", dict(prune_ratio=0.8, n_clusters=4, hidden=32, max_params_per_gaussian=4.0)),
    ("s", dict(prune_ratio=0.6, n_clusters=6, hidden=48, max_params_per_gaussian=8.0)),
    ("m", dict(prune_ratio=0.4, n_clusters=8, hidden=64, max_params_per_gaussian=16.0)),
    ("l", dict(prune_ratio=0.3, n_clusters=10, hidden=80, max_params_per_gaussian=24.0)),
]
# .ngs v2 (rate control, DESIGN §7): one point per target PSNR on the `codec` preset's predictor. Against the
# original's renders for generated views; against the images for a dataset scene (lego), where the uncompressed
# scene itself scores about 34.1 dB, so its curve sits below that (33.57: SPZ's score; 33.63: within 0.5 dB of
# the uncompressed scene).
V2_TARGETS = (36.0, 38.0, 40.0, 42.0, 45.0)
V2_DATASET_TARGETS = (32.5, 33.0, 33.57, 33.63)
QUICK_V2_TARGETS = (30.0,)


V2_DATASET_RENDER_TARGETS = (40.0,)
"""For a dataset scene, also these targets against the original's renders at the dataset's cameras (the
protocol of the other scenes: 40 dB counts as visually equal), so that every scene has a 40 dB point."""
RENDER_TARGETS_KEY = "_targets_renders"


def v2_settings(targets: tuple[float, ...], render_targets: tuple[float, ...] = ()) -> list[tuple[str, dict]]:
    """The v2 curve's points: the `codec` preset's settings with each target PSNR; ``render_targets``: points of a
    dataset scene whose targets are the original's renders at the dataset's cameras instead of its images."""
    from core.pipeline.config import PRESETS

    out = [(f"v2-{t:g}dB", {**PRESETS["codec"], "target_psnr": t}) for t in targets]
    out += [(f"v2-{t:g}dB-vs-renders", {**PRESETS["codec"], "target_psnr": t, RENDER_TARGETS_KEY: True})
            for t in render_targets]
    return out


# --quick (the test suite): the same curve with a schedule that runs in seconds; numbers are not meaningful
# (held-out views at 48 px, not the protocol's 800).
QUICK_PRESET = "preview"
QUICK_OVERRIDES = dict(fit_iters=40, finetune_iters=8, n_views=6, n_test_views=2, image_size=48, eval_size=48,
                       kmeans_iters=5, dataset_max_size=64)
# splat-transform's SOG clusters the SH coefficients into a palette of up to 64k entries with k-means; on
# the CPU (no WebGPU adapter; a single-threaded k-d tree in 45 dimensions) that is slow for big SH-3
# scenes and grows faster than N x palette: on random subsets of lego, 1/8 (16.8k Gaussians, 16k palette)
# took 32 s of k-means and 1/4 (33.5k, 32k palette) 288 s, so all of lego (134k, 64k) needs an estimated
# 1.5-2.5 hours (sh3-capture's 9k Gaussians take 8 s). Mesa 22's lavapipe (a CPU Vulkan) is not accepted
# by splat-transform's WebGPU (Dawn). A run past this limit is killed and its failure saved (see above).
PEER_TIMEOUT_S = 3 * 3600

# What the shared scenes need beyond the defaults: world up for generated views (donut is z-up; the
# others are -y, the default) and the dataset whose held-out images are ground truth.
KNOWN_SCENES: dict[str, dict] = {
    "donut.ply": {"up": (0.0, 0.0, 1.0)},
    "lego-3dgs.ply": {"up": (0.0, 0.0, 1.0), "dataset": "lego"},
}


@dataclass(frozen=True)
class PeerFormat:
    """A splat-transform output: ``method`` name in the results, file suffix, extra arguments."""

    method: str
    suffix: str
    args: tuple[str, ...] = ()


def peer_formats() -> list[PeerFormat]:
    from core.splat_transform import SOG_ARGS

    return [PeerFormat("compressed.ply", ".compressed.ply"), PeerFormat("spz", ".spz"),
            PeerFormat("sog", ".sog", SOG_ARGS)]


@dataclass(frozen=True)
class BenchPlan:
    """What to run: the preset and overrides shared by every ``.ngs`` point (and the held-out views),
    the curve's settings, and which methods run (splat-transform's formats, ``.ngs``)."""

    preset: str = NGS_PRESET
    overrides: dict = field(default_factory=dict)
    ngs_settings: list[tuple[str, dict]] = field(default_factory=lambda: list(NGS_SETTINGS))
    peers: bool = True
    ngs: bool = True
    v2: bool = True
    v2_targets: tuple[float, ...] = V2_TARGETS
    v2_dataset_targets: tuple[float, ...] = V2_DATASET_TARGETS
    v2_dataset_render_targets: tuple[float, ...] = V2_DATASET_RENDER_TARGETS
    v2_overrides: dict = field(default_factory=dict)  # applied after each v2 point's settings (--quick)


ONLY_CHOICES = ("peers", "ngs", "v2")


def default_plan(quick: bool = False, only: str | None = None) -> BenchPlan:
    """The full benchmark's plan, or the seconds-long ``--quick`` one; ``only``: "peers" (splat-transform's
    formats) or "ngs" runs just those methods."""
    if only not in (None, *ONLY_CHOICES):
        raise ValueError(f"only: {only!r} is not one of {', '.join(ONLY_CHOICES)}")
    methods = dict(peers=only in (None, "peers"), ngs=only in (None, "ngs"), v2=only in (None, "v2"))
    if quick:
        return BenchPlan(QUICK_PRESET, dict(QUICK_OVERRIDES), **methods, v2_targets=QUICK_V2_TARGETS,
                         v2_dataset_targets=QUICK_V2_TARGETS, v2_dataset_render_targets=(),
                         v2_overrides=dict(QUICK_OVERRIDES))
    return BenchPlan(**methods)


def shared_data_dir() -> Path:
    """``$NEURALGS_SHARED_DATA``, else ``../shared/data`` beside the repository (as the tests)."""
    return Path(os.environ.get("NEURALGS_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


def default_scenes() -> list[Path]:
    """Every scene file (``.ply``, ``.compressed.ply``, ``.splat``) in the shared ``scenes`` folder."""
    folder = shared_data_dir() / "scenes"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SCENE_SUFFIXES)


def scene_label(path: Path) -> str:
    """``donut`` for donut.ply, ``guitar`` for guitar.compressed.ply."""
    return path.name.split(".")[0] or path.name


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
@dataclass
class _SceneRun:
    """What every method of one scene shares."""

    label: str
    scene: object  # GaussianScene
    ref_ply: Path  # the standard .ply that splat-transform reads and whose size is the ratio's base
    ply_bytes: int
    config: object  # CompressionConfig: the preset, the plan's overrides and the scene's view settings
    cameras: object  # CameraSet of the dataset, or None
    out_dir: Path
    work_dir: Path
    on_progress: Callable | None
    scene_key: dict = field(default_factory=dict)  # the scene file's identity, part of every point's fingerprint
    views_key: dict = field(default_factory=dict)  # the views trained and evaluated on, part of every fingerprint
    reuse: bool = True  # reuse finished points whose fingerprint matches (False: --force)
    original_gt: dict = field(default_factory=dict)  # the original's PSNR/SSIM against the dataset images
    reference_renders: dict = field(default_factory=dict)  # the original's held-out renders, by view index
    view_size: int | None = None  # pixels, the long side of the held-out views every method is measured at


def _row(run: _SceneRun, method: str, setting: str, detail: str = "", n_bytes: int | None = None,
         n_gaussians: int | None = None, encode_s: float | None = None, decode_s: float | None = None,
         quality: dict | None = None, note: str = "") -> dict:
    q = quality or {}
    return {"scene": run.label, "method": method, "setting": setting, "detail": detail,
            "n_gaussians": n_gaussians, "bytes": n_bytes,
            "ratio": run.ply_bytes / n_bytes if n_bytes else None,
            "psnr": q.get("psnr"), "ssim": q.get("ssim"), "psnr_gt": q.get("psnr_gt"), "ssim_gt": q.get("ssim_gt"),
            "view_size": q.get("view_size", run.view_size), "encode_s": encode_s, "decode_s": decode_s, "note": note}


# -- finished points (resume) ---------------------------------------------------------------------------
POINTS_DIR = ".points"


def file_identity(path: Path) -> dict:
    """A file's size and CRC-32 of its bytes (a written output, recognised on a later run)."""
    import zlib

    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            crc = zlib.crc32(chunk, crc)
    return {"bytes": path.stat().st_size, "crc32": crc & 0xFFFFFFFF}


def scene_fingerprint(path: Path) -> dict:
    """The scene file's identity: name, size and CRC-32 of its bytes."""
    return {"file": path.name, **file_identity(path)}


def views_fingerprint(cameras) -> dict:
    """The identity of the views a point was trained and evaluated on: generated orbit views (set by the
    configuration), or a dataset's cameras (its folder name and a CRC-32 of every camera's name, size,
    intrinsics and pose)."""
    import zlib

    if cameras is None:
        return {"kind": "generated"}
    crc = 0
    for cam in cameras.cameras:
        text = f"{cam.name}|{cam.width}x{cam.height}|{cam.fx!r},{cam.fy!r},{cam.cx!r},{cam.cy!r}|"
        crc = zlib.crc32(cam.world_to_camera.tobytes(), zlib.crc32(text.encode(), crc))
    return {"kind": "dataset", "source": Path(cameras.source).name, "cameras": len(cameras.cameras),
            "crc32": crc & 0xFFFFFFFF}


def _point_path(run: _SceneRun, method: str, setting_label: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{method}.{setting_label}")
    return run.out_dir / POINTS_DIR / f"{safe}.json"


def _point_key(run: _SceneRun, recipe: dict) -> dict:
    """What produced a point: the scene, the evaluation configuration and the method's own recipe."""
    import dataclasses

    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(run.config).items()}
    if run.cameras is not None:  # a dataset's held-out views do not depend on eval_size (dataset_max_size and the
        del config["eval_size"]  # cameras decide them): points saved before eval_size existed stay valid
    return json.loads(json.dumps({"scene": run.scene_key, "views": run.views_key, "config": config, "recipe": recipe},
                                 default=str))


def _reused_point(run: _SceneRun, method: str, setting_label: str, key: dict, output: Path) -> dict | None:
    """The saved row of a finished point whose fingerprint matches ``key`` and whose file is still
    ``output`` (same size and CRC-32), or of a saved failure with the same fingerprint; None otherwise
    (missing, stale, or unreadable: recomputed)."""
    path = _point_path(run, method, setting_label)
    if not run.reuse or not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text())
        row = saved["row"]
        if saved["key"] != key:
            log.info("%s: %s %s: settings changed since the saved result; recomputing", run.label, method,
                     setting_label)
            return None
        if row["bytes"] is None:  # a saved failure
            log.info("%s: %s %s: failed in an earlier run (%s); not retried without --force", run.label, method,
                     setting_label, row["note"])
            return row
        if not output.is_file() or file_identity(output) != saved["output"]:
            log.info("%s: %s %s: %s is missing or changed since the saved result; recomputing", run.label,
                     method, setting_label, output)
            return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: %s: unreadable saved result (%s); recomputing", run.label, path, exc)
        return None
    if saved.get("original_gt"):
        run.original_gt = saved["original_gt"]
    row.setdefault("view_size", run.view_size)  # saved before rows recorded it; the same views (same key)
    log.info("%s: %s %s: reusing the result saved in %s (bytes %s, PSNR %.2f dB)", run.label, method,
             setting_label, path, f"{row['bytes']:,}", row["psnr"])
    return row


def _save_point(run: _SceneRun, method: str, setting_label: str, key: dict, row: dict,
                output: Path | None) -> None:
    """Write a finished point's row, fingerprint and output file identity (None: a failure) atomically,
    for later runs to reuse."""
    from core.io.atomic import atomic_write_bytes

    path = _point_path(run, method, setting_label)
    path.parent.mkdir(exist_ok=True)
    record = {"key": key, "row": row, "output": file_identity(output) if output is not None else None,
              "original_gt": run.original_gt}
    atomic_write_bytes(path, json.dumps(record, indent=1).encode(), overwrite=True)


def _evaluate(run: _SceneRun, decoded) -> dict:
    from core.pipeline.evaluation import evaluate_pair

    result = evaluate_pair(run.scene, decoded, run.config.replace(render_backend="cpu"), run.cameras, run.on_progress,
                           run.reference_renders)
    if result["psnr_gt_original"] is not None:
        run.original_gt = {"psnr_gt": result["psnr_gt_original"], "ssim_gt": result["ssim_gt_original"]}
    return result


def _peer_rows(run: _SceneRun, cli: Path | None, peers: list[PeerFormat]) -> list[dict]:
    """A row per splat-transform format: its saved point, else (with ``cli``) computed now; without
    ``cli`` (not run, or unavailable) only the saved points."""
    from core.splat_transform import SPLAT_TRANSFORM_VERSION, run_splat_transform

    rows = []
    for peer in peers:
        setting = " ".join(("splat-transform", SPLAT_TRANSFORM_VERSION) + peer.args)
        encoded = run.work_dir / f"{run.label}{peer.suffix}"
        decoded_ply = run.work_dir / f"{run.label}.{peer.method}.decoded.ply"
        key = _point_key(run, {"method": peer.method, "tool": setting})
        saved = _reused_point(run, peer.method, "splat-transform", key, run.out_dir / encoded.name)
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
            _save_point(run, peer.method, "splat-transform", key, rows[-1], None)
            continue
        finally:
            decoded_ply.unlink(missing_ok=True)
        n_bytes = encoded.stat().st_size
        os.replace(encoded, run.out_dir / encoded.name)
        quality = _evaluate(run, decoded)
        rows.append(_row(run, peer.method, setting, n_bytes=n_bytes, n_gaussians=decoded.num_gaussians,
                         encode_s=encode_s, decode_s=decode_s, quality=quality))
        _save_point(run, peer.method, "splat-transform", key, rows[-1], run.out_dir / encoded.name)
        log.info("%s: %s: %s bytes (%.1fx), PSNR %.2f dB", run.label, peer.method, f"{n_bytes:,}",
                 rows[-1]["ratio"], quality["psnr"])
    return rows


def _ngs_rows(run: _SceneRun, settings: list[tuple[str, dict]], compute: bool = True) -> list[dict]:
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
        key = _point_key(run, {"method": "ngs", "setting": name, "overrides": overrides})
        saved = _reused_point(run, "ngs", name, key, path)
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
        _save_point(run, "ngs", name, key, rows[-1], path)
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
        run = _SceneRun(label, scene, ref_ply, ref_ply.stat().st_size, config, cameras, scene_dir, work_dir,
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
            v2 = [(name, {**o, **plan.v2_overrides}) for name, o in v2_settings(targets, renders)]
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
    from core.cli_common import UsageError

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
    from core.bench_formats_report import write_reports

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
