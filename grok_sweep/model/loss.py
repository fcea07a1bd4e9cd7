"""The loss a job trains on and reports, of the logits at the last position, and the softmax-collapse measures.

Three losses (config group `loss`): cross entropy through the softmax, and through StableMax (Prieto et al. 2025,
"Grokking at the Edge of Numerical Stability"), docs/interventions.md; and the squared error to the one-hot label
(Gromov 2023, Liu et al. 2022), `mse`.
"""

from __future__ import annotations

from tinygrad import Tensor, dtypes


def _float(dtype: str):  # noqa: ANN202 - a tinygrad dtype
    return dtypes.float64 if dtype == "float64" else dtypes.float32


def stablemax(z: Tensor) -> Tensor:
    """s(z) = z + 1 for z >= 0, 1 / (1 - z) for z < 0: exp's role in the softmax, growing linearly, not
    exponentially. The negative branch reads min(z, 0), so the branch where() discards has no pole at z = 1 (their
    code adds 1e-30 to 1 - z instead; for z < 0 it changes no bit)."""
    return (z < 0).where(1 / (1 - z.minimum(0)), z + 1)


def _picked(logits: Tensor, labels: Tensor, dtype: str, kind: str, split: bool) -> Tensor:
    """Each example's log-probability of its label, in `dtype`; for `mse`, minus its squared error: the mean over
    the p outputs of (z_k - [k == label])^2 (torch's MSELoss, as Gromov's and Doshi et al.'s code)."""
    z = logits.cast(_float(dtype))
    if kind == "mse":
        picked = -(z - labels.one_hot(z.shape[-1]).cast(z.dtype)).square().mean(axis=-1)
        return picked.contiguous() if split else picked
    if kind == "stablemax":
        s = stablemax(z)
        logp = (s / s.sum(axis=-1, keepdim=True)).log()  # their log_stablemax
    else:
        logp = z - z.logsumexp(axis=-1, keepdim=True)  # max-shifted inside logsumexp: exp never overflows
    picked = (logp * labels.one_hot(z.shape[-1]).cast(z.dtype)).sum(axis=-1)
    return picked.contiguous() if split else picked


def _mean(per_example: Tensor, weight: Tensor | None) -> Tensor:
    """The mean over the last axis (a run's examples; a pack's (K, batch) gives each member's), over the examples of
    weight 1 if `weight`."""
    if weight is None:
        return per_example.mean(axis=-1)
    return (per_example * weight.cast(per_example.dtype)).sum(axis=-1) / weight.sum(axis=-1).cast(per_example.dtype)


def accuracy(logits: Tensor, labels: Tensor, weight: Tensor | None = None, split: bool = False) -> Tensor:
    """The fraction of examples (of weight 1) whose largest logit is the label's, per run as _mean."""
    hit = (logits.argmax(axis=-1) == labels).cast(dtypes.float32)
    hit = hit.contiguous() if split else hit  # as cross_entropy's split
    return hit.mean(axis=-1) if weight is None else (hit * weight).sum(axis=-1) / weight.sum(axis=-1)


def cross_entropy(logits: Tensor, labels: Tensor, dtype: str = "float64", weight: Tensor | None = None,
                  split: bool = False, kind: str = "softmax") -> Tensor:  # fmt: skip
    """Mean cross entropy over the batch, in `dtype`, through the softmax or StableMax (`kind`), or with `kind`
    "mse" the mean squared error; with `weight` (0 or 1 per example), the mean over the examples of weight 1.

    float64 by default, as in Nanda et al.'s code: late in grokking the per-example loss falls
    below float32's half-epsilon (~6e-8), so in float32 the correct class's probability rounds to
    exactly 1, its gradient vanishes while the wrong classes' do not, and the loss reads 0 (Prieto et
    al.'s softmax collapse, measured by `loss_and_collapse`). In float64 that happens only below ~1e-16. float32
    is there for devices without float64 (e.g. METAL), and to study the collapse.

    `split` computes the per-example terms in their own kernel before the mean: on a GPU tinygrad
    otherwise runs the whole (batch, p) reduction in one block of threads (docs/performance/README.md).
    Off by default: on the CPU the fused kernel is fast and its bits are the reference.
    """
    return -_mean(_picked(logits, labels, dtype, kind, split), weight)


def loss_and_collapse(logits: Tensor, labels: Tensor, dtype: str = "float64", weight: Tensor | None = None,
                      split: bool = False, kind: str = "softmax") -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
    """cross_entropy's loss, and Prieto et al.'s measures (their logger.py) from the same per-example terms, as
    fractions of the batch (of the examples of weight 1):
    - softmax collapse: in `dtype`, sum_k exp(z_k - max z) == 1 exactly, i.e. every other class's exp rounds
      away; the softmax's loss and its gradient at the label are then exactly 0 (measured on the softmax
      whatever `kind` trains, as theirs);
    - zero loss: the example's loss under `kind` is exactly 0."""
    picked = _picked(logits, labels, dtype, kind, split)
    z = logits.cast(_float(dtype))
    total = (z - z.max(axis=-1, keepdim=True).detach()).exp().sum(axis=-1)  # as inside logsumexp: shared
    collapsed, zero = (total == 1).cast(z.dtype), (picked == 0).cast(z.dtype)
    return -_mean(picked, weight), _mean(collapsed, weight), _mean(zero, weight)
