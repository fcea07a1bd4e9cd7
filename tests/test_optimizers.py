"""optim=adamw|adam|sgd|muon and the learning-rate schedule (train/optimizers.py, train/schedule.py).

Each optimizer's first three updates are held to a numpy implementation of its rule, on a loss whose gradient numpy
knows (0.5 * sum(d * p^2) + sum(c * p): g = d * p + c); the schedule's learning rate per step to its formula."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from tinygrad import Context, Tensor

from conftest import TINY, make_cfg
from grok_sweep.model import family
from grok_sweep.run.checks import ConfigError, _has_hidden_matrix, validate
from grok_sweep.run.packing import alone, packs
from grok_sweep.train import optimizers
from grok_sweep.train.compile_cache import kernel_config
from grok_sweep.train.schedule import Schedule, lr_at
from grok_sweep.train.trainer import Trainer

SHAPES = {"hidden": (4, 6), "embed": (5, 4), "bias": (6,)}  # Muon takes "hidden"; the AdamW part the others
RNG = np.random.default_rng(0)
START = {n: RNG.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()}
C = {n: RNG.standard_normal(s).astype(np.float32) for n, s in SHAPES.items()}
D = {n: RNG.uniform(0.5, 2, s).astype(np.float32) for n, s in SHAPES.items()}
WD = 0.3


def _device_updates(cfg) -> list[dict[str, np.ndarray]]:
    """The parameters after each of three updates by the optimizer `cfg` names (lr factor 1)."""
    params = {n: Tensor(a.copy()).contiguous().realize() for n, a in START.items()}
    opt = optimizers.make(cfg, list(params.values()), [params["hidden"]], Tensor([WD]).realize())
    out = []
    for _ in range(3):
        with Context(TRAINING=1):
            opt.zero_grad()
            loss = sum((0.5 * Tensor(D[n]) * p * p + Tensor(C[n]) * p).sum() for n, p in params.items())
            loss.backward()
            Tensor.realize(*optimizers.schedule_step(opt, Tensor([1.0])))
        out.append({n: p.numpy() for n, p in params.items()})
    return out


def _adam(p, g, st, lr, b1, b2, eps, t):
    st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
    return lr * (st["m"] / (1 - b1**t)) / (np.sqrt(st["v"] / (1 - b2**t)) + eps)


def _newton_schulz(u, steps):
    a, b, c = optimizers.NS_COEFFICIENTS
    x = u.T if u.shape[0] > u.shape[1] else u
    x = x / (np.sqrt((x * x).sum()) + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if u.shape[0] > u.shape[1] else x


def _numpy_updates(o) -> list[dict[str, np.ndarray]]:
    """The same three updates by the rule's textbook form in float64."""
    p = {n: a.astype(np.float64) for n, a in START.items()}
    state: dict[str, dict] = {n: {} for n in p}
    out = []
    for t in (1, 2, 3):
        for n in p:
            g, st = D[n] * p[n] + C[n], state[n]
            if o.name == "adamw" or (o.name == "muon" and n != "hidden"):
                lr = o.lr if o.name == "adamw" else o.adam_lr
                p[n] = p[n] - _adam(p[n], g, st, lr, o.beta1, o.beta2, o.eps, t) - lr * WD * p[n]
            elif o.name == "adam":
                p[n] = p[n] - _adam(p[n], g + WD * p[n], st, o.lr, o.beta1, o.beta2, o.eps, t)
            elif o.name == "sgd":
                g = g + WD * p[n]
                st["b"] = o.momentum * st.get("b", 0) + g
                p[n] = p[n] - o.lr * (g + o.momentum * st["b"] if o.nesterov else st["b"])
            else:  # Muon on the hidden matrix, stored (fan_in, fan_out)
                st["b"] = o.momentum * st.get("b", 0) + (1 - o.momentum) * g
                u = (1 - o.momentum) * g + o.momentum * st["b"] if o.nesterov else st["b"]
                scale = math.sqrt(max(1, p[n].shape[1] / p[n].shape[0]))
                p[n] = p[n] * (1 - o.lr * WD) - o.lr * scale * _newton_schulz(u, o.ns_steps)
        out.append({n: a.copy() for n, a in p.items()})
    return out


