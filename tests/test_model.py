import numpy as np
import pytest
from tinygrad import Tensor
from tinygrad.nn.state import get_parameters

from grok_sweep.lookup import make_groups
from grok_sweep.model import GPT, cross_entropy
from grok_sweep.tasks import all_pairs


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
def test_fast_forward_matches_reference_logits_and_gradients(layers, fold_mlp, grouped):
    p = 7
    model = _model(p, width=16, heads=2, layers=layers)
    model.fold_mlp = fold_mlp
    x, y = all_pairs(p)
    params = get_parameters(model)
    results = []
    groups = tuple(Tensor(a) for a in make_groups(x[:, :2], p + 1)) if grouped else None
    x, y = Tensor(x), Tensor(y)
    for forward in (lambda x: model(x, groups), model.reference):
        logits = forward(x)
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
