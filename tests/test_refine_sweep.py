"""hydra/sweeper=refine end to end: tiny real sweeps through the command line, their rounds re-derived from the
labels they found, a kill and a resume, two launchers, the refusals, and what aggregation writes."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from grok_sweep import load_sweep
from grok_sweep.aggregate import aggregate
from grok_sweep.aggregate.table import job_labels
from grok_sweep.detect.refine import Plan, point_label
from grok_sweep.run.config import CONF_DIR
from grok_sweep.run.precheck import check_command_line
from grok_sweep.store.layout import FINISHED, PHASE_DIAGRAM_FILE, REFINE_FILE, RESULT_FILE
from grok_sweep.store.plan import plan
from grok_sweep.view.live import Lines
from grok_sweep.view.state import Sweep

TINY = ["modulus=7", "width=16", "model.heads=2", "steps=40", "eval_every=7"]
RANGES = ["train_ratio=interval(0.3,0.8)", "weight_decay=tag(log,interval(0.1,3))"]
SWEEP = [*TINY, *RANGES, "hydra/sweeper=refine", "hydra.sweeper.start=2", "hydra.sweeper.depth=2",
         "hydra.sweeper.max_jobs=20"]  # fmt: skip


def _command(folder: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "grok_sweep", "-m", *SWEEP, f"hydra.sweep.dir={folder}", *extra]


def _sweep(folder: Path, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(_command(folder, *extra), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _rounds(folder: Path) -> list[list[list[int]]]:
    return [[p["point"] for p in r] for r in json.loads((folder / REFINE_FILE).read_text())["rounds"]]


@pytest.fixture(scope="module")
def basic(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One uninterrupted refine sweep, jobs one after another (hydra/launcher=basic)."""
    folder = tmp_path_factory.mktemp("refine") / "basic"
    return folder, _sweep(folder, "hydra/launcher=basic")


def test_a_refine_sweep_runs_its_rounds_and_each_follows_from_the_labels_found(basic):
    folder, proc = basic
    rounds = _rounds(folder)
    assert len(rounds) == 3 and len(rounds[0]) == 4  # the coarse 2 x 2, then both halvings
    points = [tuple(p) for r in rounds for p in r]
    assert len(points) == len(set(points)) <= 20
    summary = pd.read_parquet(folder / "summary.parquet")
    assert len(summary) == len(points) and set(summary["status"]) <= set(FINISHED)
    # the plan again, from the labels in the summary (the majority of each point's jobs): the same rounds
    point = {}
    for r in json.loads((folder / REFINE_FILE).read_text())["rounds"]:
        for p in r:
            over = dict(o.split("=", 1) for o in p["jobs"][0])
            point[(float(over["train_ratio"]), float(over["weight_decay"]))] = tuple(p["point"])
    summary["label"] = job_labels(summary)
    labels = {point[key]: point_label(g["label"]) for key, g in summary.groupby(["train_ratio", "weight_decay"])}
    again = Plan(2, 2, 20)
    derived = [list(again.points)]
    while new := again.next_round(labels):
        derived.append(new)
    assert [sorted(r) for r in derived] == [sorted(map(tuple, r)) for r in rounds]
    # the view said each round, and aggregation wrote the refined diagram and the boundary
    for k, r in enumerate(rounds):
        assert f"round {k}/2: {len(r)} new jobs" in proc.stdout
    assert "phase table: coarse grid" in proc.stdout and "boundary:" in proc.stdout
    assert (folder / PHASE_DIAGRAM_FILE).stat().st_size > 10_000


def test_the_summary_says_each_jobs_round_and_cell_and_load_sweep_reads_it(basic):
    folder, _ = basic
    sweep = load_sweep(folder)
    s = sweep.summary
    rounds = _rounds(folder)
    assert s["round"].value_counts().sort_index().tolist() == [len(r) for r in rounds]
    assert (s.loc[s["round"] == 0, "cell"] == "coarse grid").all()
    later = s[s["round"] > 0]
    for _, row in later.iterrows():  # the cell whose split added the point holds it
        bounds = dict(part.rsplit(" ", 1) for part in row["cell"].split(", "))
        for key in ("train_ratio", "weight_decay"):
            lo, hi = map(float, bounds[key].split("-"))
            assert lo <= row[key] <= hi


@pytest.mark.slow
def test_a_killed_refine_sweep_resumes_to_the_same_points_and_summary(basic, tmp_path):
    uninterrupted, _ = basic
    folder = tmp_path / "killed"
    proc = subprocess.Popen(_command(folder, "hydra/launcher=basic"), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline:  # kill it once round 1 has begun and a job of it has ended
        if (folder / REFINE_FILE).exists() and len(_rounds(folder)) >= 2:
            done = len(list(folder.glob(f"*/{RESULT_FILE}")))
            if done > len(_rounds(folder)[0]):
                break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(folder.glob(f"*/{RESULT_FILE}"))) < sum(map(len, _rounds(uninterrupted)))
    _sweep(folder, "hydra/launcher=basic")
    assert _rounds(folder) == _rounds(uninterrupted)
    cols = ["job", "train_ratio", "weight_decay", "round", "cell", "status", "phase", "final_test_acc"]
    a, b = (pd.read_parquet(f / "summary.parquet")[cols] for f in (uninterrupted, folder))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_joblib_runs_the_same_points_as_the_basic_launcher(basic, tmp_path):
    _sweep(tmp_path / "joblib", "hydra/launcher=joblib")
    assert _rounds(tmp_path / "joblib") == _rounds(basic[0])


