"""The checks every reader makes before it opens an input file."""

from __future__ import annotations

import os
from pathlib import Path

from core.errors import InputFileError


def check_input_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a Path; raises InputFileError unless it is an existing, readable regular file."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "no such file")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not a file")
    if not os.access(path, os.R_OK):
        raise InputFileError(path, "permission denied")
    return path
