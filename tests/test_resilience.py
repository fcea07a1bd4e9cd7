"""Sweeps that survive: refusals before work, failure isolation, resume after SIGKILL, skip when done."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import CONF, ROOT, TINY
from grok_sweep.run.precheck import check_command_line
from grok_sweep.store.layout import CHECKPOINT_FILE, SNAPSHOT_DIR
from grok_sweep.train.checkpoint import read_checkpoint


def _grok_sweep(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "grok_sweep", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})}, **kw)  # fmt: skip


def test_every_problem_of_every_job_is_named_before_work():
    found = check_command_line(["-m", "train_ratio=1.5,0.5", "weight_decay=abc,0.1", "width=30"], CONF)
    assert found == [
        "job train_ratio=1.5,weight_decay=abc,width=30: weight_decay: Value 'abc' of type 'str' could not be "
        "converted to Float",
        "job train_ratio=1.5,weight_decay=0.1,width=30: train_ratio=1.5 is not allowed: a fraction strictly "
        "between 0 and 1",
        "job train_ratio=1.5,weight_decay=0.1,width=30: width=30 is not allowed: a positive multiple of model.heads=4",
        "job train_ratio=0.5,weight_decay=abc,width=30: weight_decay: Value 'abc' of type 'str' could not be "
        "converted to Float",
        "job train_ratio=0.5,weight_decay=0.1,width=30: width=30 is not allowed: a positive multiple of model.heads=4",
    ]


def test_unknown_keys_suggest_the_closest_real_one():
    assert check_command_line(["wieght_decay=0.1", "optim.betta1=0.8"], CONF) == [
        "unknown key 'wieght_decay' (did you mean 'weight_decay'?)",
        "unknown key 'optim.betta1' (did you mean 'optim.beta1'?)",
    ]
    assert check_command_line(["+experiment=nanda2023", "hydra.sweep.dir=x", "optim.lr=0.1"], CONF) == []


def test_cli_refusal_is_one_line_per_problem_without_traceback(tmp_path):
    proc = _grok_sweep("-m", "train_ratio=1.5", "width=30,32", f"hydra.sweep.dir={tmp_path / 's'}")
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        "grok_sweep: error: job train_ratio=1.5,width=30: train_ratio=1.5 is not allowed: a fraction strictly "
        "between 0 and 1",
        "grok_sweep: error: job train_ratio=1.5,width=30: width=30 is not allowed: a positive multiple of "
        "model.heads=4",
        "grok_sweep: error: job train_ratio=1.5,width=32: train_ratio=1.5 is not allowed: a fraction strictly "
        "between 0 and 1",
    ]
    assert not (tmp_path / "s").exists()  # no job started


@pytest.mark.slow
def test_a_failed_and_a_diverged_job_do_not_stop_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    proc = _grok_sweep("-m", "optim.lr=0.01,1e6", "seed=0,1", *TINY, "steps=30", f"hydra.sweep.dir={sweep}",
                       env={"GROK_SWEEP_FAIL_AT_STEP": "12:1"})  # fmt: skip
    assert proc.returncode == 1
    summary = pd.read_parquet(sweep / "summary.parquet").set_index(["optim.lr", "seed"])
    assert summary["status"].to_dict() == {
        (0.01, 0): "completed", (0.01, 1): "failed", (1e6, 0): "diverged", (1e6, 1): "diverged",
    }  # fmt: skip
    failed = sweep / summary.loc[(0.01, 1), "job"]
    result = json.loads((failed / "result.json").read_text())
    assert result["stopped_at_step"] == 12 and "injected failure at step 12" in result["error"]
    assert len(pd.read_parquet(failed / "metrics.parquet")) == 12  # every row before it, fetched as it failed
    assert "failed: " + summary.loc[(0.01, 1), "job"] in proc.stdout
    assert "3 job(s) failed or diverged" in proc.stderr


def _run_until_checkpoint(args, run_dir):
    proc = subprocess.Popen([sys.executable, "-m", "grok_sweep", *args, f"hydra.run.dir={run_dir}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while not (run_dir / CHECKPOINT_FILE).exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return read_checkpoint(run_dir)[1]["step"]


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["grokfast=ema"], ["grokfast=ma", "grokfast.window=20"],
                                   ["measures=true", "train.snapshot_every=100"], ["blocks of 64 rows"],
                                   ["loss=stablemax", "optim.orthogonal=true", "grokfast=ema", "weight_decay=0",
                                    "model.init_scale=0.8", "train.constrain_norm=true"]],
                         ids=["none", "ema", "ma", "measures+snapshots", "metrics-blocks",
                              "interventions"])  # fmt: skip
def test_killed_run_resumes_to_identical_metrics(tmp_path, extra, monkeypatch):
    # the filters' state (EMA, MA's window of gradients) and the constrained norm's target are in the checkpoint too
    if extra == ["blocks of 64 rows"]:  # metrics flushed in parts of 64 rows: the kill comes after a few
        monkeypatch.setenv("GROK_SWEEP_BLOCK_ROWS", "64")
        extra = []
    args = [*TINY, "steps=1500", "train.batch_size=8", "train.checkpoint_every=100", *extra]
    killed_at = _run_until_checkpoint(args, tmp_path / "killed")
    assert 0 < killed_at < 1500
    partial = pd.read_parquet(tmp_path / "killed" / "metrics.parquet")
    assert len(partial) >= killed_at  # the SIGKILLed job left a readable parquet of its completed steps
    snaps = tmp_path / "killed" / SNAPSHOT_DIR
    kept = {p.name: p.stat().st_mtime_ns for p in snaps.glob("step_*.safetensors")}
    resumed = _grok_sweep(*args, f"hydra.run.dir={tmp_path / 'killed'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole = _grok_sweep(*args, f"hydra.run.dir={tmp_path / 'whole'}")
    assert whole.returncode == 0, whole.stderr[-2000:]
    a, b = (pd.read_parquet(tmp_path / d / "metrics.parquet") for d in ("killed", "whole"))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert json.loads((tmp_path / "killed" / "result.json").read_text())["resumed_from_step"] == killed_at
    assert not (tmp_path / "killed" / CHECKPOINT_FILE).exists()  # removed once finished (keep_checkpoint=false)
    if os.environ.get("GROK_SWEEP_BLOCK_ROWS"):
        assert len(list((tmp_path / "killed" / "metrics.parquet").glob("part-*.parquet"))) == 1500 // 64 + 1
    if "train.snapshot_every=100" in extra:  # the snapshots written before the kill stay; all equal the whole run's
        assert len(kept) >= killed_at // 100 and a["key_freqs"].notna().sum() > 0  # steps 0, 100, ... before it
        before = {name: t for name, t in kept.items() if name < f"step_{killed_at:04d}"}
        assert {name: snaps.joinpath(name).stat().st_mtime_ns for name in before} == before
        whole_snaps = sorted((tmp_path / "whole" / SNAPSHOT_DIR).glob("step_*.safetensors"))
        assert [p.name for p in whole_snaps] == sorted(p.name for p in snaps.glob("step_*.safetensors"))
        assert len(whole_snaps) == 15  # steps 0 .. 1400; the final model is model.safetensors
        for p in whole_snaps:
            assert p.read_bytes() == (snaps / p.name).read_bytes(), p.name
