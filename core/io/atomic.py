"""Atomic file output: write to a temporary file beside the target, move it into place on success.

Every output file of the project goes through :func:`atomic_write`, so a crash, an exception or
Ctrl-C halfway through never leaves a half-written file under the final name, and an existing file
is never replaced by accident (``overwrite=False`` is the default).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

logger = logging.getLogger(__name__)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import (reading it means setting it, which is not thread-safe later on).
_UMASK = _current_umask()


def _refuse_existing(path: Path) -> None:
    raise FileExistsError(f"{path} already exists; not replacing it (pass overwrite=True to replace it)")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[BinaryIO]:
    """Context manager yielding a binary file object whose contents become ``path`` on success.

    The data goes to a hidden temporary file in the same folder (same filesystem, so the final
    ``os.replace`` is atomic). If the ``with`` block raises anything (``KeyboardInterrupt``
    included) the temporary file is removed and ``path`` is left untouched.

    Raises ``FileExistsError`` if ``path`` exists and ``overwrite`` is false (checked before any
    data is written and again, race-free where the filesystem supports hard links, at the end),
    and ``FileNotFoundError`` if the folder does not exist. The new file gets the usual
    permissions (0o666 minus the umask), not the 0o600 of a temporary file.

    Example::

        with atomic_write("out.bin", overwrite=True) as f:
            f.write(b"...")
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder, not a file")
    if not overwrite and target.exists():
        _refuse_existing(target)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {target}: folder {folder} does not exist")

    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        _move_into_place(tmp, target, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    logger.debug("wrote %s", target)


def _move_into_place(tmp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)  # fails if target appeared meanwhile: no-clobber without a race
    except FileExistsError:
        _refuse_existing(target)
    except OSError:  # filesystem without hard links: best effort
        if target.exists():
            _refuse_existing(target)
        os.replace(tmp, target)
        return
    tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, overwrite: bool = False) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, overwrite=overwrite) as f:
        f.write(data)
