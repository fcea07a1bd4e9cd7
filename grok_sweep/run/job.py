"""The job: validate the config, train, write metrics.parquet and result.json into `out_dir`.

A plain function, so tests and other launchers can call it without Hydra's command line. It is
safe to call again on the same folder: a finished job is skipped, an interrupted one continues
from its last checkpoint, and a failure is recorded in result.json instead of raised.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import platform
import signal
import sqlite3
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from tinygrad.helpers import CACHEDB, PARALLEL, Context

from grok_sweep.data.tasks import split_sizes
from grok_sweep.run.checks import ConfigError, validate
from grok_sweep.run.outputs import refuse_other_config
from grok_sweep.run.repair import repair
from grok_sweep.run.resources import job_device, memory_problem, physical_bytes
from grok_sweep.store.damage import Damaged
from grok_sweep.store.integrity import read_yaml
from grok_sweep.store.layout import (
    CHECKPOINT_FILE,
    COMPLETED,
    FAILED,
    FINAL_FILE,
    FINISHED,
    HYDRA_DIR,
    INTERRUPTED,
    METRICS_FILE,
    OVERRIDES_FILE,
    RUNNING_ELSEWHERE,
    STATUS_FILE,
    STOPPED_EARLY,
)
from grok_sweep.store.lock import JobLock, held_by
from grok_sweep.store.metrics import read_metrics
from grok_sweep.store.results import read_result, write_result
from grok_sweep.train.checkpoint import read_checkpoint, write_checkpoint, write_final, write_snapshot
from grok_sweep.train.metrics_log import write_metrics
from grok_sweep.train.progress import JobStatus
from grok_sweep.train.trainer import Trainer
from grok_sweep.util import interrupt
from grok_sweep.util.errors import first_line
from grok_sweep.util.files import WriteError, disk_problem

log = logging.getLogger(__name__)
LIBRARIES = ("tinygrad", "numpy", "hydra-core", "omegaconf", "pandas", "pyarrow")


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
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = JobLock(out_dir)
        locked = lock.acquire()
    except OSError as err:
        log.error("job not started: could not write in %s: %s", out_dir, err.strerror or err)
        return {"status": FAILED, "stopped_at_step": 0, "error": f"could not write in {out_dir}: {err.strerror}"}
    if not locked:  # another process trains this job now: leave it to that one
        holder = held_by(out_dir) or "another process"
        log.warning("skipped, being trained by %s right now: %s", holder, out_dir)
        return {"status": RUNNING_ELSEWHERE, "holder": holder, "stopped_at_step": None}
    with lock:
        return _train_locked(cfg, out_dir, progress, job_num)


def _train_locked(cfg: DictConfig, out_dir: Path, progress: bool, job_num: int) -> dict[str, Any]:
    config = OmegaConf.to_yaml(cfg)
    repair(out_dir)  # damaged files set aside: a damaged job is never taken for finished
    done = read_result(out_dir)
    if done and done.get("status") in FINISHED:
        return _skip(done, cfg, config, out_dir)
    t0 = time.perf_counter()
    try:
        trainer = Trainer(cfg, job_device(cfg.train.device, cfg.train.devices, job_num))
    except Exception as err:  # the device, its memory or the disk refused before step 0
        if not (why := _disk_problem(err)):
            log.exception("job could not start")
            why = f"{type(err).__name__}: {first_line(err)}"
        return _not_started(why, cfg.steps, config, out_dir)
    resumed = _resume(trainer, config, out_dir)
    trainer.log.attach(out_dir)  # full blocks of metrics go to disk as they fill
    overrides = _hydra_overrides(out_dir)  # kept in the checkpoint: a refused run of another config restores them

    def checkpoint() -> None:  # metrics first: a checkpoint never points past the rows on disk
        write_metrics(trainer.log, out_dir)
        write_checkpoint(trainer.state(), {**trainer.host_state(), "config": config, "overrides": overrides}, out_dir)

    def snapshot(step: int) -> None:
        write_snapshot(trainer.weights(), step, cfg.steps, out_dir)

    status = JobStatus(out_dir, cfg.steps, trainer.step, bar=progress)
    try:
        outcome = trainer.fit(status, checkpoint, snapshot)
        if outcome.status == INTERRUPTED:  # the step it stopped at is where the same command resumes
            checkpoint()
        else:
            write_metrics(trainer.log, out_dir)
            write_final(trainer.weights(), trainer.step, out_dir)
    except Exception as err:  # keep what was measured and let the other jobs of a sweep run
        return _failed(cfg, trainer, err, time.perf_counter() - t0, config, resumed, out_dir, status)
    timings = {"compile_time_s": outcome.compile_time_s, "loop_time_s": outcome.loop_time_s}
    result = _result(cfg, outcome.status, trainer, time.perf_counter() - t0, timings, config, resumed, out_dir)
    try:
        write_result(result, out_dir)
    except WriteError as err:
        return _failed(cfg, trainer, err, time.perf_counter() - t0, config, resumed, out_dir, status)
    status.finish(result, _frame(trainer))
    if outcome.status == INTERRUPTED:  # the same command resumes it from its checkpoint at this step
        log.warning("interrupted at step %d: %s", trainer.step, out_dir)
        return {**result, "signal": interrupt.requested()}
    if not cfg.train.keep_checkpoint:
        (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    log.info("%s after %d steps in %.1f s (%s steps/s, compile %.1f s): %s", result["status"],
             result["steps_run"], result["wall_time_s"], result["steps_per_s"], result["compile_time_s"],
             out_dir / METRICS_FILE)  # fmt: skip
    return result


def _failed(cfg: DictConfig, trainer: Trainer, err: Exception, wall: float, config: str, resumed: Optional[int],
            out_dir: Path, status: JobStatus) -> dict[str, Any]:  # fmt: skip
    """Record a job that raised: its metrics, weights and result.json, as far as the disk still takes them."""
    disk = _disk_problem(err)
    if disk:  # a full disk or an unwritable folder: one line, and write no more than the result
        log.error("job stopped at step %d: %s", trainer.step, disk)
    else:
        log.exception("job failed at step %d", trainer.step)
    timings = {"compile_time_s": None, "loop_time_s": None}
    result = _result(cfg, FAILED, trainer, wall, timings, config, resumed, out_dir)
    result["error"] = disk or f"{type(err).__name__}: {err}"
    if disk:
        _best_effort(write_result, result, out_dir)
        status.finish(result)
        return result
    _best_effort(write_metrics, trainer.log, out_dir)
    _best_effort(write_result, result, out_dir)
    _best_effort(lambda w, d: write_final(w, trainer.step, d), trainer.weights(), out_dir)
    status.finish(result, _frame(trainer))
    return result


def _skip(done: dict[str, Any], cfg: DictConfig, config: str, out_dir: Path) -> dict[str, Any]:
    """A finished job is not trained again (its status file is written again if it was set aside)."""
    refuse_other_config(out_dir, done.get("config"), config, done.get("overrides"))
    log.info("already %s, skipped: %s", done["status"], out_dir)
    if not (out_dir / STATUS_FILE).exists():
        JobStatus(out_dir, cfg.steps).finish(done, _metrics_or_none(out_dir))
    return done


def _metrics_or_none(out_dir: Path) -> Any:
    try:
        return read_metrics(out_dir / METRICS_FILE)
    except Exception:  # noqa: BLE001 - the status file then has no phase
        return None


def _frame(trainer: Trainer) -> Any:
    """The job's metrics as a DataFrame, for its final phase; None if they cannot be read back."""
    try:
        return trainer.log.frame()
    except Exception:  # noqa: BLE001 - the status file then shows the phase seen so far
        return None


