import numpy as np
import pytest
from tinygrad import Tensor
from tinygrad.nn.state import get_parameters

from grok_sweep.lookup import make_groups
from grok_sweep.matmul import fits, relu_matmul
from grok_sweep.model import GPT, cross_entropy
from grok_sweep.tasks import all_pairs


def _values_and_grads(fast: bool, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    xt, wt = Tensor(x), Tensor(w)
    out = relu_matmul(xt, wt) if fast else xt.relu() @ wt
    grads = (out * Tensor(g)).sum().gradient(xt, wt)  # before out is realized, which ends its graph
    return [t.numpy() for t in (out, *grads)]


@pytest.mark.parametrize(("b", "k", "n", "hand"), [(64, 32, 16, True), (40, 24, 32, True), (49, 32, 16, False)])
def test_relu_matmul_matches_the_plain_expression(b, k, n, hand):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, k)).astype(np.float32)
    x[:, 0] = 0.0  # the ReLU's kink: no gradient flows there, in both
    w, g = rng.standard_normal((k, n)).astype(np.float32), rng.standard_normal((b, n)).astype(np.float32)
    assert fits(Tensor(x), Tensor(w)) == hand  # 49 rows: no register tile divides it, the plain expression runs
    fast = _values_and_grads(True, x, w, g)
    for got, plain in zip(fast, _values_and_grads(False, x, w, g), strict=True):
        np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)
    assert np.abs(fast[1][:, 0]).max() == 0


def test_folded_model_with_the_hand_scheduled_kernels_matches_the_reference():
    p, width = 7, 16
    model = GPT(np.random.default_rng(0), p, width, 2, 1, 4 * width, "CPU")
    model.fold_mlp = True
    x, y = (a[:48] for a in all_pairs(p))  # 48 rows, mlp 64, classes padded to 16: every tile divides
    assert fits(Tensor.zeros(48, 4 * width), Tensor.zeros(4 * width, 16))
    groups = tuple(Tensor(a) for a in make_groups(x[:, :2], p + 1))
    params, results = get_parameters(model), []
    for forward in (lambda t: model(t, True, groups), model.reference):
        logits = forward(Tensor(x))
        grads = cross_entropy(logits, Tensor(y)).gradient(*params)
        results.append([logits.numpy(), *(g.numpy() for g in grads)])
    for fast, ref in zip(*results, strict=True):
        np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-6)
