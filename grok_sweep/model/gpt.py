"""The GPT of Nanda et al. 2023 ("Progress measures for grokking via mechanistic interpretability"), plainly.

Inputs are `a b =` (three tokens of a vocabulary of p + 1). Token and positional embeddings, `layers` blocks of
causal multi-head attention and a ReLU MLP, each added to the residual stream, no LayerNorm, and an unembedding
to the p answer classes read at the last position ("="). Weights are drawn from NumPy, scaled by 1/sqrt(fan in),
so that a seed gives the same initial model on every device.

This file is the model to check against the paper: every block at every position, in plain tinygrad. Training
computes the same function through model/forward.py, which computes only what the loss reads (and is tested
against this one).
"""

from __future__ import annotations

import math

import numpy as np
from tinygrad import Tensor, dtypes

from grok_sweep.model.sizes import SEQ_LEN, vocab


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
        """Causal multi-head self-attention on the residual stream (batch, 3, d)."""
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
        return self.hidden(x) @ self.w_out + self.b_out

    def __call__(self, x: Tensor) -> Tensor:
        """Residual stream (batch, 3, d) -> (batch, 3, d), every position."""
        x = x + self.attention(x)
        return x + self.mlp(x)


class GPT:
    def __init__(
        self, rng: np.random.Generator, modulus: int, width: int, heads: int, layers: int, mlp_width: int, device: str
    ):
        self.vocab = vocab(modulus)
        self.tok_emb = _normal(rng, (self.vocab, width), width, device)
        self.pos_emb = _normal(rng, (SEQ_LEN, width), width, device)
        self.blocks = [Block(rng, width, heads, mlp_width, device) for _ in range(layers)]
        self.unembed = _normal(rng, (width, modulus), width, device)

    def __call__(self, x: Tensor) -> Tensor:
        """Tokens (batch, 3), the last one "=" -> logits (batch, p) at the last position."""
        h = x.one_hot(self.vocab).cast(dtypes.float32) @ self.tok_emb + self.pos_emb
        for block in self.blocks:
            h = block(h)
        return h[:, -1, :] @ self.unembed

    def layers(self) -> list[list[Tensor]]:
        """The parameters of each layer, input first: the embeddings, each block, the unembedding (what the
        per-layer weight norms read)."""
        blocks = [[b.wq, b.wk, b.wv, b.wo, b.w_in, b.b_in, b.w_out, b.b_out] for b in self.blocks]
        return [[self.tok_emb, self.pos_emb], *blocks, [self.unembed]]

    def input_blocks(self) -> list[Tensor]:
        """The embeddings of the p number tokens, (p, width): what the IPR reads."""
        return [self.tok_emb[: self.vocab - 1]]