def test_a_damaged_record_is_said_and_the_sweep_aggregated_as_a_grid(basic, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(basic[0], folder)
    (folder / REFINE_FILE).write_text('{"axes": [')
    lines: list[str] = []
    summary, written = aggregate(folder, echo=lines.append, figures=False)
    assert any(line.startswith("warning: ") and REFINE_FILE in line for line in lines)
    assert "round" not in summary and len(summary) == len(list(folder.glob(f"*/{RESULT_FILE}")))


@pytest.mark.parametrize(
    ("rows", "cols", "axes", "said"),
    [("weight_decay", None, ("weight_decay", "train_ratio"), False),
     (None, "seed", ("train_ratio", "weight_decay"), True),
     ("width", "train_ratio", ("weight_decay", "train_ratio"), True)],
)  # fmt: skip
def test_rows_and_cols_orient_a_refine_sweeps_table_and_a_key_off_its_ranges_is_said(basic, rows, cols, axes, said):
    lines: list[str] = []
    aggregate(basic[0], rows, cols, echo=lines.append, figures=False)
    table = next(line for line in lines if "phase table" in line)
    assert f"(rows {axes[0]}, columns {axes[1]};" in table
    warned = [line for line in lines if line.startswith("warning: ")]
    assert bool(warned) == said and all("on its two ranges, train_ratio and weight_decay" in w for w in warned)


def test_the_view_follows_the_rounds_of_the_record(basic):
    folder, _ = basic
    sweep = Sweep.from_overrides(folder, [*TINY, *RANGES])  # as the view starts: no job known yet
    assert sweep.planned == [] and sweep.round is None
    jobs = sweep.scan()
    record = json.loads((folder / REFINE_FILE).read_text())
    assert len(jobs) == sum(len(p["jobs"]) for r in record["rounds"] for p in r) and all(j.ended for j in jobs)
    assert sweep.round == f"round 2/2: {len(record['rounds'][2])} new jobs"
    assert record["finished"] and not sweep.more  # `--watch` waits for this, not only for the jobs known so far
    out = io.StringIO()
    Lines(out).update(jobs, 1.0, sweep.round)
    assert out.getvalue().startswith(f"[0:01] {sweep.round}\n")


@pytest.mark.parametrize(
    "args, says",
    [
        (["train_ratio=interval(0.2,0.6)"], "is swept by hydra/sweeper=refine"),
        (["-m", "train_ratio=interval(0.2,0.6)", "hydra/sweeper=refine"], "two ranges (key=interval(lo,hi)); got 1"),
        (["-m", *RANGES, "optim.lr=interval(0.001,0.01)", "hydra/sweeper=refine"], "got 3"),
        (["-m", "operation=interval(0.2,0.6)", RANGES[1], "hydra/sweeper=refine"], "operation is str"),
        (["-m", "width=interval(16,32)", RANGES[1], "hydra/sweeper=refine"], "width is int"),
        (["-m", RANGES[0], "weight_decay=tag(log,interval(0,3))", "hydra/sweeper=refine"], "must stay above 0"),
        (["-m", *RANGES, "hydra/sweeper=refine", "hydra.sweeper.depth=0"], "depth=0: must be at least 1"),
        (["-m", *RANGES, "hydra/sweeper=refine", "hydra.sweeper.max_jobs=0"], "max_jobs=0: must be at least 1"),
        (["-m", *RANGES, "seed=0,1", "hydra/sweeper=refine", "hydra.sweeper.max_jobs=40"],
         "less than the coarse grid's 50 jobs (5x5 points x 2 replicates)"),
    ],
)  # fmt: skip
def test_bad_refine_sweeps_are_refused_in_one_line(args, says):
    problems = check_command_line(args, CONF_DIR)
    assert len(problems) == 1 and says in problems[0], problems


def test_a_refused_refine_sweep_starts_no_job(tmp_path):
    cmd = [sys.executable, "-m", "grok_sweep", "-m", *RANGES, "hydra/sweeper=refine", "hydra.sweeper.depth=0",
           f"hydra.sweep.dir={tmp_path / 'sweep'}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and proc.stderr.strip().splitlines() == [
        "grok_sweep: error: hydra.sweeper.depth=0: must be at least 1"
    ]
    assert not (tmp_path / "sweep").exists()


def test_a_plain_grid_plans_as_before():
    jobs, swept = plan(["weight_decay=0.1,1.0", "train_ratio=0.2,0.3,0.5", "steps=40"])
    assert len(jobs) == 6 and swept == ["weight_decay", "train_ratio"]
    assert frozenset({"weight_decay=0.1", "train_ratio=0.5", "steps=40"}) in jobs


def test_the_pack_launcher_runs_the_same_points_as_the_basic_launcher(basic, tmp_path):
    # each round's jobs trained as one pack; on the CPU a member's numbers are its single run's (tests/test_pack.py)
    _sweep(tmp_path / "pack", "hydra/launcher=pack", "hydra.launcher.size=16")
    assert _rounds(tmp_path / "pack") == _rounds(basic[0])
    sizes = {json.loads(p.read_text())["pack"]["size"] for p in (tmp_path / "pack").glob(f"*/{RESULT_FILE}")}
    assert max(sizes) > 1
