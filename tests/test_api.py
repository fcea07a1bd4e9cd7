"""The Python API: load_run / load_sweep give back what the jobs wrote, and refuse what is not there in one line."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from tinygrad import Tensor

from conftest import ROOT, TINY, make_cfg
from grok_sweep import LoadError, load_run, load_sweep
from grok_sweep.data.tasks import all_pairs
from grok_sweep.run.job import run_job
from grok_sweep.store.layout import SNAPSHOT_DIR
from grok_sweep.train.trainer import Trainer


@pytest.fixture(scope="module")
def snap_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("snap")
    cfg = make_cfg(*TINY, "train.snapshot_every=10")
    run_job(cfg, out, progress=False)
    return cfg, out


def _logits(model, x: np.ndarray) -> np.ndarray:
    return model(Tensor(x)).numpy()


def test_snapshots_hold_the_weights_the_job_had_at_their_steps(snap_run):
    cfg, out = snap_run
    run = load_run(out)
    assert run.snapshot_steps == [0, 10, 20, 30, 40]  # every 10 steps, and the final model after 40 updates
    names = sorted(p.name for p in (out / SNAPSHOT_DIR).iterdir())
    assert names == [f"step_{s:02d}.safetensors" for s in (0, 10, 20, 30)]
    x = run.split().x_test
    fresh = Trainer(cfg)  # same config and seed: the job's initial model, then its trained one
    np.testing.assert_array_equal(_logits(run.model(step=0), x), _logits(fresh.model, x))
    fresh.fit()
    np.testing.assert_array_equal(_logits(run.model(), x), _logits(fresh.model, x))
    assert not np.array_equal(_logits(run.model(step=10), x), _logits(fresh.model, x))


def test_a_run_gives_back_its_config_result_metrics_and_split(snap_run):
    cfg, out = snap_run
    run = load_run(out)
    assert run.config.modulus == cfg.modulus and run.result["status"] == "completed"
    pd.testing.assert_frame_equal(run.metrics, pd.read_parquet(out / "metrics.parquet"))
    split, want = run.split(), Trainer(cfg).split
    np.testing.assert_array_equal(split.x_train, want.x_train)
    np.testing.assert_array_equal(split.y_test, want.y_test)


def test_logits_and_predict_cover_every_pair(snap_run):
    _, out = snap_run
    run, p = load_run(out), 7
    logits = run.logits()
    assert logits.shape == (p, p, p) and np.isfinite(logits).all()
    a, b = np.divmod(np.arange(p * p), p)
    np.testing.assert_array_equal(run.predict(a, b), logits.reshape(p * p, p).argmax(-1))
    assert run.predict(3, 4).shape == ()
    with pytest.raises(LoadError, match=r"predict takes a and b in 0\.\.6 \(modulus=7\)"):
        run.predict([1, 7], [0, 0])


def test_logits_are_nan_where_the_operation_has_no_pair(tmp_path):
    run_job(make_cfg(*TINY, "operation=div", "steps=3"), tmp_path, progress=False)
    logits = load_run(tmp_path).logits()
    assert np.isnan(logits[:, 0]).all() and np.isfinite(logits[:, 1:]).all()  # b = 0 has no inverse
    assert len(all_pairs(7, "div")[0]) == 42


def test_predict_of_a_grokked_run_is_the_sum_on_almost_every_pair(tmp_path):
    # the smallest config found that groks in seconds: p = 29, 60% train, test acc >= 0.99 from step 870 (stops
    # at 970); p <= 13 plateaus at test acc 0.64-0.96 within 300 steps, p = 23 at 0.89 within 1500
    cfg = make_cfg(*TINY, "modulus=29", "train_ratio=0.6", "width=32", "model.heads=4", "steps=1500",
                   "train.early_stop=100")  # fmt: skip
    assert run_job(cfg, tmp_path, progress=False)["status"] == "stopped_early"
    run = load_run(tmp_path)
    a, b = np.divmod(np.arange(29 * 29), 29)
    assert np.mean(run.predict(a, b) == (a + b) % 29) >= 0.99


def test_what_is_not_there_is_refused_in_one_line_naming_what_is(snap_run, tmp_path):
    _, out = snap_run
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(LoadError, match=r"is not a job folder .*it holds: notes.txt$"):
        load_run(tmp_path)
    with pytest.raises(LoadError, match=r"no such folder"):
        load_run(tmp_path / "nope")
    with pytest.raises(LoadError, match=r"no snapshot at step 5 .*steps with weights: 0, 10, 20, 30, 40$"):
        load_run(out).model(step=5)
    with pytest.raises(LoadError, match=r"is a run folder \(use load_run\)"):
        load_sweep(out)
    with pytest.raises(LoadError, match=r"is not a sweep folder .*notes.txt"):
        load_sweep(tmp_path)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    cmd = [sys.executable, "-m", "grok_sweep", "-m", "seed=0,1", *TINY, "steps=20", f"hydra.sweep.dir={folder}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return folder


def test_load_sweep_returns_the_aggregates_and_its_runs(sweep):
    loaded = load_sweep(sweep)
    pd.testing.assert_frame_equal(loaded.summary, pd.read_parquet(sweep / "summary.parquet"))
    pd.testing.assert_frame_equal(loaded.metrics, pd.read_parquet(sweep / "metrics.parquet"))
    assert sorted(loaded.runs) == sorted(loaded.summary["job"]) and len(loaded.runs) == 2
    for name, run in loaded.runs.items():  # a job folder is named after all its overrides
        assert f"seed={run.config.seed}," in name and run.snapshot_steps == [20]
        pd.testing.assert_frame_equal(run.metrics, pd.read_parquet(sweep / name / "metrics.parquet"))


def test_load_sweep_aggregates_first_when_the_aggregates_are_missing(sweep):
    want = pd.read_parquet(sweep / "summary.parquet")
    (sweep / "summary.parquet").unlink()
    got = load_sweep(sweep).summary
    assert (sweep / "summary.parquet").exists()
    pd.testing.assert_frame_equal(got, want)


def test_a_job_is_found_by_its_swept_values_whatever_else_its_folder_name_holds(sweep):
    loaded = load_sweep(sweep)  # job folders are named by every override: modulus=7,...,seed=1,...
    for seed in (0, 1):
        run = loaded.run(seed=seed)
        assert run.config.seed == seed and loaded.runs[f"seed={seed}"].folder == run.folder
        assert loaded.runs[run.folder.name].folder == run.folder  # its folder name
    with pytest.raises(LoadError, match=r"no job has seed=5; the nearest: seed=0; seed=1"):
        loaded.run(seed=5)
    with pytest.raises(LoadError, match=r"weight_decay: not swept in this sweep; its swept keys: seed"):
        loaded.runs["weight_decay=1.0"]
    with pytest.raises(KeyError, match="no job folder 'nope'"):
        loaded.runs["nope"]
