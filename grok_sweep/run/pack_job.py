"""A pack of jobs trained as one program (train/pack.py), each writing its own job folder as run/job.py's job does.

A plain function, as run_job: the pack launcher (run/pack_launch.py) calls it with the jobs of one shape, tests call
it directly. Each job is taken as run_job takes it: refused if its config is impossible, skipped if another process
trains it or it has finished, resumed from its checkpoint (a checkpoint of another config is refused); the others
train together, each member from its own step, and each folder gets its metrics, weights, result.json (with the pack
it trained in) and status.json. A failure of the pack is recorded in every member's folder.
"""

from __future__ import annotations

import logging
import multiprocessing
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig
from tinygrad.helpers import PARALLEL, Context

from grok_sweep.run.checks import ConfigError, validate
from grok_sweep.run.job_folder import JobFolder, claim, finished, not_started, start_error
from grok_sweep.store.layout import INTERRUPTED
from grok_sweep.train.loop import Outcome
from grok_sweep.train.pack import Pack
from grok_sweep.util import interrupt

log = logging.getLogger(__name__)
Job = tuple[DictConfig, Path]


def run_pack(jobs: list[Job], device: Optional[str] = None) -> list[Optional[dict[str, Any]]]:
    """Train `jobs` (configs of one shape, their folders) as one pack on `device` (default: the first config's
    train.device); each job's result.json as run_job returns it, None for a job refused."""
    results: list[Optional[dict[str, Any]]] = [None] * len(jobs)
    with Context(PARALLEL=0 if multiprocessing.parent_process() is not None else PARALLEL.value), \
            interrupt.handling(), ExitStack() as locks:  # fmt: skip
        if interrupt.requested():
            return [{"status": INTERRUPTED, "stopped_at_step": None, "signal": interrupt.requested()} for _ in jobs]
        todo = [i for i, job in enumerate(jobs) if _take(job, i, results, locks)]
        if todo:
            _train([jobs[i] for i in todo], todo, results, device)
    return results


def _take(job: Job, i: int, results: list, locks: ExitStack) -> bool:
    """Whether job i trains in the pack: its config checked, its folder locked; else its result set (or None)."""
    cfg, out_dir = job
    try:
        validate(cfg)
    except ConfigError as err:
        log.error("job refused: %s (%s)", err, out_dir)
        return False
    lock, results[i] = claim(out_dir)
    if lock is None:
        return False
    locks.enter_context(lock)
    try:
        results[i] = finished(cfg, out_dir)
    except ConfigError as err:  # a finished job of another config
        log.error("job refused: %s", err)
        return False
    return results[i] is None


def _train(jobs: list[Job], index: list[int], results: list, device: Optional[str]) -> None:
    folders = [JobFolder(cfg, out_dir) for cfg, out_dir in jobs]
    found: dict[int, Any] = {}
    for k, f in enumerate(folders):
        try:
            found[k] = f.checkpoint_found()
        except ConfigError as err:
            log.error("job refused: %s", err)
            found[k] = err
    keep = [k for k in range(len(jobs)) if not isinstance(found[k], ConfigError)]
    if len(keep) < len(jobs):  # refused members leave the pack
        jobs, index, folders = [jobs[k] for k in keep], [index[k] for k in keep], [folders[k] for k in keep]
        found = {j: found[k] for j, k in enumerate(keep)}
    if not jobs:
        return
    cfgs = [cfg for cfg, _ in jobs]
    try:
        pack = Pack(cfgs, device)
    except Exception as err:  # the device, its memory or the disk refused before step 0
        why = start_error(err)
        for i, (cfg, out_dir) in zip(index, jobs, strict=True):
            results[i] = not_started(why, cfg, out_dir)
        return
    pack.restore({k: (*c, jobs[k][1]) for k, c in found.items() if c is not None})
    names = [out_dir.name for _, out_dir in jobs]
    plans = []
    for k, (i, f) in enumerate(zip(index, folders, strict=True)):
        f.extra = {"pack": {"size": len(jobs), "member": k, "jobs": names}}
        plan = f.start(pack.member(k), None if found[k] is None else pack.members[k].first)
        plans.append(replace(plan, ended=lambda outcome, i=i, f=f: _ended(outcome, f, i, results)))
    try:
        pack.fit(plans)
    except Exception as err:  # the members still training record the failure and keep what was measured
        for i, f, m in zip(index, folders, pack.members, strict=True):
            if not m.reported:
                results[i] = f.failed(err)


def _ended(outcome: Outcome, folder: JobFolder, i: int, results: list) -> None:
    """A member's run has ended (the others may train on): its folder written as a single job's."""
    try:
        folder.save(outcome.status)
    except Exception as err:  # noqa: BLE001 - recorded in its folder; the pack goes on
        results[i] = folder.failed(err)
        return
    timings = {"compile_time_s": outcome.compile_time_s, "loop_time_s": outcome.loop_time_s}
    results[i] = folder.finish(outcome.status, timings, interrupt.requested())
