"""A refine sweep's record (refine.json in its folder): its two axes, its settings, and each round's points and jobs.

The sweeper (run/refine.py) rewrites it before launching each round, so the live view can show the round and the
jobs planned so far, and aggregation can tell each job's round and point without re-running the rule. It is a
record, not the plan's state: a re-run derives the plan again from the labels in the job folders.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from grok_sweep.store.damage import reading
from grok_sweep.store.layout import REFINE_FILE
from grok_sweep.util.files import atomic_write


@dataclass
class PointJobs:
    """One point of the lattice (i on the first axis, j on the second) and its jobs' override lists."""

    point: tuple[int, int]
    jobs: list[list[str]]


@dataclass
class Record:
    axes: list[dict[str, Any]]  # {"key", "lo", "hi", "log"}, the first axis first
    start: int
    depth: int
    max_jobs: int
    rounds: list[list[PointJobs]] = field(default_factory=list)  # the coarse grid first
    finished: bool = False  # the sweeper found no cell left to split (or no budget): no round follows

    def jobs(self) -> list[frozenset[str]]:
        """Every job planned so far, round by round."""
        return [frozenset(job) for r in self.rounds for p in r for job in p.jobs]

    def keys(self) -> list[str]:
        """The swept keys: the two axes', then the replicates' (those that differ between a point's jobs)."""
        first = self.rounds[0][0].jobs if self.rounds and self.rounds[0] else []
        varied = [o for job in first for o in job if any(o not in other for other in first)]
        axes = [a["key"] for a in self.axes]
        rest = [o.split("=", 1)[0].lstrip("+~") for o in varied]
        return axes + [k for k in dict.fromkeys(rest) if k not in axes]

    def round_line(self) -> str:
        """'round 2/3: 18 new jobs' (round 0 is the coarse grid)."""
        new = sum(len(p.jobs) for p in self.rounds[-1]) if self.rounds else 0
        coarse = " (the coarse grid)" if len(self.rounds) == 1 else ""
        return f"round {len(self.rounds) - 1}/{self.depth}: {new} new jobs{coarse}"


def write_record(root: Path, record: Record) -> None:
    text = json.dumps(asdict(record), indent=1)
    atomic_write(root / REFINE_FILE, lambda p: p.write_text(text + "\n"))


def read_record(root: Path) -> Optional[Record]:
    """The sweep folder's record; None if it has none (not a refine sweep); Damaged if it cannot be read."""
    path = root / REFINE_FILE
    if not path.exists():
        return None
    with reading(path):
        raw = json.loads(path.read_text())
        rounds = [[PointJobs(tuple(p["point"]), [list(j) for j in p["jobs"]]) for p in r] for r in raw["rounds"]]
        record = Record(list(raw["axes"]), int(raw["start"]), int(raw["depth"]), int(raw["max_jobs"]), rounds,
                        bool(raw.get("finished", False)))  # fmt: skip
        if len(record.axes) != 2 or not all({"key", "lo", "hi", "log"} <= set(a) for a in record.axes):
            raise ValueError("axes: not two {key, lo, hi, log}")
    return record
