"""The model families (model=transformer|mlp|quadratic), the squared-error loss and the IPR: each against a numpy
formula of the same weights, and each family through training, the pre-check and load_run."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from tinygrad import Tensor
from tinygrad.nn.state import get_parameters

from conftest import CONF, ROOT, TINY, make_cfg
from grok_sweep.data.tasks import encode, every_pair
from grok_sweep.model import family, sizes
from grok_sweep.model.gpt import GPT
from grok_sweep.model.loss import cross_entropy
from grok_sweep.model.mlp import MLP
from grok_sweep.model.quadratic import Quadratic
from grok_sweep.model.weight_measures import dft_rows, ipr
from grok_sweep.run import precheck
from grok_sweep.run.checks import ConfigError, validate
from grok_sweep.run.job import run_job
from grok_sweep.run.pack_job import run_pack
from grok_sweep.run.packing import shape_key
from grok_sweep.train.loop import Plan
from grok_sweep.train.norm_constraint import global_norm
from grok_sweep.train.pack import Pack
from grok_sweep.train.trainer import Trainer

P = 11


def tiny(choice: str) -> list[str]:
    """conftest.TINY for a family: its keys but the transformer's heads for the MLPs."""
    return [choice, *(o for o in TINY if choice == "model=transformer" or not o.startswith("model.heads"))]


def _tokens(n: int = 40) -> np.ndarray:
    a, b = every_pair(P)
    return encode(a[:n], b[:n], P)


def _one_hot_pair(x: np.ndarray) -> np.ndarray:
    return np.concatenate([np.eye(P)[x[:, 0]], np.eye(P)[x[:, 1]]], axis=1)


@pytest.mark.parametrize(("layers", "bias"), [(1, False), (2, False), (3, True)])
def test_mlp_is_its_formula(layers, bias):
    model = MLP(np.random.default_rng(0), P, 24, layers, bias, "CPU")
    x = _tokens()
    h = _one_hot_pair(x)
    ws, bs = [w.numpy() for w in model.weights], [b.numpy() for b in model.biases]
    for i, w in enumerate(ws):
        h = h @ w + (bs[i] if bias else 0)
        h = np.maximum(h, 0) if i < len(ws) - 1 else h
    np.testing.assert_allclose(model(Tensor(x)).numpy(), h, rtol=1e-5, atol=1e-5)
    assert len(get_parameters(model)) == (layers + 1) * (2 if bias else 1)


def test_mlp_init_is_torchs_default_linear_init():
    model = MLP(np.random.default_rng(0), 113, 200, 2, True, "CPU")
    for w, b in zip(model.weights, model.biases, strict=True):
        bound = 1 / np.sqrt(w.shape[0])  # uniform in +-1/sqrt(fan in): std bound / sqrt(3)
        assert np.abs(w.numpy()).max() <= bound and abs(w.numpy().std() - bound / np.sqrt(3)) < 0.02 * bound
        assert np.abs(b.numpy()).max() <= bound


