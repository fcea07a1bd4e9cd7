"""(not run alone) Real grok_sweep jobs for the benchmarks that compare configs: grokfast.py, interventions.py,
optimizers.py, ungrok.py."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(overrides: list[str], out: str) -> tuple[str, float]:
    """One job of conf/config.yaml with `overrides`, through run_job into `out`: its status and wall time."""
    from hydra import compose, initialize_config_dir

    from grok_sweep.run.config import register
    from grok_sweep.run.job import run_job

    register()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("config", overrides=overrides)
    t0 = time.perf_counter()
    result = run_job(cfg, Path(out), progress=False)
    return result["status"], time.perf_counter() - t0


def run_all(runs: dict[tuple[str, int], list[str]], out: Path, jobs: int) -> dict[tuple[str, int], tuple[str, float]]:
    """Every (name, seed) run in out/<name>-seed<seed>, `jobs` at a time (fresh processes: one core each); prints
    how long they took."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {k: pool.submit(run_one, o, str(folder(out, *k))) for k, o in runs.items()}
        done = {k: f.result() for k, f in futures.items()}
    print(f"{len(runs)} runs in {time.perf_counter() - t0:.0f} s, {jobs} at a time; folders in {out}\n")
    return done


def folder(out: Path, name: str, seed: int) -> Path:
    return out / f"{name}-seed{seed}"


def budget(overrides: list[str]) -> str:
    """The step budget the overrides set (their last steps=)."""
    return [a for a in overrides if a.startswith("steps=")][-1].split("=")[1]


def say_unfinished(status: dict) -> None:
    """One line naming the runs that neither completed nor stopped early, if any."""
    if bad := {k: v for k, v in status.items() if v not in ("completed", "stopped_early")}:
        print(f"runs that did not complete: {bad}")


def table_head(*cols: str) -> None:
    """A Markdown table's header row and rule."""
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
