"""The export record: in each tracker's folder, what of every job was exported (its fingerprint, its last step,
its run's id), so exporting the same folder again sends only what changed and never a job twice.

The record only saves work: a job is written under an id derived from its folder, and its earlier files are replaced,
so a lost or damaged record means the jobs are written again, not duplicated."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from grok_sweep.export.source import JobData
from grok_sweep.store.damage import Damaged
from grok_sweep.store.integrity import read_json
from grok_sweep.store.layout import EXPORT_RECORD
from grok_sweep.util.files import atomic_write


class Record:
    def __init__(self, folder: Path, kind: str, echo=print):
        """The record in `folder` for exports of `kind` (one tracker's mode: "offline", "online", "events")."""
        self.path, self.kind = folder / EXPORT_RECORD, kind
        self.all: dict[str, Any] = {}
        if self.path.exists():
            try:
                self.all = read_json(self.path)
            except Damaged as err:
                echo(f"warning: {err}; every job is exported again (replacing its earlier files)")
        if not isinstance(self.all.get(kind), dict):
            self.all[kind] = {}
        self.jobs: dict[str, dict[str, Any]] = self.all[kind]

    def changed(self, jobs: list[JobData], desc: str) -> Iterator[JobData]:
        """The jobs not exported as they are now, under a progress bar named `desc`."""
        todo = [j for j in jobs if self.jobs.get(j.name, {}).get("fingerprint") != j.fingerprint]
        with tqdm(todo, desc=desc, unit="job", disable=len(todo) < 2, leave=False) as bar:
            yield from bar

    def save(self, name: str, **entry: Any) -> None:
        """Note a job as exported, and write the record (after every job: an interrupted export keeps its work)."""
        self.jobs[name] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda p: p.write_text(json.dumps(self.all, indent=1, sort_keys=True)))


def run_id(folder: Path, job: str) -> str:
    """A job's run id for a tracker: the same for the same folder and job on every export."""
    return hashlib.sha1(f"{folder.resolve()}\n{job}".encode()).hexdigest()[:16]
