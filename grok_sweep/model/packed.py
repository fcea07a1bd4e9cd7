"""K GPTs of gpt.py at once: every weight stacked on a leading member axis, one forward for all of them.

A pack (train/pack.py) trains K runs of one shape as one program: member k's weights are `w[k]` of each stacked
tensor, its examples `x[k]`, and nothing mixes members (every product is batched over the member axis), so each
member's logits and gradients are those of its own GPT. The function is gpt.GPT's at the last position, written
plainly as gpt.py writes it (no per-token tables, no fold: those are the single run's CPU forms, model/forward.py);
tests/test_pack.py checks it against each member's own GPT.
"""

from __future__ import annotations

import math

import numpy as np
from tinygrad import Tensor, dtypes
from tinygrad.nn.state import get_state_dict

from grok_sweep.model.gpt import GPT, Block


def _mm(x: Tensor, w: Tensor) -> Tensor:
    """(K, ..., n) @ (K, n, m) -> (K, ..., m): each member's rows times its own matrix."""
    k, n = x.shape[0], x.shape[-1]
    return (x.reshape(k, -1, n) @ w).reshape(*x.shape[:-1], w.shape[-1])


class PackedBlock:
    def __init__(self, heads: int, weights: dict[str, Tensor]):
        self.heads = heads
        for name, t in weights.items():
            setattr(self, name, t)

    def attention(self, x: Tensor) -> Tensor:
        """Causal multi-head self-attention, every position: (K, batch, 3, d) -> (K, batch, 3, d)."""
        k, b, t, d = x.shape
        q, kk, v = (_mm(x, w).reshape(k, b, t, self.heads, d // self.heads).transpose(2, 3)
                    for w in (self.wq, self.wk, self.wv))  # fmt: skip
        out = q.scaled_dot_product_attention(kk, v, is_causal=True)
        return _mm(out.transpose(2, 3).reshape(k, b, t, d), self.wo)

    def mlp(self, x: Tensor) -> Tensor:
        def bias(b: Tensor) -> Tensor:  # (K, n) against (K, ..., n)
            return b.reshape(b.shape[0], *[1] * (x.ndim - 2), b.shape[1])

        return _mm((_mm(x, self.w_in) + bias(self.b_in)).relu(), self.w_out) + bias(self.b_out)

    def attended(self, x: Tensor) -> Tensor:
        """(K, batch, 3, d) -> the last position's residual after attention, (K, batch, d)."""
        k, b, t, d = x.shape
        dh = d // self.heads
        last = x[:, :, -1]
        q = _mm(last, self.wq).reshape(k, b, 1, self.heads, dh)
        keys, values = (_mm(x, w).reshape(k, b, t, self.heads, dh) for w in (self.wk, self.wv))
        weights = ((keys * q).sum(-1) / math.sqrt(dh)).softmax(axis=2).unsqueeze(-1)  # over the 3 key positions
        return last + _mm((weights * values).sum(2).reshape(k, b, d), self.wo)


class PackedGPT:
    """The stacked weights of K GPTs of one shape (the same names as gpt.GPT's state dict, each (K, ...))."""

    def __init__(self, models: list[GPT], device: str):
        first = models[0]
        self.vocab, self.heads, self.k = first.vocab, first.blocks[0].heads, len(models)
        states = [get_state_dict(m) for m in models]
        stacked = {n: Tensor(np.stack([s[n].numpy() for s in states]), device=device) for n in states[0]}
        # in gpt.GPT's order, so that get_parameters lists them as it lists a GPT's
        self.tok_emb, self.pos_emb = stacked["tok_emb"], stacked["pos_emb"]
        self.blocks = [PackedBlock(self.heads, {n.split(".")[-1]: t for n, t in stacked.items()
                                                if n.startswith(f"blocks.{i}.")})  # fmt: skip
                       for i in range(len(first.blocks))]  # fmt: skip
        self.unembed = stacked["unembed"]

    def __call__(self, x: Tensor) -> Tensor:
        """Tokens (K, batch, 3), the last one "=" -> logits (K, batch, p) at the last position."""
        k, b, t = x.shape
        onehot = x.one_hot(self.vocab).cast(dtypes.float32).reshape(k, b * t, self.vocab)
        h = (onehot @ self.tok_emb).reshape(k, b, t, -1) + self.pos_emb.unsqueeze(1)
        for block in self.blocks[:-1]:
            h = h + block.attention(h)
            h = h + block.mlp(h)
        last = self.blocks[-1].attended(h)
        return _mm(last + self.blocks[-1].mlp(last), self.unembed)

    def member(self, i: int) -> GPT:
        """Member i as a gpt.GPT whose weights are views of the stacked ones (for its state dict and measures)."""

        def part(t: Tensor) -> Tensor:
            # its gradient written alone before it joins the stacked one: else tinygrad computes the members'
            # gradients in one kernel over the stack, whose sums round in another order than the single run's
            return t[i].contiguous_backward()

        view = object.__new__(GPT)
        view.vocab, view.tok_emb, view.pos_emb, view.unembed = self.vocab, part(self.tok_emb), part(self.pos_emb), None
        view.blocks = []
        for blk in self.blocks:
            b = object.__new__(Block)
            b.heads = blk.heads
            for name in ("wq", "wk", "wv", "wo", "w_in", "b_in", "w_out", "b_out"):
                setattr(b, name, part(getattr(blk, name)))
            view.blocks.append(b)
        view.unembed = part(self.unembed)
        return view
