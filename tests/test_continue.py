"""init.from: a run that continues another (run/parent.py, train/start.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY, make_cfg
from grok_sweep.data.tasks import job_split
from grok_sweep.run import parent
from grok_sweep.run.checks import ConfigError, validate
from grok_sweep.run.job import run_job
from grok_sweep.store.layout import RESULT_FILE
from grok_sweep.store.metrics import read_metrics

BASE = [*TINY, "train.early_stop=0", "train.keep_checkpoint=true"]
COLS = ["train_loss", "train_acc", "lr", "test_loss", "test_acc", "weight_norm", "ipr"]


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A parent of 35 steps with its state kept and snapshots every 7."""
    out = tmp_path_factory.mktemp("parent") / "p"
    run_job(make_cfg(*BASE, "steps=35", "train.snapshot_every=7"), out, progress=False)
    return out


def _child(grown, *overrides: str):
    return make_cfg(*BASE, f"init.from={grown}", *overrides)


def test_with_all_its_pairs_and_its_state_a_child_continues_exactly_as_the_parent_would_have(grown, tmp_path):
    longer = tmp_path / "longer"  # the parent's run, 21 steps further (evals every 7: 35 is one of them)
    run_job(make_cfg(*BASE, "steps=56", "train.snapshot_every=7"), longer, progress=False)
    run_job(_child(grown, "steps=21", "init.optimizer=true"), tmp_path / "child", progress=False)
    child, whole = read_metrics(tmp_path / "child" / "metrics.parquet"), read_metrics(longer / "metrics.parquet")
    assert child["step"].tolist() == list(range(21))  # its metrics start at its own step 0
    tail = whole[whole["step"] >= 35].reset_index(drop=True)[COLS]
    pd.testing.assert_frame_equal(child[COLS], tail, check_exact=True)


def test_a_fresh_optimizer_changes_the_continuation(grown, tmp_path):
    run_job(_child(grown, "steps=14"), tmp_path / "fresh", progress=False)
    run_job(_child(grown, "steps=14", "init.optimizer=true"), tmp_path / "kept", progress=False)
    a, b = (read_metrics(tmp_path / d / "metrics.parquet")["train_loss"] for d in ("fresh", "kept"))
    assert a[0] == b[0] and not a.equals(b)  # the same weights at step 0; the moments differ after


def test_subsets_are_nested_prefixes_of_the_parents_train_split_and_test_on_its_test_split(grown):
    own = job_split(make_cfg(*BASE))
    starts = {n: parent.start(_child(grown, f"init.subset={n}")) for n in (3, 7, 12)}
    for n, st in starts.items():
        np.testing.assert_array_equal(st.split.x_train, own.x_train[:n])
        np.testing.assert_array_equal(st.split.x_test, own.x_test)
    half = parent.start(_child(grown, "init.subset=0.5")).split
    assert len(half.y_train) == len(own.y_train) // 2
    np.testing.assert_array_equal(starts[3].split.x_train, starts[12].split.x_train[:3])


def test_a_snapshot_starts_a_child_from_that_step(grown):
    from grok_sweep.store.safetensors import read  # noqa: PLC0415

    st = parent.start(_child(grown, "init.step=14"))
    snap = read(grown / "snapshots" / "step_14.safetensors")
    assert all(np.array_equal(st.weights[k], snap[k]) for k in snap)


