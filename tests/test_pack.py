"""Packs (hydra/launcher=pack): jobs of one shape trained as one program, each member a job of its own.

On the CPU a member computes what its single run computes, kernel for kernel (train/pack.py): its metrics, weights
and result equal the single run's bit for bit, whatever the others in its pack do (differ in seed, weight decay,
lr, train_ratio, steps, early stopping, or diverge). The stacked form (one forward of all members, for GPUs) is
checked against each member's own GPT and, over a few steps, against the single runs within float rounding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tinygrad import Tensor

from conftest import ROOT, TINY, make_cfg
from grok_sweep.data.tasks import job_split
from grok_sweep.model.family import job_model
from grok_sweep.model.packed import PackedGPT
from grok_sweep.run.job import run_job
from grok_sweep.run.pack_job import run_pack
from grok_sweep.run.packing import MAX_SIZE, default_size, packs, shape_key
from grok_sweep.store.layout import DIVERGED, FINAL_FILE, RESULT_FILE, STOPPED_EARLY
from grok_sweep.store.metrics import read_metrics
from grok_sweep.store.safetensors import read as read_tensors
from grok_sweep.train.loop import Plan
from grok_sweep.train.pack import Pack
from grok_sweep.train.trainer import Trainer

BASE = [*TINY, "steps=60", "train.early_stop=0", "train.checkpoint_every=25"]
# members that differ in every key a pack keeps per member
MEMBERS = [["seed=0"], ["seed=1", "weight_decay=0.3"], ["seed=2", "optim.lr=0.003", "optim.warmup_steps=10"],
           ["seed=3", "train_ratio=0.3"], ["seed=4", "model.init_scale=0.5", "steps=45"]]  # fmt: skip


def _same_job(pack_dir: Path, single_dir: Path) -> None:
    """Two job folders hold the same run: metrics and final weights bit for bit, the same outcome."""
    pd.testing.assert_frame_equal(read_metrics(pack_dir / "metrics.parquet"),
                                  read_metrics(single_dir / "metrics.parquet"), check_exact=True)  # fmt: skip
    a, b = read_tensors(pack_dir / FINAL_FILE), read_tensors(single_dir / FINAL_FILE)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    ra, rb = (json.loads((d / RESULT_FILE).read_text()) for d in (pack_dir, single_dir))
    outcome = ("status", "steps_run", "stopped_at_step")
    assert [ra[k] for k in outcome] == [rb[k] for k in outcome]


def test_a_packed_forward_is_each_members_gpt():
    cfgs = [make_cfg(*TINY, f"seed={s}", "model.layers=2") for s in range(3)]
    models = [job_model(c, np.random.default_rng(s), "CPU") for s, c in enumerate(cfgs)]
    x = np.stack([job_split(c).x_test[:20] for c in cfgs])
    packed = PackedGPT(models, "CPU")(Tensor(x)).numpy()
    for k, model in enumerate(models):
        np.testing.assert_allclose(packed[k], model(Tensor(x[k])).numpy(), rtol=1e-5, atol=1e-5)


def test_members_equal_their_single_runs_bit_for_bit(tmp_path):
    cfgs = [make_cfg(*BASE, *m) for m in MEMBERS]
    results = run_pack([(c, tmp_path / f"pack{k}") for k, c in enumerate(cfgs)])
    names = [f"pack{k}" for k in range(len(cfgs))]
    for k, (cfg, result) in enumerate(zip(cfgs, results, strict=True)):
        assert result["pack"] == {"size": len(cfgs), "member": k, "jobs": names}
        run_job(cfg, tmp_path / f"single{k}", progress=False)
        _same_job(tmp_path / f"pack{k}", tmp_path / f"single{k}")
    assert results[4]["steps_run"] == 45  # its own steps: it stopped there while the others trained on


def test_a_diverging_member_is_diverged_and_the_others_train_as_alone(tmp_path):
    cfgs = [make_cfg(*BASE, "seed=0"), make_cfg(*BASE, "seed=1", "optim.lr=1e6"), make_cfg(*BASE, "seed=2")]
    results = run_pack([(c, tmp_path / f"pack{k}") for k, c in enumerate(cfgs)])
    assert results[1]["status"] == DIVERGED and [r["status"] for r in (results[0], results[2])] == ["completed"] * 2
    for k, cfg in enumerate(cfgs):
        run_job(cfg, tmp_path / f"single{k}", progress=False)
        _same_job(tmp_path / f"pack{k}", tmp_path / f"single{k}")


def test_early_stopping_ends_each_member_at_its_own_step(tmp_path):
    # p = 11 with 80% of the pairs for training: test accuracy settles by step ~100 (tests/test_early_stop.py)
    base = [*TINY, "modulus=11", "train_ratio=0.8", "steps=200", "train.early_stop_acc=0.5"]
    cfgs = [make_cfg(*base, "seed=0", "train.early_stop=28"), make_cfg(*base, "seed=1", "train.early_stop=0"),
            make_cfg(*base, "seed=2", "train.early_stop=49")]  # fmt: skip
    results = run_pack([(c, tmp_path / f"pack{k}") for k, c in enumerate(cfgs)])
    assert results[0]["status"] == results[2]["status"] == STOPPED_EARLY and results[1]["status"] == "completed"
    assert results[0]["steps_run"] < 200 and results[2]["steps_run"] < 200
    for k, cfg in enumerate(cfgs):
        run_job(cfg, tmp_path / f"single{k}", progress=False)
        _same_job(tmp_path / f"pack{k}", tmp_path / f"single{k}")


def test_the_stacked_form_follows_the_single_runs_within_float_rounding():
    cfgs = [make_cfg(*BASE, *m, "steps=20", "train.compile_cache=false") for m in MEMBERS[:4]]
    pack = Pack(cfgs, stacked=True)
    pack.fit([Plan.of(c) for c in cfgs])
    for k, cfg in enumerate(cfgs):
        single = Trainer(cfg)
        single.fit()
        a, b = single.log.frame(), pack.members[k].log.frame()
        for col in ("train_loss", "test_loss", "weight_norm"):
            np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=2e-4, err_msg=col)
        assert (a["train_acc"] == b["train_acc"]).mean() > 0.9


def test_jobs_share_a_pack_when_only_per_member_keys_differ():
    base = shape_key(make_cfg(*TINY))
    per_member = ["seed=3", "weight_decay=0.1", "optim.lr=0.1", "train_ratio=0.5", "model.init_scale=0.7", "steps=9",
                  "train.early_stop=7", "train.checkpoint_every=3", "train.snapshot_every=2", "optim.warmup_steps=4",
                  "optim.min_lr=0.001"]  # fmt: skip
    assert all(shape_key(make_cfg(*TINY, o)) == base for o in per_member)
    assert shape_key(make_cfg(*TINY, "grokfast=ema", "grokfast.lamb=1")) == shape_key(make_cfg(*TINY, "grokfast=ema"))
    shapes = ["width=32", "modulus=11", "loss=stablemax", "train.batch_size=8", "eval_every=5", "measures=true",
              "train.device=CUDA", "train.loss_dtype=float32", "grokfast=ma", "optim.orthogonal=true",
              "model.heads=4", "optim.schedule=cosine"]  # fmt: skip
    assert len({base, *(shape_key(make_cfg(*TINY, o)) for o in shapes)}) == len(shapes) + 1


def test_packs_group_by_shape_and_cut_evenly_in_order():
    cfgs = [make_cfg(*TINY, f"width={w}", f"seed={s}") for s in range(5) for w in (16, 32)]
    assert packs(cfgs, 64) == [[0, 2, 4, 6, 8], [1, 3, 5, 7, 9]]
    assert packs(cfgs, 2) == [[0, 2], [4, 6], [8], [1, 3], [5, 7], [9]]
    assert packs(cfgs, 4) == [[0, 2, 4], [6, 8], [1, 3, 5], [7, 9]]  # 3 + 2, not 4 + 1
    assert packs(cfgs, 1) == [[i] for i in (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)]


def test_the_default_size_is_one_on_the_cpu_and_what_memory_holds_elsewhere():
    assert default_size(make_cfg(*TINY), 2**40) == 1
    gpu = make_cfg("+experiment=nanda2023", "train.device=CUDA")
    assert default_size(gpu, 2**40) == MAX_SIZE and default_size(gpu, None) == MAX_SIZE
    assert 1 <= default_size(gpu, 2 * 2**30) < MAX_SIZE
    assert default_size(make_cfg("+experiment=nanda2023", "train.device=CUDA", "train.max_memory_gb=1"), 2**40) < 8


def _sweep(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "grok_sweep", "-m", "hydra/launcher=pack", *args, f"hydra.sweep.dir={folder}"]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, **(env or {})})


def _jobs(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if (p / ".hydra").is_dir()}


@pytest.mark.slow
def test_the_default_configs_seeds_and_a_weight_decay_grid_are_their_single_runs(tmp_path):
    # the check: memorization step, grokking step and phase; on the CPU every metric is the same
    from grok_sweep.detect import detect

    grid = [["seed=0"], ["seed=1"], ["seed=2"], ["seed=3"], ["weight_decay=0.3"], ["weight_decay=3"]]
    cfgs = [make_cfg(*o, "steps=2000") for o in grid]
    run_pack([(c, tmp_path / f"pack{k}") for k, c in enumerate(cfgs)])
    phases = []
    for k, cfg in enumerate(cfgs):
        run_job(cfg, tmp_path / f"single{k}", progress=False)
        _same_job(tmp_path / f"pack{k}", tmp_path / f"single{k}")
        phases.append(detect(read_metrics(tmp_path / f"pack{k}" / "metrics.parquet"))["phase"])
    assert phases[:4] == ["grokking"] * 4


@pytest.mark.slow
def test_a_killed_pack_resumes_every_member_and_ends_as_if_never_stopped(tmp_path):
    args = ["seed=0,1", "steps=40,120", *TINY[:4], "eval_every=7", "train.early_stop=0", "train.checkpoint_every=50",
            "optim.warmup_steps=60",
            "hydra.launcher.size=4"]  # fmt: skip
    whole = _sweep(tmp_path / "whole", *args)
    assert whole.returncode == 0, whole.stderr[-2000:]
    cut = _sweep(tmp_path / "cut", *args, env={"GROK_SWEEP_SIGNAL_AT_STEP": "73:KILL"})  # SIGKILL: no clean-up
    assert cut.returncode == -9
    jobs = _jobs(tmp_path / "cut")
    finished = {n for n, p in jobs.items() if (p / RESULT_FILE).exists()}
    assert finished == {n for n in jobs if "steps=40" in n}  # written when they ended, while the pack trained on
    before = {n: (jobs[n] / RESULT_FILE).stat().st_mtime_ns for n in finished}
    again = _sweep(tmp_path / "cut", *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {n: (jobs[n] / RESULT_FILE).stat().st_mtime_ns for n in finished} == before  # not trained again
    for name, folder in jobs.items():
        _same_job(folder, tmp_path / "whole" / name)
        resumed = json.loads((folder / RESULT_FILE).read_text())["resumed_from_step"]
        assert resumed == (None if name in finished else 50)


@pytest.mark.slow
def test_a_grid_trains_as_packs_by_shape_and_each_job_is_an_ordinary_job(tmp_path):
    proc = _sweep(tmp_path / "grid", "seed=0,1,2", "width=16,32", *TINY[:2], "model.heads=2", "steps=30",
                  "eval_every=7", "hydra.launcher.size=8")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = _jobs(tmp_path / "grid")
    results = {n: json.loads((p / RESULT_FILE).read_text()) for n, p in jobs.items()}
    assert len(results) == 6 and {r["pack"]["size"] for r in results.values()} == {3}
    for name, r in results.items():  # its pack: the three jobs of its width
        assert sorted(r["pack"]["jobs"]) == sorted(
            n for n in results if n.split("width=")[1] == name.split("width=")[1]
        )
    assert (tmp_path / "grid" / "summary.parquet").exists() and (tmp_path / "grid" / "report.html").exists()
    for name, folder in list(jobs.items())[:2]:  # as its single run
        cfg = make_cfg(*read_overrides(folder))
        run_job(cfg, tmp_path / "single" / name, progress=False)
        _same_job(folder, tmp_path / "single" / name)


def read_overrides(folder: Path) -> list[str]:
    from omegaconf import OmegaConf

    return [o for o in OmegaConf.load(folder / ".hydra" / "overrides.yaml") if not o.startswith("hydra")]


@pytest.mark.slow
def test_the_default_grid_on_the_cpu_trains_single_jobs_and_says_why(tmp_path):
    proc = _sweep(tmp_path / "grid", "seed=0,1,2,3", *TINY)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "on the CPU a pack trains slower than single jobs" in proc.stderr
    results = [json.loads((p / RESULT_FILE).read_text()) for p in _jobs(tmp_path / "grid").values()]
    assert len(results) == 4 and all("pack" not in r for r in results)
    assert (tmp_path / "grid" / "report.html").exists() and "phase table" in proc.stdout


def test_members_test_sets_of_several_chunks_are_each_members_own(monkeypatch):
    # chunks of 16 examples: test sets of 20 and 10 pairs (modulus 7 at 60% and 80%), the second's last chunk empty
    import grok_sweep.train.inputs as inputs

    monkeypatch.setattr(inputs.stacked_chunks, "__defaults__", (16,))
    cfgs = [make_cfg(*TINY, "steps=3"), make_cfg(*TINY, "steps=3", "train_ratio=0.8", "seed=1")]
    pack = Pack(cfgs)
    assert [m.chunk_n for m in pack.members] == [[16, 4], [10, 0]]
    pack.pending.append((0, pack.run_eval(), [0, 1]))
    got = {k: v for k, _, v in pack.fetch(0)}
    for k, cfg in enumerate(cfgs):
        np.testing.assert_allclose(got[k][:3], Trainer(cfg).eval_step()[:3], rtol=1e-6)


@pytest.mark.parametrize(
    ("size", "said"),
    [
        ("0", "hydra.launcher.size=0 is not allowed: null or a number of jobs >= 1"),
        ("-2", "hydra.launcher.size=-2 is not allowed"),
        ("two", "size"),
    ],
)
def test_a_pack_size_that_is_no_number_of_jobs_is_refused_before_anything_is_written(size, said, tmp_path):
    from grok_sweep.run.config import CONF_DIR
    from grok_sweep.run.precheck import check_command_line

    args = ["-m", "hydra/launcher=pack", f"hydra.launcher.size={size}", "seed=0,1", f"hydra.sweep.dir={tmp_path / 's'}"]
    problems = check_command_line(args, CONF_DIR)
    assert problems and all(said in p for p in problems) and not (tmp_path / "s").exists()
    assert check_command_line([*args[:1], "hydra/launcher=pack", "hydra.launcher.size=3", *args[3:]], CONF_DIR) == []


def test_a_job_resumes_alone_from_its_pack_checkpoint_and_in_a_pack_from_its_own(tmp_path, monkeypatch):
    cfgs = [make_cfg(*BASE, "seed=0"), make_cfg(*BASE, "seed=1", "weight_decay=0.3")]
    monkeypatch.setenv("GROK_SWEEP_SIGNAL_AT_STEP", "33:TERM")  # between the checkpoints of steps 25 and 50
    cut = run_pack([(c, tmp_path / f"packed{k}") for k, c in enumerate(cfgs)])
    assert [(r["status"], r["stopped_at_step"]) for r in cut] == [("interrupted", 34)] * 2
    alone = run_job(cfgs[0], tmp_path / "alone", progress=False)  # cut alone at 34 too
    assert alone["status"] == "interrupted"
    monkeypatch.delenv("GROK_SWEEP_SIGNAL_AT_STEP")
    assert run_job(cfgs[1], tmp_path / "packed1", progress=False)["resumed_from_step"] == 34  # a pack's, alone
    # a single job's checkpoint, in a pack with a job that starts at step 0: each member from its own step
    again = run_pack([(cfgs[0], tmp_path / "alone"), (cfgs[1], tmp_path / "other")])
    assert [(r["status"], r["resumed_from_step"]) for r in again] == [("completed", 34), ("completed", None)]
    for k, folder in ((1, tmp_path / "packed1"), (0, tmp_path / "alone"), (1, tmp_path / "other")):
        run_job(cfgs[k], tmp_path / f"whole{k}", progress=False)
        _same_job(folder, tmp_path / f"whole{k}")
