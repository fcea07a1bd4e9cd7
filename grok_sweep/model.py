"""A decoder-only GPT in tinygrad, shaped as in Nanda et al. 2023 ("Progress measures for grokking").

Token and positional embeddings, `layers` blocks of causal multi-head attention and a ReLU MLP
(each added to the residual stream), no LayerNorm, and an unembedding to the p answer classes
read at the last position ("="). Weights are drawn from numpy so that a seed gives the same
initial model on every device.
"""

from __future__ import annotations

import math

import numpy as np
from tinygrad import Tensor, dtypes

from grok_sweep.folded_sums import head_rows, lin_sum, mixed_pre
from grok_sweep.lookup import pick_rows_grouped
from grok_sweep.matmul import matmul, relu_matmul

SEQ_LEN = 3  # a, b, "="
FOLD_MIN_WIDTH = 128  # see GPT.fold_mlp


def _one_hot(tokens: Tensor, vocab: int, batch_minor: bool) -> Tensor:
    """(batch,) -> (batch, vocab) float rows, stored transposed when `batch_minor`.

    matmul.py's kernels read either layout fast; where a lookup falls back to tinygrad's own matmul
    (nanda2023's 114 tokens), its gradient's reduction over the batch runs 2-4x faster with each
    column contiguous, and so do the kernels tinygrad fuses around it (a training step with lookup
    groups sums that gradient through them instead: lookup.pick_rows_grouped)."""
    onehot = tokens.one_hot(vocab).cast(dtypes.float32)
    return onehot.T.contiguous().T if batch_minor else onehot.contiguous()


def _rows(t: Tensor, n: int) -> Tensor:
    """(m, k) -> (n, k), padded with rows of zeros."""
    return t.pad(((0, n - t.shape[0]), (0, 0)))


def _position(groups: tuple[Tensor, Tensor] | None, q: int) -> tuple[Tensor, Tensor] | None:
    """lookup.make_groups' groups of position q alone."""
    return None if groups is None else (groups[0][q : q + 1], groups[1][:, q : q + 1])


def _normal(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, device: str) -> Tensor:
    # scaled by 1/sqrt(fan_in) so activations keep unit scale; N(0, 1) weights would blow up logits
    w = rng.standard_normal(shape).astype(np.float32) / np.float32(math.sqrt(fan_in))
    return Tensor(w, device=device)


