"""Progress records that every pipeline stage yields, and the timing helpers that make them.

Stages are generators: ``result = yield from stage(...)`` composes them, a driver pauses one by
not calling ``next()`` and cancels it with ``gen.close()`` (GeneratorExit at the current yield).
Each stage yields a :class:`ProgressRecord` at every meaningful step (a view rendered, a k-means
iteration, a logged fitting step) and, in long loops, whenever :class:`Throttle` says 0.5 s of
work passed since the last one, so a GUI can update and cancel promptly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Generator, TypeVar

T = TypeVar("T")


@dataclass
class ProgressRecord:
    """One progress report.

    stage: "views", "importance", "prune", "cluster", "fit", "finetune" or "evaluate";
    step of total (0 <= step <= total; step == total when the stage is done);
    elapsed_s: seconds since the stage started; eta_s: estimated seconds left in the stage (None
    when unknown); losses: per-cluster fitting loss at this step, cluster index -> loss (fit stage);
    total_loss: the fine-tuning loss at this step (finetune stage).
    """

    stage: str
    step: int
    total: int
    message: str = ""
    elapsed_s: float = 0.0
    eta_s: float | None = None
    losses: dict[int, float] | None = None
    total_loss: float | None = None

    @property
    def fraction(self) -> float:
        """step / total in [0, 1] (1 for an empty stage)."""
        return 1.0 if self.total <= 0 else min(1.0, max(0.0, self.step / self.total))


class Throttle:
    """Says when at least ``interval_s`` seconds passed since it last said so (or since creation).

    >>> th = Throttle(0.5)
    >>> th.due()   # False right after creation, True once 0.5 s have passed (then it restarts)
    False
    """

    def __init__(self, interval_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = float(interval_s)
        self._clock = clock
        self._last = clock()

    def due(self) -> bool:
        now = self._clock()
        if now - self._last >= self.interval_s:
            self._last = now
            return True
        return False

    def reset(self) -> None:
        self._last = self._clock()


class StageClock:
    """Elapsed time and ETA of one stage with ``total`` steps; makes its :class:`ProgressRecord`."""

    def __init__(self, stage: str, total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.stage = stage
        self.total = int(total)
        self._clock = clock
        self.start = clock()

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self.start

    def record(self, step: int, message: str = "", **fields) -> ProgressRecord:
        """A record for ``step`` of ``total``; the ETA assumes the remaining steps run at the mean rate so far."""
        elapsed = self.elapsed_s
        eta = None
        if 0 < step <= self.total:
            eta = elapsed / step * (self.total - step)
        return ProgressRecord(self.stage, int(step), self.total, message, elapsed, eta, **fields)


def run_to_completion(gen: Generator[ProgressRecord, None, T],
                      on_progress: Callable[[ProgressRecord], object] | None = None) -> T:
    """Drive a stage generator to its end and return its result, passing each record to ``on_progress``."""
    while True:
        try:
            rec = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(rec)
