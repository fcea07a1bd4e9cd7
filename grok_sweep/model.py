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

SEQ_LEN = 3  # a, b, "="


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

    def __call__(self, x: Tensor) -> Tensor:
        x = x + self.attention(x)
        return x + ((x @ self.w_in + self.b_in).relu() @ self.w_out + self.b_out)


class GPT:
    def __init__(
        self, rng: np.random.Generator, modulus: int, width: int, heads: int, layers: int, mlp_width: int, device: str
    ):
        self.vocab = modulus + 1  # p numbers and "="
        self.tok_emb = _normal(rng, (self.vocab, width), width, device)
        self.pos_emb = _normal(rng, (SEQ_LEN, width), width, device)
        self.blocks = [Block(rng, width, heads, mlp_width, device) for _ in range(layers)]
        self.unembed = _normal(rng, (width, modulus), width, device)

    def __call__(self, x: Tensor) -> Tensor:
        """Tokens (batch, 3) -> logits (batch, p) at the last position."""
        h = x.one_hot(self.vocab).cast(dtypes.float32) @ self.tok_emb + self.pos_emb
        for block in self.blocks:
            h = block(h)
        return h[:, -1, :] @ self.unembed


def cross_entropy(logits: Tensor, labels: Tensor, dtype: str = "float64") -> Tensor:
    """Mean cross entropy over the batch, log-softmax in `dtype`.

    float64 by default, as in Nanda et al.'s code: late in grokking the per-example loss falls
    below float32's half-epsilon (~6e-8), so in float32 the correct class's probability rounds to
    exactly 1, its gradient vanishes while the wrong classes' do not, and the loss reads 0. In
    float64 that happens only below ~1e-16, far under any loss a run reaches, and the cast costs
    one small (batch, p) kernel. float32 is there for devices without float64 (e.g. METAL).
    """
    z = logits.cast(dtypes.float64 if dtype == "float64" else dtypes.float32)
    logp = z - z.logsumexp(axis=-1, keepdim=True)  # max-shifted inside logsumexp: exp never overflows
    picked = (logp * labels.one_hot(z.shape[-1]).cast(z.dtype)).sum(axis=-1)
    return -picked.mean()
