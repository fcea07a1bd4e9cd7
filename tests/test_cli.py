import json
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT, TINY


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A 2 x 2 grid run from the command line: its sweep folder, the command, what it printed."""
    sweep = tmp_path_factory.mktemp("grid") / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "grok_sweep",
        "-m",
        "weight_decay=0.1,1.0",
        "train_ratio=0.4,0.6",
        *[o for o in TINY if not o.startswith("train_ratio")],
        f"hydra.sweep.dir={sweep}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep, cmd, proc


def test_multirun_grid_writes_one_parquet_per_job_in_readable_folders(grid):
    sweep, cmd, proc = grid
    jobs = sorted(p.parent for p in sweep.glob("*/metrics.parquet"))
    assert len(jobs) == 4
    for job in jobs:
        assert "train_ratio=" in job.name and "weight_decay=" in job.name
        cfg = (job / ".hydra" / "config.yaml").read_text()
        assert "weight_decay: " + job.name.split("weight_decay=")[1].split(",")[0] in cfg
        df = pd.read_parquet(job / "metrics.parquet")
        assert len(df) == 40 and df["test_acc"].notna().any()
        assert json.loads((job / "result.json").read_text())["status"] == "completed"
    # the callback aggregated the sweep once its jobs were done
    assert "phase table (rows train_ratio, columns weight_decay" in proc.stdout
    summary = pd.read_parquet(sweep / "summary.parquet")
    assert len(summary) == 4 and (summary["status"] == "completed").all()
    assert len(pd.read_parquet(sweep / "metrics.parquet")) == 4 * 40
    assert (sweep / "phase_diagram.png").stat().st_size > 0 and (sweep / "curves.png").stat().st_size > 0


def test_the_same_command_again_trains_nothing(grid):
    sweep, cmd, _ = grid
    jobs = sorted(p.parent for p in sweep.glob("*/metrics.parquet"))
    before = {job: ((job / "result.json").read_bytes(), (job / "metrics.parquet").stat().st_mtime_ns) for job in jobs}
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    # the jobs' logs say so; the sweep's status lines show each as finished, and no bar was drawn
    assert all((job / "grok_sweep.log").read_text().count("already completed, skipped") == 1 for job in jobs)
    assert again.stdout.count(": finished (done) at step 40/40") == 4 and "train:" not in again.stderr
    after = {job: ((job / "result.json").read_bytes(), (job / "metrics.parquet").stat().st_mtime_ns) for job in jobs}
    assert after == before


# run in a fresh process: the config schema and the pre-check of a grid, then reading the finished sweep back
LIGHT = """
import sys
from pathlib import Path
from grok_sweep.run.config import CONF_DIR, register
from grok_sweep.run.precheck import check_command_line
register()
assert check_command_line(["-m", "weight_decay=0.1,1.0", "modulus=7", "width=16", "model.heads=2"], CONF_DIR) == []
from grok_sweep import load_sweep
from grok_sweep.aggregate import aggregate
aggregate(sys.argv[1], echo=lambda *_: None)
assert len(load_sweep(sys.argv[1]).summary) == 4
heavy = ("tinygrad", "grok_sweep.model.gpt", "grok_sweep.train", "grok_sweep.fast")
print(sorted(m for m in sys.modules if m.split(".")[0] == "tinygrad" or m.startswith(heavy[1:])))
"""


def test_checking_a_command_line_and_reading_a_sweep_import_no_tinygrad(grid):
    sweep = grid[0]
    proc = subprocess.run([sys.executable, "-c", LIGHT, str(sweep)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "[]"  # neither tinygrad nor the model, the trainer or the speed code
