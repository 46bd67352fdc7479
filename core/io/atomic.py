"""Atomic file output: write to a temporary file beside the target, move it into place on success.

Every output file of the project goes through :func:`atomic_write`, so a crash, an exception or
Ctrl-C halfway through never leaves a half-written file under the final name, and an existing file
is never replaced by accident (``overwrite=False`` is the default).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from core.errors import OutputFileError

logger = logging.getLogger(__name__)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once at import (reading it means setting it, which is not thread-safe later on).
_UMASK = _current_umask()


TMP_SUFFIX = ".ngs-tmp"
"""Our temporary files are ``.<name, first 64 characters>.<pid>.<random>.ngs-tmp`` beside the target: short
enough for any legal target name, and recognisable, so that one left by a killed process (kill -9) is removed
by the next write into that folder (:func:`remove_stale_temps`)."""


def _tmp_prefix(target: Path) -> str:
    return f".{target.name[:64]}.{os.getpid()}."


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0  # someone else's process (or a nonsense pid: treated as alive, left alone)
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove temporary files of our own naming in ``folder`` whose writing process is gone; returns them."""
    removed = []
    try:
        names = [n for n in os.listdir(folder) if n.startswith(".") and n.endswith(TMP_SUFFIX)]
    except OSError:
        return removed
    for name in names:
        parts = name[: -len(TMP_SUFFIX)].rsplit(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) == os.getpid() or _pid_alive(int(parts[1])):
            continue
        with contextlib.suppress(OSError):
            (folder / name).unlink()
            removed.append(folder / name)
            logger.info("removed %s, left by an interrupted write", folder / name)
    return removed


def write_problem(exc: OSError) -> str:
    """The one-line reason an OSError gives for a failed write."""
    reasons = {errno.EROFS: "the folder is on a read-only file system", errno.ENOSPC: "the disk is full",
               errno.EDQUOT: "the disk quota is exceeded", errno.EACCES: "permission denied",
               errno.EPERM: "not permitted (an immutable or protected folder?)",
               errno.ENAMETOOLONG: "the name is too long"}
    return "cannot write: " + reasons.get(exc.errno, exc.strerror or str(exc))


def check_writable(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Check, before any work, that :func:`atomic_write` can create ``path``: raises FileExistsError (exists and
    not ``overwrite``), OutputFileError (a folder, a missing folder, a dangling symlink, a read-only or full
    folder, a name the file system refuses). Writes and removes one empty temporary file."""
    target = Path(path)
    try:
        if target.is_dir():
            raise OutputFileError(target, "is a folder")
        if target.is_symlink() and not target.exists():
            raise OutputFileError(target, "is a dangling symbolic link")
        if not overwrite and target.exists():
            _refuse_existing(target)
        if not target.parent.is_dir():
            raise OutputFileError(target, f"folder {target.parent} does not exist")
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_tmp_prefix(target), suffix=TMP_SUFFIX)
        os.close(fd)
        os.unlink(tmp)
        if len(os.fsencode(target.name)) > 255:
            raise OSError(errno.ENAMETOOLONG, "name too long")
    except OutputFileError:
        raise
    except FileExistsError:
        raise
    except OSError as exc:
        raise OutputFileError(target, write_problem(exc)) from None
    except ValueError as exc:  # a NUL in the name
        raise OutputFileError(target, f"not a usable file name ({exc})") from None
    return target


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
    ``FileNotFoundError`` if the folder does not exist, and OutputFileError (an OSError) for a failed write (a
    read-only or full disk, a name the file system refuses). Temporary files of ours that a killed process
    left in the folder are removed first (:func:`remove_stale_temps`). The new file gets the usual
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
    remove_stale_temps(folder)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=_tmp_prefix(target), suffix=TMP_SUFFIX)
    except OSError as exc:
        raise OutputFileError(target, write_problem(exc)) from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        _move_into_place(tmp, target, overwrite)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, (FileExistsError, OutputFileError)):
            raise OutputFileError(target, write_problem(exc)) from exc
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
