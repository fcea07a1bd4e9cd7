import hashlib

import numpy as np
import pytest
from tinygrad import Context, Tensor
from tinygrad.nn.state import get_parameters, get_state_dict

from conftest import has_fma, make_cfg
from grok_sweep.data.tasks import all_pairs
from grok_sweep.fast.lookups import make_groups
from grok_sweep.model import forward, sizes
from grok_sweep.model.gpt import GPT
from grok_sweep.model.loss import cross_entropy
from grok_sweep.train.trainer import Trainer


def _model(p=7, width=16, heads=2, layers=1):
    return GPT(np.random.default_rng(0), p, width, heads, layers, 4 * width, "CPU")


def test_logits_shape_and_causality():
    p = 7
    model = _model(p, layers=2)
    x = np.array([[1, 2, p], [3, 4, p], [0, 6, p]], dtype=np.int32)
    logits = model(Tensor(x)).numpy()
    assert logits.shape == (3, p)
    assert np.isfinite(logits).all()


def test_init_is_scaled_by_fan_in():
    model = _model(p=13, width=64)
    w_in = model.blocks[0].w_in.numpy()
    # N(0, 1/64): std 0.125, far from the N(0, 1) of the published notebook
    assert abs(w_in.std() - 0.125) < 0.01
    assert abs(model.blocks[0].w_out.numpy().std() - 1 / 16) < 0.01  # fan-in 256


def test_cross_entropy_matches_numpy_in_both_precisions():
    rng = np.random.default_rng(0)
    z = (rng.standard_normal((5, 7)) * 30).astype(np.float32)  # large logits test the max shift
    y = rng.integers(0, 7, 5).astype(np.int32)
    zz = z.astype(np.float64)
    m = zz.max(-1, keepdims=True)
    ref = -(zz - m - np.log(np.exp(zz - m).sum(-1, keepdims=True)))[np.arange(5), y].mean()
    for dtype, tol in (("float64", 1e-9), ("float32", 1e-4)):
        got = cross_entropy(Tensor(z), Tensor(y), dtype).numpy()
        np.testing.assert_allclose(got, ref, rtol=tol)


def test_float64_loss_resolves_tiny_losses():
    # correct class ahead by 20: loss ~ 6 * e^-20 ~ 1.2e-8, below float32's resolution near 1
    z = np.zeros((1, 7), dtype=np.float32)
    z[0, 3] = 20.0
    y = np.array([3], dtype=np.int32)
    got = float(cross_entropy(Tensor(z), Tensor(y), "float64").numpy())
    np.testing.assert_allclose(got, np.log1p(6 * np.exp(-20.0)), rtol=1e-6)


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize(("layers", "fold_mlp"), [(1, False), (1, True), (2, False)])
def test_fast_forward_matches_the_plain_gpt_logits_and_gradients(layers, fold_mlp, grouped, monkeypatch):
    p = 7
    model = _model(p, width=16, heads=2, layers=layers)
    monkeypatch.setattr(sizes, "FOLD_MIN_WIDTH", 16 if fold_mlp else 128)
    assert forward.folded(model) == fold_mlp
    x, y = all_pairs(p)
    params = get_parameters(model)
    results = []
    groups = tuple(Tensor(a) for a in make_groups(x[:, :2], p + 1)) if grouped else None
    x, y = Tensor(x), Tensor(y)
    for fwd in (lambda x: forward.logits(model, x, groups), model):
        logits = fwd(x)
        loss = cross_entropy(logits, y)
        grads = loss.gradient(*params)
        results.append((logits.numpy(), [g.numpy() for g in grads]))
    (fast, fast_grads), (ref, ref_grads) = results
    np.testing.assert_allclose(fast, ref, rtol=1e-5, atol=1e-5)
    for g_fast, g_ref in zip(fast_grads, ref_grads, strict=True):
        np.testing.assert_allclose(g_fast, g_ref, rtol=1e-4, atol=1e-6)


def test_weighted_cross_entropy_is_the_mean_over_weight_one_examples():
    rng = np.random.default_rng(1)
    z, y = rng.standard_normal((10, 5)), rng.integers(0, 5, 10)
    w = np.array([1] * 7 + [0] * 3, dtype=np.float32)
    padded = cross_entropy(Tensor(z), Tensor(y), "float64", Tensor(w)).numpy()
    np.testing.assert_allclose(padded, cross_entropy(Tensor(z[:7]), Tensor(y[:7]), "float64").numpy(), rtol=1e-12)


