"""⊥Grad (Prieto et al. 2025, "Grokking at the Edge of Numerical Stability"; their orthograd.py).

For every parameter tensor w with gradient g (both flattened), the optimizer sees
    g_orth = g - (w.g / (w.w + EPS)) w,  rescaled to the norm of g: g_orth * |g| / (|g_orth| + EPS),
so a step cannot grow the weights along themselves (their "naive loss minimization" direction that scales the
logits towards softmax collapse) and keeps the gradient's size. It acts after the Grokfast filter, on what the
filter gives, as their OrthoGrad wrapper would around an optimizer fed by Grokfast's hook (docs/interventions.md).
Inside the jitted train step; no state.
"""

from __future__ import annotations

from tinygrad import Tensor

EPS = 1e-30  # theirs: keeps 0/0 away for a zero tensor (a bias at init: w.w = 0, so g passes unchanged)


def _total(t: Tensor, packed: bool) -> Tensor:
    """The sum over a tensor (a run's), or over each member's part of a member-stacked one (a pack's, (K, 1, ...))."""
    return t.sum(axis=tuple(range(1, t.ndim)), keepdim=True) if packed else t.sum()


def orthogonalize(params: list[Tensor], grads: list[Tensor], packed: bool = False) -> list[Tensor]:
    """Each gradient without its component along its own weights, at its original norm (each member's, `packed`)."""
    out = []
    for w, g in zip(params, grads, strict=True):
        w = w.detach()
        orth = g - (_total(w * g, packed) / (_total(w * w, packed) + EPS)) * w
        norm = _total(g * g, packed).sqrt()
        out.append(orth * (norm / (_total(orth * orth, packed).sqrt() + EPS)))
    return out
