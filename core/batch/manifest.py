"""The batch manifest: ``OUTDIR/batch.csv`` and ``OUTDIR/batch.json``, one row per scene.

Each row: input, output, status (``ok``, ``failed``, ``cancelled``), the error line, output bytes, input bytes,
ratio, held-out PSNR/SSIM and what they were measured against (``renders`` of the original, or the dataset's
``images``), the held-out views and their size, seconds (the scene's own compression time on its worker), the
node that ran it (Ray node id, IP, host), the dataset, the settings hash, whether it was ``resumed`` (done by an
earlier run with the same settings, not recomputed). Both files are rewritten atomically after every finished
scene, so an interrupted batch keeps a manifest of what it finished.

The settings hash (:func:`settings_hash`) covers everything that decides the output: the compression settings
(thread count included), the input file's bytes and the dataset's files (names and bytes).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from core.io.atomic import atomic_write_bytes

FIELDS = ("input", "output", "status", "error", "bytes", "original_bytes", "ratio", "psnr", "ssim", "against",
          "heldout_views", "view_size", "seconds", "node_id", "node_ip", "host", "dataset", "settings_hash",
          "resumed")
CSV_NAME, JSON_NAME = "batch.csv", "batch.json"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (read in blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_sha256(files: dict[str, bytes]) -> str:
    """The SHA-256 of a set of files (relative names and bytes, in name order)."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def settings_hash(config: dict, input_sha: str, dataset_sha: str | None) -> str:
    """16 hex digits over the settings, the input's and the dataset's hashes (see the module doc)."""
    text = json.dumps({"config": config, "input": input_sha, "dataset": dataset_sha}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def row_from_report(base: dict, report: dict) -> dict:
    """A manifest row from ``base`` (input, output, dataset, hash, node, seconds) and a compression's summary."""
    row = dict(base)
    row.update(status="ok", error="", bytes=report.get("compressed_bytes"),
               original_bytes=report.get("original_bytes"), ratio=report.get("ratio"), psnr=report.get("psnr"),
               ssim=report.get("ssim"), heldout_views=report.get("heldout_views"), view_size=report.get("view_size"),
               against={"dataset": "images", "renders": "renders"}.get(report.get("target_source"),
                                                                       report.get("target_source")))
    return row


def read(outdir: Path) -> dict[str, dict]:
    """The rows of an earlier run's ``batch.json`` by output path (empty when there is none or it is unreadable)."""
    try:
        data = json.loads((outdir / JSON_NAME).read_text())
        return {r["output"]: r for r in data.get("scenes", []) if r.get("output")}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}


def _csv_value(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def write(outdir: Path, rows: list[dict], meta: dict) -> None:
    """Write ``batch.csv`` and ``batch.json`` atomically (``meta``: the run's settings, Ray and totals)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FIELDS)
    for r in rows:
        w.writerow([_csv_value(r.get(k)) for k in FIELDS])
    atomic_write_bytes(outdir / CSV_NAME, buf.getvalue().encode(), overwrite=True)
    doc = {**meta, "scenes": [{k: r.get(k) for k in FIELDS} for r in rows]}
    atomic_write_bytes(outdir / JSON_NAME, (json.dumps(doc, indent=1, default=str) + "\n").encode(), overwrite=True)
