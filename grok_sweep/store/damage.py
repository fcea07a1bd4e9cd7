"""A damaged file of a job folder: its one-line reason, and setting it aside.

A job's files are written atomically (util/files.py), so a damaged one comes from outside: a partial copy off a
cluster, a full disk under another tool, a hand edit. Every reader of a job folder reads through `reading`, which
turns whatever the file makes a parser raise into `Damaged`: the path and one line saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, TypeVar

from grok_sweep.store.layout import DAMAGED_SUFFIX, METRICS_FILE
from grok_sweep.util.errors import first_line

T = TypeVar("T")


class Damaged(ValueError):
    """A file of a job folder that cannot be read; str() is 'path: reason', one line.

    `step`: the first training step whose record (metrics rows, a snapshot) it loses, where it holds one; `gone`:
    the file is not there at all (nothing to set aside)."""

    def __init__(self, path: Path, reason: str, step: Optional[int] = None, gone: bool = False):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.step, self.gone = path, reason, step, gone


def reason(err: BaseException) -> str:
    """Why a read failed, in one line a user can act on."""
    if isinstance(err, IsADirectoryError):
        return "a folder where a file should be"
    if isinstance(err, FileNotFoundError):
        return "missing"
    if isinstance(err, Damaged):
        return err.reason
    return f"{type(err).__name__}: {first_line(err)}"[:200]


@contextmanager
def reading(path: Path) -> Iterator[None]:
    """Turn any failure to read `path` into Damaged(path, reason)."""
    try:
        yield
    except Damaged:
        raise
    except Exception as err:  # noqa: BLE001 - whatever a damaged file makes a reader raise
        raise Damaged(path, reason(err)) from err


def read_checked(path: Path, read: Callable[[Path], T]) -> T:
    with reading(path):
        return read(path)


def set_aside(path: Path) -> Path:
    """Rename a damaged file (or folder) beside itself, `<name>.damaged` (then .damaged-2, ...): kept, never read.
    A metrics part gets a leading `_` too, which pyarrow skips when it reads the metrics folder as one table."""
    name = f"_{path.name}" if path.parent.name == METRICS_FILE else path.name
    target, n = path.with_name(name + DAMAGED_SUFFIX), 1
    while target.exists() or target.is_symlink():
        n += 1
        target = path.with_name(f"{name}{DAMAGED_SUFFIX}-{n}")
    path.rename(target)
    return target