@pytest.mark.parametrize("choice", [
    ["optim=adamw"], ["optim=adam"], ["optim=sgd"], ["optim=sgd", "optim.nesterov=true"],
    ["optim=sgd", "optim.momentum=0"], ["optim=muon"], ["optim=muon", "optim.nesterov=false", "optim.ns_steps=3"],
])  # fmt: skip
def test_each_optimizers_first_three_updates_follow_its_rule(choice):
    cfg = make_cfg(*choice, f"weight_decay={WD}")
    for got, want in zip(_device_updates(cfg), _numpy_updates(cfg.optim), strict=True):
        for n in SHAPES:
            np.testing.assert_allclose(got[n], want[n], rtol=2e-5, atol=2e-6, err_msg=f"{choice} {n}")


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    cfg = make_cfg("optim=muon")
    params = [Tensor(a) for a in START.values()]
    opt = optimizers.make(cfg, params, [params[0]], Tensor([0.0]))
    muon, adam = opt.optimizers
    assert muon.params == [params[0]] and adam.params == params[1:]
    assert {k.split(".")[1] for k in optimizers.state(opt)} == {"b", "adam"}


@pytest.mark.parametrize("choice", [["model=transformer"], ["model=transformer", "model.layers=2"], ["model=mlp"],
                                    ["model=mlp", "model.layers=1"], ["model=mlp", "model.layers=3"],
                                    ["model=quadratic"]])  # fmt: skip
def test_the_hidden_matrices_of_each_family_are_what_the_check_expects(choice):
    cfg = make_cfg(*TINY[:3], *choice)
    model = family.job_model(cfg, np.random.default_rng(0), "CPU")
    hidden = family.hidden_matrices(model)
    assert bool(hidden) == _has_hidden_matrix(cfg)
    first, last = model.layers()[0], model.layers()[-1]
    assert all(h.ndim == 2 and all(h is not p for p in first + last) for h in hidden)
    if choice == ["model=transformer"]:
        assert len(hidden) == 6  # W_Q, W_K, W_V, W_O, W_in, W_out


def test_muon_is_refused_where_the_model_has_no_hidden_matrix():
    with pytest.raises(ConfigError, match="^optim='muon' is not allowed: model=quadratic has no 2-D hidden") as err:
        validate(make_cfg("optim=muon", "model=quadratic"))
    assert "\n" not in str(err.value)
    validate(make_cfg("optim=muon", "model=mlp"))  # two hidden layers: one hidden matrix


@pytest.mark.parametrize(("override", "says"), [
    ("optim.warmup_steps=-1", "optim.warmup_steps=-1 is not allowed: 0 (none) or a number of updates"),
    ("optim.schedule=step", "optim.schedule='step' is not allowed: constant or cosine or linear"),
    ("optim.min_lr=0.5", "optim.min_lr=0.5 is not allowed: a number in [0, optim.lr=0.01]"),
])  # fmt: skip
def test_bad_schedules_are_refused_in_one_line(override, says):
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(override))
    assert str(err.value) == says


