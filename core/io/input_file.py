"""The checks every reader makes before it opens an input file, and the one bounded read.

Only regular files are read: a FIFO would block forever and ``/dev/zero`` never ends. A name the file
system refuses (over 255 bytes, a NUL) is a clean error, not an internal one.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.errors import InputFileError, os_error_problem


def check_input_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path; raises InputFileError unless it is an existing, readable regular file."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputFileError(path, "no such file") from None
    except (OSError, ValueError) as exc:
        problem = os_error_problem(exc) if isinstance(exc, OSError) else f"not a usable file name ({exc})"
        raise InputFileError(path, problem) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError(path, "is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a special file")
        raise InputFileError(path, f"is {kind}, not a regular file")
    if not os.access(path, os.R_OK):
        raise InputFileError(path, "permission denied")
    return path


def read_input_bytes(path: str | os.PathLike[str], limit: int, what: str = "a file") -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them: a larger file is an
    InputFileError (checked before reading, and again while reading, in case it grows)."""
    path = check_input_file(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise InputFileError(path, f"{size:,} bytes is too large for {what} (limit {limit:,})")
            data = f.read(min(size, limit) + 1)  # never a buffer of the limit itself
    except OSError as exc:
        raise InputFileError(path, os_error_problem(exc, what)) from None
    if len(data) > limit:
        raise InputFileError(path, f"more than {limit:,} bytes is too large for {what}")
    return data
