"""The GPT's logits computing only what the loss reads: the function of model/gpt.py, for training and evals.

- Only the last position: the last block runs at the last position only (the loss reads the logits there).
- Per-token tables: a single block reads its keys, values and scores from tables of the p + 1 tokens (every
  input token is one of them, and the query token is always "="), through one-hot matmuls.
- The fold: from width sizes.FOLD_MIN_WIDTH the output projection and the unembedding fold into those tables
  (see _folded), so each example costs a few table rows and one matmul through the ReLU.

Its (batch, k) @ (k, n) products and lookups are grok_sweep.fast's kernels; tests/test_model.py checks the
logits and every gradient against gpt.py's plain forward, and against digests of the bits training depends on.
"""

from __future__ import annotations

import math

from tinygrad import Tensor, dtypes

from grok_sweep.fast import head_rows, lin_sum, matmul, mixed_pre, pick_rows_grouped, relu_matmul
from grok_sweep.model.gpt import GPT, Block
from grok_sweep.model.sizes import folds

Groups = tuple[Tensor, Tensor]  # fast.make_groups of a batch's tokens a, b: (members, slots)


def folded(model: GPT) -> bool:
    """Whether `logits` folds this model's MLP into per-token tables (sizes.folds)."""
    return folds(len(model.blocks), model.tok_emb.shape[1])


def logits(model: GPT, x: Tensor, groups: Groups | None = None) -> Tensor:
    """Tokens (batch, 3), the last one "=" -> logits (batch, p) at the last position: model(x), computed faster.

    `groups` (fast.make_groups of x[:, :2]) lets the folded gradient gather its table rows instead of reducing
    over the vocabulary."""
    if len(model.blocks) == 1:
        return _one_block(model, x, groups)
    h = model.tok_emb[x] + model.pos_emb
    for block in model.blocks[:-1]:
        h = _block(block, h)
    return _unembed(model, _last(model.blocks[-1], h))


def last_residual(model: GPT, x: Tensor) -> Tensor:
    """The last block's residual after attention at the last position (batch, d): the MLP's input there."""
    h = x.one_hot(model.vocab).cast(dtypes.float32) @ model.tok_emb + model.pos_emb
    for block in model.blocks[:-1]:
        h = _block(block, h)
    return attended(model.blocks[-1], h)


def _one_block(model: GPT, x: Tensor, groups: Groups | None) -> Tensor:
    """logits() of a one-block model: scores and values read from per-token tables."""
    fold = folded(model)
    blk, b = model.blocks[0], x.shape[0]
    d, heads = model.tok_emb.shape[1], blk.heads
    dh = d // heads
    resid = (model.tok_emb[-1] + model.pos_emb[2]).reshape(1, d)  # "=" at the last position
    q = (resid @ blk.wq).reshape(heads, dh) / math.sqrt(dh)
    scores, onehots, tables = [], [], []
    # one-hot rows padded to a multiple of 8 tokens (zero rows in the tables), so that fast.matmul's
    # kernels take every lookup; the folded model keeps its own layout (see _one_hot)
    n_tok = model.vocab if fold else model.vocab + (-model.vocab % 8)
    for pos in (0, 1):
        # one table per position (not one sliced table): tinygrad fuses the gradients of slices of
        # one tensor into a single kernel that nests the two batch reductions (N^2 work)
        table = model.tok_emb + model.pos_emb[pos]  # (vocab, d): the residual of each token here
        s_tab = ((table @ blk.wk).reshape(model.vocab, heads, dh) * q).sum(-1)  # (vocab, heads)
        # lookups as matmuls with materialized one-hot rows, so their gradients are plain matmuls
        onehot = _one_hot(x[:, pos], n_tok, batch_minor=fold)
        if groups is None:
            scores.append(matmul(onehot, _rows(s_tab, n_tok)).contiguous())
        else:  # the folded model's (no padded rows)
            scores.append(pick_rows_grouped(onehot, s_tab, groups[0][pos]).contiguous())
        onehots.append(onehot)
        tables.append(table @ blk.wv)
    scores.append((((resid @ blk.wk).reshape(heads, dh) * q).sum(-1)).reshape(1, -1).expand(b, -1))
    if fold:
        weights = Tensor.stack(*scores, dim=1).softmax(axis=1)  # (batch, 3 keys, heads)
        return _folded(model, resid, weights, tables, x[:, :2].contiguous(), groups)
    values = [matmul(onehot, _rows(table, n_tok)) for onehot, table in zip(onehots, tables, strict=True)]
    values.append((resid @ blk.wv).expand(b, d))
    # The scores' gradient is written once, as is x's in _mix: left lazy, tinygrad fuses its terms into
    # the reductions over the batch that read it (the "=" row's), which then round otherwise. Written
    # once, every gradient rounds as the plain expressions' do, so runs of the default config keep their
    # bits (tests/test_model.py checks them against digests).
    stacked = Tensor.stack(*scores, dim=1).contiguous_backward()
    return _unembed(model, _mix(blk, stacked, Tensor.stack(*values, dim=1), resid.expand(b, d)))


