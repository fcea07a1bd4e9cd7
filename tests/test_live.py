"""The sweep view: status files, the states read back, the view on a real terminal, status lines in a log, --watch."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pyte
import pytest

from conftest import ROOT, TINY
from grok_sweep.store.layout import STATUS_FILE
from grok_sweep.store.lock import JobLock
from grok_sweep.store.status import read_status
from grok_sweep.train.progress import JobStatus
from grok_sweep.view.live import Lines, table
from grok_sweep.view.state import JobView, Sweep, eta_s, header, read_job, shown

HEADLINE = ["weight_decay=0.1,1.0", "train_ratio=0.2,0.3,0.5"]
TINY_REST = [o for o in TINY if not o.startswith("train_ratio")]
LABELS = [f"train_ratio={r},weight_decay={w}" for w in ("0.1", "1.0") for r in ("0.2", "0.3", "0.5")]
BAR_BITS = ("%|", "step/s]", "it/s]")  # what a tqdm bar leaves in its output


def test_a_job_reports_compiling_training_and_its_end(tmp_path):
    status = JobStatus(tmp_path, steps=10, interval=0.0)
    assert read_status(tmp_path)["state"] == "compiling"
    status.advance()
    assert read_status(tmp_path)["state"] == "compiling"  # the second step compiles too
    status.advance()
    status.evals((0.1, 1.0), [(0, np.array([2.0, 0.25])), (2, np.array([1.0, 0.995]))])
    status.advance()
    seen = read_status(tmp_path)
    assert (seen["state"], seen["step"], seen["train_acc"], seen["test_acc"]) == ("training", 3, 1.0, 0.995)
    assert seen["phase"] == "comprehension"  # train and test fit at the same eval
    status.finish({"status": "stopped_early", "steps_run": 3})
    assert read_status(tmp_path)["state"] == "stopped early" and read_status(tmp_path)["step"] == 3


def test_status_writes_are_throttled(tmp_path):
    status = JobStatus(tmp_path, steps=1000, interval=3600.0)
    status.advance()
    status.advance()  # compiled: a change of state is written at once
    (tmp_path / STATUS_FILE).unlink()
    for _ in range(100):
        status.advance()
    assert not (tmp_path / STATUS_FILE).exists()


def test_a_job_folder_reads_back_as_its_state(tmp_path):
    assert read_job(None, "a=1").state == "queued"
    (tmp_path / STATUS_FILE).write_text(json.dumps({"state": "training", "step": 5, "steps": 10, "updated": 0.0}))
    assert read_job(tmp_path, "a=1").state == "interrupted"  # an old status and no process holds the job
    lock = JobLock(tmp_path)
    assert lock.acquire()
    with lock:
        assert read_job(tmp_path, "a=1").state == "training"
    (tmp_path / "result.json").write_text(json.dumps({"status": "diverged", "steps_run": 7}))
    job = read_job(tmp_path, "a=1")  # killed between result.json and its last status: the result counts
    assert (job.state, job.step) == ("diverged", 7)


def test_a_job_folder_is_named_once_hydra_has_written_its_overrides(tmp_path):
    sweep = Sweep.from_overrides(tmp_path, ["seed=0,1"])
    hydra_dir = tmp_path / "0" / ".hydra"
    hydra_dir.mkdir(parents=True)
    (hydra_dir / "overrides.yaml").write_text("")  # created, not yet written: it loads as an empty mapping
    assert [(j.name, j.state) for j in sweep.scan()] == [("seed=0", "queued"), ("seed=1", "queued")]
    (hydra_dir / "overrides.yaml").write_text("- seed=0\n")
    assert sweep.scan()[0].name == "seed=0" and sweep.folders[frozenset({"seed=0"})] == tmp_path / "0"


def test_eta_header_and_many_jobs():
    jobs = [JobView("a=1", "done", 100, 100), JobView("a=2", "training", 50, 100, steps_per_s=10.0),
            JobView("a=3", "queued"), JobView("a=4", "failed", 3, 100, error="boom")]  # fmt: skip
    assert eta_s(jobs) == pytest.approx((50 + 100) / 10.0)
    assert header(jobs, 75) == "jobs 2/4 done (1 failed), 1 running, 1 queued | elapsed 1:15 | ETA 0:15"
    many = [JobView(f"a={i}", "queued") for i in range(40)] + jobs
    fit, more = shown(many, rows=5)  # the running job and the ended ones first, then the first queued one
    assert [j.name for j in fit] == ["a=0", "a=1", "a=2", "a=4"] and more == "... and 40 more: 40 queued"


def test_status_lines_have_one_finished_line_per_job():
    out = io.StringIO()
    lines = Lines(out)
    lines.update([JobView("a=1", "compiling", 0, 100)], 1.0)
    lines.update([JobView("a=1", "training", 30, 100, 1.0, 0.5, "memorization")], 2.0)  # crossed 25%
    lines.update([JobView("a=1", "stopped early", 60, 100, 1.0, 1.0, "grokking")], 3.0)
    lines.update([JobView("a=1", "stopped early", 60, 100, 1.0, 1.0, "grokking")], 4.0)
    text = out.getvalue().splitlines()
    assert text[0].endswith("a=1: started (compiling)") and "step 30/100" in text[1]
    assert text[2].endswith("a=1: finished (stopped early) at step 60/100, phase grokking, test acc 1.000")
    assert len(text) == 3


def test_a_finished_job_launched_again_is_not_damaged_while_hydra_rewrites_its_files(tmp_path):
    from grok_sweep.store.layout import UNREADABLE
    from test_aggregate import _job

    config = _job(tmp_path, 1.0, 0.5, "completed", mem=50, grok=600) / ".hydra" / "config.yaml"
    sweep, out = Sweep.from_folder(tmp_path), io.StringIO()
    lines = Lines(out)
    lines.update(sweep.scan(), 1.0)
    config.write_text("")  # Hydra launching the job again has opened its config, not yet written it
    lines.update(sweep.scan(), 2.0)
    assert out.getvalue().count(": finished (done)") == 1 and "unreadable" not in out.getvalue()
    old = time.time() - 10
    os.utime(config, (old, old))  # still empty long after: damaged, and said once
    lines.update(sweep.scan(), 3.0)
    assert [j.state for j in sweep.scan()] == [UNREADABLE]
    assert out.getvalue().count(": finished (unreadable: .hydra/config.yaml: ") == 1


def test_the_table_fits_the_rows_it_is_given():
    from rich.console import Console

    jobs = [JobView(f"seed={i}", "training", i, 100, 0.5, 0.1, "confusion", 99.0) for i in range(30)]
    console = Console(file=io.StringIO(), width=120)
    console.print(table(jobs, 10.0, rows=8, width=120, common="width=16"))
    screen = console.file.getvalue().splitlines()
    assert screen[0].startswith("jobs 0/30 done, 30 running") and screen[1] == "every job: width=16"
    assert sum(line.startswith("seed=") for line in screen) == 7 and "... and 23 more: 23 training" in screen[-1]


def test_a_sweep_maps_its_plan_to_labels(tmp_path):
    sweep = Sweep.from_overrides(tmp_path, [*HEADLINE, "modulus=7"])
    assert sorted(sweep.label(p) for p in sweep.planned) == sorted(LABELS)
    assert sweep.common() == "modulus=7"
    assert [j.state for j in sweep.scan()] == ["queued"] * 6


def _run_in_terminal(cmd: list[str], rows: int = 60, cols: int = 150, timeout: float = 600) -> tuple[bytes, str]:
    """Run `cmd` under a pseudo-terminal; its raw output and the screen a terminal shows at the end."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the terminal's size first, so rich sees it; never back into pytest
        try:
            fcntl.ioctl(1, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            os.chdir(ROOT)
            os.execve(cmd[0], cmd, {**os.environ, "COLUMNS": str(cols), "LINES": str(rows), "TERM": "xterm"})
        finally:
            os._exit(127)
    screen = pyte.Screen(cols, rows)
    stream, raw, deadline = pyte.ByteStream(screen), b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 1.0)[0]:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            raw += data
            stream.feed(data)
    else:
        os.kill(pid, 9)
    _, code = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(code) == 0, raw.decode(errors="replace")[-3000:]
    return raw, "\n".join(line.rstrip() for line in screen.display)


