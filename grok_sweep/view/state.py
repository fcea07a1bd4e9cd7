"""The state of a sweep's jobs, read from their folders: what the live view and the status lines show.

Pure reading and formatting; live.py draws it. A job's state comes from its status.json (train/progress.py
writes it), else its result.json (a job without a status file), else it is queued. A job whose status says
it runs while no process holds its lock (lock.py) was interrupted (its process was killed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import ListConfig, OmegaConf

from grok_sweep.store.damage import Damaged
from grok_sweep.store.layout import (
    DIVERGED,
    ENDED,
    FAILED,
    HYDRA_DIR,
    INTERRUPTED,
    LIVE,
    OVERRIDES_FILE,
    QUEUED,
    REFINE_FILE,
    RUNNING,
    TRAINING,
    UNREADABLE,
)
from grok_sweep.store.lock import held_by
from grok_sweep.store.plan import plan, planned_jobs
from grok_sweep.store.refine_record import read_record
from grok_sweep.store.results import read_result
from grok_sweep.store.scan import read_jobs
from grok_sweep.store.status import read_status

FINAL = (*ENDED.values(), UNREADABLE)
STALE_S = 10.0  # a status this old, of a job no process holds, is an interrupted job's
HYDRA_WRITE_S = 2.0  # a damaged .hydra file this new is being written by Hydra: damage only if it stays


@dataclass
class JobView:
    name: str  # the swept overrides, as in the folder name: "train_ratio=0.2,weight_decay=0.1"
    state: str = QUEUED  # store.layout's QUEUED, LIVE states, ENDED states or INTERRUPTED
    step: int = 0
    steps: Optional[int] = None
    train_acc: Optional[float] = None
    test_acc: Optional[float] = None
    phase: Optional[str] = None
    steps_per_s: Optional[float] = None
    error: Optional[str] = None
    ended_at: Optional[float] = None  # when it reached a final state (unix time)

    @property
    def ended(self) -> bool:
        return self.state in FINAL


@dataclass
class Sweep:
    """The jobs of one sweep folder: planned ones (as override sets) and the folders found for them."""

    root: Path
    planned: list[frozenset[str]]
    swept: list[str]
    folders: dict[frozenset[str], Path] = field(default_factory=dict)
    round: Optional[str] = None  # a refine sweep's: "round 2/3: 18 new jobs"
    more: bool = False  # a refine sweep whose sweeper may still add a round
    _record_seen: Optional[tuple] = None  # size and time of the refine record last read

    @classmethod
    def from_folder(cls, root: Path) -> Sweep:
        planned, swept = planned_jobs(root)
        return cls(root, planned, swept)

    @classmethod
    def from_overrides(cls, root: Path, overrides: list[str], hydra: Any = None) -> Sweep:
        """A sweep about to start: its jobs from the command line's task overrides and the sweep values of its
        config's `hydra` node (store/plan.py)."""
        return cls(root, *plan(overrides, hydra))

    def label(self, overrides: frozenset[str]) -> str:
        """The job's swept overrides, sorted as Hydra sorts a folder name (all of them if none is swept)."""
        keys = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in self.swept] or list(overrides)
        return ",".join(sorted(keys)) or "(no overrides)"

    def common(self) -> str:
        """The overrides every job has (not swept), for the view's header."""
        shared = set.intersection(*(set(p) for p in self.planned)) if self.planned else set()
        return " ".join(sorted(o for o in shared if o.split("=", 1)[0].lstrip("+~") not in self.swept))

    def scan(self) -> list[JobView]:
        """Every planned job's state now (and any job folder the plan does not name, e.g. a sweep without one)."""
        self._follow_record()
        self._find_folders()
        jobs = list(dict.fromkeys([*self.planned, *self.folders]))
        views = [read_job(self.folders.get(o), self.label(o)) for o in jobs]
        for o, view in zip(jobs, views, strict=True):
            if view.ended and (damage := self.damage(self.folders[o])):
                view.state, view.error = UNREADABLE, damage
        return views

    def damage(self, folder: Path) -> Optional[str]:
        """An ended job's first unreadable file and why (None if all read), but for a Hydra file being written now.
        store/scan.py reads a job again only when its files change, and keeps it for the sweep's aggregation in this
        process."""
        return next((d for d in read_jobs([folder], self.root)[0].damaged if not _being_written(folder, d)), None)

    def _follow_record(self) -> None:
        """A refine sweep plans its jobs round by round: the planned ones are those of its record so far."""
        try:
            st = (self.root / REFINE_FILE).stat()
        except OSError:
            return
        if (st.st_size, st.st_mtime_ns) == self._record_seen:
            return
        try:
            record = read_record(self.root)
        except Damaged:  # aggregation says so; the view keeps what it had
            return
        if record is not None:
            self._record_seen = (st.st_size, st.st_mtime_ns)
            self.planned, self.swept, self.round = record.jobs(), record.keys(), record.round_line()
            self.more = not record.finished

    def _find_folders(self) -> None:
        if len(self.folders) == len(self.planned) and self.planned:
            return
        known = set(self.folders.values())
        for path in self.root.glob(f"**/.hydra/{OVERRIDES_FILE}"):
            folder = path.parent.parent
            if folder in known or folder == self.root:
                continue
            try:
                loaded = OmegaConf.load(path)
            except Exception:  # noqa: BLE001 - being written by Hydra right now: found on the next scan
                continue
            if not isinstance(loaded, ListConfig):  # created, not written yet (an empty file loads as {})
                continue
            self.folders[frozenset(OmegaConf.to_container(loaded))] = folder


