"""``bench formats``: the resume cache. Every finished point leaves its result row beside its file with a
fingerprint of what produced it; a later run reuses a point whose fingerprint and file still match (see
:mod:`core.bench.formats`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from core.bench.formats.plan import SceneRun

log = logging.getLogger(__name__)

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


def point_path(run: SceneRun, method: str, setting_label: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{method}.{setting_label}")
    return run.out_dir / POINTS_DIR / f"{safe}.json"


def point_key(run: SceneRun, recipe: dict) -> dict:
    """What produced a point: the scene, the evaluation configuration and the method's own recipe."""
    import dataclasses

    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(run.config).items()}
    if run.cameras is not None:  # a dataset's held-out views do not depend on eval_size (dataset_max_size and the
        del config["eval_size"]  # cameras decide them): points saved before eval_size existed stay valid
    return json.loads(json.dumps({"scene": run.scene_key, "views": run.views_key, "config": config, "recipe": recipe},
                                 default=str))


def reused_point(run: SceneRun, method: str, setting_label: str, key: dict, output: Path) -> dict | None:
    """The saved row of a finished point whose fingerprint matches ``key`` and whose file is still
    ``output`` (same size and CRC-32), or of a saved failure with the same fingerprint; None otherwise
    (missing, stale, or unreadable: recomputed)."""
    path = point_path(run, method, setting_label)
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


def save_point(run: SceneRun, method: str, setting_label: str, key: dict, row: dict,
                output: Path | None) -> None:
    """Write a finished point's row, fingerprint and output file identity (None: a failure) atomically,
    for later runs to reuse."""
    from core.io.atomic import atomic_write_bytes

    path = point_path(run, method, setting_label)
    path.parent.mkdir(exist_ok=True)
    record = {"key": key, "row": row, "output": file_identity(output) if output is not None else None,
              "original_gt": run.original_gt}
    atomic_write_bytes(path, json.dumps(record, indent=1).encode(), overwrite=True)
