import json
import subprocess
import sys

import pandas as pd

from conftest import ROOT, TINY


def test_multirun_grid_writes_one_parquet_per_job_in_readable_folders(tmp_path):
    sweep = tmp_path / "sweep"
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

    # the same command again on the same sweep folder trains nothing: every job is already finished
    before = {job: ((job / "result.json").read_bytes(), (job / "metrics.parquet").stat().st_mtime_ns) for job in jobs}
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    # the jobs' logs say so; the sweep's status lines show each as finished, and no bar was drawn
    assert all((job / "grok_sweep.log").read_text().count("already completed, skipped") == 1 for job in jobs)
    assert again.stdout.count(": finished (done) at step 40/40") == 4 and "train:" not in again.stderr
    after = {job: ((job / "result.json").read_bytes(), (job / "metrics.parquet").stat().st_mtime_ns) for job in jobs}
    assert after == before