@pytest.mark.parametrize("schedule", [
    ["optim.warmup_steps=10"], ["optim.schedule=cosine"], ["optim.schedule=cosine", "optim.min_lr=0.001"],
    ["optim.schedule=linear", "optim.warmup_steps=7", "optim.min_lr=0.002"], ["optim=muon", "optim.schedule=cosine"],
])  # fmt: skip
def test_the_lr_of_every_step_is_its_formula(schedule):
    cfg = make_cfg(*TINY, "steps=60", "train.early_stop=0", *schedule)
    t = Trainer(cfg)
    t.fit()
    got = t.log.frame()["lr"].to_numpy()
    np.testing.assert_allclose(got, lr_at(cfg, np.arange(1, 61)), rtol=2e-6, atol=1e-7 * cfg.optim.lr)
    # the textbook forms: torch's LambdaLR min((s + 1) / w, 1); cosine from lr to min_lr over the steps after warmup
    o, w, s = cfg.optim, cfg.optim.warmup_steps, np.arange(60)
    warm = np.minimum((s + 1) / w, 1) if w else np.ones(60)
    p = np.clip((s - w) / (60 - w), 0, 1)
    decay = {"constant": 1, "cosine": 0.5 * (1 + np.cos(np.pi * p)), "linear": 1 - p}[o.schedule]
    np.testing.assert_allclose(got, warm * (o.min_lr + (o.lr - o.min_lr) * decay), rtol=2e-6, atol=1e-7 * o.lr)


def test_a_schedule_counts_only_the_updates_of_active_members():
    cfgs = [make_cfg(*TINY, "optim.warmup_steps=4", f"optim.lr={lr}") for lr in (0.01, 0.02)]
    sched = Schedule(cfgs, "CPU")
    Tensor.realize(*sched.tensors())
    got = []
    for active in ([True, True], [True, False], [True, True]):
        lr = sched.base * sched.advance(Tensor(active))
        got.append(lr.numpy())
    np.testing.assert_allclose(got, [[0.0025, 0.005], [0.005, 0.005], [0.0075, 0.01]], rtol=1e-6)


def test_jobs_differing_only_in_their_learning_rates_share_compiled_steps():
    base = kernel_config(make_cfg(*TINY))
    same = ["optim.lr=0.1", "optim.warmup_steps=10", "optim.min_lr=0.001", "init.subset=0.5"]
    assert all(kernel_config(make_cfg(*TINY, o)) == base for o in same)
    assert kernel_config(make_cfg(*TINY, "optim=muon", "optim.adam_lr=0.1")) == kernel_config(
        make_cfg(*TINY, "optim=muon"))  # fmt: skip
    assert all(kernel_config(make_cfg(*TINY, o)) != base for o in ("optim.schedule=cosine", "optim=adam"))


def test_every_optimizer_trains_and_each_differently():
    finals = {}
    for name in ("adamw", "adam", "sgd", "muon"):
        t = Trainer(make_cfg(*TINY, f"optim={name}", "train.compile_cache=false"))
        t.fit()
        loss = t.log.frame()["train_loss"].to_numpy()
        assert loss[-1] < loss[0], name
        finals[name] = loss[-1]
    assert len(set(finals.values())) == 4


def test_packs_train_adamw_only_and_other_optimizers_alone():
    cfgs = [make_cfg(*TINY, f"seed={s}", *o) for s in range(2) for o in ([], ["optim=sgd"])]
    assert alone(cfgs[1]) == "optim=sgd (a pack trains with AdamW only)" and alone(cfgs[0]) is None
    assert packs(cfgs, 8) == [[1], [3], [0, 2]]


def test_a_job_of_another_schedule_loads_the_compiled_steps_and_trains_at_its_own_rates(tmp_path):
    from grok_sweep.run.job import run_job  # noqa: PLC0415
    from grok_sweep.store.metrics import read_metrics  # noqa: PLC0415

    run_job(make_cfg(*TINY, "seed=11", "optim.warmup_steps=5"), tmp_path / "first", progress=False)
    other = [*TINY, "seed=11", "optim.warmup_steps=9", "optim.lr=0.02"]
    assert run_job(make_cfg(*other), tmp_path / "cached", progress=False)["compile_cache"] == "hit"
    run_job(make_cfg(*other, "train.compile_cache=false"), tmp_path / "compiled", progress=False)
    cached, compiled = (read_metrics(tmp_path / d / "metrics.parquet") for d in ("cached", "compiled"))
    pd.testing.assert_frame_equal(cached, compiled, check_exact=True)
    assert cached["lr"].iloc[0] == np.float32(0.02 / 9)
