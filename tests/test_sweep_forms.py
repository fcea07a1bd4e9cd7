"""Every sweep Hydra's basic sweeper runs is expanded and checked before it starts, as Hydra expands it: the command
line's syntax (glob over a config group, choice, range, tag, sort, shuffle), sweep values kept in a config file
(`hydra.sweeper.params`, in the primary config, a preset or --config-dir) and a preset's `hydra.mode: MULTIRUN`; the
jobs the live view and aggregation plan are the ones Hydra runs."""

import subprocess
import sys

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import CONF, ROOT, TINY
from grok_sweep.run.precheck import check_command_line
from grok_sweep.store.layout import PLAN_FILE
from grok_sweep.store.plan import expand_sweep, planned_jobs

GRID = ("# @package _global_\nmodulus: 7\ntrain_ratio: 0.6\nwidth: 16\nmodel: {heads: 2}\nsteps: 20\neval_every: 7\n"
        "hydra:\n  sweeper:\n    params:\n      seed: 0,1\n")  # fmt: skip


@pytest.fixture
def mine(tmp_path):
    """A user's config folder: a preset that keeps its sweep values in the file, and one whose values are bad."""
    folder = tmp_path / "mine"
    (folder / "experiment").mkdir(parents=True)
    (folder / "experiment" / "grid.yaml").write_text(GRID)
    bad = GRID.replace("seed: 0,1", "weight_decay: -1,0.1").replace("hydra:\n", "hydra:\n  mode: MULTIRUN\n")
    (folder / "experiment" / "badgrid.yaml").write_text(bad)
    return folder


@pytest.mark.parametrize(("sweep", "values"), [
    ("seed=range(0,3)", ["seed=0", "seed=1", "seed=2"]),
    ("weight_decay=choice(0.1,1.0)", ["weight_decay=0.1", "weight_decay=1.0"]),
    ("seed=tag(small,range(0,2))", ["seed=0", "seed=1"]),
    ("weight_decay=sort(1.0,0.1)", ["weight_decay=0.1", "weight_decay=1.0"]),
    ("seed=shuffle(0,1,2)", ["seed=0", "seed=1", "seed=2"]),
    ("train_ratio=range(0.4,0.8,0.2)", ["train_ratio=0.4", "train_ratio=0.6000000000000001"]),
])  # fmt: skip
def test_hydras_sweep_syntax_is_expanded_and_checked_as_hydra_expands_it(sweep, values):
    assert sorted(job for [job] in expand_sweep([sweep])[1]) == values
    assert check_command_line(["-m", sweep, *TINY], CONF) == []


def test_a_bad_value_of_any_syntax_is_refused_before_work():
    assert check_command_line(["-m", "train_ratio=range(0.5,1.5,0.5)"], CONF) == [
        "job train_ratio=1.0: train_ratio=1.0 is not allowed: a fraction strictly between 0 and 1"
    ]
    assert check_command_line(["-m", "train_ratio=interval(0.2,0.6)", *TINY], CONF) == [
        "train_ratio: a range (interval(lo,hi)) is swept by hydra/sweeper=refine (docs/guide/refine.md)"
    ]


def test_glob_over_a_config_group_lists_its_options_not_its_schemas():
    assert check_command_line(["-m", "loss=glob(*)", "grokfast=glob(*,exclude=ma)", *TINY], CONF) == []
    found = check_command_line(["-m", "loss=glob(*)", "width=15"], CONF)
    assert found == [f"job loss={name},width=15: width=15 is not allowed: a positive multiple of model.heads=4"
                     for name in ("mse", "softmax", "stablemax")]  # fmt: skip


def test_sweep_values_kept_in_a_preset_are_checked_like_the_command_lines(mine):
    assert check_command_line(["-m", "--config-dir", str(mine), "+experiment=grid"], CONF) == []
    # hydra.mode: MULTIRUN makes it a sweep without -m; its values are checked all the same
    assert check_command_line(["--config-dir", str(mine), "+experiment=badgrid"], CONF) == [
        "job +experiment=badgrid,weight_decay=-1: weight_decay=-1.0 is not allowed: a number >= 0"
    ]


def test_the_plan_of_a_sweep_folder_holds_its_config_files_sweep_values(tmp_path):
    hydra = {"overrides": {"task": ["+experiment=grid", "loss=softmax,stablemax"]},
             "sweeper": {"params": {"seed": "0,1"}}}  # fmt: skip
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), tmp_path / PLAN_FILE)
    jobs, swept = planned_jobs(tmp_path)
    assert sorted(swept) == ["loss", "seed"] and len(jobs) == 4
    assert frozenset({"seed=1", "+experiment=grid", "loss=stablemax"}) in jobs


@pytest.mark.slow
def test_a_sweep_of_preset_values_and_a_glob_runs_every_job_it_plans(mine, tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "grok_sweep", "-m", "--config-dir", str(mine), "+experiment=grid", "loss=glob(*)",
           f"hydra.sweep.dir={sweep}"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "jobs 6/6 done" in proc.stdout and "missing" not in proc.stdout
    summary = pd.read_parquet(sweep / "summary.parquet")
    assert sorted(zip(summary["loss"], summary["seed"], strict=True)) == [
        ("mse", 0), ("mse", 1), ("softmax", 0), ("softmax", 1), ("stablemax", 0), ("stablemax", 1)
    ]  # fmt: skip
    assert (summary["status"] == "completed").all()
    # a fresh process plans the glob from the config search path multirun.yaml records
    again = subprocess.run([sys.executable, "-m", "grok_sweep.aggregate", str(sweep), "--no-figures"], cwd=ROOT,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0 and "missing" not in again.stdout, again.stdout + again.stderr
    assert planned_jobs(sweep)[0] and len(planned_jobs(sweep)[0]) == 6
