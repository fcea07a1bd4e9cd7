"""Constrained weight norm (Liu et al. 2023, "Omnigrok"; their modular-addition notebook, Fig. 7b).

After every optimizer update, all parameters are rescaled together, by one factor, to the global L2 norm they had
at step 0 (after model.init_scale): training moves on the sphere of that norm, so the weight norm, which grows
while a network memorizes and shrinks as it generalizes, is held fixed. The norm at step 0 is a tensor on the
device (kept in the checkpoint), so jobs that differ only in init_scale share their compiled steps.
"""

from __future__ import annotations

from tinygrad import Tensor


def global_norm(params: list[Tensor]) -> Tensor:
    """The L2 norm of all parameters as one vector (a scalar): the eval rows' weight_norm."""
    return Tensor.stack(*[(p * p).sum() for p in params]).sum().sqrt()


class NormConstraint:
    def __init__(self, params: list[Tensor]):
        self.params = params
        self.norm0 = global_norm(params).reshape(1).contiguous().realize()

    def __call__(self) -> list[Tensor]:
        """The parameters rescaled to norm0 (assigned; realize them after the optimizer's update)."""
        scale = (self.norm0 / global_norm(self.params)).detach()
        return [p.assign(p.detach() * scale) for p in self.params]

    def state(self) -> dict[str, Tensor]:
        return {"constrain_norm.norm0": self.norm0}
