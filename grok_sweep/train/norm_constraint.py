"""Constrained weight norm (Liu et al. 2023, "Omnigrok"; their modular-addition notebook, Fig. 7b).

After every optimizer update, all parameters are rescaled together, by one factor, to the global L2 norm they had
at step 0 (after model.init_scale): training moves on the sphere of that norm, so the weight norm, which grows
while a network memorizes and shrinks as it generalizes, is held fixed. The norm at step 0 is a tensor on the
device (kept in the checkpoint), so jobs that differ only in init_scale share their compiled steps.
"""

from __future__ import annotations

from collections.abc import Callable

from tinygrad import Tensor


def global_norm(params: list[Tensor], packed: bool = False) -> Tensor:
    """The L2 norm of all parameters as one vector (a scalar): the eval rows' weight_norm; `packed`: each member's
    of member-stacked parameters, (K,)."""
    if packed:
        return Tensor.stack(*[(p * p).sum(axis=tuple(range(1, p.ndim))) for p in params], dim=1).sum(1).sqrt()
    return Tensor.stack(*[(p * p).sum() for p in params]).sum().sqrt()


class NormConstraint:
    def __init__(self, params: list[Tensor], active: Tensor | None = None, norms: Callable | None = None):
        """A pack's (train/pack.py): `active`, its (K,) mask of the members that train (only theirs are rescaled),
        each to its own norm, `norms(params)` their (K,) norms."""
        self.params, self.active = params, active
        self.norm = global_norm if norms is None else norms
        self.norm0 = self.norm(params).reshape(-1).contiguous().realize()

    def __call__(self) -> list[Tensor]:
        """The parameters rescaled to norm0 (assigned; realize them after the optimizer's update)."""
        scale = (self.norm0 / self.norm(self.params)).detach()
        if self.active is None:
            return [p.assign(p.detach() * scale) for p in self.params]
        out = []
        for p in self.params:
            shape = (-1, *[1] * (p.ndim - 1))
            out.append(p.assign(self.active.reshape(shape).where(p.detach() * scale.reshape(shape), p.detach())))
        return out

    def state(self) -> dict[str, Tensor]:
        return {"constrain_norm.norm0": self.norm0}
