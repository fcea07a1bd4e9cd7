"""The learning rate of each update, computed on the device inside the jitted step (optim.warmup_steps,
optim.schedule, optim.min_lr).

For update n = 1, 2, ... (n - 1 updates taken before it) of a run of T = `steps` updates, with warmup W:
    warm(n)  = n / W while n < W, else 1                       (torch's LambdaLR of min((s + 1) / W, 1), s = n - 1)
    p(n)     = clip((n - 1 - W) / (T - W), 0, 1)               (the decay's progress, after warmup)
    shape(p) = 1 (constant), (1 + cos(pi p)) / 2 (cosine), 1 - p (linear)
    lr(n)    = lr * warm(n) * (r + (1 - r) * shape(p)),  r = min_lr / lr
A constant schedule without warmup multiplies lr by exactly 1, so its updates are those of a fixed lr bit for bit.
Every number is a (K,) tensor, one per member of a pack (K = 1 for one run), so jobs that differ only in them share
their compiled steps; the schedule's kind shapes the kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tinygrad import Tensor, dtypes


def lr_at(cfg: Any, n: np.ndarray) -> np.ndarray:
    """The formula above in numpy (float64): the lr of updates `n` (1-based) of a run of `cfg`. The reference the
    tests hold the device's values to, and what docs/guide/config.md plots."""
    o, w, total = cfg.optim, cfg.optim.warmup_steps, cfg.steps
    n = np.asarray(n, dtype=np.float64)
    warm = np.where(n < w, n / max(w, 1), 1.0)
    p = np.clip((n - 1 - w) / max(total - w, 1), 0, 1)
    shape = {"constant": np.ones_like(p), "cosine": (1 + np.cos(math.pi * p)) / 2, "linear": 1 - p}[o.schedule]
    r = o.min_lr / o.lr
    return o.lr * warm * (r + (1 - r) * shape)


class Schedule:
    def __init__(self, cfgs: list[Any], device: str):
        self.kind = cfgs[0].optim.schedule  # the same in every member: it shapes the kernels

        def per(get: Any) -> Tensor:  # each member's value, a (K,) float32 tensor
            return Tensor(np.array([float(get(c)) for c in cfgs], dtype=np.float32), device=device).contiguous()

        self.base = per(lambda c: c.optim.lr)
        self.ratio = per(lambda c: c.optim.min_lr / c.optim.lr)
        self.warmup = per(lambda c: c.optim.warmup_steps)
        self.total = per(lambda c: c.steps)
        self.n = Tensor.zeros(len(cfgs), dtype=dtypes.float32, device=device).contiguous()  # updates taken

    def tensors(self) -> list[Tensor]:
        return [self.base, self.ratio, self.warmup, self.total, self.n]

    def advance(self, active: Tensor | None = None) -> Tensor:
        """Inside a jitted step, once per update: count it (members not `active` do not move), then lr(n) / lr,
        (K,); the update's learning rate is `base` times it."""
        self.n.assign(self.n + 1 if active is None else active.where(self.n + 1, self.n))
        n, w = self.n, self.warmup
        warm = (n < w).where(n / w.maximum(1), 1.0)
        if self.kind == "constant":
            return warm
        p = ((n - 1 - w) / (self.total - w).maximum(1)).clip(0, 1)
        shape = (1 + (math.pi * p).cos()) / 2 if self.kind == "cosine" else 1 - p
        return warm * (self.ratio + (1 - self.ratio) * shape)

    def restore(self, taken: list[int]) -> None:
        """Each member continues after `taken[k]` updates (a resumed run's step)."""
        self.n.assign(Tensor(np.array(taken, dtype=np.float32), device=self.n.device)).realize()
