"""What a job writes into its folder, for a trainer of one run (train/trainer.py) or a member of a pack
(train/pack_member.py) alike: its resume, checkpoints and snapshots, then metrics, final weights, result.json and
status.json, or what a failure leaves. run/job.py trains one job with it, run/pack_job.py a pack of jobs.
"""

from __future__ import annotations

import logging
import os
import platform
import sqlite3
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from tinygrad.helpers import CACHEDB

from grok_sweep.run import parent
from grok_sweep.run.outputs import refuse_other_config
from grok_sweep.run.repair import repair
from grok_sweep.store.damage import Damaged
from grok_sweep.store.integrity import read_yaml
from grok_sweep.store.layout import (
    CHECKPOINT_FILE,
    COMPLETED,
    DIVERGED,
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
from grok_sweep.train.loop import Plan
from grok_sweep.train.metrics_log import write_metrics
from grok_sweep.train.progress import JobStatus
from grok_sweep.util.errors import first_line
from grok_sweep.util.files import WriteError, disk_problem

log = logging.getLogger(__name__)
LIBRARIES = ("tinygrad", "numpy", "hydra-core", "omegaconf", "pandas", "pyarrow")
Trained = Any  # a Trainer, or a pack's PackMember: log, step, device, cache, state(), host_state(), weights()


class JobFolder:
    """One job's folder while it trains: `out_dir` for a job of `cfg`."""

    def __init__(self, cfg: DictConfig, out_dir: Path, progress: bool = False):
        self.cfg, self.out_dir, self.bar = cfg, out_dir, progress
        self.config = OmegaConf.to_yaml(cfg)
        self.t0 = time.perf_counter()
        self.resumed: Optional[int] = None
        self.status: Optional[JobStatus] = None
        self.extra: dict[str, Any] = {}  # more keys for result.json (a pack's)

    def checkpoint_found(self) -> Optional[tuple[dict, dict]]:
        """The folder's checkpoint (arrays, host state), if it has one of this config (refused if of another)."""
        found = read_checkpoint(self.out_dir)
        if found is not None:
            refuse_other_config(self.out_dir, found[1].get("config"), self.config, found[1].get("overrides"))
        return found

    def start(self, trained: Trained, resumed: Optional[int]) -> Plan:
        """Training starts (at step `resumed`, or 0): the loop's plan for this job, reporting into this folder."""
        self.resumed, self.trained = resumed, trained
        if resumed is not None:
            log.info("resuming from step %d: %s", resumed, self.out_dir)
        trained.log.attach(self.out_dir)  # full blocks of metrics go to disk as they fill
        overrides = hydra_overrides(self.out_dir)  # in the checkpoint: a refused run of another config restores them

        def checkpoint() -> None:  # metrics first: a checkpoint never points past the rows on disk
            write_metrics(trained.log, self.out_dir)
            write_checkpoint(trained.state(), {**trained.host_state(), "config": self.config, "overrides": overrides},
                             self.out_dir)  # fmt: skip

        def snapshot(step: int) -> None:
            write_snapshot(trained.weights(), step, self.cfg.steps, self.out_dir)

        self._checkpoint = checkpoint
        self.status = JobStatus(self.out_dir, self.cfg.steps, trained.step, bar=self.bar)
        return Plan.of(self.cfg, self.status, checkpoint, snapshot)

    def save(self, status: str) -> None:
        """After the loop: an interrupted job's checkpoint at the step it resumes at, else its metrics and weights (and
        with train.keep_checkpoint its state at its end: a run may continue it with init.optimizer=true)."""
        if status == INTERRUPTED or (self.cfg.train.keep_checkpoint and status != DIVERGED):
            self._checkpoint()
        if status != INTERRUPTED:
            write_metrics(self.trained.log, self.out_dir)
            write_final(self.trained.weights(), self.trained.step, self.out_dir)

    def finish(self, status: str, timings: dict[str, Optional[float]], signum: Optional[int] = None) -> dict[str, Any]:
        """result.json and status.json of a job whose loop ended with `status`; returns the result."""
        result = self.result(status, timings)
        try:
            write_result(result, self.out_dir)
        except WriteError as err:
            return self.failed(err)
        self.status.finish(result, frame(self.trained))
        if status == INTERRUPTED:  # the same command resumes it from its checkpoint at this step
            log.warning("interrupted at step %d: %s", self.trained.step, self.out_dir)
            return {**result, "signal": signum}
        if not self.cfg.train.keep_checkpoint:
            (self.out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
        log.info("%s after %d steps in %.1f s (%s steps/s, compile %.1f s): %s", result["status"],
                 result["steps_run"], result["wall_time_s"], result["steps_per_s"], result["compile_time_s"] or 0,
                 self.out_dir / METRICS_FILE)  # fmt: skip
        return result

    def failed(self, err: Exception) -> dict[str, Any]:
        """Record a job that raised: its metrics, weights and result.json, as far as the disk still takes them."""
        trained, out_dir = self.trained, self.out_dir
        disk = job_disk_problem(err)
        if disk:  # a full disk or an unwritable folder: one line, and write no more than the result
            log.error("job stopped at step %d: %s", trained.step, disk)
        else:
            log.exception("job failed at step %d", trained.step)
        result = self.result(FAILED, {"compile_time_s": None, "loop_time_s": None})
        result["error"] = disk or f"{type(err).__name__}: {err}"
        if disk:
            best_effort(write_result, result, out_dir)
            self.status.finish(result)
            return result
        best_effort(write_metrics, trained.log, out_dir)
        best_effort(write_result, result, out_dir)
        best_effort(lambda w, d: write_final(w, trained.step, d), trained.weights(), out_dir)
        self.status.finish(result, frame(trained))
        return result

    def result(self, status: str, timings: dict[str, Optional[float]]) -> dict[str, Any]:
        cfg, trained = self.cfg, self.trained
        n_train, n_test = parent.sizes(cfg)
        steps_run, loop = trained.log.filled, timings["loop_time_s"]
        timed = max(steps_run - (self.resumed or 0) - 2, 0)  # the first two steps compile; see Outcome.compile_time_s
        compile_s = timings["compile_time_s"]
        return {
            "status": status,
            "steps_run": steps_run,
            # the last row of a run stopped early; the step that failed or diverged; the step an interrupted one
            # resumes at
            "stopped_at_step": {COMPLETED: None, STOPPED_EARLY: steps_run - 1}.get(status, trained.step),
            "resumed_from_step": self.resumed,
            "wall_time_s": round(time.perf_counter() - self.t0, 3),
            "compile_time_s": None if compile_s is None else round(compile_s, 3),
            # "hit": the train and eval steps came compiled from the compile cache; "miss": compiled here; null: off
            "compile_cache": None if trained.cache is None else ("hit" if trained.cache.hit else "miss"),
            "steps_per_s": round(timed / loop, 3) if loop else None,
            "device": trained.device,
            "host": platform.node(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),  # set when a SLURM launcher ran the job
            "n_train": n_train,
            "n_test": n_test,
            "python": platform.python_version(),
            "versions": {lib: version(lib) for lib in LIBRARIES},
            "config": self.config,
            "final_weights": FINAL_FILE if status in FINISHED else None,  # written before this file
            "init": parent.describe(cfg),  # the run it continued (init.from), or null
            "overrides": hydra_overrides(self.out_dir),  # Hydra's, as it wrote them: a damaged copy is told from them
            **self.extra,
        }


def claim(out_dir: Path) -> tuple[Optional[JobLock], Optional[dict[str, Any]]]:
    """The job folder's lock, taken (then this process trains the job), or the result of a job not started here: the
    folder cannot be written, or another process trains the job now (leave it to that one)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = JobLock(out_dir)
        locked = lock.acquire()
    except OSError as err:
        log.error("job not started: could not write in %s: %s", out_dir, err.strerror or err)
        return None, {"status": FAILED, "stopped_at_step": 0, "error": f"could not write in {out_dir}: {err.strerror}"}
    if not locked:
        holder = held_by(out_dir) or "another process"
        log.warning("skipped, being trained by %s right now: %s", holder, out_dir)
        return None, {"status": RUNNING_ELSEWHERE, "holder": holder, "stopped_at_step": None}
    return lock, None


def finished(cfg: DictConfig, out_dir: Path) -> Optional[dict[str, Any]]:
    """With the lock: damaged files set aside (a damaged job is never taken for finished), then a finished job's
    result (it is not trained again), else None."""
    repair(out_dir)
    done = read_result(out_dir)
    return skip(done, cfg, out_dir) if done and done.get("status") in FINISHED else None


def skip(done: dict[str, Any], cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """A finished job is not trained again (its status file is written again if it was set aside)."""
    refuse_other_config(out_dir, done.get("config"), OmegaConf.to_yaml(cfg), done.get("overrides"))
    log.info("already %s, skipped: %s", done["status"], out_dir)
    if not (out_dir / STATUS_FILE).exists():
        JobStatus(out_dir, cfg.steps).finish(done, _metrics_or_none(out_dir))
    return done


def not_started(error: str, cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    log.error("job not started: %s", error)
    result = {"status": FAILED, "stopped_at_step": 0, "steps_run": 0, "error": error, "config": OmegaConf.to_yaml(cfg)}
    best_effort(write_result, result, out_dir)
    JobStatus(out_dir, cfg.steps).finish(result)
    return result


def start_error(err: Exception) -> str:
    """One line for a trainer that could not be built (the device, its memory or the disk refused before step 0)."""
    if not (why := job_disk_problem(err)):
        log.exception("job could not start")
        why = f"{type(err).__name__}: {first_line(err)}"
    return why


def _metrics_or_none(out_dir: Path) -> Any:
    try:
        return read_metrics(out_dir / METRICS_FILE)
    except Exception:  # noqa: BLE001 - the status file then has no phase
        return None


def frame(trained: Trained) -> Any:
    """The job's metrics as a DataFrame, for its final phase; None if they cannot be read back."""
    try:
        return trained.log.frame()
    except Exception:  # noqa: BLE001 - the status file then shows the phase seen so far
        return None


def best_effort(write: Any, what: Any, out_dir: Path) -> None:
    try:
        write(what, out_dir)
    except Exception as err:  # noqa: BLE001 - already failing: say so and keep the rest
        log.error("%s", err if isinstance(err, WriteError) else f"{type(err).__name__}: {err}")


def hydra_overrides(out_dir: Path) -> Optional[list]:
    try:
        return read_yaml(out_dir / HYDRA_DIR / OVERRIDES_FILE, list)
    except Damaged:  # run without Hydra (no .hydra), or the file is damaged: nothing to compare with
        return None


def job_disk_problem(err: BaseException) -> Optional[str]:
    """One line if `err` says the disk refused a write (ours, or tinygrad's compile cache), else None."""
    if isinstance(err, sqlite3.OperationalError):  # tinygrad keeps compiled kernels in an sqlite file
        return f"could not write tinygrad's compile cache {CACHEDB} ({err}): free space there, or set CACHELEVEL=0"
    return disk_problem(err)