def _not_started(error: str, steps: int, config: str, out_dir: Path) -> dict[str, Any]:
    log.error("job not started: %s", error)
    result = {"status": FAILED, "stopped_at_step": 0, "steps_run": 0, "error": error, "config": config}
    _best_effort(write_result, result, out_dir)
    JobStatus(out_dir, steps).finish(result)
    return result


def _best_effort(write: Any, what: Any, out_dir: Path) -> None:
    try:
        write(what, out_dir)
    except Exception as err:  # noqa: BLE001 - already failing: say so and keep the rest
        log.error("%s", err if isinstance(err, WriteError) else f"{type(err).__name__}: {err}")


def _resume(trainer: Trainer, config: str, out_dir: Path) -> Optional[int]:
    """Load the job's checkpoint, if any; returns the step it continues from."""
    found = read_checkpoint(out_dir)
    if found is None:
        return None
    tensors, host = found
    refuse_other_config(out_dir, host.get("config"), config, host.get("overrides"))
    trainer.restore(tensors, host, out_dir)
    log.info("resuming from step %d: %s", trainer.step, out_dir)
    return trainer.step


def _result(cfg: DictConfig, status: str, trainer: Trainer, wall: float, timings: dict[str, Optional[float]],
            config: str, resumed: Optional[int], out_dir: Path) -> dict[str, Any]:  # fmt: skip
    n_train, n_test = split_sizes(cfg.modulus, cfg.train_ratio, cfg.operation)
    steps_run, loop = trainer.log.filled, timings["loop_time_s"]
    timed = max(steps_run - (resumed or 0) - 2, 0)  # the first two steps compile; see Outcome.compile_time_s
    compile_s = timings["compile_time_s"]
    return {
        "status": status,
        "steps_run": steps_run,
        # the last row of a run stopped early; the step that failed or diverged; the step an interrupted one resumes at
        "stopped_at_step": {COMPLETED: None, STOPPED_EARLY: steps_run - 1}.get(status, trainer.step),
        "resumed_from_step": resumed,
        "wall_time_s": round(wall, 3),
        "compile_time_s": None if compile_s is None else round(compile_s, 3),
        # "hit": the train and eval steps came compiled from the compile cache; "miss": compiled here; null: off
        "compile_cache": None if trainer.cache is None else ("hit" if trainer.cache.hit else "miss"),
        "steps_per_s": round(timed / loop, 3) if loop else None,
        "device": trainer.device,
        "host": platform.node(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),  # set when a SLURM launcher ran the job
        "n_train": n_train,
        "n_test": n_test,
        "python": platform.python_version(),
        "versions": {lib: version(lib) for lib in LIBRARIES},
        "config": config,
        "final_weights": FINAL_FILE if status in FINISHED else None,  # written before this file
        "overrides": _hydra_overrides(out_dir),  # Hydra's, as it wrote them: a damaged copy is told from them
    }


def _hydra_overrides(out_dir: Path) -> Optional[list]:
    try:
        return read_yaml(out_dir / HYDRA_DIR / OVERRIDES_FILE, list)
    except Damaged:  # run without Hydra (no .hydra), or the file is damaged: nothing to compare with
        return None


def _disk_problem(err: BaseException) -> Optional[str]:
    """One line if `err` says the disk refused a write (ours, or tinygrad's compile cache), else None."""
    if isinstance(err, sqlite3.OperationalError):  # tinygrad keeps compiled kernels in an sqlite file
        return f"could not write tinygrad's compile cache {CACHEDB} ({err}): free space there, or set CACHELEVEL=0"
    return disk_problem(err)
