"""The compression worker: drives ``core.pipeline.compress()`` step by step in its own thread.

Pause = stop calling ``next()`` (the worker waits on an event); Cancel = ``gen.close()``, which raises
GeneratorExit at the generator's current ``yield``: the pipeline yields at least every ~0.5 s, so a
cancel takes effect within that plus the time ``close()`` needs. Nothing is ever written to disk.

Progress reaches the GUI thread as :class:`ProgressBatch` signals at most every ``EMIT_INTERVAL_S``:
the newest record plus every loss point since the previous batch, so the loss curves miss nothing
while a fast pipeline cannot flood the event loop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field

from PySide6.QtCore import QThread, Signal

log = logging.getLogger(__name__)

EMIT_INTERVAL_S = 0.1  # 10 progress updates a second; each costs the GUI thread ~1-2 ms (the bar repaints)
WORKER_NICENESS = 10  # the compression yields the CPU to the GUI thread (Linux: per-thread nice, relative)


def lower_thread_priority(niceness: int) -> None:
    """Make the calling thread ``niceness`` steps nicer than it is (Linux: setpriority on its thread id, at
    most 19); no-op where unsupported. Threads it starts afterwards (torch's OpenMP pool) inherit it.

    QThread priorities are ignored on Linux; without this, on a busy 2-core machine the GUI thread
    waited tens of milliseconds for a CPU while the compression thread kept both. Relative, not absolute:
    under ``nice -n 10`` an absolute 10 left the worker level with the GUI thread, and the render
    thread's 5 put it above it.
    """
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted
        log.debug("could not lower the worker thread's priority: %s", exc)


@dataclass
class ProgressBatch:
    """record: the newest ProgressRecord; fit_points: [(step, {cluster: loss})]; tune_points: [(stage, step,
    image loss)] of the learning stages (co-adaptation, fine-tuning, quantisation-aware fine-tuning)."""

    record: object
    fit_points: list[tuple[int, dict[int, float]]] = field(default_factory=list)
    tune_points: list[tuple[int, float]] = field(default_factory=list)


def warm_up_compression() -> None:
    """Pay the pipeline's one-time costs now (call from a background thread at start-up).

    The first ``torch.optim.Adam`` step imports torch's compiler machinery: 2.4 s, holding the GIL for up
    to 0.2 s at a time (measured), which froze the GUI for 0.4 s at the start of the first fitting stage.
    """
    import torch

    import core.pipeline.compress  # noqa: F401 - the import is the point

    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.Adam([p], lr=1e-3)
    (p * p).sum().backward()
    opt.step()


def record_source(result, source: dict) -> None:
    """Record ``source`` in the result's file header (``meta["source"]``), as ``compress`` on the command line does,
    so that the exported .ngs is recognised against the scene it is opened over; ``n_bytes`` follows the header."""
    from core.pipeline.compress import file_meta

    result.model.meta["source"] = dict(source)
    if result.encoded is not None:  # v2: the bytes the pipeline measured, their header's record replaced
        result.encoded.set_meta(file_meta(result.model.meta))
        result.n_bytes = result.encoded.n_bytes
    else:  # v1 keeps the model's meta as it is
        from core.codec import encode_ngs

        result.n_bytes = len(encode_ngs(result.model))


class CompressionWorker(QThread):
    """One compression run. Signals: progress(ProgressBatch), succeeded(CompressedScene), failed(str), cancelled()."""

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, scene, config, cameras=None, dataset_images=None, parent=None,
                 source: dict | None = None) -> None:
        super().__init__(parent)
        self.scene, self.config = scene, config
        self.source = source  # what the file records of the scene it is made from (core.pipeline.compress.source_meta)
        self.cameras, self.dataset_images = cameras, dataset_images
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.cancel_requested_at: float | None = None
        self.outcome = None  # "succeeded", "failed" or "cancelled" once the run has ended

    # -- GUI-thread API ------------------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        """Pause (the generator is not advanced) or resume."""
        if paused:
            self._running.clear()
        else:
            self._running.set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def cancel(self) -> None:
        """Stop at the pipeline's next yield; ``cancelled`` follows."""
        if self.cancel_requested_at is None:
            self.cancel_requested_at = time.monotonic()
        self._cancel.set()
        self._running.set()  # a paused worker wakes up to close the generator

    # -- the thread ----------------------------------------------------------------------------
    def run(self) -> None:
        from core.pipeline.compress import compress

        from app.documents import compressed_from_result

        lower_thread_priority(WORKER_NICENESS)
        gen = None
        try:
            gen = compress(self.scene, self.config, cameras=self.cameras, dataset_images=self.dataset_images)
            result = self._drive(gen)
            if result is None:
                return
            if self.source is not None:
                record_source(result, self.source)
            outcome = compressed_from_result(result)
            if self._cancel.is_set():
                self._end_cancelled()
                return
            self.outcome = "succeeded"
            self.succeeded.emit(outcome)
        except Exception as exc:
            log.exception("compression failed")
            self.outcome = "failed"
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        finally:
            if gen is not None:
                gen.close()

    def _drive(self, gen):
        """Advance ``gen`` until it returns (its value) or is cancelled (None)."""
        batch = None
        last_emit, last_stage = 0.0, None
        while True:
            if self._cancel.is_set():
                gen.close()
                self._end_cancelled()
                return None
            if not self._running.is_set():
                if batch is not None:
                    self.progress.emit(batch)
                    batch = None
                self._running.wait(0.1)
                continue
            try:
                rec = next(gen)
            except StopIteration as stop:
                if batch is not None:
                    self.progress.emit(batch)
                return stop.value
            if batch is None:
                batch = ProgressBatch(rec)
            batch.record = rec
            if rec.losses:
                batch.fit_points.append((rec.step, dict(rec.losses)))
            if rec.total_loss is not None:
                batch.tune_points.append((rec.stage, rec.step, float(rec.total_loss)))
            now = time.monotonic()
            if rec.stage != last_stage or now - last_emit >= EMIT_INTERVAL_S:  # a new stage shows at once
                self.progress.emit(batch)
                batch, last_emit, last_stage = None, now, rec.stage

    def _end_cancelled(self) -> None:
        waited = time.monotonic() - self.cancel_requested_at if self.cancel_requested_at else 0.0
        log.info("compression cancelled (%.2f s after the request)", waited)
        self.outcome = "cancelled"
        self.cancelled.emit()