@pytest.mark.slow
def test_the_headline_grid_in_a_terminal_shows_one_line_per_job(tmp_path):
    cmd = [sys.executable, "-m", "grok_sweep", "-m", *HEADLINE, *TINY_REST, f"hydra.sweep.dir={tmp_path / 's'}"]
    raw, screen = _run_in_terminal(cmd)
    lines = screen.splitlines()
    for label in LABELS:
        rows = [line for line in lines if line.startswith(label + " ")]
        assert len(rows) == 1 and " 40/40 " in rows[0], screen
    assert any(line.startswith("jobs 6/6 done") for line in lines), screen
    assert "phase table" in screen
    text = raw.decode(errors="replace")
    assert not any(bit in text for bit in BAR_BITS), "a progress bar was drawn"


@pytest.mark.slow
def test_watch_follows_a_running_sweep_to_its_end(tmp_path):
    sweep, gate = tmp_path / "s", tmp_path / "go"
    cmd = [sys.executable, "-m", "grok_sweep", "-m", "seed=0,1", *TINY_REST, "train_ratio=0.6", "steps=400",
           f"hydra.sweep.dir={sweep}", "+hydra.callbacks.gate._target_=gate.Gate"]  # fmt: skip
    env = {**os.environ, "GROK_SWEEP_TEST_GATE": str(gate), "PYTHONPATH": str(ROOT / "tests")}
    running = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (sweep / "multirun.yaml").exists():
            assert running.poll() is None and time.monotonic() < deadline, "the sweep never started"
            time.sleep(0.2)
        watch = subprocess.Popen([sys.executable, "-m", "grok_sweep.aggregate", str(sweep), "--watch"], cwd=ROOT,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        first = watch.stdout.readline()  # the jobs wait at the gate until the watch is up, however fast they are
        before = list(sweep.glob("*/status.json"))
        gate.touch()
        rest, err = watch.communicate(timeout=600)
        ended = len(list(sweep.glob("*/result.json")))  # the submitting process may still be aggregating
    finally:
        gate.touch()
        running.wait(timeout=600)
    assert watch.returncode == 0, err[-3000:]
    assert first.strip() == f"watching {sweep}: 2 jobs planned"
    assert not before, "a job ran before --watch was up: the test shows nothing"
    assert ended == 2, "--watch returned before the sweep's jobs had ended"
    lines = rest.splitlines()
    for seed in (0, 1):
        assert sum(f"seed={seed}: finished (done) at step 400/400" in line for line in lines) == 1, rest
    assert "jobs 2/2 done" in rest and (sweep / "summary.parquet").exists()


def test_watch_refuses_a_folder_that_is_no_sweep(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "grok_sweep.aggregate", str(tmp_path), "--watch"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.strip().endswith("not a sweep (no multirun.yaml and no job folders); "
                                                                 "nothing to watch")  # fmt: skip
