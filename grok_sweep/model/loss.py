"""The loss a job trains on and reports: cross entropy of the logits at the last position."""

from __future__ import annotations

from tinygrad import Tensor, dtypes


def cross_entropy(
    logits: Tensor, labels: Tensor, dtype: str = "float64", weight: Tensor | None = None, split: bool = False
) -> Tensor:
    """Mean cross entropy over the batch, log-softmax in `dtype`; with `weight` (0 or 1 per
    example), the mean over the examples of weight 1.

    float64 by default, as in Nanda et al.'s code: late in grokking the per-example loss falls
    below float32's half-epsilon (~6e-8), so in float32 the correct class's probability rounds to
    exactly 1, its gradient vanishes while the wrong classes' do not, and the loss reads 0. In
    float64 that happens only below ~1e-16, far under any loss a run reaches, and the cast costs
    one small (batch, p) kernel. float32 is there for devices without float64 (e.g. METAL).

    `split` computes the per-example terms in their own kernel before the mean: on a GPU tinygrad
    otherwise runs the whole (batch, p) reduction in one block of threads (docs/performance/README.md).
    Off by default: on the CPU the fused kernel is fast and its bits are the reference.
    """
    z = logits.cast(dtypes.float64 if dtype == "float64" else dtypes.float32)
    logp = z - z.logsumexp(axis=-1, keepdim=True)  # max-shifted inside logsumexp: exp never overflows
    picked = (logp * labels.one_hot(z.shape[-1]).cast(z.dtype)).sum(axis=-1)
    picked = picked.contiguous() if split else picked
    if weight is None:
        return -picked.mean()
    return -(picked * weight.cast(z.dtype)).sum() / weight.sum().cast(z.dtype)
