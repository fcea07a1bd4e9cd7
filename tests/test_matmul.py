import numpy as np
import pytest
from tinygrad import Tensor
from tinygrad.nn.state import get_parameters

from grok_sweep.data.tasks import all_pairs
from grok_sweep.fast.lookups import make_groups
from grok_sweep.fast.matmuls import fits, matmul
from grok_sweep.model import forward, sizes
from grok_sweep.model.gpt import GPT
from grok_sweep.model.loss import cross_entropy


def _values_and_grads(fast: bool, relu: bool, x: np.ndarray, w: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    xt, wt = Tensor(x), Tensor(w)
    out = matmul(xt, wt, relu) if fast else (xt.relu() if relu else xt) @ wt
    grads = (out * Tensor(g)).sum().gradient(xt, wt)  # before out is realized, which ends its graph
    return [t.numpy() for t in (out, *grads)]


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize(
    ("b", "k", "n", "hand"),
    # the tuned tiles; smaller ones (12 = 3 x 4 columns, 49 = 7 x 7 rows); no column vector divides 15; one row
    [(64, 32, 16, True), (40, 24, 32, True), (49, 12, 20, True), (48, 32, 15, False), (1, 16, 16, False)],
)
def test_matmul_matches_the_plain_expression(b, k, n, hand, relu):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((b, k)).astype(np.float32)
    x[:, 0] = 0.0  # the ReLU's kink: no gradient flows there, in both
    w, g = rng.standard_normal((k, n)).astype(np.float32), rng.standard_normal((b, n)).astype(np.float32)
    assert fits(Tensor(x), Tensor(w)) == hand
    fast = _values_and_grads(True, relu, x, w, g)
    for got, plain in zip(fast, _values_and_grads(False, relu, x, w, g), strict=True):
        np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-5)
    assert (np.abs(fast[1][:, 0]).max() == 0) == relu


def test_folded_model_with_the_hand_scheduled_kernels_matches_the_plain_gpt(monkeypatch):
    p, width = 7, 16
    model = GPT(np.random.default_rng(0), p, width, 2, 1, 4 * width, "CPU")
    monkeypatch.setattr(sizes, "FOLD_MIN_WIDTH", width)
    x, y = (a[:48] for a in all_pairs(p))  # 48 rows, mlp 64, classes padded to 16: every tile divides
    assert fits(Tensor.zeros(48, 4 * width), Tensor.zeros(4 * width, 16))
    groups = tuple(Tensor(a) for a in make_groups(x[:, :2], p + 1))
    params, results = get_parameters(model), []
    for fwd in (lambda t: forward.logits(model, t, groups), model):
        logits = fwd(Tensor(x))
        grads = cross_entropy(logits, Tensor(y)).gradient(*params)
        results.append([logits.numpy(), *(g.numpy() for g in grads)])
    for fast, ref in zip(*results, strict=True):
        np.testing.assert_allclose(fast, ref, rtol=1e-4, atol=1e-6)
