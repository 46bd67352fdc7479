"""Errors that reach the user. Each names the file and the problem in one sentence."""

from __future__ import annotations

from pathlib import Path


class InputFileError(Exception):
    """A file could not be read: ``str(err)`` is ``"<path>: <problem>"``, ready for a dialog or stderr."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
