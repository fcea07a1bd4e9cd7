"""The disk cache of captured JITs: a cached job computes exactly what a compiling one does."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tinygrad import Tensor, TinyJit

import grok_sweep
from conftest import TINY, make_cfg
from grok_sweep.fast import jit_cache
from grok_sweep.train.compile_cache import kernel_config
from grok_sweep.train.trainer import Trainer


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "jit"
    monkeypatch.setenv("GROK_SWEEP_CACHE_DIR", str(folder))
    return folder


def _train(*overrides: str) -> tuple[Trainer, np.ndarray]:
    trainer = Trainer(make_cfg(*TINY, "train.early_stop=0", *overrides))
    trainer.fit()
    return trainer, trainer.log.frame().select_dtypes("number").to_numpy()


def _loaded(trainer: Trainer) -> bool:
    return trainer.train_step.fxn is None  # a JIT from the cache has no function to capture


@pytest.mark.parametrize("extra", [[], ["grokfast=ema", "train.batch_size=8"]], ids=["full-batch", "ema-minibatch"])
def test_a_cached_job_computes_what_a_compiling_one_does(cache, extra):
    first, _ = _train("seed=1", "weight_decay=0.3", *extra)
    assert not _loaded(first) and len(list(cache.glob("*.jit"))) == 1
    _, compiled = _train("seed=2", "train.compile_cache=false", *extra)
    # another seed and weight decay: other weights, split, batches and updates, the same shapes
    cached, from_cache = _train("seed=2", *extra)
    assert _loaded(cached)
    np.testing.assert_array_equal(from_cache, compiled)
    weights = {k: v.numpy() for k, v in cached.weights().items()}
    assert all(np.isfinite(w).all() for w in weights.values()) and len(weights) == len(first.weights())


def test_jobs_that_differ_in_init_scale_share_their_steps_and_the_norm_they_keep(cache):
    # the constrained norm's target is a tensor the cached JIT reads from the trainer, not a constant of its kernels
    opts = ("train.constrain_norm=true", "optim.orthogonal=true", "loss=stablemax", "weight_decay=0")
    _train(*opts)
    _, compiled = _train(*opts, "model.init_scale=0.7", "train.compile_cache=false")
    cached, from_cache = _train(*opts, "model.init_scale=0.7")
    assert _loaded(cached)
    np.testing.assert_array_equal(from_cache, compiled)


def test_a_damaged_entry_is_rebuilt_not_trusted(cache):
    _, before = _train()
    (entry,) = cache.glob("*.jit")
    blob = bytearray(entry.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    entry.write_bytes(bytes(blob))
    trainer, after = _train()
    assert not _loaded(trainer)  # compiled again, and wrote a good entry
    np.testing.assert_array_equal(after, before)
    assert jit_cache._read(entry.read_bytes())["jits"][0].captured is not None


def _key(*overrides: str, inputs=None, device: str = "CPU") -> str:
    return jit_cache.entry_key(kernel_config(make_cfg(*TINY, *overrides)), inputs or [Tensor.zeros(4, 3)], device)


def test_the_key_holds_what_shapes_the_kernels_and_not_the_seed():
    key = _key()
    assert key == _key("seed=5", "steps=99", "train.early_stop=3", "weight_decay=0.5", "train_ratio=0.5")
    assert key != _key("optim.beta1=0.8")
    assert key != _key("width=32")
    assert key != _key(inputs=[Tensor.zeros(5, 3)])
    assert key != _key(device="CPU:1")


def test_an_entry_made_on_another_cpu_is_not_used(monkeypatch):
    # kernels are compiled for the host CPU: a home folder shared by a cluster's nodes must not mix them
    key = _key()
    assert jit_cache.cpu_identity() == jit_cache.cpu_identity.__wrapped__()
    monkeypatch.setattr(jit_cache, "cpu_identity", lambda: "another cpu")
    assert key != _key()


def test_an_edit_in_any_folder_of_the_package_makes_a_miss(cache, tmp_path, monkeypatch):
    # the source hash covers every folder: a step compiled by other code is never loaded
    assert jit_cache.PACKAGE == Path(grok_sweep.__file__).resolve().parent
    copy = tmp_path / "grok_sweep"
    shutil.copytree(jit_cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(jit_cache, "PACKAGE", copy)
    assert jit_cache.code_version.__wrapped__() == jit_cache.code_version()  # the copy hashes as the package
    _train()
    assert _loaded(_train()[0])
    for edited in ("model/gpt.py", "run/config.py", "store/layout.py", "__main__.py"):
        before = jit_cache.code_version.__wrapped__()
        (copy / edited).write_text((copy / edited).read_text() + "\n# an edit\n")
        assert jit_cache.code_version.__wrapped__() != before, edited
    monkeypatch.setattr(jit_cache, "code_version", jit_cache.code_version.__wrapped__)
    assert not _loaded(_train()[0])


def test_a_jit_that_reads_an_unnamed_tensor_is_not_saved(cache):
    named, hidden = Tensor.ones(4).contiguous().realize(), Tensor.full((4,), 2.0).contiguous().realize()
    entry = jit_cache.JitCache(kernel_config(make_cfg(*TINY)), [named], "CPU")
    entry.note_existing()
    step = TinyJit(lambda x: (x * named * hidden).realize())
    for _ in range(3):
        step(Tensor.ones(4).contiguous().realize())
    assert not entry.save([step, step], {"named": named})  # `hidden` would be baked in
    assert not entry.path.exists()
    assert entry.save([step, step], {"named": named, "hidden": hidden})
    assert entry.path.exists()


def test_a_step_that_does_not_pickle_costs_the_job_nothing(cache, monkeypatch):
    def refuse(self, obj):
        raise TypeError("cannot pickle this")

    monkeypatch.setattr(jit_cache._Pickler, "dump", refuse)
    trainer, rows = _train()
    assert trainer.cache.done and not trainer.cache.hit and not list(cache.glob("*.jit"))
    assert len(rows) == trainer.cfg.steps and np.isfinite(rows[:, 1]).all()


def test_clear_empties_the_cache(cache):
    _train()
    env = {**os.environ, "GROK_SWEEP_CACHE_DIR": str(cache)}
    run = [sys.executable, "-m", "grok_sweep.jit_cache"]
    shown = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout
    assert "1 entries" in shown
    cleared = subprocess.run([*run, "--clear"], env=env, capture_output=True, text=True, check=True).stdout
    assert cleared.startswith("deleted 1 entries") and not cache.exists()


def test_a_job_says_whether_its_steps_came_from_the_cache(cache, tmp_path):
    from grok_sweep.run.job import run_job
    from grok_sweep.store.metrics import read_metrics

    cfg = make_cfg(*TINY)
    first, second = run_job(cfg, tmp_path / "a", progress=False), run_job(cfg, tmp_path / "b", progress=False)
    assert (first["compile_cache"], second["compile_cache"]) == ("miss", "hit")
    off = run_job(make_cfg(*TINY, "train.compile_cache=false"), tmp_path / "c", progress=False)
    assert off["compile_cache"] is None
    a, b = (read_metrics(tmp_path / d / "metrics.parquet") for d in "ab")
    assert a.drop(columns="key_freqs").equals(b.drop(columns="key_freqs"))
