"""Interruptions are an outcome: SIGINT or SIGTERM ends a job after its step in flight, with a checkpoint at that
step and result.json saying so; the same command resumes from it; a second signal ends the process at once; a sweep
stops launching, aggregates what finished and says how to resume; SLURM's notice (submitit's SIGUSR2) requeues from
that step."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import ROOT, TINY, make_cfg
from grok_sweep.run.job import run_job
from grok_sweep.store.layout import CHECKPOINT_FILE, FINAL_FILE, INTERRUPTED, RESULT_FILE, STATUS_FILE
from grok_sweep.store.metrics import read_metrics
from grok_sweep.train.checkpoint import read_checkpoint
from grok_sweep.util import interrupt

ARGS = [*TINY, "steps=120", "train.checkpoint_every=50", "train.early_stop=0"]


def _metrics(folder):
    return read_metrics(folder / "metrics.parquet")


@pytest.mark.parametrize("name", ["TERM", "INT"])
def test_a_signal_stops_the_job_after_its_step_and_the_same_call_resumes_from_it(tmp_path, monkeypatch, name):
    cfg = make_cfg(*ARGS)
    monkeypatch.setenv("GROK_SWEEP_SIGNAL_AT_STEP", f"73:{name}")  # between the checkpoints of steps 50 and 100
    result = run_job(cfg, tmp_path / "cut", progress=False)
    assert result["status"] == INTERRUPTED and result["stopped_at_step"] == 74  # step 73's update was done
    assert result["signal"] == signal.Signals[f"SIG{name}"] and interrupt.requested() is None  # forgotten after
    on_disk = json.loads((tmp_path / "cut" / RESULT_FILE).read_text())
    assert on_disk["status"] == INTERRUPTED and on_disk["stopped_at_step"] == 74 and on_disk["final_weights"] is None
    assert json.loads((tmp_path / "cut" / STATUS_FILE).read_text())["state"] == INTERRUPTED
    assert read_checkpoint(tmp_path / "cut")[1]["step"] == 74 and len(_metrics(tmp_path / "cut")) == 74
    assert not (tmp_path / "cut" / FINAL_FILE).exists()
    monkeypatch.delenv("GROK_SWEEP_SIGNAL_AT_STEP")
    again = run_job(cfg, tmp_path / "cut", progress=False)
    whole = run_job(cfg, tmp_path / "whole", progress=False)
    assert again["status"] == whole["status"] == "completed" and again["resumed_from_step"] == 74
    pd.testing.assert_frame_equal(_metrics(tmp_path / "cut"), _metrics(tmp_path / "whole"), check_exact=True)
    assert not (tmp_path / "cut" / CHECKPOINT_FILE).exists()  # finished: removed as any checkpoint


def test_a_signal_before_the_job_starts_trains_nothing(tmp_path):
    with interrupt.handling():
        os.kill(os.getpid(), signal.SIGTERM)
        result = run_job(make_cfg(*ARGS), tmp_path / "job", progress=False)
    assert result["status"] == INTERRUPTED and result["stopped_at_step"] is None
    assert not (tmp_path / "job").exists()


def test_a_second_signal_ends_the_process_at_once():
    script = (
        "import os, signal, time\n"
        "from grok_sweep.util import interrupt\n"
        "with interrupt.handling():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    assert interrupt.requested() == signal.SIGINT\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(5)\n"
        "print('not ended')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGINT, proc.stdout + proc.stderr  # ended by the signal: the shell says 130
    assert "not ended" not in proc.stdout and "Traceback" not in proc.stderr


def test_slurms_notice_checkpoints_the_job_then_runs_submitits_handler_to_requeue(tmp_path, monkeypatch):
    called = []

    def submitit(signum, frame):  # submitit's handler: it pickles the call again and requeues the task
        called.append((signum, json.loads((tmp_path / "job" / RESULT_FILE).read_text())["status"]))

    before = signal.signal(signal.SIGUSR2, submitit)
    try:
        monkeypatch.setenv("GROK_SWEEP_SIGNAL_AT_STEP", "61:USR2")
        result = run_job(make_cfg(*ARGS), tmp_path / "job", progress=False)
    finally:
        signal.signal(signal.SIGUSR2, before)
    assert called == [(signal.SIGUSR2, INTERRUPTED)]  # once, after the job's files were written
    assert result["stopped_at_step"] == 62 and read_checkpoint(tmp_path / "job")[1]["step"] == 62


def test_slurms_sigterm_after_its_notice_is_not_a_second_signal():
    script = (
        "import os, signal\n"
        "from grok_sweep.util import interrupt\n"
        "signal.signal(signal.SIGUSR2, lambda s, f: print('requeued', flush=True))\n"
        "with interrupt.handling():\n"
        "    os.kill(os.getpid(), signal.SIGUSR2)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('still here', interrupt.requested() == signal.SIGUSR2, flush=True)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split("\n")[:2] == ["still here True", "requeued"], proc.stderr


def _status_step(folder):
    try:
        return json.loads((folder / STATUS_FILE).read_text())["step"]
    except (OSError, ValueError, KeyError):
        return 0


def _grok_sweep(*args):
    return subprocess.run([sys.executable, "-m", "grok_sweep", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


@pytest.mark.slow
def test_sigterm_of_a_run_at_step_1000_resumes_from_that_step_to_an_uninterrupted_runs_metrics(tmp_path):
    args = ["modulus=23", "width=32", "steps=3000", "train.early_stop=0", "train.checkpoint_every=500"]
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "grok_sweep", *args, f"hydra.run.dir={run}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 300
    while _status_step(run) < 1000 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 143, err[-2000:]
    stopped = json.loads((run / RESULT_FILE).read_text())["stopped_at_step"]
    assert (
        err.strip().splitlines()[-1] == f"grok_sweep: interrupted at step {stopped}; the same command resumes from it"
    )
    assert 1000 <= stopped < 3000 and read_checkpoint(run)[1]["step"] == stopped and "Traceback" not in err
    resumed = _grok_sweep(*args, f"hydra.run.dir={run}")
    whole = _grok_sweep(*args, f"hydra.run.dir={tmp_path / 'whole'}")
    assert resumed.returncode == whole.returncode == 0, resumed.stderr[-2000:] + whole.stderr[-2000:]
    assert f"resuming from step {stopped}:" in resumed.stdout + resumed.stderr
    assert json.loads((run / RESULT_FILE).read_text())["resumed_from_step"] == stopped
    pd.testing.assert_frame_equal(_metrics(run), _metrics(tmp_path / "whole"), check_exact=True)


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_which_aggregates_says_how_to_resume_and_resumes(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "seed=0,1,2", *TINY, "steps=30000", "train.early_stop=0", f"hydra.sweep.dir={sweep}"]
    # a terminal's Ctrl-C reaches the command and its launcher's workers: a process group of their own
    proc = subprocess.Popen([sys.executable, "-m", "grok_sweep", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len([f for f in sweep.glob("*/status.json") if _status_step(f.parent) > 100]) == 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert err.strip().splitlines()[-1] == (
        "grok_sweep: the sweep was interrupted (SIGINT): 0 job(s) finished, 2 interrupted, 1 not started; the same "
        "command resumes it, each interrupted job from the step it stopped at"
    )
    summary = pd.read_parquet(sweep / "summary.parquet")  # aggregated what there was
    assert sorted(summary["status"]) == ["incomplete", INTERRUPTED, INTERRUPTED]
    stopped = {r["seed"]: r["steps_run"] for _, r in summary.iterrows() if r["status"] == INTERRUPTED}
    again = _grok_sweep(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (pd.read_parquet(sweep / "summary.parquet")["status"] == "completed").all()
    for folder in sweep.glob("*seed=*"):
        result = json.loads((folder / RESULT_FILE).read_text())
        seed = int(folder.name.split("seed=")[1].split(",")[0])
        assert result["resumed_from_step"] == stopped.get(seed), folder.name
