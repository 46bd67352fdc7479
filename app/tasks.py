"""Background tasks (file loading, export) whose results come back on the GUI thread.

``TaskRunner.submit(fn, on_done, on_error)`` runs ``fn()`` in a Python thread; the result or the
exception is handed to ``on_done`` / ``on_error`` on the GUI thread, through a queued signal to this
QObject (which lives there). A worker-thread signal must reach a slot of a GUI-thread QObject, not a
plain function, or the function runs in the worker (DESIGN §10).

A long task reports and can be cancelled through a :class:`Progress`: the task calls ``step(text)`` between
its pieces (which raises :class:`Cancelled` once the user cancelled), the GUI listens to ``changed``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Callable

from PySide6.QtCore import QObject, Signal, Slot

from core.errors import InputFileError

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The user cancelled the task (not an error: not logged as one)."""


class Progress(QObject):
    """Steps of one long task, ``total`` in all. The task (any thread) calls :meth:`step` before each piece;
    ``changed(done, total, text)`` reaches GUI-thread slots queued. :meth:`cancel` (GUI thread) makes the next
    ``step`` raise :class:`Cancelled`."""

    changed = Signal(int, int, str)

    def __init__(self, total: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.total = max(1, int(total))
        self.done = 0
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def step(self, text: str) -> None:
        """Start the next piece (``text`` says what it is); raises Cancelled once cancelled."""
        if self._cancel.is_set():
            raise Cancelled(text)
        self.changed.emit(self.done, self.total, text)
        self.done += 1


class TaskRunner(QObject):
    """Runs callables off the GUI thread; see the module docstring. ``busy``: tasks not finished yet."""

    _done = Signal(int, object, object)  # task id, result, exception

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Callable, Callable]] = {}
        self._names: dict[int, str] = {}
        self._done.connect(self._finish)

    @property
    def busy(self) -> int:
        return len(self._callbacks)

    def busy_with(self, name: str) -> int:
        """Tasks named ``name`` not finished yet (quitting waits for "export": a file half written)."""
        return sum(n == name for n in self._names.values())

    def submit(self, fn: Callable[[], object], on_done: Callable[[object], None],
               on_error: Callable[[BaseException], None], name: str = "task") -> int:
        """Start ``fn`` in a thread; returns the task id."""
        task_id = next(self._ids)
        self._callbacks[task_id] = (on_done, on_error)
        self._names[task_id] = name

        def work() -> None:
            try:
                result = fn()
            except Exception as exc:
                if not isinstance(exc, (InputFileError, OSError, ValueError, Cancelled)):  # the user's, not bugs
                    log.exception("%s failed", name)
                self._done.emit(task_id, None, exc)
            else:
                self._done.emit(task_id, result, None)

        threading.Thread(target=work, name=f"neuralgs-{name}", daemon=True).start()
        return task_id

    @Slot(int, object, object)
    def _finish(self, task_id: int, result: object, exc: object) -> None:
        on_done, on_error = self._callbacks.pop(task_id)
        self._names.pop(task_id, None)
        if exc is None:
            on_done(result)
        else:
            on_error(exc)