def test_a_sweep_over_subsets_names_each_childs_parent_in_result_and_summary(grown, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "init.subset=4,8", "weight_decay=0.3,1", f"init.from={grown}", *TINY, "steps=14",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "grok_sweep", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (job,) = sweep.glob("*init.subset=4,*weight_decay=0.3,*")  # one folder deep: the path's slashes as _
    assert f"init.from={str(grown).replace('/', '_')}," in job.name
    result = json.loads((job / RESULT_FILE).read_text())
    assert result["init"] == {"from": str(grown.resolve()), "step": 35, "subset": 4, "optimizer": False}
    assert result["n_train"] == 4 and result["n_test"] == len(job_split(make_cfg(*BASE)).y_test)
    summary = pd.read_parquet(sweep / "summary.parquet")
    assert sorted(summary["init_subset"]) == [4, 4, 8, 8] and set(summary["init_step"]) == {35}
    assert set(summary["init_from"]) == {str(grown.resolve())} and set(summary["status"]) == {"completed"}


def test_an_interrupted_child_resumes_to_the_same_run(grown, tmp_path, monkeypatch):
    from test_pack import _same_job  # noqa: PLC0415

    cfg = _child(
        grown,
        "steps=30",
        "init.subset=9",
        "train.checkpoint_every=10",
        "train.keep_checkpoint=false",
        "optim.warmup_steps=20",
        "optim.schedule=cosine",
    )  # the schedule resumes at its step too
    monkeypatch.setenv("GROK_SWEEP_SIGNAL_AT_STEP", "15:TERM")
    assert run_job(cfg, tmp_path / "cut", progress=False)["status"] == "interrupted"
    monkeypatch.delenv("GROK_SWEEP_SIGNAL_AT_STEP")
    assert run_job(cfg, tmp_path / "cut", progress=False)["resumed_from_step"] == 16
    run_job(cfg, tmp_path / "whole", progress=False)
    _same_job(tmp_path / "cut", tmp_path / "whole")


@pytest.mark.parametrize(("overrides", "says"), [
    (["init.from={tmp}"], "init.from={tmp} is not a finished run folder"),
    (["init.from={grown}", "modulus=11"], "init.from={grown}: its modulus is 7, this job's 11 (the model and task"),
    (["init.from={grown}", "width=32"], "init.from={grown}: its width is 16, this job's 32"),
    (["init.from={grown}", "init.subset=1000"], "init.subset=1000 is not allowed: null (all), 1..29 pairs"),
    (["init.from={grown}", "init.subset=0"], "init.subset=0 is not allowed"),
    (["init.from={grown}", "init.subset=1.5"], "init.subset=1.5 is not allowed"),
    (["init.from={grown}", "init.step=5"], "init.step=5: {grown} has weights after steps 0, 7, 14, 21, 28, 35"),
    (["init.from={grown}", "init.step=14", "init.optimizer=true"], "init.optimizer=true: {grown} keeps no optimizer "
                                                                   "state after step 14"),
    (["init.from={grown}", "init.optimizer=true", "optim=sgd"], "init.optimizer=true: the parent's optim.name is "
                                                                "adamw, this job's sgd"),
    (["init.subset=10"], "init.subset=10 needs init.from=PATH"),
    (["init.from={grown}", "train.batch_size=8", "init.subset=4"], "train.batch_size=8 is not allowed: null (full "
                                                                   "batch) or 1..4"),
])  # fmt: skip
def test_a_child_that_cannot_start_is_refused_in_one_line_and_writes_nothing(grown, tmp_path, overrides, says):
    fill = {"tmp": tmp_path, "grown": grown}
    cfg = make_cfg(*TINY, *(o.format(**fill) for o in overrides))
    with pytest.raises(ConfigError) as err:
        validate(cfg)
    assert str(err.value).startswith(says.format(**fill)) and "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        run_job(cfg, tmp_path / "job", progress=False)
    assert not (tmp_path / "job").exists()


def test_a_refine_sweep_may_range_over_the_subset_as_a_fraction(grown):
    from conftest import CONF  # noqa: PLC0415
    from grok_sweep.run import precheck  # noqa: PLC0415

    args = ["-m", "hydra/sweeper=refine", "init.subset=interval(0.2,1.0)", "weight_decay=interval(0.1,3)",
            f"init.from={grown}", *TINY]  # fmt: skip
    assert precheck.check_command_line(args, CONF) == []
    refused = precheck.check_command_line([*args[:2], "init.step=interval(0,9)", *args[3:]], CONF)
    assert len(refused) == 1 and refused[0].startswith("init.step=interval(...): init.step is")


@pytest.mark.parametrize("damaged", ["result.json", "model.safetensors", ".hydra"])
def test_a_damaged_parent_is_refused_in_one_line(grown, tmp_path, damaged):
    import shutil  # noqa: PLC0415

    copy = tmp_path / "parent"
    shutil.copytree(grown, copy)
    if damaged == ".hydra":  # a folder run_job wrote has none: not needed, its config is in result.json
        shutil.rmtree(copy / damaged, ignore_errors=True)
    else:
        (copy / damaged).write_bytes(b"\x00garbage")
    found = parent.problems(_child(copy, "init.step=14" if damaged == "model.safetensors" else "steps=5"))
    if damaged == ".hydra":
        assert found == []
        return
    assert len(found) == 1 and "\n" not in found[0], found
    assert found[0].startswith(f"init.from={copy}"), found
