"""Grokfast gradient filters (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying Slow Gradients").

Each filter takes every parameter's raw gradient after the backward and gives the gradient AdamW
sees: g + lamb * (a low-pass of the raw gradients). The filter's state lives on the device and is
updated inside the jitted train step, so filtering costs no host work per step; `state()` names
every state tensor, so that a checkpoint holds it and a resumed run continues identically.

- EMA: mu starts as the first gradient; then mu = alpha * mu + (1 - alpha) * g; out g + lamb * mu.
- MA: the last `window` raw gradients (the current one included); out g + lamb * their mean, or g
  alone until the window is full (their code's default warm-up).
"""

from __future__ import annotations

from omegaconf import DictConfig
from tinygrad import Tensor, dtypes


class NoFilter:
    """grokfast=none: AdamW sees the raw gradients."""

    def __call__(self, grads: list[Tensor]) -> list[Tensor]:
        return grads

    def state(self) -> dict[str, Tensor]:
        return {}


class _Filter:
    def __init__(self, params: list[Tensor], lamb: float):
        self.lamb = lamb
        self.device = params[0].device
        # how many gradients the filter has seen: the steps it ran, in this run and before a resume
        self.count = Tensor.zeros(1, dtype=dtypes.int32, device=self.device).contiguous()

    def _state(self, name: str, buffers: list[Tensor]) -> dict[str, Tensor]:
        return {**{f"grokfast.{name}.{i}": t for i, t in enumerate(buffers)}, "grokfast.count": self.count}


class EMA(_Filter):
    def __init__(self, params: list[Tensor], alpha: float, lamb: float):
        super().__init__(params, lamb)
        self.alpha = alpha
        self.mu = [Tensor.zeros(*p.shape, device=self.device).contiguous() for p in params]
        Tensor.realize(self.count, *self.mu)

    def __call__(self, grads: list[Tensor]) -> list[Tensor]:
        first = self.count == 0
        out = []
        for mu, g in zip(self.mu, grads, strict=True):
            new = self.alpha * first.where(g, mu) + (1 - self.alpha) * g  # their code: mu = g, then the update
            mu.assign(new)
            out.append(g + self.lamb * new)
        self.count.assign(self.count + 1)
        return out

    def state(self) -> dict[str, Tensor]:
        return self._state("mu", self.mu)


class MA(_Filter):
    def __init__(self, params: list[Tensor], window: int, lamb: float):
        super().__init__(params, lamb)
        self.window = window
        self.ring = [Tensor.zeros(window, *p.shape, device=self.device).contiguous() for p in params]
        Tensor.realize(self.count, *self.ring)

    def __call__(self, grads: list[Tensor]) -> list[Tensor]:
        slot = Tensor.arange(self.window) == self.count % self.window
        full = self.count + 1 >= self.window  # the current gradient fills the window
        out = []
        for ring, g in zip(self.ring, grads, strict=True):
            here = slot.reshape(self.window, *([1] * g.ndim))
            new = here.where(g.unsqueeze(0), ring)  # the oldest gradient replaced by this one
            ring.assign(new)
            # the mean of the whole window each step, not a running sum: no rounding drift over a long run
            out.append(full.where(g + self.lamb * new.mean(0), g))
        self.count.assign(self.count + 1)
        return out

    def state(self) -> dict[str, Tensor]:
        return self._state("ring", self.ring)


def make_filter(cfg: DictConfig, params: list[Tensor]) -> NoFilter | EMA | MA:
    """The filter the config group `grokfast` chose, with zero state for `params`."""
    if cfg.name == "ema":
        return EMA(params, cfg.alpha, cfg.lamb)
    if cfg.name == "ma":
        return MA(params, cfg.window, cfg.lamb)
    return NoFilter()
