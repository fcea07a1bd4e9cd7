"""StableMax, ⊥Grad, the initial weight scale, the constrained norm and the softmax-collapse measures: each against
a numpy formula or a hand-made case whose answer is known, wired into training, and off by default."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
from tinygrad import Context, Tensor

from conftest import CONF, TINY, has_fma, make_cfg
from grok_sweep.model import forward
from grok_sweep.model.loss import cross_entropy, loss_and_collapse
from grok_sweep.run import precheck as cli
from grok_sweep.run.checks import ConfigError, validate
from grok_sweep.run.resources import estimate
from grok_sweep.train.compile_cache import kernel_config
from grok_sweep.train.orthograd import orthogonalize
from grok_sweep.train.trainer import Trainer


def _s(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, x + 1, 1 / (1 - np.minimum(x, 0)))


def test_stablemax_loss_and_gradient_follow_the_formula():
    rng = np.random.default_rng(0)
    z, y = rng.standard_normal((16, 7)) * 3, rng.integers(0, 7, 16)
    s = _s(z)
    want = -np.mean(np.log(s[np.arange(16), y] / s.sum(1)))
    # d/dz_k of -log s_y + log sum s: s'(z_k) (1/S - [k = y] / s_y), with s' = 1 (z >= 0) or 1/(1 - z)^2
    ds = np.where(z >= 0, 1.0, 1 / (1 - np.minimum(z, 0)) ** 2)
    grad = ds * (1 / s.sum(1, keepdims=True) - np.eye(7)[y] / s[np.arange(16), y][:, None]) / 16
    logits = Tensor(z.astype(np.float32))
    loss = cross_entropy(logits, Tensor(y), "float64", kind="stablemax")
    (g,) = loss.gradient(logits)
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-6)  # float32 logits, float64 loss
    np.testing.assert_allclose(g.numpy(), grad, rtol=1e-5, atol=1e-9)


def test_stablemax_has_no_pole_in_the_branch_it_discards():
    z = Tensor(np.array([[1.0, 0.0, -2.0]], dtype=np.float32))  # 1 / (1 - z) is infinite at 1
    loss = cross_entropy(z, Tensor(np.array([0])), "float32", kind="stablemax")
    (g,) = loss.gradient(z)
    assert np.isfinite(loss.numpy()) and np.isfinite(g.numpy()).all()


# rows: [20, 0, 0] collapses in float32 only (exp(-20) ~ 2e-9 is below float32's half-epsilon), [40, 0, 0] in both;
# a collapsed row's loss is exactly 0 at its argmax label and not at another; [1, 0, 0] collapses in neither
LOGITS = np.array([[20, 0, 0], [40, 0, 0], [40, 0, 0], [1, 0, 0]], dtype=np.float32)
LABELS = np.array([0, 0, 1, 0])


@pytest.mark.parametrize(("dtype", "kind", "weight", "want"), [
    ("float32", "softmax", None, (0.75, 0.5)),
    ("float64", "softmax", None, (0.5, 0.25)),
    ("float32", "softmax", [1, 1, 1, 0], (1.0, 2 / 3)),  # a padded example does not count
    ("float64", "stablemax", None, (0.5, 0.0)),  # the collapse is the softmax's; StableMax's loss is never 0 here
])  # fmt: skip
def test_collapse_fractions_of_hand_made_logits(dtype, kind, weight, want):
    w = None if weight is None else Tensor(np.array(weight, dtype=np.float32))
    loss, *got = loss_and_collapse(Tensor(LOGITS), Tensor(LABELS), dtype, w, kind=kind)
    np.testing.assert_allclose([t.numpy() for t in got], want, rtol=1e-6)
    np.testing.assert_array_equal(
        loss.numpy(), cross_entropy(Tensor(LOGITS), Tensor(LABELS), dtype, w, kind=kind).numpy()
    )  # float32 sums in float32


def test_orthogonalized_gradients_are_orthogonal_to_their_weights_at_their_norm():
    rng = np.random.default_rng(1)
    shapes = [(5, 4), (9,), (3, 2, 2)]
    ws = [rng.standard_normal(s).astype(np.float32) for s in shapes] + [np.zeros(6, np.float32)]  # a zero bias
    gs = [rng.standard_normal(w.shape).astype(np.float32) + w for w in ws]  # with a part along w to remove
    out = [t.numpy() for t in orthogonalize([Tensor(w) for w in ws], [Tensor(g) for g in gs])]
    for w, g, o in zip(ws, gs, out, strict=True):
        assert abs(np.dot(w.ravel(), o.ravel())) <= 1e-5 * np.linalg.norm(w) * np.linalg.norm(o) + 1e-12
        np.testing.assert_allclose(np.linalg.norm(o), np.linalg.norm(g), rtol=1e-5)
    np.testing.assert_array_equal(out[-1], gs[-1])  # w = 0: nothing to remove


def _weights(t: Trainer) -> list[np.ndarray]:
    return [p.numpy().copy() for p in t.params]


def _raw_grads(t: Trainer) -> list[np.ndarray]:
    """The loss's gradients at the trainer's weights now, as its train step computes them (before any filter)."""
    with Context(TRAINING=1):
        loss = cross_entropy(forward.logits(t.model, t.x_train, t.groups_train), t.y_train, t.cfg.train.loss_dtype,
                             t.w_train, kind=t.cfg.loss.name)  # fmt: skip
        return [g.numpy() for g in loss.gradient(*t.params)]


def test_a_real_step_feeds_adamw_the_projection_of_grokfasts_output():
    # order: Grokfast's filter on the raw gradient, then ⊥Grad on what it gives (then AdamW). Checked at the second
    # step, where the EMA holds the first step's gradient: projecting first would leave the filter's output with a
    # part along the weights
    t = Trainer(make_cfg(*TINY, "optim.orthogonal=true", "grokfast=ema", "weight_decay=0"))
    t._train_step(*t.batch())  # the step itself, not jitted
    w, g = _weights(t), _raw_grads(t)
    seen, update = [], t.opt.schedule_step

    def spy() -> list[Tensor]:  # what AdamW is given, before it updates the weights
        seen.extend(p.grad.numpy().copy() for p in t.params)
        return update()

    t.opt.schedule_step = spy
    t._train_step(*t.batch())
    lamb = t.cfg.grokfast.lamb
    filtered = [gi + lamb * mu.numpy() for gi, mu in zip(g, t.grad_filter.mu, strict=True)]
    want = orthogonalize([Tensor(x) for x in w], [Tensor(x) for x in filtered])
    for got, wi, fi, expected in zip(seen, w, filtered, want, strict=True):
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-7)
        assert abs(np.dot(wi.ravel(), got.ravel())) <= 1e-4 * np.linalg.norm(wi) * np.linalg.norm(got) + 1e-9
        np.testing.assert_allclose(np.linalg.norm(got), np.linalg.norm(fi), rtol=1e-5)


def _fit(*overrides: str):
    t = Trainer(make_cfg(*TINY, "train.early_stop=0", "train.compile_cache=false", *overrides))
    t.fit()
    return t, t.log.frame()


def test_constrained_norm_stays_at_the_scaled_initial_norm_after_every_step():
    plain = Trainer(make_cfg(*TINY))
    t, rows = _fit("model.init_scale=0.8", "train.constrain_norm=true", "weight_decay=0", "eval_every=1")
    scaled = np.sqrt(sum(((w * np.float32(0.8)).astype(np.float64) ** 2).sum() for w in _weights(plain)))
    np.testing.assert_allclose(t.constraint.norm0.numpy(), scaled, rtol=1e-6)
    np.testing.assert_allclose(rows["weight_norm"], scaled, rtol=1e-5)  # every step is an eval step here
    free = _fit("model.init_scale=0.8", "weight_decay=0", "eval_every=1")[1]["weight_norm"]
    assert np.abs(free / scaled - 1).max() > 1e-3  # without the constraint the norm moves


def test_init_scale_multiplies_every_initial_weight():
    plain, scaled = Trainer(make_cfg(*TINY)), Trainer(make_cfg(*TINY, "model.init_scale=0.5"))
    for a, b in zip(_weights(plain), _weights(scaled), strict=True):
        np.testing.assert_array_equal(b, a * np.float32(0.5))


@pytest.mark.parametrize("option", ["loss=stablemax", "optim.orthogonal=true", "train.constrain_norm=true",
                                    "model.init_scale=0.8"])  # fmt: skip
def test_each_option_changes_training(option):
    base = _fit()[1]
    other = _fit(option)[1]
    assert not np.array_equal(base["train_loss"], other["train_loss"]), option


# sha256 (12 hex digits) of the train/test loss and accuracy and weight norm of the default config's first 120 steps,
# seeds 0, 1, 2, as the version before these options wrote them: with every option off, the same bits
_BEFORE_OPTIONS = {0: "a16b4379edc7", 1: "21b4cdcfcda3", 2: "1158635b2c1b"}


@pytest.mark.skipif(not has_fma(), reason="digests recorded on an x86 CPU with FMA; other CPUs round otherwise")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_option_off_gives_the_metrics_of_the_version_before_them(seed):
    t = Trainer(make_cfg(f"seed={seed}", "steps=120", "train.early_stop=0", "train.compile_cache=false"))
    t.fit()
    cols = ["train_loss", "train_acc", "test_loss", "test_acc", "weight_norm"]
    got = t.log.frame()[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    assert hashlib.sha256(got.tobytes()).hexdigest()[:12] == _BEFORE_OPTIONS[seed]


@pytest.mark.parametrize(("override", "says"), [
    ("model.init_scale=0", "model.init_scale=0.0 is not allowed: a finite number > 0"),
    ("model.init_scale=-1", "model.init_scale=-1.0 is not allowed"),
    ("model.init_scale=inf", "model.init_scale=inf is not allowed"),
    ("model.init_scale=nan", "model.init_scale=nan is not allowed"),
])  # fmt: skip
def test_meaningless_values_are_refused_in_one_line(override, says):
    with pytest.raises(ConfigError, match="^" + says.replace("(", r"\(").replace(")", r"\)")) as err:
        validate(make_cfg(override))
    assert "\n" not in str(err.value)
    problems = cli.check_command_line([override], CONF)
    assert len(problems) == 1 and problems[0].startswith(says)


def test_constrained_norm_with_weight_decay_is_run_but_warned_about_once():
    warnings: list[str] = []
    args = ["-m", "train.constrain_norm=true", "weight_decay=0.1,1", "seed=0,1"]
    assert cli.check_command_line(args, CONF, warnings=warnings) == []
    assert len(warnings) == 2 and all("train.constrain_norm=true with weight_decay=" in w for w in warnings)
    warnings.clear()
    assert cli.check_command_line(["-m", "train.constrain_norm=true", "weight_decay=0", "seed=0,1"], CONF,
                                  warnings=warnings) == [] and warnings == []  # fmt: skip


def test_the_options_sweep_like_any_key():
    args = ["-m", "weight_decay=0,1", "loss=softmax,stablemax", "optim.orthogonal=false,true"]
    assert cli.check_command_line(args, CONF) == []
    assert "Could not find 'loss/stablemx'" in cli.check_command_line(["loss=stablemx"], CONF)[0]


def test_the_compile_cache_keys_on_what_changes_kernels_only():
    key = kernel_config(make_cfg(*TINY))
    for option in ("loss=stablemax", "optim.orthogonal=true", "train.constrain_norm=true"):
        assert kernel_config(make_cfg(*TINY, option)) != key, option
    assert kernel_config(make_cfg(*TINY, "model.init_scale=0.5")) == key  # only the initial weights


def test_memory_estimate_counts_the_projection_and_stablemax():
    base = estimate(make_cfg(*TINY)).total
    assert estimate(make_cfg(*TINY, "optim.orthogonal=true")).total > base
    assert estimate(make_cfg(*TINY, "loss=stablemax")).total > base


@pytest.mark.parametrize(("preset", "values"), [
    ("omnigrok2023", {"modulus": 113, "train_ratio": 0.3, "weight_decay": 0.0, "model.init_scale": 0.8,
                      "train.constrain_norm": True, "optim.lr": 0.001, "width": 128, "train.batch_size": None}),
    ("prieto2025", {"operation": "add", "modulus": 113, "train_ratio": 0.4, "weight_decay": 0.0,
                    "optim.orthogonal": True, "optim.lr": 0.01, "train.batch_size": None, "loss.name": "softmax"}),
])  # fmt: skip
def test_presets_hold_the_papers_settings(preset, values):
    from omegaconf import OmegaConf

    cfg = make_cfg(f"+experiment={preset}")
    assert {k: OmegaConf.select(cfg, k) for k in values} == values
    validate(cfg)


def test_curves_draw_the_softmax_collapse_only_where_it_is_above_zero():
    from matplotlib.figure import Figure

    from grok_sweep.plot.curves import _draw_cell, _per_job

    steps = np.arange(1, 101)
    rows = pd.DataFrame({"job": "a", "step": steps, "train_acc": 1.0, "test_acc": 0.5, "train_loss": 0.1,
                         "test_loss": 1.0, "softmax_collapse": np.where(steps > 50, 0.3, 0.0)})  # fmt: skip
    members = pd.DataFrame({"job": ["a"], "memorization_step": [10], "sustained_grokking_step": [None]})
    cell = pd.Series({"label": "memorization", "agree": 1, "n": 1, "median_grok": None})
    for collapsed, want in ((rows, True), (rows.assign(softmax_collapse=0.0), False)):
        acc, loss = Figure().subplots(1, 2)
        assert _draw_cell(acc, loss, [_per_job(collapsed)["a"]], members, cell, []) is want
        assert len(acc.collections) == 2 + want  # train, test (and the collapse)
