"""What one Ray task runs: one scene, from bytes to bytes, on any node.

Workers need not see the driver's disk: the driver sends the scene file's bytes (and its dataset's files) in a
:class:`ScenePayload`; the task writes them to a private temporary folder under the scene's own file name (so
that the file records the same source name as ``compress`` does), runs the work function there and returns the
``.ngs`` bytes, the work's report and the node it ran on; it never raises for a bad scene (the error travels
back as one line). A worker process that dies is retried by Ray (``max_retries``).

Test hook: when ``NEURALGS_BATCH_CRASH_MARKER`` names a file that does not exist yet, the task creates it and
kills its own worker process (``os._exit``) in the middle of the scene: the first attempt dies, the retry runs.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CRASH_MARKER_ENV = "NEURALGS_BATCH_CRASH_MARKER"


@dataclass
class ScenePayload:
    """One scene as the driver sends it (its dataset's files travel beside it: :func:`run_scene`);
    ``dataset_name``: the dataset folder's name; ``label``, ``dataset_label``: how errors name the scene and the
    dataset (their paths on the driver)."""

    name: str
    data: bytes
    config: object
    label: str
    dataset_name: str = "dataset"
    dataset_label: str = ""
    extra: dict = field(default_factory=dict)


def node_info() -> dict:
    """The node this runs on: Ray's node id, its IP and the host name."""
    info = {"node_id": "", "node_ip": "", "host": socket.gethostname()}
    try:
        import ray

        if ray.is_initialized():
            info["node_id"] = ray.get_runtime_context().get_node_id()
            info["node_ip"] = ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - outside Ray (a plain call in tests) there is no node to name
        pass
    return info


def one_line(exc: BaseException, replace: list[tuple[str, str]] | None = None) -> str:
    """An exception as one line (``path: problem`` for the project's own errors, else ``Type: message``), with
    each ``(old, new)`` of ``replace`` replaced (the task's temporary paths by the driver's)."""
    from core.errors import InputFileError, OutputFileError, UsageError

    text = str(exc) if isinstance(exc, (InputFileError, OutputFileError, UsageError)) else \
        f"{type(exc).__name__}: {exc}"
    for old, new in replace or []:
        text = text.replace(old, new)
    return " ".join(text.split()) or type(exc).__name__


def _crash_hook() -> None:
    """The test hook (module doc): the first task to get here with the marker unset dies."""
    marker = os.environ.get(CRASH_MARKER_ENV)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(17)


def _materialise(folder: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = folder / rel
        if not target.resolve().is_relative_to(folder.resolve()):
            raise ValueError(f"dataset file {rel!r} lies outside its folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def run_scene(work, payload: ScenePayload, dataset: dict[str, bytes] | None = None) -> dict:
    """Run ``work(scene_path, dataset_path or None, config) -> (bytes, report)`` on the payload; a dict with
    ``ok``, ``data``/``report`` or ``error``, ``seconds`` and ``node``. ``dataset``: relative path -> bytes of
    every file of the dataset folder, or None (an argument of its own: Ray resolves an object reference given
    as a task's argument, one put once for all the scenes that share the dataset, not one inside a payload)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="neuralgs-batch-") as tmp:
        folder = Path(tmp)
        scene_path = folder / "scene" / payload.name
        try:
            scene_path.parent.mkdir()
            scene_path.write_bytes(payload.data)
            dataset_path = None
            if dataset is not None:
                dataset_path = folder / "dataset" / payload.dataset_name
                dataset_path.mkdir(parents=True)
                _materialise(dataset_path, dataset)
            _crash_hook()
            data, report = work(scene_path, dataset_path, payload.config)
        except Exception as exc:  # noqa: BLE001 - a bad scene is a failed row, never a crashed batch
            swaps = [(str(scene_path), payload.label), (str(folder / "dataset" / payload.dataset_name),
                                                        payload.dataset_label or payload.dataset_name)]
            return {"ok": False, "error": one_line(exc, swaps),
                    "seconds": time.perf_counter() - t0, "node": node_info()}
    return {"ok": True, "data": data, "report": report, "seconds": time.perf_counter() - t0, "node": node_info()}
