"""Nanda et al.'s progress measures: against a plain numpy version of their formulas, on a hand-built model whose
answer is known, and on logits made only of the key frequencies."""

import numpy as np
import pytest
from tinygrad import Tensor

from conftest import TINY, make_cfg
from grok_sweep.model import measures as m
from grok_sweep.model.gpt import GPT
from grok_sweep.train.trainer import Trainer

P = 13


def _logsoftmax_ce(logits: np.ndarray, labels: np.ndarray, weight: np.ndarray | None = None) -> float:
    z = logits - logits.max(axis=1, keepdims=True)
    nll = np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]
    return float(nll.mean() if weight is None else (nll * weight).sum() / weight.sum())


def _key_freqs(acts: np.ndarray) -> tuple[set[int], set[int]]:
    """Their key frequencies with numpy's complex FFT in place of the real Fourier basis (same subspaces): those that
    must be found (a neuron's clear largest share), and those that may (tied for a neuron's largest, e.g. a neuron
    active on one pair has a flat spectrum: which of the tied a float32 argmax picks is rounding)."""
    p = int(round(np.sqrt(len(acts))))
    ks = np.arange(1, (p - 1) // 2 + 1)
    spec = np.abs(np.fft.fft2((acts - acts.mean(0)).reshape(p, p, -1), axes=(0, 1))) ** 2  # (a-freq, b-freq, n)
    share = np.stack([spec[np.ix_([0, k, p - k], [0, k, p - k])].sum((0, 1)) for k in ks])  # (k, n)
    alive = spec.sum((0, 1)) > m.DEAD * spec.sum((0, 1)).max()  # nearly dead neurons have no frequency
    near = share >= share.max(0) * (1 - 1e-4)
    clear = alive & (near.sum(0) == 1)
    must = {int(ks[i]) for i in share.argmax(0)[clear]}
    return must, must | {int(ks[i]) for n in np.flatnonzero(alive & ~clear) for i in np.flatnonzero(near[:, n])}


def _reference(logits: np.ndarray, emb: np.ndarray, labels: np.ndarray, train: np.ndarray, keys: list[int],
               operation: str = "add") -> dict:  # fmt: skip
    """Their losses and Gini for key frequencies `keys`."""
    p = int(round(np.sqrt(len(labels))))
    a, b = np.divmod(np.arange(p * p), p)
    ks = np.arange(1, (p - 1) // 2 + 1)
    sign = 1 if operation == "add" else -1
    kept = np.zeros_like(logits)
    for k in keys:
        for f in (np.cos, np.sin):
            u = f(2 * np.pi * k * (a + sign * b) / p)
            u /= np.linalg.norm(u)
            kept += np.outer(u, u @ logits)
    restricted = kept + (logits - kept).mean(0, keepdims=True)
    # the real basis's component norms from the complex FFT X (scaled by 1/sqrt p): F[0] e = X_0, and for each k
    # the cos and sin rows give sqrt 2 Re X_k and -sqrt 2 Im X_k
    fc = np.fft.fft(emb[:p], axis=0) / np.sqrt(p)
    c = [np.linalg.norm(fc[0].real)] + [np.sqrt(2) * np.linalg.norm(f(fc[k])) for k in ks for f in (np.real, np.imag)]
    c = np.sort(np.array(c))
    n = len(c)
    gini = 1 - 2 * np.sum(c / c.sum() * (n - np.arange(1, n + 1) + 0.5) / n)  # Hurley & Rickard
    return {"restricted": _logsoftmax_ce(restricted, labels),
            "excluded": _logsoftmax_ce(logits - kept, labels, train), "gini": gini}  # fmt: skip


def _all_pairs(p: int):
    a, b = np.divmod(np.arange(p * p), p)
    return np.stack([a, b, np.full_like(a, p)], axis=1).astype(np.int32), a, b


def _measure(model: GPT, train_pairs: np.ndarray, operation: str = "add") -> np.ndarray:
    return m.Measures(model.vocab - 1, operation, train_pairs, "CPU")(model).numpy()


@pytest.mark.parametrize("operation", ["add", "sub"])
def test_measures_of_a_random_model_follow_the_formulas(operation):
    model = GPT(np.random.default_rng(1), P, 16, 2, 1, 64, "CPU")
    x, a, b = _all_pairs(P)
    labels = (a + b) % P if operation == "add" else (a - b) % P
    train_pairs = x[np.random.default_rng(2).permutation(P * P)[:80], :2]
    train = np.zeros(P * P)
    train[train_pairs[:, 0] * P + train_pairs[:, 1]] = 1
    logits = model(Tensor(x)).numpy().astype(np.float64)
    acts = m.forward(model, Tensor(x))[0].numpy().astype(np.float64)
    got = _measure(model, train_pairs, operation)
    restricted, excluded, gini, mask = got[0], got[1], got[2], got[3:]
    keys = [int(k) + 1 for k in np.flatnonzero(mask)]
    must, may = _key_freqs(acts)
    assert must and must <= set(keys) <= may
    want = _reference(logits, model.tok_emb.numpy().astype(np.float64), labels, train, keys, operation)
    np.testing.assert_allclose([restricted, excluded, gini], [want["restricted"], want["excluded"], want["gini"]],
                               rtol=2e-4)  # fmt: skip


def _hand_built(freqs: tuple[int, ...], p: int = P) -> GPT:
    """A 1-block GPT whose embedding holds cos/sin of `freqs` and whose neurons are exactly cos or sin of one of them
    in a and in b: attention is uniform (no query), values and output are the identity, the MLP is linear (big bias)."""
    width, x = 2 * len(freqs) + 2, np.arange(p)
    model = GPT(np.random.default_rng(0), p, width, 1, 1, 2 * width, "CPU")
    emb = np.zeros((p + 1, width), np.float32)
    for i, k in enumerate(freqs):
        emb[:p, 2 * i], emb[:p, 2 * i + 1] = np.cos(2 * np.pi * k * x / p), np.sin(2 * np.pi * k * x / p)
    blk, eye = model.blocks[0], np.eye(width, dtype=np.float32)
    for t, v in ((model.tok_emb, emb), (model.pos_emb, np.zeros_like(model.pos_emb.numpy())),
                 (blk.wq, 0 * eye), (blk.wk, 0 * eye), (blk.wv, eye), (blk.wo, eye),
                 (blk.w_in, np.c_[eye, -eye]), (blk.b_in, np.full(2 * width, 10, np.float32))):  # fmt: skip
        t.assign(Tensor(v.astype(np.float32))).realize()
    return model


def test_a_hand_built_model_has_exactly_its_frequencies():
    freqs = (2, 5)
    model = _hand_built(freqs)
    acts, logits = (t.numpy() for t in m.forward(model, Tensor(_all_pairs(P)[0])))
    np.testing.assert_allclose(logits, model(Tensor(_all_pairs(P)[0])).numpy(), rtol=1e-5, atol=1e-5)
    assert np.allclose(acts, np.clip(acts, 1e-3, None))  # the bias keeps every neuron in the ReLU's linear part
    got = _measure(model, _all_pairs(P)[0][:50, :2])
    assert [k + 1 for k in np.flatnonzero(got[3:])] == list(freqs)
    # the embedding's Fourier components: 2 per frequency of equal norm sqrt(p / 2), all others 0
    comps = np.zeros(P)
    comps[[2 * k - 1 for k in freqs] + [2 * k for k in freqs]] = np.sqrt(P / 2)
    n = len(comps)
    want = np.abs(comps[:, None] - comps[None, :]).sum() / (2 * n * comps.sum())
    np.testing.assert_allclose(got[2], want, rtol=1e-4)
    assert want == pytest.approx(1 - 4 / P)  # 4 equal components of 13: Gini (N - 4) / N


def test_logits_made_only_of_key_frequencies_lose_nothing_to_the_restriction():
    freqs, (_, a, b) = (3, 4), _all_pairs(P)
    dirs = Tensor(m.directions(P, "add").astype(np.float32))
    c = np.arange(P)
    logits = sum(3 * np.cos(2 * np.pi * k * ((a + b)[:, None] - c[None, :]) / P) for k in freqs)
    labels, train = Tensor(((a + b) % P).astype(np.int32)), Tensor(np.ones(P * P, np.float32))
    mask = np.zeros(m.n_freqs(P), np.float32)
    mask[[k - 1 for k in freqs]] = 1
    lt = Tensor(logits.astype(np.float32))
    kept = m.key_logits(lt, dirs, Tensor(mask))
    full = _logsoftmax_ce(logits, (a + b) % P)
    assert m.restricted_loss(lt, labels, kept).item() == pytest.approx(full, rel=1e-5)
    assert m.excluded_loss(lt, labels, kept, train).item() == pytest.approx(np.log(P), rel=1e-5)  # nothing left
    mask[freqs[0] - 1] = 0  # one key frequency missing: the restricted logits lose it and the loss rises
    assert m.restricted_loss(lt, labels, m.key_logits(lt, dirs, Tensor(mask))).item() > full + 0.1


@pytest.mark.parametrize("p", [13, 12])
def test_freq_energy_sums_the_terms_of_each_frequency(p):
    energy = np.random.default_rng(p).random((p, p, 5)).astype(np.float32)
    want = []
    for k in range(1, m.n_freqs(p) + 1):  # plainly: a 0/1 mask over the (i, j) terms of frequency k
        mask = np.zeros((p, p))
        mask[np.ix_([0, 2 * k - 1, 2 * k], [0, 2 * k - 1, 2 * k])] = 1
        mask[0, 0] = 0  # the constant term, which centring zeroes, belongs to no frequency
        want.append((energy * mask[..., None]).sum((0, 1)))
    got = m.freq_energy(Tensor(energy), m.n_freqs(p)).numpy()
    np.testing.assert_allclose(got, np.stack(want), rtol=1e-5)


def test_fourier_basis_is_orthonormal_for_odd_and_even_moduli():
    for p in (13, 12):
        f = m.fourier_basis(p)
        np.testing.assert_allclose(f @ f.T, np.eye(p), atol=1e-12)
    d = m.directions(P, "sub")
    np.testing.assert_allclose(d.T @ d, np.eye(d.shape[1]), atol=1e-12)


def test_a_run_with_measures_logs_them_at_every_eval():
    trainer = Trainer(make_cfg(*TINY, "modulus=11", "steps=15", "measures=true"))
    trainer.fit()
    df = trainer.log.frame()
    evals = df["test_acc"].notna()
    for col in ("restricted_loss", "excluded_loss", "fourier_gini", "n_key_freqs", "key_freqs"):
        assert df.loc[evals, col].notna().all() and df.loc[~evals, col].isna().all(), col
    assert (df.loc[evals, "key_freqs"].map(len) == df.loc[evals, "n_key_freqs"]).all()
    assert df.loc[evals, "key_freqs"].map(lambda k: all(1 <= f <= 5 for f in k)).all()
    plain = Trainer(make_cfg(*TINY, "modulus=11", "steps=15"))
    plain.fit()
    for col in ("train_loss", "train_acc", "test_loss", "test_acc", "weight_norm"):  # the measures only read
        np.testing.assert_array_equal(plain.log.cols[col], trainer.log.cols[col], err_msg=col)


def test_measures_are_refused_for_an_operation_without_the_circuit():
    from grok_sweep.run.checks import ConfigError, validate

    with pytest.raises(ConfigError, match="measures=True is not allowed: .*add or sub only .*operation=mul"):
        validate(make_cfg(*TINY, "operation=mul", "measures=true"))
