"""The driver of a batch: reads every input, runs each scene as one Ray task, writes outputs and the manifest.

:func:`run_batch` hashes each input (and dataset) first, so that ``resume`` can skip a scene an earlier run
finished with the same settings hash (its output still there with the recorded size); the others are submitted
a few more than the cluster runs at once (each task asks for ``num_cpus`` = its thread count, spread over the
nodes, retried once when its worker process dies, ``max_retries``), their bytes read just before. A finished
scene's ``.ngs`` is written atomically under OUTDIR and the manifest rewritten. A scene that fails is a row with
its error line; the rest go on. Ctrl-C (KeyboardInterrupt) cancels every task in flight, records the unfinished
scenes as cancelled, keeps what finished and the manifest, stops Ray and re-raises: no partial file is written.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from core.batch import manifest, runtime
from core.batch.inputs import SceneJob
from core.batch.progress import BatchProgress, duration_text
from core.batch.task import ScenePayload, one_line, run_scene
from core.errors import InputFileError, UsageError

log = logging.getLogger(__name__)


@dataclass
class PreparedJob:
    """A scene with its settings: ``config`` (what the work function takes), ``threads`` (its task's CPUs)."""

    job: SceneJob
    config: object
    threads: int


def dataset_files(folder: Path) -> list[tuple[str, Path]]:
    """Every regular file below a dataset folder (relative name, path), hidden ones left out, in name order."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.append((rel.as_posix(), p))
    return out


def dataset_sha256(folder: Path) -> str:
    """The hash :func:`core.batch.manifest.files_sha256` gives the folder's files, without holding them."""
    import hashlib

    h = hashlib.sha256()
    for name, path in dataset_files(folder):
        h.update(name.encode() + b"\0" + bytes.fromhex(manifest.file_sha256(path)))
    return h.hexdigest()


class _Batch:
    """The state of one run (see the module doc)."""

    def __init__(self, jobs: list[PreparedJob], work, outdir: Path, resume: bool, stream=None) -> None:
        self.jobs, self.work, self.outdir, self.resume = jobs, work, outdir, resume
        self.rows: list[dict | None] = [None] * len(jobs)
        self.bases: list[dict] = [{} for _ in jobs]
        self.progress = BatchProgress(len(jobs), 1, stream)
        self.meta: dict = {"outdir": str(outdir), "ray": None}
        self.dataset_refs: dict[Path, object] = {}

    # -- rows ----------------------------------------------------------------------------------------------------
    def base_row(self, i: int) -> dict:
        pj = self.jobs[i]
        return {"input": str(pj.job.input), "output": pj.job.output.as_posix() if pj.job.output else "",
                "dataset": str(pj.job.dataset) if pj.job.dataset else "", "resumed": False}

    def fail(self, i: int, error: str, status: str = "failed", **extra) -> None:
        self.rows[i] = {**self.bases[i], **extra, "status": status, "error": error}
        if status == "failed":
            name = str(self.jobs[i].job.input)
            self.progress.finished(f"FAILED {error if error.startswith(name) else f'{name}: {error}'}", ok=False)

    def succeed(self, i: int, row: dict, seconds: float | None) -> None:
        self.rows[i] = row
        psnr = f", {row['psnr']:.2f} dB" if isinstance(row.get("psnr"), float) else ""
        where = f" on {row['host']}/{row['node_id'][:8]}" if row.get("node_id") else ""
        how = "resumed" if row.get("resumed") else f"{duration_text(row.get('seconds') or 0)}{where}"
        self.progress.finished(f"ok {row['input']} -> {row['output']}: {row.get('bytes') or 0:,} B "
                               f"({row.get('ratio') or 0:.1f}x){psnr}, {how}", ok=True, seconds=seconds)

    def write_manifest(self) -> None:
        rows = [r for r in self.rows if r is not None]
        totals = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "cancelled")}
        totals["resumed"] = sum(bool(r.get("resumed")) for r in rows)
        manifest.write(self.outdir, rows, {**self.meta, "totals": totals})

    # -- before Ray ---------------------------------------------------------------------------------------------
    def hash_inputs(self) -> list[int]:
        """Hash every input and dataset, settle resumed scenes; the indices still to run."""
        previous = manifest.read(self.outdir) if self.resume else {}
        dataset_hashes: dict[Path, str] = {}
        todo = []
        for i, pj in enumerate(self.jobs):
            self.bases[i] = self.base_row(i)
            if pj.job.error:
                self.fail(i, pj.job.error)
                continue
            try:
                from core.io import check_input_file

                check_input_file(pj.job.input)
                input_sha = manifest.file_sha256(pj.job.input)
                ds = pj.job.dataset
                if ds is not None and ds not in dataset_hashes:
                    if not ds.is_dir():
                        raise InputFileError(ds, "the dataset is not a folder")
                    dataset_hashes[ds] = dataset_sha256(ds)
            except (InputFileError, OSError) as exc:
                self.fail(i, one_line(exc))
                continue
            config = pj.config.to_dict() if hasattr(pj.config, "to_dict") else pj.config
            self.bases[i]["settings_hash"] = manifest.settings_hash(config, input_sha,
                                                                    dataset_hashes.get(ds) if ds else None)
            old = previous.get(self.bases[i]["output"])
            target = self.outdir / pj.job.output
            if (old and old.get("status") == "ok" and old.get("settings_hash") == self.bases[i]["settings_hash"]
                    and target.is_file() and target.stat().st_size == old.get("bytes")):
                self.succeed(i, {**old, "input": self.bases[i]["input"], "resumed": True}, None)
                continue
            todo.append(i)
        return todo

    # -- with Ray -------------------------------------------------------------------------------------------------
    def payload(self, i: int) -> tuple[ScenePayload, object]:
        """The scene's payload and its dataset's object reference (None without a dataset; put once per dataset)."""
        import ray

        pj = self.jobs[i]
        ds = pj.job.dataset
        ref = None
        if ds is not None:
            if ds not in self.dataset_refs:
                self.dataset_refs[ds] = ray.put({name: p.read_bytes() for name, p in dataset_files(ds)})
            ref = self.dataset_refs[ds]
        return ScenePayload(pj.job.input.name, pj.job.input.read_bytes(), pj.config, str(pj.job.input),
                            ds.name if ds else "dataset", str(ds) if ds else ""), ref

    def finish(self, i: int, ref) -> None:
        import ray

        try:
            out = ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker died twice, the node was lost for good, ...
            self.fail(i, one_line(exc).split(" Traceback")[0][:500])
            return
        node = out.get("node") or {}
        base = {**self.bases[i], **node, "seconds": round(out.get("seconds", 0.0), 2)}
        self.bases[i] = base
        if not out.get("ok"):
            self.fail(i, out.get("error") or "failed")
            return
        target = self.outdir / self.jobs[i].job.output
        try:
            from core.io.atomic import atomic_write_bytes

            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, out["data"], overwrite=True)
        except OSError as exc:
            self.fail(i, f"{target}: cannot write ({exc.strerror or exc})")
            return
        self.succeed(i, manifest.row_from_report(base, out.get("report") or {}), out.get("seconds"))

    def run(self, todo: list[int], info: runtime.RayInfo) -> None:
        import ray

        slots = max(1, int(info.cpus // max(1, min(self.jobs[i].threads for i in todo))))
        self.progress.slots = slots
        window = 2 * slots
        remote = ray.remote(run_scene)
        queue, inflight = list(todo), {}
        try:
            while queue or inflight:
                while queue and len(inflight) < window:
                    i = queue.pop(0)
                    try:
                        payload, dataset_ref = self.payload(i)
                    except OSError as exc:
                        self.fail(i, f"{self.jobs[i].job.input}: cannot read ({exc.strerror or exc})")
                        continue
                    opts = {"num_cpus": self.jobs[i].threads, "max_retries": 1, "retry_exceptions": False,
                            "scheduling_strategy": "SPREAD"}
                    inflight[remote.options(**opts).remote(self.work, payload, dataset_ref)] = i
                self.progress.update(running=len(inflight))
                if not inflight:
                    continue
                ready, _ = ray.wait(list(inflight), num_returns=1, timeout=0.5)
                for ref in ready:
                    i = inflight.pop(ref)
                    self.progress.running = min(len(inflight), slots)
                    self.finish(i, ref)
                    self.write_manifest()
        except KeyboardInterrupt:
            for ref in inflight:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - cancelling the rest matters more than one refusal
                    pass
            for i in list(inflight.values()) + queue:
                self.fail(i, "interrupted (Ctrl-C) before it finished", status="cancelled")
            raise


def run_batch(jobs: list[PreparedJob], work, outdir: Path, *, address: str | None = None, resume: bool = False,
              verbose: bool = False, stream=None) -> dict:
    """Run ``jobs`` (see the module doc); the manifest's rows and totals. ``work(scene_path, dataset_path,
    config) -> (bytes, report)`` runs in the Ray tasks (a module-level function: Ray sends it by reference)."""
    t0 = time.perf_counter()
    batch = _Batch(jobs, work, outdir, resume, stream)
    try:
        todo = batch.hash_inputs()
        if todo:
            max_threads = max(jobs[i].threads for i in todo)
            try:
                info = runtime.start(address, verbose)
            except (ConnectionError, TimeoutError, ValueError) as exc:
                raise UsageError(f"cannot start or join Ray ({address or 'embedded'}): {exc}") from None
            t_ray = time.perf_counter() - t0
            batch.meta["ray"] = {"address": info.address, "embedded": info.embedded, "cpus": info.cpus,
                                 "nodes": [{"node_id": n.get("NodeID"), "node_ip": n.get("NodeManagerAddress")}
                                           for n in info.nodes], "startup_s": round(t_ray, 2)}
            if max_threads > info.largest_node_cpus:
                raise UsageError(f"--threads {max_threads} is more than the CPUs of the largest Ray node "
                                 f"({info.largest_node_cpus:g}): no node could run the scene")
            batch.run(todo, info)
    finally:
        batch.progress.close()
        if any(r is not None for r in batch.rows):
            batch.meta["seconds"] = round(time.perf_counter() - t0, 2)
            batch.write_manifest()
        runtime.stop()
    rows = [r for r in batch.rows if r is not None]
    return {"rows": rows, "seconds": time.perf_counter() - t0, "ray": batch.meta.get("ray"),
            "ok": sum(r["status"] == "ok" for r in rows), "failed": sum(r["status"] == "failed" for r in rows),
            "cancelled": sum(r["status"] == "cancelled" for r in rows),
            "resumed": sum(bool(r.get("resumed")) for r in rows)}
