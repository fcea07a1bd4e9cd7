"""A damaged job folder: every file kind of a finished tiny sweep, damaged five ways.

Invariants for each: aggregation ends without a traceback, names the file, exits non-zero and gives the other
job the summary row of the undamaged sweep; a re-run repairs the job to the undamaged sweep's metrics.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import ROOT, TINY
from grok_sweep.aggregate.__main__ import main as aggregate_main
from grok_sweep.run.job import run_job
from grok_sweep.store.layout import HYDRA_DIR, METRICS_FILE, SUMMARY_FILE, UNREADABLE

BLOCK_ROWS = "16"  # metrics in parts of 16 rows: 40 steps make parts 0, 16 and 32
SWEEP = ["-m", "seed=0,1", *TINY, "train.keep_checkpoint=true", "train.checkpoint_every=10", "train.snapshot_every=20"]
FILES = {
    "first metrics part": "metrics.parquet/part-000000000000.parquet",
    "last metrics part": "metrics.parquet/part-000000000032.parquet",  # rows 32..39, before the kept checkpoint (40)
    "result": "result.json",
    "status": "status.json",
    "config": ".hydra/config.yaml",
    "overrides": ".hydra/overrides.yaml",
    "hydra": ".hydra/hydra.yaml",
    "checkpoint": "checkpoint.safetensors",
    "snapshot": "snapshots/step_20.safetensors",
    "final weights": "model.safetensors",
}
RESUMED = ("final weights", "result")  # from the kept checkpoint: the job's state at its end (step 40)
# a finished job needs neither: without them it is whole (the live view reads result.json instead)
HARMLESS = {("status", "delete"), ("checkpoint", "delete")}


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    elif how == "delete":
        path.unlink()
    elif how == "folder":
        path.unlink()
        path.mkdir()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("damage") / "sweep"
    env = {**os.environ, "GROK_SWEEP_BLOCK_ROWS": BLOCK_ROWS}
    proc = subprocess.run([sys.executable, "-m", "grok_sweep", *SWEEP, f"hydra.sweep.dir={root}"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p.parent for p in root.glob(f"*/{HYDRA_DIR}"))
    assert len(jobs) == 2 and all((j / FILES["checkpoint"]).exists() and (j / FILES["snapshot"]).exists() for j in jobs)
    return root


def _aggregate(root: Path) -> tuple[int, str]:
    """`python -m grok_sweep.aggregate root`, in this process: its exit code and what it printed."""
    try:
        aggregate_main([str(root)])
    except SystemExit as end:
        return (end.code if isinstance(end.code, int) else 1), str(end.code)
    return 0, ""


def _rerun(pristine: Path, root: Path) -> list[dict]:
    """What re-running the sweep's command does for each job: Hydra writes .hydra again, then run_job."""
    results = []
    for job in sorted(p.parent for p in pristine.glob(f"*/{HYDRA_DIR}")):
        here = root / job.name
        shutil.rmtree(here / HYDRA_DIR, ignore_errors=True)
        shutil.copytree(job / HYDRA_DIR, here / HYDRA_DIR)
        results.append(run_job(OmegaConf.load(job / HYDRA_DIR / "config.yaml"), here, progress=False))
    return results


@pytest.mark.parametrize("how", ["truncate", "empty", "garbage", "delete", "folder"])
@pytest.mark.parametrize("kind", list(FILES))
def test_a_damaged_file_is_named_spares_the_other_jobs_and_is_repaired(sweep, tmp_path, kind, how, capsys,
                                                                       monkeypatch):  # fmt: skip
    monkeypatch.setenv("GROK_SWEEP_BLOCK_ROWS", BLOCK_ROWS)
    root = tmp_path / "sweep"
    shutil.copytree(sweep, root)
    before = pd.read_parquet(sweep / SUMMARY_FILE).set_index("job")
    damaged, other = before.index
    _damage(root / damaged / FILES[kind], how)

    code, message = _aggregate(root)
    out = capsys.readouterr().out
    after = pd.read_parquet(root / SUMMARY_FILE).set_index("job")
    pd.testing.assert_series_equal(after.loc[other], before.loc[other])
    if (kind, how) in HARMLESS:
        assert code == 0 and after.loc[damaged, "status"] == "completed"
    else:
        assert code == 1 and "unreadable" in message, out
        assert after.loc[damaged, "status"] == UNREADABLE
        line = f"{UNREADABLE}: {damaged}: "
        assert line in out and FILES[kind].split("/")[0] in after.loc[damaged, "error"], out

    pristine = json.loads((sweep / damaged / "result.json").read_text())
    results = _rerun(sweep, root)
    assert [r["status"] for r in results] == ["completed", "completed"]
    retrained = results[0] != pristine
    if kind in RESUMED:  # the checkpoint (step 40, the end) and every row and snapshot before it were sound
        assert retrained and results[0]["resumed_from_step"] == 40
    elif kind in ("first metrics part", "last metrics part", "snapshot", "checkpoint") and (kind, how) not in HARMLESS:
        assert retrained and results[0]["resumed_from_step"] is None  # from scratch
    else:  # Hydra rewrites .hydra at launch; a status file is written again
        assert not retrained
    assert _aggregate(root)[0] == 0
    for job in before.index:
        want, got = (pd.read_parquet(r / job / METRICS_FILE) for r in (sweep, root))
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    kept = list(root.rglob("*.damaged"))
    if how != "delete" and not kind.startswith(("config", "overrides", "hydra")):
        assert len(kept) == 1, kept  # set aside, not deleted


