"""Errors that reach the user. Each names the file and the problem in one sentence."""

from __future__ import annotations

from pathlib import Path


class InputFileError(Exception):
    """A file could not be read: ``str(err)`` is ``"<path>: <problem>"``, ready for a dialog or stderr."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def os_error_problem(exc: OSError, what: str = "a file") -> str:
    """The one-line problem for an OSError raised while opening or reading a path.

    ``what`` names what the path should have been ("a scene file", "an .ngs file"), for the folder case.
    """
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return f"is a folder, not {what}"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot be read: {exc.strerror or exc}"


class UsageError(Exception):
    """A user error not tied to reading one input file (bad option, existing output, unavailable backend).

    The CLI prints ``error: <message>`` on one line and exits with status 2.
    """


class ConfigError(ValueError):
    """A compression setting out of range or inconsistent with the others (``core.pipeline.config``).

    A ValueError, so callers that validate settings keep working; the CLI reports it as a usage error
    (exit 2) and, unlike any other ValueError (a bug), without a traceback.
    """