# sha256 (first 12 hex digits) of each gradient of the default model's first step (the digests of the plain
# tinygrad expressions, before the speed code's kernels: the default config's runs keep these bits)
_BEFORE_KERNELS = {
    "tok_emb": "6a5d6cd94670", "pos_emb": "ca89fca940c5", "blocks.0.wq": "6aa5f54233a0",
    "blocks.0.wk": "7cf9db38f0b5", "blocks.0.wv": "71628c8f05ec", "blocks.0.wo": "36b4bb656ac3",
    "blocks.0.w_in": "8e786a4e805f", "blocks.0.b_in": "c2ccffe2de2d", "blocks.0.w_out": "9e7badf08af1",
    "blocks.0.b_out": "ec600702a32a", "unembed": "bae36fe82fd6",
}  # fmt: skip


@pytest.mark.skipif(not has_fma(), reason="digests recorded on an x86 CPU with FMA; other CPUs round otherwise")
def test_default_model_gradients_are_those_of_the_versions_before_the_kernels():
    # the default config's shapes (p 53, width 64, a full batch of 1152 rows): every gradient to the last bit as
    # the plain expressions', so that the default config's runs repeat step for step (forward._one_block)
    p, batch = 53, 1152
    model = GPT(np.random.default_rng(0), p, 64, 4, 1, 256, "CPU")
    x, y = all_pairs(p)
    with Context(TRAINING=1):
        loss = cross_entropy(forward.logits(model, Tensor(x[:batch])), Tensor(y[:batch]))
        params = get_state_dict(model)
        grads = loss.gradient(*params.values())
    got = {n: hashlib.sha256(g.numpy().tobytes()).hexdigest()[:12] for n, g in zip(params, grads, strict=True)}
    assert got == _BEFORE_KERNELS, [n for n in got if got[n] != _BEFORE_KERNELS[n]]


# the same digests of nanda2023's first step (its full batch of 3830 rows padded to 3840, the folded model), the
# logits of the training step and of the first test chunk, as computed by the plain expressions (the step's
# logits and gradients realized together, as the training step does)
_NANDA_BEFORE_KERNELS = {
    "train logits": "40a303abeb33", "tok_emb": "a34a6c9ef8ba", "pos_emb": "b3aefe0bd696",
    "blocks.0.wq": "65302f9d1b5f", "blocks.0.wk": "ac41ded73699", "blocks.0.wv": "37d5d064cad0",
    "blocks.0.wo": "a3023ee3fd9f", "blocks.0.w_in": "4534c6227805", "blocks.0.b_in": "a2e6b3c8d6fc",
    "blocks.0.w_out": "acd830bfa135", "blocks.0.b_out": "b5e11c1b5788", "unembed": "660603890d44",
    "test logits": "f7185de7b3c6",
}  # fmt: skip


@pytest.mark.skipif(not has_fma(), reason="digests recorded on an x86 CPU with FMA; other CPUs round otherwise")
def test_nanda2023_logits_and_gradients_are_those_of_the_version_before_the_kernels():
    # nanda2023's runs hang on every bit (fast/fold.py); these shapes are the preset's own
    cfg = make_cfg("+experiment=nanda2023", "measures=false", "train.compile_cache=false")
    t = Trainer(cfg)
    digest = lambda a: hashlib.sha256(a.tobytes()).hexdigest()[:12]  # noqa: E731
    with Context(TRAINING=1):
        logits = forward.logits(t.model, t.x_train, t.groups_train)
        loss = cross_entropy(logits, t.y_train, cfg.train.loss_dtype, t.w_train)
        params = get_state_dict(t.model)
        grads = loss.gradient(*params.values())
        # in one schedule, as the train step: realized apart, the gradients' schedule recomputes forward
        # tables in other kernels, whose sums round otherwise
        Tensor.realize(logits, *grads)
        got = {"train logits": digest(logits.numpy())}
    got |= {n: digest(g.numpy()) for n, g in zip(params, grads, strict=True)}
    got["test logits"] = digest(forward.logits(t.model, t.test[0].x).numpy())
    assert got == _NANDA_BEFORE_KERNELS, [n for n in got if got[n] != _NANDA_BEFORE_KERNELS[n]]