class Block:
    def __init__(self, rng: np.random.Generator, width: int, heads: int, mlp_width: int, device: str):
        self.heads = heads
        self.wq, self.wk, self.wv, self.wo = (_normal(rng, (width, width), width, device) for _ in range(4))
        self.w_in = _normal(rng, (width, mlp_width), width, device)
        self.b_in = Tensor.zeros(mlp_width, device=device).contiguous()
        self.w_out = _normal(rng, (mlp_width, width), mlp_width, device)
        self.b_out = Tensor.zeros(width, device=device).contiguous()

    def attention(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = (
            (x @ w).reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for w in (self.wq, self.wk, self.wv)
        )
        out = q.scaled_dot_product_attention(k, v, is_causal=True)
        return out.transpose(1, 2).reshape(b, t, d) @ self.wo

    def hidden(self, x: Tensor) -> Tensor:
        """The MLP's neurons after the ReLU."""
        return (x @ self.w_in + self.b_in).relu()

    def mlp(self, x: Tensor) -> Tensor:
        """The MLP on (..., d): as (rows, d) matmuls, hand-scheduled (matmul.py) with the ReLU applied as they read."""
        flat = x.reshape(-1, x.shape[-1])
        return (relu_matmul(matmul(flat, self.w_in) + self.b_in, self.w_out) + self.b_out).reshape(x.shape)

    def __call__(self, x: Tensor) -> Tensor:
        """Residual stream (batch, 3, d) -> (batch, 3, d), every position."""
        x = x + self.attention(x)
        return x + self.mlp(x)

    def mix(self, scores: Tensor, values: Tensor, resid: Tensor) -> Tensor:
        """The last position's output from its scores (batch, 3, heads), values (batch, 3, d), residual (batch, d)."""
        # x's gradient (through the MLP, plus the residual's) is written once before the reductions that
        # read it; see _one_block
        x = self.attend(scores, values, resid).contiguous_backward()
        return x + self.mlp(x)

    def attend(self, scores: Tensor, values: Tensor, resid: Tensor) -> Tensor:
        """The last position's residual after attention (before the MLP), from the same inputs as mix."""
        b, t, d = values.shape
        weights = scores.softmax(axis=1).unsqueeze(-1)  # over the 3 key positions, per head
        z = (weights * values.reshape(b, t, self.heads, d // self.heads)).sum(1).reshape(b, d)
        return resid + matmul(z, self.wo)

    def last(self, x: Tensor) -> Tensor:
        """Residual stream (batch, 3, d) -> (batch, d) at the last position only: the loss needs no more."""
        x = self.attended(x)
        return x + self.mlp(x)

    def attended(self, x: Tensor) -> Tensor:
        """Residual stream (batch, 3, d) -> the last position's residual after attention, (batch, d)."""
        b, t, d = x.shape
        dh = d // self.heads
        q = (x[:, -1] @ self.wq).reshape(b, 1, self.heads, dh)
        k = (x @ self.wk).reshape(b, t, self.heads, dh)
        return self.attend((k * q).sum(-1) / math.sqrt(dh), x @ self.wv, x[:, -1])


class GPT:
    def __init__(
        self, rng: np.random.Generator, modulus: int, width: int, heads: int, layers: int, mlp_width: int, device: str
    ):
        self.vocab = modulus + 1  # p numbers and "="
        self.tok_emb = _normal(rng, (self.vocab, width), width, device)
        self.pos_emb = _normal(rng, (SEQ_LEN, width), width, device)
        self.blocks = [Block(rng, width, heads, mlp_width, device) for _ in range(layers)]
        self.unembed = _normal(rng, (width, modulus), width, device)
        # Folding the MLP into per-token tables (GPT._folded) does less arithmetic but runs more,
        # smaller kernels. With BEAM=2 on a 2-core CPU (CPU graph on) it was faster at width 128
        # (nanda2023: 120-145 ms per step against 394-492 unfolded) and slower at width 64 (p=59,
        # 50% train: 29.5-32.9 ms against 25.7-29.0) and 32 (the default config: 2.4-3.1 ms
        # against 2.1-2.5).
        self.fold_mlp = layers == 1 and width >= FOLD_MIN_WIDTH

    def __call__(self, x: Tensor, groups: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """Tokens (batch, 3), the last one "=" -> logits (batch, p) at the last position.

        Computes only what the loss reads: the last block runs at the last position only, and a
        single block reads its keys, values and scores from per-token tables (every input token is
        one of p + 1, and the query token is always "="); from width FOLD_MIN_WIDTH it also folds
        the output projection and the unembedding into those tables (see _folded), so each example
        costs a few table rows and one matmul through the ReLU. Its (batch, k) @ (k, n) products are
        matmul.py's hand-scheduled kernels. `reference` is the same function, plainly. `groups`
        (lookup.make_groups of x[:, :2]) lets the folded gradient gather its table rows instead of
        reducing over the vocabulary.
        """
        if len(self.blocks) == 1:
            return self._one_block(x, groups)
        h = self.tok_emb[x] + self.pos_emb
        for block in self.blocks[:-1]:
            h = block(h)
        return self._unembed(self.blocks[-1].last(h))

    def _unembed(self, x: Tensor) -> Tensor:
        """(batch, d) -> logits (batch, p), the class axis padded for the kernel's vectors (p is often prime)."""
        p = self.unembed.shape[1]
        return matmul(x, self.unembed.pad(((0, 0), (0, -p % 8))))[:, :p]

    def _one_block(self, x: Tensor, groups: tuple[Tensor, Tensor] | None) -> Tensor:
        blk, b = self.blocks[0], x.shape[0]
        d, heads = self.tok_emb.shape[1], blk.heads
        dh = d // heads
        resid = (self.tok_emb[-1] + self.pos_emb[2]).reshape(1, d)  # "=" at the last position
        q = (resid @ blk.wq).reshape(heads, dh) / math.sqrt(dh)
        scores, onehots, tables = [], [], []
        # one-hot rows padded to a multiple of 8 tokens (zero rows in the tables), so that matmul.py's
        # kernels take every lookup; the folded model keeps its own layout (see _one_hot)
        n_tok = self.vocab if self.fold_mlp else self.vocab + (-self.vocab % 8)
        for pos in (0, 1):
            # one table per position (not one sliced table): tinygrad fuses the gradients of slices of
            # one tensor into a single kernel that nests the two batch reductions (N^2 work)
            table = self.tok_emb + self.pos_emb[pos]  # (vocab, d): the residual of each token here
            s_tab = ((table @ blk.wk).reshape(self.vocab, heads, dh) * q).sum(-1)  # (vocab, heads)
            # lookups as matmuls with materialized one-hot rows, so their gradients are plain matmuls
            onehot = _one_hot(x[:, pos], n_tok, batch_minor=self.fold_mlp)
            if groups is None:
                scores.append(matmul(onehot, _rows(s_tab, n_tok)).contiguous())
            else:  # the folded model's (no padded rows)
                scores.append(pick_rows_grouped(onehot, s_tab, groups[0][pos]).contiguous())
            onehots.append(onehot)
            tables.append(table @ blk.wv)
        scores.append((((resid @ blk.wk).reshape(heads, dh) * q).sum(-1)).reshape(1, -1).expand(b, -1))
        if self.fold_mlp:
            weights = Tensor.stack(*scores, dim=1).softmax(axis=1)  # (batch, 3 keys, heads)
            return self._folded(resid, weights, tables, x[:, :2].contiguous(), groups)
        values = [matmul(onehot, _rows(table, n_tok)) for onehot, table in zip(onehots, tables, strict=True)]
        values.append((resid @ blk.wv).expand(b, d))
        # The scores' gradient is written once, as is x's in mix: left lazy, tinygrad fuses its terms into
        # the reductions over the batch that read it (the "=" row's), which then round otherwise. Written
        # once, every gradient is the same to the last bit as before matmul.py's kernels (commit 0d69592
        # and earlier), so runs of the default config repeat theirs (tests/test_model.py).
        stacked = Tensor.stack(*scores, dim=1).contiguous_backward()
        return self._unembed(blk.mix(stacked, Tensor.stack(*values, dim=1), resid.expand(b, d)))

    def _folded(
        self,
        resid: Tensor,
        weights: Tensor,
        values: list[Tensor],
        idx: Tensor,
        groups: tuple[Tensor, Tensor] | None,
    ) -> Tensor:
        """Logits from the attention weights (batch, 3, heads) and the value tables (vocab, d) of positions 0, 1.

        After the attention everything is linear but the ReLU: with z the heads' mixed values and
        x = resid + z @ wo, logits = (x + relu(x @ w_in + b_in) @ w_out + b_out) @ unembed. So each
        head's value table goes through wo @ [w_in | unembed] once per step, and each example reads
        8 weighted rows of it, then one (mlp, classes) matmul through the ReLU.
        """
        blk, heads, mlp = self.blocks[0], self.blocks[0].heads, self.blocks[0].w_in.shape[1]
        dh = resid.shape[1] // heads
        # The class axis is padded with zero columns to a multiple of 16 so that kernels can vectorize
        # it (nanda2023's 113 is prime); the padded logits are dropped at the end.
        p = self.unembed.shape[1]
        unembed = self.unembed.pad(((0, 0), (0, -p % 16)))
        head_out = (blk.wo @ blk.w_in).cat(blk.wo @ unembed, dim=1).reshape(1, heads, dh, -1)

        def project(v: Tensor) -> Tensor:  # (n, d) -> (n, heads, mlp + classes)
            return (v.reshape(-1, heads, dh, 1) * head_out).sum(2)

        tables, last = Tensor.stack(*[project(v).contiguous() for v in values]), project(resid @ blk.wv)[0]

        # the sums round as before matmul.py's kernels (folded_sums.py); the MLP's inputs and the logits' linear
        # part as two lookups: one (batch, mlp + classes) gradient would be a concatenation, which slows the
        # matmul kernel that writes it
        pre = mixed_pre(tables[..., :mlp], weights, idx, groups, last[:, :mlp], resid @ blk.w_in + blk.b_in)
        t = tables[..., mlp:]
        s0, s1 = (
            head_rows(t[q : q + 1], weights[:, q : q + 1], idx[:, q : q + 1], _position(groups, q)) for q in (0, 1)
        )
        lin = lin_sum(s0 + s1, weights[:, 2], last[:, mlp:], resid, blk.b_out, unembed)
        # the step's largest matmuls (the ReLU, w_out and unembed in one), hand-scheduled (matmul.py);
        # the sum is materialized before the slice, so the kernels see the padded class axis
        return (lin + relu_matmul(pre, blk.w_out @ unembed)).contiguous()[:, :p]

    def reference(self, x: Tensor) -> Tensor:
        """The straightforward forward: every block at every position, logits read at the last."""
        h = x.one_hot(self.vocab).cast(dtypes.float32) @ self.tok_emb + self.pos_emb
        for block in self.blocks:
            h = block(h)
        return h[:, -1, :] @ self.unembed


def cross_entropy(logits: Tensor, labels: Tensor, dtype: str = "float64", weight: Tensor | None = None) -> Tensor:
    """Mean cross entropy over the batch, log-softmax in `dtype`; with `weight` (0 or 1 per
    example), the mean over the examples of weight 1.

    float64 by default, as in Nanda et al.'s code: late in grokking the per-example loss falls
    below float32's half-epsilon (~6e-8), so in float32 the correct class's probability rounds to
    exactly 1, its gradient vanishes while the wrong classes' do not, and the loss reads 0. In
    float64 that happens only below ~1e-16, far under any loss a run reaches, and the cast costs
    one small (batch, p) kernel. float32 is there for devices without float64 (e.g. METAL).
    """
    z = logits.cast(dtypes.float64 if dtype == "float64" else dtypes.float32)
    logp = z - z.logsumexp(axis=-1, keepdim=True)  # max-shifted inside logsumexp: exp never overflows
    picked = (logp * labels.one_hot(z.shape[-1]).cast(z.dtype)).sum(axis=-1)
    if weight is None:
        return -picked.mean()
    return -(picked * weight.cast(z.dtype)).sum() / weight.sum().cast(z.dtype)