def _being_written(folder: Path, damage: str) -> bool:
    """Whether a damaged file ('path: reason') is one of .hydra that Hydra wrote a moment ago: Hydra rewrites them,
    not atomically, each time it launches the job, a finished one too (which then skips it)."""
    name = damage.split(": ", 1)[0]
    try:
        return name.startswith(f"{HYDRA_DIR}/") and time.time() - (folder / name).stat().st_mtime < HYDRA_WRITE_S
    except OSError:
        return False


def read_job(folder: Optional[Path], name: str) -> JobView:
    """One job's state from its folder (None: no folder yet, so queued)."""
    job = JobView(name)
    if folder is None:
        return job
    status, result = read_status(folder), _result(folder)
    running = status is not None and status.get("state") in LIVE
    if result is not None and (status is None or running and held_by(folder) is None):
        status = _from_result(result)  # finished without a status file, or killed after result.json
    if status is None:
        return job
    _fill(job, status)
    if job.state in LIVE and time.time() - (status.get("updated") or 0) > STALE_S and held_by(folder) is None:
        job.state = INTERRUPTED
    return job


def _fill(job: JobView, status: dict[str, Any]) -> None:
    for key in ("state", "step", "steps", "train_acc", "test_acc", "phase", "steps_per_s", "error"):
        if status.get(key) is not None:
            setattr(job, key, status[key])
    if job.ended:
        job.ended_at = status.get("updated")


def _result(folder: Path) -> Optional[dict[str, Any]]:
    try:
        result = read_result(folder)
    except (OSError, ValueError):
        return None
    return result if result and result.get("status") in ENDED else None


def _from_result(result: dict[str, Any]) -> dict[str, Any]:
    return {"state": ENDED[result["status"]], "step": result.get("steps_run") or 0, "error": result.get("error"),
            "steps_per_s": result.get("steps_per_s"), "updated": 0.0}  # fmt: skip


def eta_s(jobs: list[JobView]) -> Optional[float]:
    """Seconds until the sweep ends at the speed measured now: steps left / the running jobs' steps per second.

    Queued jobs count as many steps as the average known job; early stopping makes it an upper bound."""
    known = [j.steps for j in jobs if j.steps]
    rate = sum(j.steps_per_s or 0 for j in jobs if j.state == TRAINING)
    if not known or rate <= 0:
        return None
    typical = sum(known) / len(known)
    left = sum((j.steps or typical) - j.step for j in jobs if not j.ended and j.state != INTERRUPTED)
    return max(left, 0) / rate


def clock(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def header(jobs: list[JobView], elapsed: float) -> str:
    """'jobs 2/6 done, 2 running, 2 queued | elapsed 0:41 | ETA 1:10'"""
    counts: dict[str, int] = {}
    for j in jobs:
        kind = RUNNING if j.state in LIVE else j.state
        counts[kind] = counts.get(kind, 0) + 1
    ended = sum(j.ended for j in jobs)
    bad = ", ".join(f"{counts[k]} {k}" for k in (ENDED[FAILED], ENDED[DIVERGED], UNREADABLE) if k in counts)
    rest = "".join(f", {counts[k]} {k}" for k in (RUNNING, INTERRUPTED, QUEUED) if k in counts)
    done = f"jobs {ended}/{len(jobs)} done" + (f" ({bad})" if bad else "") + rest
    eta = clock(eta_s(jobs)) if ended < len(jobs) else "0:00"
    return f"{done} | elapsed {clock(elapsed)} | ETA {eta}"


def progress(job: JobView) -> str:
    """'1250/5000'"""
    return f"{job.step}/{job.steps}" if job.steps else str(job.step) if job.step else ""


def acc(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.3f}"


def shown(jobs: list[JobView], rows: int) -> tuple[list[JobView], str]:
    """The jobs that fit in `rows` lines, the running ones first, then the latest to end, then queued ones;
    and a line counting the rest ('' when all fit)."""
    if len(jobs) <= rows:
        return jobs, ""
    running = [j for j in jobs if j.state in LIVE]
    ended = sorted((j for j in jobs if j.ended or j.state == INTERRUPTED), key=lambda j: -(j.ended_at or 0))
    waiting = [j for j in jobs if j.state == QUEUED]
    keep = (running + ended + waiting)[: max(rows - 1, 1)]
    order = {id(j): i for i, j in enumerate(jobs)}
    hidden = [j for j in jobs if id(j) not in {id(k) for k in keep}]
    counts: dict[str, int] = {}
    for j in hidden:
        counts[j.state] = counts.get(j.state, 0) + 1
    more = f"... and {len(hidden)} more: " + ", ".join(f"{n} {k}" for k, n in counts.items())
    return sorted(keep, key=lambda j: order[id(j)]), more
