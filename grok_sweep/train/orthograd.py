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


def orthogonalize(params: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
    """Each gradient without its component along its own weights, at its original norm."""
    out = []
    for w, g in zip(params, grads, strict=True):
        w = w.detach()
        orth = g - ((w * g).sum() / ((w * w).sum() + EPS)) * w
        norm = (g * g).sum().sqrt()
        out.append(orth * (norm / ((orth * orth).sum().sqrt() + EPS)))
    return out
