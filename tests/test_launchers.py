"""The same grid through Hydra's launchers gives the same numbers.

The basic, joblib and submitit_local launchers run in CI. A real SLURM cluster and a Ray head are
opt-in: `bash .ci/slurm-up` then GROK_SWEEP_SLURM=1, `bash .ci/ray-up` then GROK_SWEEP_RAY=1.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, TINY

GRID = ["weight_decay=0.1,1.0", "train_ratio=0.4,0.6", *(o for o in TINY if not o.startswith("train_ratio"))]
TIMINGS = ["wall_time_s", "steps_per_s"]  # the only columns allowed to differ between launchers


def multirun(sweep: Path, *args: str, timeout: int = 600) -> str:
    """Run the grid with its output to a file, as a log (CI, SLURM, `> log`) takes it; returns the log."""
    cmd = [sys.executable, "-m", "grok_sweep", "-m", *GRID, *args, f"hydra.sweep.dir={sweep}"]
    log = sweep.parent / f"{sweep.name}.log"
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    text = log.read_text()
    assert proc.returncode == 0, text[-5000:]
    return text


def assert_status_lines(log: str) -> None:
    """The sweep's status lines read top to bottom: no bar redrawn in place, one "finished" line per job."""
    assert "\r" not in log
    finished = [line for line in log.splitlines() if ": finished (done) at step 40/40, phase " in line]
    jobs = [f"train_ratio={r},weight_decay={w}" for r in ("0.4", "0.6") for w in ("0.1", "1.0")]
    assert sorted(line.split("] ", 1)[1].split(":", 1)[0] for line in finished) == sorted(jobs), log[-3000:]
    assert "jobs 4/4 done" in log


