"""Errors that reach the user. Each names the file and the problem in one sentence."""

from __future__ import annotations

from pathlib import Path


def printable(text: object) -> str:
    """``text`` with every non-printable character escaped (``\\x1b``, ``\\n``, ``\\u200e``, an unpaired
    surrogate as ``\\udc80``): what a file holds or a file is named never reaches a terminal or a dialog as
    control characters, and a message stays on one line. The one place messages are made printable."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in s)


class InputFileError(Exception):
    """A file could not be read: ``str(err)`` is ``"<path>: <problem>"``, ready for a dialog or stderr
    (non-printable characters of the path or the problem escaped, see :func:`printable`)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = printable(problem)
        super().__init__(f"{printable(self.path)}: {self.problem}")


class OutputFileError(OSError):
    """A file could not be written (read-only folder, full disk, a name the file system refuses): ``str(err)``
    is ``"<path>: <problem>"``. An OSError, so callers that catch write failures keep working."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = printable(problem)
        super().__init__(f"{printable(self.path)}: {self.problem}")

    def __str__(self) -> str:
        return str(self.args[0])


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

    The CLI prints ``error: <message>`` on one line and exits with status 2 (non-printable characters of a
    file name in the message escaped).
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(printable(message))


class ConfigError(ValueError):
    """A compression setting out of range or inconsistent with the others (``core.pipeline.config``).

    A ValueError, so callers that validate settings keep working; the CLI reports it as a usage error
    (exit 2) and, unlike any other ValueError (a bug), without a traceback.
    """
