"""grok_sweep.fast's contract: each name of its interface gives the bits of the plain tinygrad expression it
stands for (fast/README.md). Here matmul, relu_matmul, pick_rows_grouped and lin_sum; head_rows and mixed_pre:
test_folded_kernels.py; prepare_device: test_train.py (the CPU graph); JitCache: test_jit_cache.py."""

import re
from pathlib import Path

import numpy as np
import pytest
from tinygrad import Tensor

import grok_sweep.fast as fast
from conftest import has_fma

pytestmark = pytest.mark.skipif(not has_fma(), reason="tinygrad's own kernels contract to FMAs on x86 with FMA")


def _bits(*arrays: np.ndarray) -> list[bytes]:
    return [a.tobytes() for a in arrays]


def _values_and_grads(out: Tensor, wrt: list[Tensor], g: np.ndarray) -> list[np.ndarray]:
    grads = (out * Tensor(g)).sum().gradient(*wrt)  # before out is realized, as a training step takes them
    Tensor.realize(out, *grads)
    return [t.numpy() for t in (out, *grads)]


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", [(96, 64, 64), (256, 64, 40)])
def test_matmul_gives_the_bits_of_the_plain_product(relu, shape):
    # every reduction longer than 32 (batch, k and n here): shorter ones tinygrad unrolls into one expression,
    # which clang contracts in another order (fast/README.md)
    b, k, n = shape
    rng = np.random.default_rng(0)
    x, w, g = (rng.standard_normal(s).astype(np.float32) for s in ((b, k), (k, n), (b, n)))
    results = []
    for kernels in (True, False):
        xt, wt = Tensor(x), Tensor(w)
        if kernels:
            out = fast.relu_matmul(xt, wt) if relu else fast.matmul(xt, wt)
        else:
            out = (xt.relu() if relu else xt) @ wt
        results.append(_bits(*_values_and_grads(out, [xt, wt], g)))
    assert results[0] == results[1]


def test_pick_rows_grouped_gives_the_bits_of_the_one_hot_product():
    rng = np.random.default_rng(1)
    b, vocab, heads = 384, 14, 4
    tokens = rng.integers(0, vocab - 1, (b, 1)).astype(np.int32)  # the last token unused: an empty group
    members = fast.make_groups(tokens, vocab)[0][0]
    table, g = (
        rng.standard_normal((vocab, heads)).astype(np.float32),
        rng.standard_normal((b, heads)).astype(np.float32),
    )
    results = []
    for grouped in (True, False):
        onehot = Tensor(tokens[:, 0]).one_hot(vocab).cast("float32").T.contiguous().T
        t = Tensor(table)
        out = fast.pick_rows_grouped(onehot, t, Tensor(members)) if grouped else onehot @ t
        results.append(_bits(*_values_and_grads(out, [t], g)))
    assert results[0] == results[1]


def test_lin_sum_gives_the_bits_of_its_plain_expression():
    rng = np.random.default_rng(2)
    b, heads, d, n = 384, 4, 64, 48
    shapes = ((b, n), (b, heads), (heads, n), (1, d), (d,), (d, n))
    ins, g = [rng.standard_normal(s).astype(np.float32) for s in shapes], rng.standard_normal((b, n)).astype(np.float32)
    results = []
    for kernels in (True, False):
        ts = [Tensor(a) for a in ins]
        rows, w2, last, resid, b_out, unembed = ts
        if kernels:
            out = fast.lin_sum(*ts)
        else:  # the plain expression: the "=" key's rows summed head by head, as fast.fold.fma_chain
            s2 = fast.fold.fma_chain([w2[:, h].unsqueeze(-1) * last[h].unsqueeze(0) for h in range(heads)])
            out = rows + s2.contiguous() + (resid + b_out) @ unembed
        results.append(_bits(*_values_and_grads(out, ts, g)))
    assert results[0] == results[1]  # the values and the six gradients


def test_every_name_of_the_interface_is_in_its_contract():
    readme = (Path(fast.__file__).parent / "README.md").read_text()
    documented = set(re.findall(r"^\| `(\w+)", readme, re.MULTILINE))
    assert documented == set(fast.__all__), documented ^ set(fast.__all__)