def _folded(model: GPT, resid: Tensor, weights: Tensor, values: list[Tensor], idx: Tensor,
            groups: Groups | None) -> Tensor:  # fmt: skip
    """Logits from the attention weights (batch, 3, heads) and the value tables (vocab, d) of positions 0, 1.

    After the attention everything is linear but the ReLU: with z the heads' mixed values and
    x = resid + z @ wo, logits = (x + relu(x @ w_in + b_in) @ w_out + b_out) @ unembed. So each
    head's value table goes through wo @ [w_in | unembed] once per step, and each example reads
    8 weighted rows of it, then one (mlp, classes) matmul through the ReLU.
    """
    blk, heads, mlp = model.blocks[0], model.blocks[0].heads, model.blocks[0].w_in.shape[1]
    dh = resid.shape[1] // heads
    # The class axis is padded with zero columns to a multiple of 16 so that kernels can vectorize
    # it (nanda2023's 113 is prime); the padded logits are dropped at the end.
    p = model.unembed.shape[1]
    unembed = model.unembed.pad(((0, 0), (0, -p % 16)))
    head_out = (blk.wo @ blk.w_in).cat(blk.wo @ unembed, dim=1).reshape(1, heads, dh, -1)

    def project(v: Tensor) -> Tensor:  # (n, d) -> (n, heads, mlp + classes)
        return (v.reshape(-1, heads, dh, 1) * head_out).sum(2)

    tables, last = Tensor.stack(*[project(v).contiguous() for v in values]), project(resid @ blk.wv)[0]

    # the sums round in fast.fold's fixed orders; the MLP's inputs and the logits' linear
    # part as two lookups: one (batch, mlp + classes) gradient would be a concatenation, which slows the
    # matmul kernel that writes it
    pre = mixed_pre(tables[..., :mlp], weights, idx, groups, last[:, :mlp], resid @ blk.w_in + blk.b_in)
    t = tables[..., mlp:]
    s0, s1 = (head_rows(t[q : q + 1], weights[:, q : q + 1], idx[:, q : q + 1], _position(groups, q)) for q in (0, 1))
    lin = lin_sum(s0 + s1, weights[:, 2], last[:, mlp:], resid, blk.b_out, unembed)
    # the step's largest matmuls (the ReLU, w_out and unembed in one), hand-scheduled (fast.relu_matmul);
    # the sum is materialized before the slice, so the kernels see the padded class axis
    return (lin + relu_matmul(pre, blk.w_out @ unembed)).contiguous()[:, :p]


def _mlp(block: Block, x: Tensor) -> Tensor:
    """block.mlp on (..., d): as (rows, d) matmuls, fast.relu_matmul applying the ReLU as it reads."""
    flat = x.reshape(-1, x.shape[-1])
    return (relu_matmul(matmul(flat, block.w_in) + block.b_in, block.w_out) + block.b_out).reshape(x.shape)


def _block(block: Block, x: Tensor) -> Tensor:
    """block(x): every position."""
    x = x + block.attention(x)
    return x + _mlp(block, x)


def _attend(block: Block, scores: Tensor, values: Tensor, resid: Tensor) -> Tensor:
    """The last position's residual after attention, from its scores (batch, 3, heads), values (batch, 3, d) and
    residual (batch, d)."""
    b, t, d = values.shape
    weights = scores.softmax(axis=1).unsqueeze(-1)  # over the 3 key positions, per head
    z = (weights * values.reshape(b, t, block.heads, d // block.heads)).sum(1).reshape(b, d)
    return resid + matmul(z, block.wo)


def _mix(block: Block, scores: Tensor, values: Tensor, resid: Tensor) -> Tensor:
    """The last position's output from the same inputs as _attend."""
    # x's gradient (through the MLP, plus the residual's) is written once before the reductions that
    # read it; see _one_block
    x = _attend(block, scores, values, resid).contiguous_backward()
    return x + _mlp(block, x)


def attended(block: Block, x: Tensor) -> Tensor:
    """Residual stream (batch, 3, d) -> the last position's residual after attention, (batch, d)."""
    b, t, d = x.shape
    dh = d // block.heads
    q = (x[:, -1] @ block.wq).reshape(b, 1, block.heads, dh)
    k = (x @ block.wk).reshape(b, t, block.heads, dh)
    return _attend(block, (k * q).sum(-1) / math.sqrt(dh), x @ block.wv, x[:, -1])


def _last(block: Block, x: Tensor) -> Tensor:
    """Residual stream (batch, 3, d) -> (batch, d) at the last position only."""
    x = attended(block, x)
    return x + _mlp(block, x)


def _unembed(model: GPT, x: Tensor) -> Tensor:
    """(batch, d) -> logits (batch, p), the class axis padded for the kernel's vectors (p is often prime)."""
    p = model.unembed.shape[1]
    return matmul(x, model.unembed.pad(((0, 0), (0, -p % 8))))[:, :p]


def _one_hot(tokens: Tensor, vocab: int, batch_minor: bool) -> Tensor:
    """(batch,) -> (batch, vocab) float rows, stored transposed when `batch_minor`.

    fast.matmul reads either layout fast; where a lookup falls back to tinygrad's own matmul (nanda2023's 114
    tokens), its gradient's reduction over the batch reads each column contiguously
    (docs/performance/cpu-runtime.md), and so do the kernels tinygrad fuses around it (a training step with lookup
    groups sums that gradient through them instead: fast.pick_rows_grouped)."""
    onehot = tokens.one_hot(vocab).cast(dtypes.float32)
    return onehot.T.contiguous().T if batch_minor else onehot.contiguous()


def _rows(t: Tensor, n: int) -> Tensor:
    """(m, k) -> (n, k), padded with rows of zeros."""
    return t.pad(((0, n - t.shape[0]), (0, 0)))


def _position(groups: Groups | None, q: int) -> Groups | None:
    """fast.make_groups' groups of position q alone."""
    return None if groups is None else (groups[0][q : q + 1], groups[1][:, q : q + 1])
