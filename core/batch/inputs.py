"""Which scenes a batch compresses, where each output goes and which dataset goes with it.

An INPUT is a scene file, a folder (the scene files in it; in its subfolders too with ``recursive``) or a glob
(``scenes/*.ply``, ``**`` for any depth). Outputs mirror the input tree: a scene found at ``REL`` below a folder
(or below a glob's fixed leading folder) is written to ``OUTDIR/REL`` with its extension replaced by ``.ngs``;
a scene given by name goes to ``OUTDIR/<name>.ngs``. A scene's dataset is the folder ``<name>.dataset`` beside
it, when there is one (``lego.ply`` -> ``lego.dataset/``); a plan (:mod:`core.batch.plan`) can name another.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import UsageError

SCENE_EXTENSIONS = (".compressed.ply", ".ply", ".splat", ".spz", ".sog", ".ngs")
"""File names a folder is searched for (longest first: ``.compressed.ply`` is one extension)."""

DATASET_SUFFIX = ".dataset"
"""``<scene name><DATASET_SUFFIX>``: the folder beside a scene that holds its dataset."""


@dataclass
class SceneJob:
    """One scene of a batch. ``output``: relative to OUTDIR (None when ``error``); ``dataset``: a folder or None;
    ``options``: extra command-line options for this scene only (from a plan); ``error``: why it cannot run
    (an input that does not exist, a glob that matches nothing): recorded as failed, the rest go on."""

    input: Path
    output: Path | None
    dataset: Path | None = None
    options: tuple[str, ...] = ()
    error: str | None = None
    extra: dict = field(default_factory=dict)


def scene_stem(name: str) -> str:
    """``name`` without its scene extension (``guitar.compressed.ply`` -> ``guitar``; any other: the last one)."""
    low = name.lower()
    for ext in SCENE_EXTENSIONS:
        if low.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return Path(name).stem or name


def output_name(rel: Path) -> Path:
    """The output of a scene found at ``rel``: the same folders, the extension replaced by ``.ngs``."""
    return rel.parent / (scene_stem(rel.name) + ".ngs")


def dataset_beside(scene: Path) -> Path | None:
    """The folder ``<stem>.dataset`` beside ``scene`` when it exists, else None."""
    candidate = scene.parent / (scene_stem(scene.name) + DATASET_SUFFIX)
    return candidate if candidate.is_dir() else None


def is_scene_name(name: str) -> bool:
    """Whether a file found in a folder is taken as a scene (by extension; its content decides later)."""
    return name.lower().endswith(SCENE_EXTENSIONS) and not name.startswith(".")


def _walk(folder: Path, recursive: bool, skip: Path | None) -> list[Path]:
    """Scene files in ``folder`` (sorted; subfolders with ``recursive``, never hidden ones, datasets or ``skip``)."""
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(d for d in dirs if recursive and not d.startswith(".") and not d.endswith(DATASET_SUFFIX)
                         and (skip is None or (root_path / d).resolve() != skip))
        found += [root_path / f for f in sorted(files) if is_scene_name(f) and (root_path / f).is_file()]
    return found


def _glob_base(pattern: str) -> Path:
    """The leading folders of a glob pattern that hold no wildcard (what its matches are relative to)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def expand_input(text: str, recursive: bool, skip: Path | None = None) -> list[SceneJob]:
    """The scenes of one INPUT (a file, a folder or a glob), each with its mirrored output name."""
    path = Path(text)
    if path.is_dir():
        return [SceneJob(f, output_name(f.relative_to(path)), dataset_beside(f)) for f in _walk(path, recursive, skip)]
    if path.exists() or path.is_symlink() or not glob.has_magic(text):
        if not path.exists():
            return [SceneJob(path, None, error=f"{path}: no such file or folder")]
        return [SceneJob(path, output_name(Path(path.name)), dataset_beside(path))]
    base = _glob_base(text)
    jobs = []
    for match in sorted(glob.glob(text, recursive=True)):
        m = Path(match)
        rel = m.relative_to(base) if m.is_relative_to(base) else Path(m.name)
        if m.is_dir():
            jobs += [SceneJob(f, output_name(rel / f.relative_to(m)), dataset_beside(f))
                     for f in _walk(m, recursive, skip)]
        elif m.is_file():
            jobs.append(SceneJob(m, output_name(rel), dataset_beside(m)))
    return jobs or [SceneJob(path, None, error=f"{text}: no file matches")]


def collect(inputs: list[str], recursive: bool, outdir: Path) -> list[SceneJob]:
    """Every scene of ``inputs`` in order, each once (the first INPUT that names it wins); OUTDIR is never
    searched (its outputs are not scenes to compress again)."""
    skip = outdir.resolve()
    seen: set[Path] = set()
    jobs = []
    for text in inputs:
        for job in expand_input(text, recursive, skip):
            key = job.input.resolve()
            if job.error is None and key in seen:
                continue
            seen.add(key)
            jobs.append(job)
    return jobs


def check_outputs(jobs: list[SceneJob], outdir: Path) -> None:
    """UsageError before any work when two scenes would write the same output, or an output would replace an
    input (or the manifest would): nothing is ever written over an input."""
    inputs = {j.input.resolve(): j for j in jobs if j.error is None}
    owners: dict[Path, SceneJob] = {}
    reserved = {(outdir / n).resolve() for n in ("batch.csv", "batch.json")}
    for path in reserved:
        if path in inputs:
            raise UsageError(f"{inputs[path].input}: an input cannot be the manifest {path.name} of OUTDIR")
    for job in jobs:
        if job.output is None:
            continue
        target = (outdir / job.output).resolve()
        if target in inputs:
            raise UsageError(f"{job.input}: its output {outdir / job.output} would replace the input "
                             f"{inputs[target].input}; choose another OUTDIR")
        if target in owners:
            raise UsageError(f"{owners[target].input} and {job.input} would both be written to {outdir / job.output}")
        owners[target] = job
