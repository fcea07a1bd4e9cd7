"""Reading a sweep's many job folders: in parallel where that pays, and never twice while their files are unchanged.

A job's folder read back (store/jobs.load_job) costs a few milliseconds: mostly parsing Hydra's YAML and the
metrics parts. A sweep of thousands of jobs is read by worker processes, in chunks; a job no process trains is kept in
memory with the sizes and times of its files, so a process that aggregates or watches a sweep again (the live
view, --watch, the end-of-sweep callback) reads only the jobs whose files changed. docs/performance/aggregate.md.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

from grok_sweep.store.jobs import Job, job_folders, load_job
from grok_sweep.store.layout import (
    HYDRA_DIR,
    METRICS_FILE,
    PLAN_FILE,
    REFINE_FILE,
    RESULT_FILE,
    SNAPSHOT_DIR,
    STATUS_FILE,
    SUMMARY_FILE,
)

PARALLEL_FROM = 300  # jobs: below, starting the workers costs more than they save
CHUNK = 64  # job folders per task of a worker
MAX_WORKERS = 8
_CACHE: dict[tuple[Path, Path], tuple[tuple, Job]] = {}


def signature(folder: Path) -> tuple:
    """Name, size and modification time of every file a job folder's reading looks at."""
    out = []
    for where in (folder, folder / METRICS_FILE, folder / HYDRA_DIR, folder / SNAPSHOT_DIR):
        try:
            with os.scandir(where) as entries:
                out += [(e.path, s.st_size, s.st_mtime_ns) for e in entries for s in (e.stat(),)]
        except OSError:  # not there, or not a folder: its absence is part of the signature
            out.append((str(where), -1, -1))
    return tuple(sorted(out))


def _load_chunk(folders: list[Path], root: Path) -> list[Job]:
    return [load_job(f, root) for f in folders]


def workers() -> int:
    """Worker processes for reading: this process's usable cores, at most MAX_WORKERS."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS))


def _load_all(folders: list[Path], root: Path) -> list[Job]:
    n = workers()
    if len(folders) < PARALLEL_FROM or n < 2:
        return _load_chunk(folders, root)
    chunks = [folders[i : i + CHUNK] for i in range(0, len(folders), CHUNK)]
    # spawn, not fork: the caller may hold threads (the live view) that a forked child would inherit mid-lock
    with ProcessPoolExecutor(n, mp_context=get_context("spawn")) as pool:
        return [job for part in pool.map(_load_chunk, chunks, [root] * len(chunks)) for job in part]


def read_jobs(folders: list[Path], root: Path) -> list[Job]:
    """The jobs of `folders` read back (store/jobs.load_job), each read again only if its files changed."""
    sigs = [signature(f) for f in folders]
    stale = [i for i, f in enumerate(folders) if _CACHE.get((root, f), (None,))[0] != sigs[i]]
    fresh = dict(zip(stale, _load_all([folders[i] for i in stale], root), strict=True))
    for i, job in fresh.items():
        if job.running is None and (job.result is not None or job.damaged):  # changes only if it runs again
            _CACHE[(root, folders[i])] = (sigs[i], job)
    return [fresh[i] if i in fresh else _CACHE[(root, f)][1] for i, f in enumerate(folders)]


def find_jobs(root: Path) -> list[Job]:
    """Every job under `root` (store/jobs.job_folders), read back."""
    return read_jobs(job_folders(root), root)


def aggregates_stale(root: Path, jobs: list[Path]) -> bool:
    """Whether the folder's summary.parquet and metrics.parquet are missing or older than a file of one of its jobs
    that aggregation reads (a run folder's metrics.parquet is the job's own, so only its summary counts)."""
    own = [SUMMARY_FILE] + ([METRICS_FILE] if jobs != [root] else [])
    try:
        made = min((root / f).stat().st_mtime for f in own)
    except OSError:
        return True
    return any(p.stat().st_mtime > made for job in jobs for p in _read_files(job))


def _read_files(job: Path) -> list[Path]:
    """The files of a job folder that its summary row comes from (not its weights, figures or report)."""
    found = [job / name for name in (RESULT_FILE, STATUS_FILE, METRICS_FILE)]
    for where in (job / METRICS_FILE, job / HYDRA_DIR):
        found += where.iterdir() if where.is_dir() else []
    return [p for p in found if p.is_file()]


def folder_problem(root: Path) -> Optional[str]:
    """One line if `root` is not one sweep's or run's folder to aggregate: missing, a file, or a folder of several
    sweeps (outputs/sweeps/<date>), whose jobs aggregated together would count one config of two sweeps as two
    seeds."""
    if not root.exists():
        return f"{root}: no such folder"
    if not root.is_dir():
        return f"{root} is a file; give the folder of the sweep or run it belongs to ({root.parent})"
    if (root / PLAN_FILE).exists() or (root / HYDRA_DIR).is_dir():
        return None
    inner = sorted({p.parent for name in (PLAN_FILE, REFINE_FILE) for p in root.rglob(name)})
    if not inner:
        return None
    names = ", ".join(p.relative_to(root).as_posix() for p in inner[:5]) + (", ..." if len(inner) > 5 else "")
    return (f"{root} holds {len(inner)} sweep folder(s), not one sweep: {names}; aggregate each on its own, e.g. "
            f"python -m grok_sweep.aggregate {inner[0]}")  # fmt: skip