@pytest.mark.parametrize("mean_field", [False, True])
def test_quadratic_is_its_formula(mean_field):
    model = Quadratic(np.random.default_rng(0), P, 30, mean_field, "CPU")
    x = _tokens()
    u, v = model.fc1.numpy(), model.fc2.numpy()
    scale = (1 / np.sqrt(2 * P), 1 / 30) if mean_field else (1, 1)
    want = ((_one_hot_pair(x) @ u * scale[0]) ** 2) @ v * scale[1]
    np.testing.assert_allclose(model(Tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)
    std = 1.0 if mean_field else 0.5 / 60 ** (1 / 3)  # their init: 0.5 / (2N)^(1/3)
    assert abs(u.std() / std - 1) < 0.05


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_transformer_is_its_formula():
    model = GPT(np.random.default_rng(0), P, 16, 2, 1, 64, "CPU")
    x = _tokens()
    w = {k: v.numpy() for k, v in {"tok": model.tok_emb, "pos": model.pos_emb, "un": model.unembed}.items()}
    blk = {n: getattr(model.blocks[0], n).numpy() for n in ("wq", "wk", "wv", "wo", "w_in", "b_in", "w_out", "b_out")}
    h = w["tok"][x] + w["pos"]  # (batch, 3, d)
    heads = [(h @ blk[n]).reshape(len(x), 3, 2, 8).transpose(0, 2, 1, 3) for n in ("wq", "wk", "wv")]
    scores = heads[0] @ heads[1].transpose(0, 1, 3, 2) / np.sqrt(8) + np.triu(np.full((3, 3), -np.inf), 1)
    h = h + (_softmax(scores, -1) @ heads[2]).transpose(0, 2, 1, 3).reshape(len(x), 3, 16) @ blk["wo"]
    h = h + np.maximum(h @ blk["w_in"] + blk["b_in"], 0) @ blk["w_out"] + blk["b_out"]
    want = h[:, -1] @ w["un"]
    np.testing.assert_allclose(model(Tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(family.logits(model, Tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)


def test_mse_loss_and_its_gradient_are_numpys():
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((9, P)), rng.integers(0, P, 9)
    target = np.eye(P)[y]
    logits = Tensor(z)
    loss = cross_entropy(logits, Tensor(y), "float64", kind="mse")
    (grad,) = loss.gradient(logits)
    np.testing.assert_allclose(loss.numpy(), ((z - target) ** 2).mean(), rtol=1e-12)
    np.testing.assert_allclose(grad.numpy(), 2 * (z - target) / z.size, rtol=1e-12)


def _ipr_numpy(block: np.ndarray) -> float:
    """Doshi et al.'s calculate_ipr(abs(np.fft.rfft(unit)), r=2) of each unit (column), averaged."""
    c = np.abs(np.fft.rfft(block, axis=0))
    return float(((c / np.sqrt((c**2).sum(axis=0))) ** 4).sum(axis=0).mean())


@pytest.mark.parametrize("p", [11, 12])
def test_ipr_of_pure_frequencies_is_one_and_of_any_weights_their_formula(p):
    a = np.arange(p)[:, None]
    pure = np.cos(2 * np.pi * np.array([1, 2, 3, 5]) * a / p + np.array([0.3, 1.0, 2.0, 0.0]))  # 4 units
    rows = dft_rows(p, "CPU")
    assert abs(float(ipr([Tensor(pure.astype(np.float32))], rows).numpy()) - 1) < 1e-5
    noise = np.random.default_rng(0).standard_normal((p, 6)).astype(np.float32)
    got = float(ipr([Tensor(noise), Tensor(pure.astype(np.float32))], rows).numpy())
    assert abs(got - (_ipr_numpy(noise) + 1) / 2) < 1e-5  # the mean of the two blocks' means


def test_layer_norms_are_each_layers_l2_norm():
    model = MLP(np.random.default_rng(0), P, 8, 2, True, "CPU")
    got = [float(global_norm(ps).numpy()) for ps in model.layers()]  # as an eval computes them
    want = [np.sqrt((w.numpy() ** 2).sum() + (b.numpy() ** 2).sum()) for w, b in zip(model.weights, model.biases,
                                                                                      strict=True)]  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("choice", ["model=mlp", "model=quadratic", "model=transformer"])
def test_every_family_trains_and_logs_its_layers(choice):
    cfg = make_cfg(*tiny(choice), "steps=30", "eval_every=10", "train.compile_cache=false")
    t = Trainer(cfg)
    t.fit()
    df = t.log.frame()
    evals = df[df["test_loss"].notna()]
    assert list(evals["step"]) == [0, 10, 20, 29]
    # the transformer: embeddings, its block, unembedding; the MLP: 2 hidden layers and its read-out
    layers = {"model=mlp": 3, "model=quadratic": 2, "model=transformer": 3}[choice]
    assert all(len(n) == layers for n in evals["layer_norms"])
    assert np.isfinite(evals["ipr"]).all() and (evals["ipr"] > 0).all() and (evals["ipr"] <= 1).all()
    assert df["train_loss"].iloc[-1] < df["train_loss"].iloc[0]
    norms = np.array(list(evals["layer_norms"]))  # the global norm is the layers' norms together
    np.testing.assert_allclose(np.sqrt((norms**2).sum(axis=1)), evals["weight_norm"], rtol=1e-5)


@pytest.mark.parametrize(("overrides", "says"), [
    (["model=mlp", "model.layers=0"], "model.layers=0 is not allowed: an integer >= 1"),
    (["model=mlp", "measures=true"], "measures=True is not allowed: the progress measures read the transformer's"),
    (["model=quadratic", "width=0"], "width=0 is not allowed: an integer >= 1"),
])  # fmt: skip
def test_a_familys_impossible_values_are_refused_in_one_line(overrides, says):
    with pytest.raises(ConfigError, match="^" + says) as err:
        validate(make_cfg(*overrides))
    assert "\n" not in str(err.value)
    problems = precheck.check_command_line(overrides, CONF)  # before anything is written
    assert len(problems) == 1 and problems[0].startswith(says)


def test_another_familys_key_is_refused_before_any_job():
    assert precheck.check_command_line(["model=mlp", "model.heads=4"], CONF) == [
        "model.heads: Key 'heads' not in 'MLPModel'"
    ]
    assert precheck.check_command_line(["-m", "model=transformer,mlp", "model.bias=true"], CONF) == [
        "job model.bias=True,model=transformer: model.bias: Key 'bias' not in 'TransformerModel'"
    ]


@pytest.mark.parametrize("choice", ["model=mlp", "model=quadratic"])
def test_a_packs_members_of_an_mlp_family_are_their_single_runs(tmp_path, choice):
    from test_pack import _same_job  # noqa: PLC0415 - the pack tests' comparison of two job folders

    base = [*tiny(choice), "steps=30", "train.early_stop=0", "model.bias=true" if choice == "model=mlp" else "loss=mse"]
    cfgs = [make_cfg(*base, "seed=0"), make_cfg(*base, "seed=1", "weight_decay=0.3", "train_ratio=0.4")]
    run_pack([(c, tmp_path / f"pack{k}") for k, c in enumerate(cfgs)])
    for k, cfg in enumerate(cfgs):
        run_job(cfg, tmp_path / f"single{k}", progress=False)
        _same_job(tmp_path / f"pack{k}", tmp_path / f"single{k}")
    stacked = Pack([make_cfg(*c, "train.compile_cache=false") for c in (base, [*base, "seed=1"])], stacked=True)
    stacked.fit([Plan.of(c) for c in stacked.cfgs])
    alone = Trainer(stacked.cfgs[1])
    alone.fit()
    a, b = alone.log.frame(), stacked.members[1].log.frame()
    for col in ("train_loss", "test_loss", "weight_norm", "ipr"):
        np.testing.assert_allclose(b[col].to_numpy(float), a[col].to_numpy(float), rtol=2e-4, err_msg=col)


def test_families_never_share_a_pack():
    keys = {shape_key(make_cfg(*tiny(c))) for c in ("model=transformer", "model=mlp", "model=quadratic")}
    assert len(keys) == 3


@pytest.mark.parametrize("choice", ["model=mlp", "model=quadratic"])
def test_an_interrupted_mlp_run_resumes_to_the_same_run(tmp_path, monkeypatch, choice):
    from test_pack import _same_job  # noqa: PLC0415

    cfg = make_cfg(*tiny(choice), "steps=60", "train.early_stop=0", "train.checkpoint_every=25", "grokfast=ema")
    monkeypatch.setenv("GROK_SWEEP_SIGNAL_AT_STEP", "33:TERM")  # between the checkpoints of steps 25 and 50
    assert run_job(cfg, tmp_path / "cut", progress=False)["status"] == "interrupted"
    monkeypatch.delenv("GROK_SWEEP_SIGNAL_AT_STEP")
    assert run_job(cfg, tmp_path / "cut", progress=False)["resumed_from_step"] == 34
    run_job(cfg, tmp_path / "whole", progress=False)
    _same_job(tmp_path / "cut", tmp_path / "whole")


@pytest.mark.parametrize(("choice", "kind"), [("model=mlp", MLP), ("model=quadratic", Quadratic)])
def test_load_run_gives_back_each_familys_model_and_answers(tmp_path, choice, kind):
    from grok_sweep import load_run  # noqa: PLC0415

    cfg = make_cfg(*tiny(choice), "steps=20", "train.snapshot_every=10")
    run_job(cfg, tmp_path, progress=False)
    run = load_run(tmp_path)
    x = run.split().x_test
    fresh = Trainer(cfg)
    assert isinstance(run.model(step=0), kind)
    np.testing.assert_array_equal(run.model(step=0)(Tensor(x)).numpy(), fresh.model(Tensor(x)).numpy())
    fresh.fit()
    np.testing.assert_array_equal(run.model()(Tensor(x)).numpy(), fresh.model(Tensor(x)).numpy())
    logits = run.logits()
    assert logits.shape == (7, 7, 7)
    a, b = np.meshgrid(np.arange(7), np.arange(7), indexing="ij")
    np.testing.assert_array_equal(run.predict(a.ravel(), b.ravel()), logits.reshape(49, 7).argmax(axis=1))


@pytest.mark.parametrize("choice", ["model=mlp", "model=quadratic"])
def test_a_compile_cache_hit_trains_as_a_compiled_step_does(tmp_path, monkeypatch, choice):
    monkeypatch.setenv("GROK_SWEEP_CACHE_DIR", str(tmp_path / "jit"))

    def train(*extra: str) -> tuple[Trainer, pd.DataFrame]:
        t = Trainer(make_cfg(*tiny(choice), "steps=25", "train.early_stop=0", *extra))
        t.fit()
        return t, t.log.frame()

    first, _ = train("seed=1", "weight_decay=0.3")  # compiles and saves its steps
    assert first.train_step.fxn is not None and len(list((tmp_path / "jit").glob("*.jit"))) == 1
    cached, from_cache = train("seed=5")
    assert cached.train_step.fxn is None  # loaded: a JIT from the cache has no function to capture
    pd.testing.assert_frame_equal(from_cache, train("seed=5", "train.compile_cache=false")[1], check_exact=True)


@pytest.mark.slow
def test_a_grid_across_families_runs_and_tabulates_by_family(tmp_path):
    args = ["-m", "model=transformer,mlp", "seed=0,1", "modulus=11", "width=16", "steps=30",
            f"hydra.sweep.dir={tmp_path}"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "grok_sweep", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    names = sorted(p.name for p in tmp_path.iterdir() if (p / ".hydra").is_dir())
    assert names == [f"model={m},modulus=11,seed={s},steps=30,width=16" for m in ("mlp", "transformer") for s in (0, 1)]
    assert "phase table (rows model" in done.stdout
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    assert sorted(summary["model"]) == ["mlp", "mlp", "transformer", "transformer"]
    assert set(summary["status"]) == {"completed"}


def test_a_job_of_an_earlier_version_without_a_family_loads_as_the_transformer(tmp_path):
    from grok_sweep import load_run  # noqa: PLC0415

    cfg = make_cfg(*TINY, "steps=5")
    run_job(cfg, tmp_path, progress=False)
    before = load_run(tmp_path).logits()
    path = tmp_path / "result.json"  # run_job without Hydra: the config is in result.json
    result = json.loads(path.read_text())
    assert "\n  name: transformer\n" in result["config"]  # the config as YAML
    result["config"] = result["config"].replace("\n  name: transformer\n", "\n")
    path.write_text(json.dumps(result))  # as an earlier version wrote it
    assert sizes.family(load_run(tmp_path).config) == "transformer"
    np.testing.assert_array_equal(load_run(tmp_path).logits(), before)


@pytest.mark.parametrize("option", ["loss=stablemax", "loss=mse", "optim.orthogonal=true", "grokfast=ema",
                                    "train.constrain_norm=true", "model.init_scale=0.8"])  # fmt: skip
@pytest.mark.parametrize("choice", ["model=mlp", "model=quadratic"])
def test_every_option_trains_each_mlp_otherwise(choice, option):
    def train_loss(*extra: str) -> np.ndarray:
        t = Trainer(make_cfg(*tiny(choice), "steps=12", "train.compile_cache=false", *extra))
        t.fit()
        return t.log.column("train_loss")

    base, other = train_loss(), train_loss(option)
    assert np.isfinite(other).all() and not np.array_equal(base, other), option


@pytest.mark.slow
def test_a_refine_sweep_of_the_quadratic_model_runs_its_rounds(tmp_path):
    args = ["-m", *tiny("model=quadratic"), "loss=mse", "train_ratio=interval(0.3,0.8)",
            "weight_decay=tag(log,interval(0.1,3))", "hydra/sweeper=refine", "hydra.sweeper.start=2",
            "hydra.sweeper.depth=1", "hydra.sweeper.max_jobs=8", "hydra/launcher=basic",
            f"hydra.sweep.dir={tmp_path}"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "grok_sweep", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    rounds = json.loads((tmp_path / "refine.json").read_text())["rounds"]
    summary = pd.read_parquet(tmp_path / "summary.parquet")
    assert len(rounds[0]) == 4 and len(summary) == sum(len(r) for r in rounds)
    assert set(summary["status"]) <= {"completed", "stopped_early"}


@pytest.mark.parametrize(("shape", "relu"), [((64, 22, 24), False), ((64, 24, 11), True), ((8, 113 * 2, 200), False)])
def test_the_mlps_product_and_its_gradients_are_the_plain_products(shape, relu):
    from grok_sweep.model.mlp import mm  # noqa: PLC0415

    b, k, n = shape
    rng = np.random.default_rng(0)
    x, w, g = (rng.standard_normal(s).astype(np.float32) for s in ((b, k), (k, n), (b, n)))
    results = []
    for product in (lambda a, c: mm(a, c, relu), lambda a, c: (a.relu() if relu else a) @ c):
        xt, wt = Tensor(x), Tensor(w)
        out = product(xt, wt)
        grads = (out * Tensor(g)).sum().gradient(xt, wt)  # before the product is realized (fast.matmul's rule)
        results.append([out.numpy(), *(t.numpy() for t in grads)])
    for got, plain in zip(*results, strict=True):
        np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)