def _grok_sweep(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def test_the_sweep_command_run_again_repairs_a_damaged_job(sweep, tmp_path):
    root = tmp_path / "sweep"
    shutil.copytree(sweep, root)
    job = sorted(p.parent for p in root.glob(f"*/{HYDRA_DIR}"))[0]
    _damage(job / FILES["first metrics part"], "truncate")
    _damage(job / FILES["config"], "garbage")
    told = _grok_sweep("grok_sweep.aggregate", str(root))
    assert told.returncode == 1 and "Traceback" not in told.stderr
    assert f"unreadable: {job.name}: " in told.stdout and "1 job(s) unreadable" in told.stderr
    again = _grok_sweep("grok_sweep", *SWEEP, f"hydra.sweep.dir={root}", GROK_SWEEP_BLOCK_ROWS=BLOCK_ROWS)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "training it again from scratch" in (job / "grok_sweep.log").read_text()
    summary = pd.read_parquet(root / SUMMARY_FILE)
    assert summary["status"].tolist() == ["completed", "completed"] and summary["error"].isna().all()
    for p in sweep.glob(f"*/{METRICS_FILE}"):
        pd.testing.assert_frame_equal(pd.read_parquet(root / p.parent.name / METRICS_FILE), pd.read_parquet(p))
    assert (job / "metrics.parquet" / "_part-000000000000.parquet.damaged").exists()


def test_a_sweep_whose_aggregation_fails_exits_non_zero_in_one_line(tmp_path):
    root = tmp_path / "sweep"
    (root / SUMMARY_FILE / "in-the-way").mkdir(parents=True)  # summary.parquet cannot be written
    proc = _grok_sweep("grok_sweep", "-m", "seed=0", *TINY, "steps=10", f"hydra.sweep.dir={root}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("grok_sweep: the sweep's jobs ran, but aggregating them failed: WriteError: could not "
                           f"write {root / SUMMARY_FILE}"), proc.stderr[-2000:]  # fmt: skip


def test_the_api_and_the_live_view_name_the_damaged_job(sweep, tmp_path):
    from grok_sweep import LoadError, load_run, load_sweep
    from grok_sweep.view.state import Sweep, header

    root = tmp_path / "sweep"
    shutil.copytree(sweep, root)
    damaged, other = pd.read_parquet(sweep / SUMMARY_FILE)["job"]
    _damage(root / damaged / FILES["result"], "truncate")
    with pytest.raises(LoadError, match=r"result\.json: JSONDecodeError: .*run its command again to repair it"):
        load_run(root / damaged)
    assert load_run(root / other).metrics.equals(pd.read_parquet(sweep / other / METRICS_FILE))
    found = load_sweep(root)  # its summary.parquet predates the damage: aggregated again
    assert list(found.runs) == [other] and list(found.unreadable) == [damaged]
    assert found.unreadable[damaged].startswith("result.json: JSONDecodeError")
    assert found.summary.set_index("job").loc[damaged, "status"] == UNREADABLE
    jobs = Sweep.from_folder(root).scan()
    assert sorted(j.state for j in jobs) == ["done", UNREADABLE] and "1 unreadable" in header(jobs, 1.0)


def test_the_same_overrides_in_another_order_are_not_damage(sweep, tmp_path):
    # a sweep resumed with its keys typed in another order: Hydra writes overrides.yaml in that order
    root = tmp_path / "sweep"
    shutil.copytree(sweep, root)
    job = sorted(p.parent for p in root.glob(f"*/{HYDRA_DIR}"))[0]
    overrides = OmegaConf.load(job / FILES["overrides"])
    OmegaConf.save(OmegaConf.create(list(reversed(list(overrides)))), job / FILES["overrides"])
    assert _aggregate(root)[0] == 0
    assert (pd.read_parquet(root / SUMMARY_FILE)["status"] == "completed").all()
