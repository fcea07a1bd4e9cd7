"""The job: validate the config, train, write metrics.parquet and result.json into `out_dir`.

A plain function, so tests and other launchers can call it without Hydra's command line.
"""

from __future__ import annotations

import logging
import platform
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from tqdm import tqdm

from grok_sweep.config import split_sizes, validate
from grok_sweep.store import METRICS_FILE, write_metrics, write_result
from grok_sweep.train import Outcome, Trainer

log = logging.getLogger(__name__)
LIBRARIES = ("tinygrad", "numpy", "hydra-core", "omegaconf", "pandas", "pyarrow")


def run_job(cfg: DictConfig, out_dir: Path, progress: bool = True) -> dict[str, Any]:
    """Train one job as configured; returns what it wrote to result.json."""
    validate(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    with tqdm(
        total=cfg.steps, desc="train", unit="step", disable=not progress, mininterval=0.5, dynamic_ncols=True
    ) as bar:
        outcome = trainer.fit(bar)
    write_metrics(outcome.log, out_dir)
    result = _result(cfg, outcome, time.perf_counter() - t0)
    write_result(result, out_dir)
    log.info(
        "%s after %d steps in %.1f s (%.1f steps/s, compile %.1f s): %s",
        result["status"],
        result["steps_run"],
        result["wall_time_s"],
        result["steps_per_s"],
        result["compile_time_s"],
        out_dir / METRICS_FILE,
    )
    return result


def _result(cfg: DictConfig, outcome: Outcome, wall: float) -> dict[str, Any]:
    n_train, n_test = split_sizes(cfg.modulus, cfg.train_ratio)
    steps_run = outcome.log.filled
    timed = max(steps_run - 2, 0)  # the first two steps compile; see Outcome.compile_time_s
    return {
        "status": outcome.status,
        "steps_run": steps_run,
        "wall_time_s": round(wall, 3),
        "compile_time_s": round(outcome.compile_time_s, 3),
        "steps_per_s": round(timed / outcome.loop_time_s, 3) if outcome.loop_time_s > 0 else None,
        "device": cfg.train.device,
        "n_train": n_train,
        "n_test": n_test,
        "python": platform.python_version(),
        "versions": {lib: version(lib) for lib in LIBRARIES},
    }
