"""One process per job: a job folder is locked while a process trains it.

The lock is an flock on `<job>/.grok_sweep.lock` (layout.LOCK_FILE), which the OS drops when its process ends in any
way (SIGKILL included), so a killed job leaves no stale lock. The file holds the holder's pid and
host, for the message of whoever finds it locked; it is never deleted (deleting it would let two
processes lock two different files of the same name).
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import time
from pathlib import Path
from typing import Optional

from grok_sweep.store.layout import LOCK_FILE

HOLDER = "pid {pid} on {host}"  # what the lock file holds: its holder, for messages and to be asked to stop


class JobLock:
    def __init__(self, folder: Path):
        self.path = folder / LOCK_FILE
        self.fd: Optional[int] = None

    def acquire(self) -> bool:
        """Take the lock if no other process holds it; False if one does."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(5):  # a probe (held_by) holds a shared lock for microseconds: try again
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == 4:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        holder = f"{HOLDER.format(pid=os.getpid(), host=socket.gethostname())}\n".encode()
        if os.pread(fd, 200, 0) != holder:  # left as it is when it already names this process
            os.ftruncate(fd, 0)
            os.pwrite(fd, holder, 0)
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = None

    def __enter__(self) -> JobLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def held_by(folder: Path) -> Optional[str]:
    """Who trains the job in `folder` right now ("pid 123 on node7"), or None if no process does."""
    path = folder / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
        return holder or "another process"
    else:
        return None
    finally:
        os.close(fd)  # also drops the shared lock, if taken


def local_holder(folder: Path) -> Optional[int]:
    """The pid of the process on this machine that trains the job in `folder` right now, or None."""
    found = re.fullmatch(HOLDER.format(pid=r"(\d+)", host="(.+)"), held_by(folder) or "")
    return int(found.group(1)) if found and found.group(2) == socket.gethostname() else None
