"""Weighted sums of table rows with fixed rounding: the sums of a folded one-block transformer (model/forward.py).

Per example such a model adds table rows weighted by attention (lookups.py), the rows of a key shared by every
example (w2 @ last) and a fixed row, for the MLP's inputs (`pre`) and for the logits' linear part (`lin`).
Grokking runs hang on every bit (one rounding step in nanda2023's initial weights moves its grokking step by 6
evals), so each sum here rounds in one fixed order, the order the model's digests were taken in
(tests/test_model.py), and the gradients run through matmuls.py's kernels:

- pre = rows + w2 @ last + fixed: tinygrad's fused expression; on the CPU a C kernel (cpu/folded.py)
  computes the same expression per output, as do those of the head rows;
- lin = ((s0 + s1) + s2) + fixed: s0, s1 (the two positions' rows) and s2 (the shared key's rows) each summed
  head by head as a kernel's accumulator does (fma_chain), and written out so no kernel re-associates
  them (tinygrad flattens chains of adds it fuses).
"""

from __future__ import annotations

from tinygrad import Tensor, UOp, dtypes

from grok_sweep.fast.cpu import folded as folded_kernels
from grok_sweep.fast.lookups import mix_rows, mix_rows_grouped
from grok_sweep.fast.matmuls import matmul


def fma_chain(terms: list[Tensor]) -> Tensor:
    """sum(terms), rounded as a loop `acc = 0; acc += term` that clang compiles to FMAs: term 0 alone, then one
    fused multiply-add per term. clang fuses the left product of `a*b + c*d`, so the first two go as t1 + t0."""
    out = terms[1] + terms[0] if len(terms) > 1 else terms[0]
    for term in terms[2:]:
        out = out + term
    return out


def _chained_rows(tables: Tensor, weights: Tensor, idx: Tensor) -> Tensor:
    rows = tables[0][idx[:, 0]]  # (B, H, W)
    return fma_chain([weights[:, 0, h].unsqueeze(-1) * rows[:, h] for h in range(tables.shape[2])])


def head_rows(tables: Tensor, weights: Tensor, idx: Tensor, groups: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """One position's weighted rows, materialized: tables (1, V, H, W), weights (B, 1, H), idx (B, 1) -> (B, W),
    the heads summed by fma_chain; with `groups` the gradient gathers (lookup.mix_rows_grouped)."""

    def expr(t: Tensor, w: Tensor, i: Tensor) -> Tensor:
        return _chained_rows(t, w, i) if groups is None else mix_rows_grouped(t, w, i, groups, mix=_chained_rows)

    (_, vocab, heads, width), b = tables.shape, weights.shape[0]
    if not folded_kernels.usable(tables, width):
        return expr(tables, weights, idx).contiguous()
    name = f"folded_rows_{b}_{vocab}_{heads}_{width}"
    src = folded_kernels.head_rows_source(name, b, heads, width)
    return folded_kernels.run(name, src, (b, width), [tables, weights, idx.cast(dtypes.int32)], expr)


def _through_kernels(rows: Tensor, w2: Tensor, last: Tensor, fixed: Tensor) -> Tensor:
    """rows + w2 @ last + fixed as one matmuls.py product (batch, 8) @ (8, n): w2's columns, ones (fixed's row),
    zeros. Only its gradients are used: tinygrad's own reductions over the batch for them were slow."""
    extra = -(w2.shape[1] + 1) % 8
    lhs = w2.pad(((0, 0), (0, 1)), value=1.0).pad(((0, 0), (0, extra)))
    return rows + matmul(lhs, last.cat(fixed, dim=0).pad(((0, extra), (0, 0))))


def _pre_grad(grad: UOp, call: UOp) -> tuple[UOp, ...]:
    ins = [Tensor(u) for u in call.src[1:]]
    return tuple(d.uop for d in _through_kernels(*ins).gradient(*ins, gradient=Tensor(grad)))


def pre_sum(rows: Tensor, w2: Tensor, last: Tensor, fixed: Tensor) -> Tensor:
    """rows (B, n) + w2 (B, H) @ last (H, n) + fixed (1, n)."""
    ins = (rows, w2, last, fixed)
    p = [x.as_param(i) for i, x in enumerate(ins)]
    return rows.call(*ins[1:], fxn=p[0] + p[1] @ p[2] + p[3], grad_fxn=_pre_grad)


def mixed_pre(tables: Tensor, weights: Tensor, idx: Tensor, groups: tuple[Tensor, Tensor] | None, last: Tensor,
              fixed: Tensor) -> Tensor:  # fmt: skip
    """pre_sum of the two positions' weighted rows (lookup.mix_rows): tables (2, V, H, n), weights (B, 3, H) (the
    third key's are w2), idx (B, 2), last (H, n), fixed (1, n) -> (B, n); with `groups` the rows' gradient gathers."""

    def expr(t: Tensor, w: Tensor, i: Tensor, last: Tensor, fixed: Tensor) -> Tensor:
        rows = mix_rows(t, w[:, :2], i) if groups is None else mix_rows_grouped(t, w[:, :2], i, groups)
        return pre_sum(rows, w[:, 2], last, fixed)

    (n_pos, vocab, heads, width), b = tables.shape, weights.shape[0]
    ins = [tables, weights, idx.cast(dtypes.int32), last, fixed]
    if n_pos != 2 or not folded_kernels.usable(tables, width):
        return expr(*ins)
    name = f"folded_pre_{b}_{vocab}_{heads}_{width}"
    return folded_kernels.run(name, folded_kernels.pre_source(name, b, vocab, heads, width), (b, width), ins, expr)


def _lin_body(rows: Tensor, w2: Tensor, last: Tensor, resid: Tensor, b_out: Tensor, unembed: Tensor) -> Tensor:
    s2 = fma_chain([w2[:, h].unsqueeze(-1) * last[h].unsqueeze(0) for h in range(w2.shape[1])]).contiguous()
    return rows + s2 + (resid + b_out) @ unembed


def _lin_grad(grad: UOp, call: UOp) -> tuple[UOp, ...]:
    rows, w2, last, resid, b_out, unembed = (Tensor(u) for u in call.src[1:])
    g = Tensor(grad)
    fixed = (resid + b_out) @ unembed
    d_rows, d_w2, d_last, d_fixed = _through_kernels(rows, w2, last, fixed).gradient(rows, w2, last, fixed, gradient=g)
    d_resid, d_unembed = fixed.gradient(resid, unembed, gradient=d_fixed)
    # b_out's own gradient summed the loss gradient as recomputed in place: tinygrad fused it so before, and
    # that rounds otherwise than the sum of the stored gradient that resid and unembed read
    (d_fixed_in_place,) = (rows + fixed).gradient(fixed, gradient=g)
    (d_b_out,) = fixed.gradient(b_out, gradient=d_fixed_in_place)
    return tuple(d.uop for d in (d_rows, d_w2, d_last, d_resid, d_b_out, d_unembed))


def lin_sum(rows: Tensor, w2: Tensor, last: Tensor, resid: Tensor, b_out: Tensor, unembed: Tensor) -> Tensor:
    """rows (B, n) + w2 (B, H) @ last (H, n) + (resid (1, d) + b_out (d,)) @ unembed (d, n), where rows is
    the sum of two head_rows."""
    ins = (rows, w2, last, resid, b_out, unembed)
    p = [x.as_param(i) for i, x in enumerate(ins)]
    return rows.call(*ins[1:], fxn=_lin_body(*p), grad_fxn=_lin_grad)
