import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from tinygrad import Device, Tensor
from tinygrad.engine.realize import get_graph_runtime
from tinygrad.uop.ops import Ops

from conftest import TINY, make_cfg
from grok_sweep.fast.cpu import denormals
from grok_sweep.fast.cpu import graph as cpu_graph
from grok_sweep.model import forward
from grok_sweep.model import sizes as model_module
from grok_sweep.model.loss import cross_entropy
from grok_sweep.run.job import run_job
from grok_sweep.run.resources import job_device
from grok_sweep.train.device_rows import EVAL_ROWS, evals_per_sync
from grok_sweep.train.inputs import eval_chunks
from grok_sweep.train.trainer import Trainer

COLUMNS = {
    "step": "int64",
    "train_loss": "double",
    "train_acc": "double",
    "softmax_collapse": "double",
    "zero_loss": "double",
    "lr": "double",
    "test_loss": "double",
    "test_acc": "double",
    "weight_norm": "double",
    "ipr": "double",
    "restricted_loss": "double",
    "excluded_loss": "double",
    "fourier_gini": "double",
    "n_key_freqs": "int64",
    "key_freqs": "list<element: int64>",
    "layer_norms": "list<element: double>",
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    cfg = make_cfg(*TINY)
    return cfg, run_job(cfg, out, progress=False), out


def test_tiny_run_writes_the_documented_schema(tiny_run):
    cfg, _, out = tiny_run
    schema = pq.read_table(out / "metrics.parquet").schema  # a folder of parts, read as one table
    assert {f.name: str(f.type) for f in schema} == COLUMNS
    df = pd.read_parquet(out / "metrics.parquet")
    assert df["step"].tolist() == list(range(cfg.steps))
    eval_steps = [s for s in range(cfg.steps) if s % cfg.eval_every == 0] + [cfg.steps - 1]
    for col in ("test_loss", "test_acc", "weight_norm"):
        assert df.loc[df[col].notna(), "step"].tolist() == eval_steps, col
    assert df[["train_loss", "train_acc"]].notna().all().all()
    assert df[["restricted_loss", "excluded_loss", "fourier_gini", "n_key_freqs", "key_freqs"]].isna().all().all()
    assert df["train_acc"].between(0, 1).all() and df["test_acc"].dropna().between(0, 1).all()


def test_tiny_run_lowers_the_train_loss(tiny_run):
    _, _, out = tiny_run
    loss = pd.read_parquet(out / "metrics.parquet")["train_loss"].to_numpy()
    assert loss[-5:].mean() < 0.5 * loss[:5].mean()


def test_result_json_describes_the_run(tiny_run):
    cfg, result, out = tiny_run
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk == result
    assert result["status"] == "completed" and result["steps_run"] == cfg.steps
    assert (result["n_train"], result["n_test"]) == (29, 20)  # floor(0.6 * 49)
    assert result["device"] == "CPU" and result["versions"]["tinygrad"] == "0.14.0"
    assert result["wall_time_s"] > 0 and result["steps_per_s"] > 0 and result["compile_time_s"] > 0


def test_same_config_and_seed_give_identical_parquet(tiny_run, tmp_path):
    cfg, _, out = tiny_run
    run_job(cfg, tmp_path, progress=False)
    first, second = (pd.read_parquet(d / "metrics.parquet") for d in (out, tmp_path))
    pd.testing.assert_frame_equal(first, second, check_exact=True)


def test_another_seed_gives_other_numbers(tiny_run, tmp_path):
    _, _, out = tiny_run
    run_job(make_cfg(*TINY, "seed=1"), tmp_path, progress=False)
    a, b = (pd.read_parquet(d / "metrics.parquet")["train_loss"] for d in (out, tmp_path))
    assert not np.allclose(a, b)


def test_minibatch_run_trains(tmp_path):
    run_job(make_cfg(*TINY, "train.batch_size=8", "steps=60"), tmp_path, progress=False)
    loss = pd.read_parquet(tmp_path / "metrics.parquet")["train_loss"].to_numpy()
    assert loss[-10:].mean() < loss[:10].mean()


def test_divergence_is_caught_at_checkpoint_fetches_too(tmp_path):
    # evals only at the first and last step: the checkpoint fetches every 2 steps must see the NaN
    cfg = make_cfg(*TINY, "optim.lr=1e6", "eval_every=1000", "train.checkpoint_every=2")
    result = run_job(cfg, tmp_path, progress=False)
    assert result["status"] == "diverged"
    assert result["stopped_at_step"] < 20


def test_padded_full_batch_reports_the_loss_of_the_real_examples():
    cfg = make_cfg(*TINY)  # 29 train and 20 test pairs, padded to 32 with weight-0 examples
    trainer = Trainer(cfg)
    assert trainer.x_train.shape[0] == 32 and [c.x.shape[0] for c in trainer.test] == [32]
    s = trainer.split
    logits = forward.logits(trainer.model, Tensor(s.x_train))  # the initial model, unpadded
    want_loss = cross_entropy(logits, Tensor(s.y_train)).numpy()
    want_acc = (logits.argmax(-1).numpy() == s.y_train).mean()
    test_logits = forward.logits(trainer.model, Tensor(s.x_test))
    want_test = cross_entropy(test_logits, Tensor(s.y_test)).numpy()
    test_loss, test_acc, *_ = trainer.eval_step()
    trainer.train_step(*trainer.batch())
    trainer.fetch_train_rows(1)
    np.testing.assert_allclose(trainer.log.cols["train_loss"][0], want_loss, rtol=1e-6)
    assert trainer.log.cols["train_acc"][0] == pytest.approx(want_acc)
    np.testing.assert_allclose(test_loss, want_test, rtol=1e-6)
    assert test_acc == pytest.approx((test_logits.argmax(-1).numpy() == s.y_test).mean())


def test_split_metric_sums_off_the_cpu_train_like_the_fused_ones():
    # a GPU computes the per-example loss and hits in their own kernel (loss.cross_entropy's split); the CPU
    # keeps the fused kernel: both must give the same metrics and training
    cfg = make_cfg(*TINY, "steps=20", "eval_every=10", "train.compile_cache=false")
    fused, split = Trainer(cfg), Trainer(cfg)
    assert not fused.split_sums
    split.split_sums = True
    fused.fit(), split.fit()
    for col in ("train_loss", "train_acc", "test_loss", "test_acc", "weight_norm"):
        np.testing.assert_allclose(split.log.cols[col], fused.log.cols[col], rtol=1e-6, err_msg=col)


def test_job_device_spreads_jobs_over_the_kinds_devices():
    assert [job_device("CUDA", 4, k) for k in range(6)] == ["CUDA:0", "CUDA:1", "CUDA:2", "CUDA:3", "CUDA:0", "CUDA:1"]
    assert job_device("NV:2", 1, 5) == "NV:2"


def test_a_spread_job_trains_on_its_device_with_the_same_numbers(tiny_run, tmp_path):
    _, _, out = tiny_run
    result = run_job(make_cfg(*TINY, "train.devices=2"), tmp_path, progress=False, job_num=3)
    assert result["status"] == "completed" and result["device"] == "CPU:1"
    assert Device["CPU:1"].graph is cpu_graph.CPUGraph
    spread, alone = (pd.read_parquet(d / "metrics.parquet") for d in (tmp_path, out))
    pd.testing.assert_frame_equal(spread, alone)


@pytest.mark.parametrize("batch", [[], ["train.batch_size=8"]])
def test_folded_model_trains_like_the_unfolded_one(monkeypatch, batch):
    # the fold (tables through the MLP, gathered gradients) is used from width 128; lowered here
    cfg = make_cfg(*TINY, *batch, "steps=20", "eval_every=10")
    plain = Trainer(cfg)
    assert not forward.folded(plain.model)
    plain.fit()
    monkeypatch.setattr(model_module, "FOLD_MIN_WIDTH", cfg.width)
    folded = Trainer(cfg)
    assert forward.folded(folded.model)
    folded.fit()
    for col in ("train_loss", "train_acc", "test_loss", "test_acc"):
        np.testing.assert_allclose(folded.log.cols[col], plain.log.cols[col], rtol=1e-4, atol=1e-5, err_msg=col)


def _graphed_kernels(jit) -> int:
    """How many of a captured TinyJit's kernels replay through CPUGraph."""
    calls = [c.src[0] for c in jit.captured.linear.src]
    graphs = [get_graph_runtime(c) for c in calls if c.op is Ops.CUSTOM_FUNCTION and c.arg == "graph"]
    return sum(len(g.launches) for g in graphs if isinstance(g, cpu_graph.CPUGraph))


@pytest.mark.parametrize("batch", [[], ["train.batch_size=8"]])
def test_cpu_graph_replays_the_steps_with_the_same_numbers(monkeypatch, batch):
    # a mini-batch gives the train step new input buffers every step: the graph must patch them in
    cfg = make_cfg(*TINY, *batch, "steps=20", "eval_every=10")
    graphed = Trainer(cfg)
    graphed.fit()
    assert _graphed_kernels(graphed.train_step) > 20 and _graphed_kernels(graphed.eval_jit) > 5
    monkeypatch.setattr(Device["CPU"], "graph", None)
    monkeypatch.setattr(cpu_graph, "install", lambda device: None)
    plain = Trainer(cfg)
    plain.fit()
    assert _graphed_kernels(plain.train_step) == 0
    for col in ("train_loss", "train_acc", "test_loss", "test_acc", "weight_norm"):
        np.testing.assert_array_equal(graphed.log.cols[col], plain.log.cols[col], err_msg=col)


def test_flush_denormals_zeroes_subnormal_results_only_inside_the_block():
    tiny, small = Tensor([1e-30]).realize(), Tensor([1e-10]).realize()  # their product, 1e-40, is subnormal
    with denormals.flush_denormals() as on:
        if not on:
            pytest.skip("flushing subnormals is implemented for Linux on x86_64 and aarch64")
        assert (tiny * small).numpy()[0] == 0
    assert (tiny * small).numpy()[0] == pytest.approx(1e-40, rel=1e-3)
    with denormals.flush_denormals(False) as on:
        assert not on and (tiny * small).numpy()[0] > 0


def test_an_eval_in_chunks_gives_the_eval_of_the_whole_test_set():
    cfg = make_cfg(*TINY, "modulus=13", "measures=true")  # 68 test pairs
    whole, chunked = Trainer(cfg), Trainer(cfg)
    s = chunked.split
    chunked.test = eval_chunks(s.x_test, s.y_test, chunked.device, chunk=30)  # 30 + 30 + 8, the last padded
    assert [c.n for c in chunked.test] == [30, 30, 8] and {c.x.shape[0] for c in chunked.test} == {30}
    np.testing.assert_allclose(chunked.eval_step(), whole.eval_step(), rtol=1e-5, atol=1e-6)


def test_evals_per_sync_fit_in_the_sync_period_and_in_early_stopping():
    assert [evals_per_sync(every, hold) for every, hold in [(10, 500), (10, 0), (7, 28), (1000, 500), (1, 0)]] == [
        10, 10, 4, 1, EVAL_ROWS]  # fmt: skip


def test_evals_are_fetched_in_blocks_and_give_the_rows_of_one_fetch_per_eval():
    cfg = make_cfg(*TINY, "steps=120", "eval_every=5", "train.early_stop=0")  # 25 evals
    frames, fetches = [], []
    for per_sync in (None, 1):
        trainer, calls = Trainer(cfg), []
        trainer.evals_per_sync = per_sync or trainer.evals_per_sync
        fetch = trainer.fetch
        trainer.fetch = lambda upto, fetch=fetch, calls=calls: calls.append(upto) or fetch(upto)
        trainer.fit()
        frames.append(trainer.log.frame())
        fetches.append(calls)
    assert fetches[0] == [75, 119, 120]  # 16 evals (steps 0..75), the last one, the end
    assert len(fetches[1]) == 26
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
    assert frames[0]["test_acc"].notna().sum() == 25
