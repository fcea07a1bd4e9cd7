"""Writing a job's files: atomically, and with one clear error when the disk or the folder refuses."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

# what a full disk, a file size limit or a read-only folder raise
DISK_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM}


class WriteError(OSError):
    """A file could not be written (full disk, file size limit, unwritable folder); the message is one line."""


def atomic_write(path: Path, write: Callable[[Path], Any]) -> None:
    """Write through `write(tmp)` beside `path`, then rename: a reader sees the old file or the new one, whole.

    If the write fails, the half-written file is removed, `path` is as it was, and WriteError names it."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise WriteError(f"could not write {path}: {err.strerror or err}") from err


def disk_problem(err: BaseException) -> Optional[str]:
    """One line if `err` says the disk refused a write, else None."""
    if isinstance(err, WriteError):
        return str(err)
    if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
        return f"could not write {err.filename or 'a file'}: {err.strerror}"
    return None
