"""The job: validate the config, train, write metrics.parquet and result.json into `out_dir`.

A plain function, so tests and other launchers can call it without Hydra's command line. It is
safe to call again on the same folder: a finished job is skipped, an interrupted one continues
from its last checkpoint, and a failure is recorded in result.json instead of raised.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from tinygrad.helpers import PARALLEL, Context

from grok_sweep.run import parent
from grok_sweep.run.checks import ConfigError, validate
from grok_sweep.run.job_folder import JobFolder, claim, finished, not_started, start_error
from grok_sweep.run.resources import job_device, memory_problem, physical_bytes
from grok_sweep.store.layout import INTERRUPTED
from grok_sweep.train.trainer import Trainer
from grok_sweep.util import interrupt

log = logging.getLogger(__name__)


def run_job(cfg: DictConfig, out_dir: str | Path, progress: bool = True, job_num: int = 0) -> dict[str, Any]:
    """Train one job as configured (or finish it); returns what it wrote to result.json.

    `progress` shows a tqdm bar; either way the job keeps its status.json up to date (train/progress.py).
    `job_num` is the job's number in its sweep; with train.devices > 1 it picks the job's device."""
    # in a launcher's worker (joblib) tinygrad's compile pool can't start (nor help: the launcher uses every core)
    with Context(PARALLEL=0 if multiprocessing.parent_process() is not None else PARALLEL.value), interrupt.handling():
        if signum := interrupt.requested():  # the command is stopping (a sweep's next job): start no job
            log.warning("not started, the command was interrupted (%s): %s", signal.Signals(signum).name, out_dir)
            return {"status": INTERRUPTED, "stopped_at_step": None, "signal": signum}
        return _run_job(cfg, Path(out_dir), progress, job_num)


def _run_job(cfg: DictConfig, out_dir: Path, progress: bool, job_num: int) -> dict[str, Any]:
    validate(cfg)
    # the command line checked the memory available where it ran; a job on a cluster node checks its own
    if too_big := memory_problem(cfg, physical_bytes()):
        raise ConfigError(too_big)
    lock, not_here = claim(out_dir)
    if lock is None:
        return not_here
    with lock:
        return _train_locked(cfg, out_dir, progress, job_num)


def _train_locked(cfg: DictConfig, out_dir: Path, progress: bool, job_num: int) -> dict[str, Any]:
    if done := finished(cfg, out_dir):
        return done
    folder = JobFolder(cfg, out_dir, progress)
    try:
        trainer = Trainer(cfg, job_device(cfg.train.device, cfg.train.devices, job_num), parent.start(cfg))
    except Exception as err:  # the device, its memory or the disk refused before step 0
        return not_started(start_error(err), cfg, out_dir)
    if (found := folder.checkpoint_found()) is not None:
        trainer.restore(*found, out_dir)
    plan = folder.start(trainer, None if found is None else trainer.step)
    try:
        outcome = trainer.fit(plan.progress, plan.checkpoint, plan.snapshot)
        folder.save(outcome.status)
    except Exception as err:  # keep what was measured and let the other jobs of a sweep run
        return folder.failed(err)
    timings = {"compile_time_s": outcome.compile_time_s, "loop_time_s": outcome.loop_time_s}
    return folder.finish(outcome.status, timings, interrupt.requested())