def results(sweep: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    summary = pd.read_parquet(sweep / "summary.parquet").drop(columns=TIMINGS)
    metrics = pd.read_parquet(sweep / "metrics.parquet").sort_values(["job", "step"], ignore_index=True)
    assert len(summary) == 4 and (summary["status"] == "completed").all()
    return summary, metrics


def assert_same(a: Path, b: Path) -> None:
    (sa, ma), (sb, mb) = results(a), results(b)
    pd.testing.assert_frame_equal(sa, sb, check_exact=True)
    pd.testing.assert_frame_equal(ma, mb, check_exact=True)


def needs(module: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(importlib.util.find_spec(module) is None, reason=f"{module} not installed")


@pytest.fixture(scope="module")
def joblib_log(tmp_path_factory) -> tuple[Path, str]:
    sweep = tmp_path_factory.mktemp("joblib") / "sweep"
    return sweep, multirun(sweep)  # joblib is the default launcher


@pytest.fixture(scope="module")
def joblib_sweep(joblib_log) -> Path:
    return joblib_log[0]


def test_a_sweep_logged_to_a_file_has_one_finished_line_per_job(joblib_log):
    assert_status_lines(joblib_log[1])


def test_joblib_matches_the_basic_launcher(joblib_sweep, tmp_path):
    assert_status_lines(multirun(tmp_path / "basic", "hydra/launcher=basic"))
    assert_same(joblib_sweep, tmp_path / "basic")


@needs("hydra_plugins.hydra_submitit_launcher")
def test_submitit_local_matches_joblib(joblib_sweep, tmp_path):
    log = multirun(tmp_path / "submitit", "hydra/launcher=submitit_local")
    assert "phase table" in log  # aggregated by the submitting process once the jobs were done
    assert_status_lines(log)  # its view followed the jobs while it waited
    assert (tmp_path / "submitit" / ".submitit").is_dir()
    assert_same(joblib_sweep, tmp_path / "submitit")


def test_aggregate_reads_a_sweep_while_its_jobs_run(tmp_path):
    sweep = tmp_path / "sweep"
    # early stopping off: a tiny job groks within seconds and would end before a slow aggregator reads it
    cmd = [sys.executable, "-m", "grok_sweep", "-m", "seed=0,1", *TINY, "steps=100000", "train.early_stop=0",
           "train.checkpoint_every=20", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    # its own process group, so that the kill below reaches the launcher's worker processes too
    running = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while len(list(sweep.glob("*/metrics.parquet"))) < 2:
            assert running.poll() is None and time.monotonic() < deadline, "the sweep never wrote metrics"
            time.sleep(0.5)
        agg = subprocess.run([sys.executable, "-m", "grok_sweep.aggregate", str(sweep)], cwd=ROOT,
                             capture_output=True, text=True, timeout=300)  # fmt: skip
        assert running.poll() is None  # the jobs were still running all along
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.wait()
    assert agg.returncode == 0, agg.stderr[-3000:]
    summary = pd.read_parquet(sweep / "summary.parquet")
    assert len(summary) == 2 and (summary["status"] == "running").all()  # locked by their processes (lock.py)
    assert (summary["steps_run"] >= 20).all() and agg.stdout.count("\nrunning: ") == 2


@pytest.mark.skipif(not os.environ.get("GROK_SWEEP_SLURM"), reason="opt-in: bash .ci/slurm-up; GROK_SWEEP_SLURM=1")
@needs("hydra_plugins.hydra_submitit_launcher")
def test_real_slurm_matches_joblib(joblib_sweep, tmp_path):
    sweep = tmp_path / "slurm"
    log = multirun(sweep, "hydra/launcher=slurm", "hydra.launcher.timeout_min=10")
    print(log)  # the submitting process's log: job ids, status lines, the phase table (shown with pytest -s)
    assert_status_lines(log)
    slurm_ids = {json.loads(p.read_text())["slurm_job_id"] for p in sweep.glob("*/result.json")}
    assert len(slurm_ids) == 4 and None not in slurm_ids, "each job ran as its own SLURM job"
    assert_same(joblib_sweep, sweep)


@pytest.mark.skipif(not os.environ.get("GROK_SWEEP_SLURM"), reason="opt-in: bash .ci/slurm-up; GROK_SWEEP_SLURM=1")
@needs("hydra_plugins.hydra_submitit_launcher")
def test_a_preempted_slurm_task_is_requeued_and_resumes_from_the_step_it_was_on(tmp_path):
    sweep = tmp_path / "slurm"
    cmd = [sys.executable, "-m", "grok_sweep", "-m", "hydra/launcher=slurm", "hydra.launcher.partition=debug",
           "seed=0", *TINY, "steps=100000", "train.early_stop=0", f"hydra.sweep.dir={sweep}"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 300
    while not any(_step(f) > 2000 for f in sweep.glob("*/status.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "the job never trained"
        time.sleep(0.2)
    job_id = _slurm_job(sweep)
    # what SLURM sends a task it preempts or times out, as submitit asks (--signal=USR2@...)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True, timeout=60)
    out = proc.communicate(timeout=900)[0]  # SLURM holds a requeued task back a minute or two
    assert proc.returncode == 0, out[-3000:]
    [folder] = [p.parent for p in sweep.glob("*/result.json")]
    log = (folder / "grok_sweep.log").read_text()
    stopped = int(log.split("interrupted at step ")[1].split(":")[0])
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "completed" and result["resumed_from_step"] == stopped > 2000, log[-2000:]


def _step(status: Path) -> int:
    try:
        return json.loads(status.read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def _slurm_job(sweep: Path) -> str:
    """The SLURM job id of the sweep's one task (submitit's folder of it)."""
    [job] = [p.name.split("_")[0] for p in (sweep / ".submitit").iterdir() if p.name[0].isdigit()]
    return job


@pytest.mark.skipif(not os.environ.get("GROK_SWEEP_RAY"), reason="opt-in: bash .ci/ray-up; GROK_SWEEP_RAY=1")
@needs("hydra_plugins.hydra_ray_launcher")
def test_ray_matches_joblib(joblib_sweep, tmp_path):
    sweep = tmp_path / "ray"
    address = os.environ.get("GROK_SWEEP_RAY_ADDRESS", "127.0.0.1:6379")
    host, port = address.rsplit(":", 1)
    try:  # ray.init waits for an absent head for minutes: fail at once instead
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        pytest.fail(f"no Ray head at {address} ({err}); start one with: bash .ci/ray-up")
    log = multirun(sweep, "hydra/launcher=ray_cluster", f"hydra.launcher.ray.init.address={address}")
    print(log)
    assert_status_lines(log)
    assert_same(joblib_sweep, sweep)
