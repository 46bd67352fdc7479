"""A batch plan: a CSV with one row per scene and its own dataset and options (``main.py batch --plan FILE``).

Columns (a header row names them; only ``scene`` is required): ``scene`` (a scene file), ``dataset`` (a dataset
folder; empty: the folder found beside the scene, ``none``: no dataset), ``options`` (more command-line options
for this scene only, e.g. ``--target-psnr 38 --up +z``), ``output`` (the output's path below OUTDIR; default
``<name>.ngs``). Relative paths are relative to the plan's folder. A row names a scene given as an INPUT too:
the row's settings apply to it.
"""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

from core.batch.inputs import SceneJob, dataset_beside, output_name
from core.errors import InputFileError, UsageError

COLUMNS = ("scene", "dataset", "options", "output")


def read_plan(path: Path) -> list[SceneJob]:
    """The plan's rows as jobs (InputFileError for a file that is not such a CSV, naming the row)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"cannot read the plan ({exc})") from None
    rows = list(csv.DictReader(text.splitlines()))
    header = [h.strip().lower() for h in (csv.DictReader(text.splitlines()).fieldnames or [])]
    if "scene" not in header:
        raise InputFileError(path, "the plan has no 'scene' column (columns: " + ", ".join(COLUMNS) + ")")
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise InputFileError(path, f"unknown column(s) {', '.join(unknown)} (columns: {', '.join(COLUMNS)})")
    base = path.parent
    jobs = []
    for n, raw in enumerate(rows, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not row.get("scene"):
            continue
        scene = _relative(base, row["scene"])
        try:
            options = tuple(shlex.split(row.get("options", "")))
        except ValueError as exc:
            raise InputFileError(path, f"row {n}: options {row['options']!r}: {exc}") from None
        dataset_text = row.get("dataset", "")
        dataset = None if dataset_text.lower() == "none" else (
            _relative(base, dataset_text) if dataset_text else dataset_beside(scene))
        output = Path(row["output"]) if row.get("output") else output_name(Path(scene.name))
        if output.is_absolute() or ".." in output.parts:
            raise UsageError(f"{path}: row {n}: the output {output} must be a path inside OUTDIR")
        if not output.name.lower().endswith(".ngs"):
            output = output.with_name(output.name + ".ngs")
        error = None if scene.exists() else f"{scene}: no such file or folder"
        jobs.append(SceneJob(scene, None if error else output, dataset, options, error, {"plan_row": n}))
    return jobs


def merge(jobs: list[SceneJob], planned: list[SceneJob]) -> list[SceneJob]:
    """``jobs`` with the plan's rows applied: a row for a scene among them sets its dataset and options (the
    output stays the mirrored one), any other row is added at the end."""
    by_input = {j.input.resolve(): j for j in jobs if j.error is None}
    out = list(jobs)
    for row in planned:
        known = by_input.get(row.input.resolve()) if row.error is None else None
        if known is None:
            out.append(row)
            continue
        known.dataset, known.options = row.dataset, row.options
        known.extra.update(row.extra)
    return out


def _relative(base: Path, text: str) -> Path:
    p = Path(text).expanduser()
    return p if p.is_absolute() else base / p
