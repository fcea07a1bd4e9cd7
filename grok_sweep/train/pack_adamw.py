"""AdamW over a pack's member-stacked parameters (train/pack.py): tinygrad's AdamW, each member with its own lr (its
schedule's, train/schedule.py) and weight decay, and only the members that train (`active`) move.

The update is tinygrad's (nn/optim.py, LAMB with adam=True, as the single run's Trainer uses it), element by element:
    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd p)
with t the member's own count of updates (a member resumed at another step than the others has its own).
"""

from __future__ import annotations

from tinygrad import Tensor, dtypes


def each(v: Tensor, like: Tensor) -> Tensor:
    """A per-member (K,) tensor shaped to broadcast against a member-stacked (K, ...) one."""
    return v.reshape(-1, *[1] * (like.ndim - 1))


class PackAdamW:
    def __init__(self, params: list[Tensor], wd: Tensor, b1: float, b2: float, eps: float, active: Tensor):
        self.params, self.wd, self.active = params, wd, active
        self.b1, self.b2, self.eps = b1, b2, eps
        dev, k = params[0].device, params[0].shape[0]
        self.b1_t, self.b2_t = (Tensor.ones(k, dtype=dtypes.float32, device=dev).contiguous() for _ in (b1, b2))
        self.m = [Tensor.zeros(*p.shape, device=dev).contiguous() for p in params]
        self.v = [Tensor.zeros(*p.shape, device=dev).contiguous() for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def schedule_step(self, lr: Tensor) -> list[Tensor]:
        """The update of every parameter from its .grad at each member's learning rate `lr`, (K,): the tensors to
        realize."""
        on = self.active
        # each new state assigned, then read back, as tinygrad's AdamW reads it: the same kernels round the same way
        self.b1_t.assign(on.where(self.b1_t * self.b1, self.b1_t))
        self.b2_t.assign(on.where(self.b2_t * self.b2, self.b2_t))
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            g, a = p.grad, each(on, p)
            m.assign(a.where(self.b1 * m + (1.0 - self.b1) * g, m))
            v.assign(a.where(self.b2 * v + (1.0 - self.b2) * (g * g), v))
            m_hat, v_hat = m / (1.0 - each(self.b1_t, p)), v / (1.0 - each(self.b2_t, p))
            up = m_hat / (v_hat.sqrt() + self.eps) + each(self.wd, p) * p.detach()
            # the step written before it is subtracted, as in tinygrad's fused AdamW: in one kernel, the compiler may
            # fuse p - lr * up into one rounding (a multiply-add), and the member's weights would leave its single run's
            step = (each(lr, p) * up).contiguous()
            p.assign(a.where(p.detach() - step, p.detach()))
        return [self.b1_t, self.b2_t, *self.m, *self.v, *self.params]
