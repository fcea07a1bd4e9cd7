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
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from tinygrad.helpers import PARALLEL, Context
from tqdm import tqdm

from grok_sweep.config import ConfigError, job_device, validate
from grok_sweep.snapshots import write_final, write_snapshot
from grok_sweep.store import (
    CHECKPOINT_FILE,
    COMPLETED,
    METRICS_FILE,
    read_checkpoint,
    read_metrics,
    read_result,
    write_checkpoint,
    write_metrics,
    write_result,
)
from grok_sweep.tasks import split_sizes
from grok_sweep.train import Trainer

log = logging.getLogger(__name__)
LIBRARIES = ("tinygrad", "numpy", "hydra-core", "omegaconf", "pandas", "pyarrow")
FINISHED = (*COMPLETED, "diverged")  # a re-run skips these; a failed job is tried again


def run_job(cfg: DictConfig, out_dir: Path, progress: bool = True, job_num: int = 0) -> dict[str, Any]:
    """Train one job as configured (or finish it); returns what it wrote to result.json.

    `job_num` is the job's number in its sweep; with train.devices > 1 it picks the job's device."""
    # in a launcher's worker process (joblib) tinygrad's compile pool can't start (nor would it help: the
    # launcher already uses every core)
    with Context(PARALLEL=0 if multiprocessing.parent_process() is not None else PARALLEL.value):
        return _run_job(cfg, out_dir, progress, job_num)


def _run_job(cfg: DictConfig, out_dir: Path, progress: bool, job_num: int) -> dict[str, Any]:
    validate(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_yaml(cfg)
    done = read_result(out_dir)
    if done and done.get("status") in FINISHED:
        _same_config(done.get("config"), config, out_dir)
        log.info("already %s, skipped: %s", done["status"], out_dir)
        return done
    t0 = time.perf_counter()
    trainer = Trainer(cfg, job_device(cfg.train.device, cfg.train.devices, job_num))
    resumed = _resume(trainer, config, out_dir)

    def checkpoint() -> None:  # metrics first: a checkpoint never points past the rows on disk
        write_metrics(trainer.log, out_dir)
        write_checkpoint(trainer.state(), {**trainer.host_state(), "config": config}, out_dir)

    def snapshot(step: int) -> None:
        write_snapshot(trainer.weights(), step, cfg.steps, out_dir)

    bar = tqdm(total=cfg.steps, initial=trainer.step, desc="train", unit="step", disable=not progress,
               mininterval=0.5, dynamic_ncols=True)  # fmt: skip
    try:
        with bar:
            outcome = trainer.fit(bar, checkpoint, snapshot)
    except Exception as err:  # keep what was measured and let the other jobs of a sweep run
        log.exception("job failed at step %d", trainer.step)
        write_metrics(trainer.log, out_dir)
        timings = {"compile_time_s": None, "loop_time_s": None}
        result = _result(cfg, "failed", trainer, time.perf_counter() - t0, timings, config, resumed)
        result["error"] = f"{type(err).__name__}: {err}"
        write_result(result, out_dir)
        try:  # the weights as they were when it failed, if the device still gives them
            write_final(trainer.weights(), trainer.step, out_dir)
        except Exception:
            log.exception("could not keep the final weights")
        return result
    write_metrics(trainer.log, out_dir)
    write_final(trainer.weights(), trainer.step, out_dir)
    timings = {"compile_time_s": outcome.compile_time_s, "loop_time_s": outcome.loop_time_s}
    result = _result(cfg, outcome.status, trainer, time.perf_counter() - t0, timings, config, resumed)
    write_result(result, out_dir)
    if not cfg.train.keep_checkpoint:
        (out_dir / CHECKPOINT_FILE).unlink(missing_ok=True)
    log.info("%s after %d steps in %.1f s (%s steps/s, compile %.1f s): %s", result["status"],
             result["steps_run"], result["wall_time_s"], result["steps_per_s"], result["compile_time_s"],
             out_dir / METRICS_FILE)  # fmt: skip
    return result


def _same_config(old: Optional[str], new: str, out_dir: Path) -> None:
    if old is not None and old != new:
        raise ConfigError(f"{out_dir} holds a job run with another config; give this one a new output folder")


def _resume(trainer: Trainer, config: str, out_dir: Path) -> Optional[int]:
    """Load the job's checkpoint, if any; returns the step it continues from."""
    found = read_checkpoint(out_dir)
    if found is None:
        return None
    tensors, host = found
    _same_config(host.get("config"), config, out_dir)
    trainer.restore(tensors, host, read_metrics(out_dir / METRICS_FILE))
    log.info("resuming from step %d: %s", trainer.step, out_dir)
    return trainer.step


def _result(cfg: DictConfig, status: str, trainer: Trainer, wall: float, timings: dict[str, Optional[float]],
            config: str, resumed: Optional[int]) -> dict[str, Any]:  # fmt: skip
    n_train, n_test = split_sizes(cfg.modulus, cfg.train_ratio, cfg.operation)
    steps_run, loop = trainer.log.filled, timings["loop_time_s"]
    timed = max(steps_run - (resumed or 0) - 2, 0)  # the first two steps compile; see Outcome.compile_time_s
    compile_s = timings["compile_time_s"]
    return {
        "status": status,
        "steps_run": steps_run,
        # the last row of a run stopped early; the step that failed or diverged
        "stopped_at_step": {"completed": None, "stopped_early": steps_run - 1}.get(status, trainer.step),
        "resumed_from_step": resumed,
        "wall_time_s": round(wall, 3),
        "compile_time_s": None if compile_s is None else round(compile_s, 3),
        "steps_per_s": round(timed / loop, 3) if loop else None,
        "device": trainer.device,
        "host": platform.node(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),  # set when a SLURM launcher ran the job
        "n_train": n_train,
        "n_test": n_test,
        "python": platform.python_version(),
        "versions": {lib: version(lib) for lib in LIBRARIES},
        "config": config,
    }
