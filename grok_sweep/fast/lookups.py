"""A weighted table lookup whose gradient gathers instead of scattering.

A folded one-block transformer reads, for each example, a few rows of small per-token tables and adds
them with per-example weights (model/forward.py). tinygrad computes a lookup `table[idx]` as a
direct load, but its gradient as a reduction over batch x vocabulary; here the gradient is
gathered through `groups`, each token's list of the examples that hold it (and each example's
place in it), built on the host once per batch (a full-batch run builds it once). The sums over
those lists run as C kernels on the CPU (cpu/lookup.py).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tinygrad import Tensor
from tinygrad.uop.ops import UOp

from grok_sweep.fast.cpu.lookup import group_sum, slot_dots, table_grad


def mix_rows(tables: Tensor, weights: Tensor, idx: Tensor) -> Tensor:
    """sum over p, h of weights[b, p, h] * tables[p, idx[b, p], h]: (P, V, H, W), (B, P, H), (B, P) -> (B, W)."""
    out = None
    for p in range(tables.shape[0]):
        term = (weights[:, p].unsqueeze(-1) * tables[p][idx[:, p]]).sum(1)
        out = term if out is None else out + term
    return out


def _mix_rows_grad(grad: UOp, call: UOp) -> tuple[UOp | None, ...]:
    tables, weights, idx, members, slots = (Tensor(u) for u in call.src[1:])
    g = Tensor(grad)
    d_tables, d_weights = [], []
    for p in range(tables.shape[0]):
        d_tables.append(table_grad(g, weights[:, p], members[p]))  # (V, H, W)
        # each example's dot with its own token's rows, per token (V, C, H), then read back at its slot
        per_slot = slot_dots(g, tables[p], members[p])
        d_weights.append(per_slot.reshape(-1, tables.shape[2])[slots[:, p]])  # (B, H)
    return Tensor.stack(*d_tables).uop, Tensor.stack(*d_weights, dim=1).uop, None, None, None


def mix_rows_grouped(
    tables: Tensor,
    weights: Tensor,
    idx: Tensor,
    groups: tuple[Tensor, Tensor],
    mix: Callable[[Tensor, Tensor, Tensor], Tensor] = mix_rows,
) -> Tensor:
    """mix_rows (or `mix`, the same sum in another order), with its gradient read through `groups`
    (make_groups(idx)); idx itself gets none."""
    body = mix(tables.as_param(0), weights.as_param(1), idx.as_param(2))
    return tables.call(weights, idx, *groups, fxn=body, grad_fxn=_mix_rows_grad)


def _pick_grad(grad: UOp, call: UOp) -> tuple[UOp | None, ...]:
    onehot, table, members = (Tensor(u) for u in call.src[1:])
    g = Tensor(grad)
    d_table = group_sum(g, members)
    if d_table is None:
        (d_table,) = (onehot @ table).gradient(table, gradient=g)
    return None, d_table.uop, None


def pick_rows_grouped(onehot: Tensor, table: Tensor, members: Tensor) -> Tensor:
    """onehot (B, V) @ table (V, H): each example's row of the table, whose gradient sums each token's examples'
    rows through members (make_groups' of one position, (V, C)) where tinygrad reduced over batch x vocabulary
    (docs/performance/fold.md); onehot gets none."""
    body = onehot.as_param(0) @ table.as_param(1)
    return onehot.call(table, members, fxn=body, grad_fxn=_pick_grad)


def make_groups(idx: np.ndarray, vocab: int, capacity: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(B, P) token ids -> members (P, vocab, C) and slots (B, P), int32.

    members[p, v] lists the b with idx[b, p] == v, then B (a zero row) in the unused slots; C is
    the largest group, or `capacity` for fixed shapes. slots[b, p] = v * C + (b's place in
    members[p, v]), where b's entry sits in members[p] read as one flat list."""
    b, n_pos = idx.shape
    counts = [np.bincount(idx[:, p], minlength=vocab) for p in range(n_pos)]
    width = capacity or max(1, max(int(c.max()) for c in counts))
    members = np.full((n_pos, vocab, width), b, dtype=np.int32)
    slots = np.empty((b, n_pos), dtype=np.int32)
    for p in range(n_pos):
        order = np.argsort(idx[:, p], kind="stable")
        rank = np.arange(b) - np.repeat(np.cumsum(counts[p]) - counts[p], counts[p])  # place within its group
        members[p, idx[order, p], rank] = order
        slots[order, p] = idx[order, p] * width + rank
    return members, slots
