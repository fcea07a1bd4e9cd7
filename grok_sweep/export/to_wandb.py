"""One W&B run per job: offline by default (no account, no network; `wandb sync` uploads it later), or `--online`.

A run is grouped by its sweep, named by its job folder, and holds the job's resolved config (the swept keys first),
every metrics row at its step, and its summary row (status, phase, key steps, accuracies) as the run's summary.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from grok_sweep.export.record import Record, run_id
from grok_sweep.export.source import ExportError, JobData, Source, measured
from grok_sweep.store.layout import WANDB_DIR
from grok_sweep.util.errors import first_line

PROJECT = "grok_sweep"  # the W&B project a run goes to unless --project says otherwise
OFFLINE_GLOB = "offline-run-*-{id}"  # W&B's name for an offline run's folder under DIR/wandb


def load_wandb() -> Any:
    try:
        import wandb
    except ImportError as err:
        raise ExportError("the W&B export needs the wandb package: pip install 'grok_sweep[wandb]'") from err
    return wandb


def _start(wandb: Any, source: Source, job: JobData, rid: str, online: bool, project: str) -> Any:
    # no console capture, system metrics, git or code: the run is written after the job, by this process
    settings = wandb.Settings(console="off", x_disable_stats=True, disable_git=True, save_code=False, silent=True)
    tags = [str(job.summary.get("phase") or job.summary.get("status"))]
    # W&B keeps a run's config sorted by key; its notes, at the top of the run's page, say what the sweep varied
    notes = "swept: " + ", ".join(f"{k}={v}" for k, v in job.swept.items()) if job.swept else None
    try:
        return wandb.init(project=project, group=source.group, name=job.name, id=rid, config=job.config, tags=tags,
                          notes=notes, dir=str(source.folder), mode="online" if online else "offline",
                          resume="allow" if online else None, settings=settings)  # fmt: skip
    except Exception as err:  # noqa: BLE001 - W&B's refusals (no login, no network) have many types
        hint = " (or export offline, without --online, and upload later with `wandb sync`)" if online else ""
        raise ExportError(f"W&B refused run {job.name!r}: {first_line(err)}{hint}") from err


def _write(wandb: Any, source: Source, job: JobData, rid: str, online: bool, project: str, since: int) -> None:
    """The job's run: its rows after step `since` (a resumed online run has the earlier ones), then its summary."""
    run = _start(wandb, source, job, rid, online, project)
    try:
        for step, values in measured(job.metrics):
            if step > since and values:
                run.log(values, step=step)
        run.summary.update(job.summary)
    finally:
        run.finish()


def export_wandb(source: Source, online: bool = False, project: str = PROJECT, echo=print) -> list[str]:
    """Write (or update) the W&B run of every job that changed since the last export; the jobs written."""
    wandb = load_wandb()
    record = Record(source.folder / WANDB_DIR, "online" if online else "offline", echo)
    written = []
    for job in record.changed(source.jobs, "W&B runs"):
        _export_job(wandb, source, job, record, online, project)
        written.append(job.name)
    return written


def _export_job(wandb: Any, source: Source, job: JobData, record: Record, online: bool, project: str) -> None:
    entry = record.jobs.get(job.name, {})
    rid = entry.get("id") or run_id(source.folder, job.name)
    if not online:  # an offline run is written whole: its earlier folder goes
        for old in (source.folder / WANDB_DIR).glob(OFFLINE_GLOB.format(id=rid)):
            shutil.rmtree(old)
    _write(wandb, source, job, rid, online, project, entry.get("last_step", -1) if online else -1)
    record.save(job.name, id=rid, fingerprint=job.fingerprint, last_step=job.last_step)


def offline_runs(folder: Path) -> list[Path]:
    """The offline runs' folders under a sweep's DIR/wandb (what `wandb sync` takes)."""
    return sorted(p for p in (folder / WANDB_DIR).glob(OFFLINE_GLOB.format(id="*")) if p.is_dir())
