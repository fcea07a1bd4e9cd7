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

from collections.abc import Callable

from omegaconf import DictConfig
from tinygrad import Tensor, dtypes


class NoFilter:
    """grokfast=none: AdamW sees the raw gradients."""

    def __call__(self, grads: list[Tensor]) -> list[Tensor]:
        return grads

    def state(self) -> dict[str, Tensor]:
        return {}


class _Filter:
    def __init__(self, params: list[Tensor], lamb: float | Tensor, active: Tensor | None = None):
        self.lamb = lamb
        self.device = params[0].device
        # a pack's (train/pack.py): each member's lamb (and alpha) a (K,) tensor, and only active members' state moves
        self.active = active
        k = 1 if active is None else active.shape[0]
        # how many gradients the filter has seen: the steps it ran, in this run and before a resume
        self.count = Tensor.zeros(k, dtype=dtypes.int32, device=self.device).contiguous()

    def _each(self, v: float | Tensor, g: Tensor) -> float | Tensor:
        """A pack's per-member value (K,) against a member-stacked gradient (K, ...); a run's as it is."""
        return v.reshape(-1, *[1] * (g.ndim - 1)) if self.active is not None and isinstance(v, Tensor) else v

    def _keep(self, new: Tensor, old: Tensor, g: Tensor) -> Tensor:
        return new if self.active is None else self._each(self.active, g).where(new, old)

    def _tick(self) -> None:
        self.count.assign(self.count + (1 if self.active is None else self.active.cast(dtypes.int32)))

    def _state(self, name: str, buffers: list[Tensor]) -> dict[str, Tensor]:
        return {**{f"grokfast.{name}.{i}": t for i, t in enumerate(buffers)}, "grokfast.count": self.count}


class EMA(_Filter):
    def __init__(self, params: list[Tensor], alpha: float | Tensor, lamb: float | Tensor, active: Tensor | None = None,
                 rest: float | Tensor | None = None):  # fmt: skip
        super().__init__(params, lamb, active)
        self.alpha = alpha
        # 1 - alpha: a pack's from each member's alpha on the host (a float32 tensor computing it would round it
        # otherwise than the single run's constant)
        self.rest = 1 - alpha if rest is None else rest
        self.mu = [Tensor.zeros(*p.shape, device=self.device).contiguous() for p in params]
        Tensor.realize(self.count, *self.mu)

    def __call__(self, grads: list[Tensor]) -> list[Tensor]:
        first = self.count == 0
        out = []
        for mu, g in zip(self.mu, grads, strict=True):
            alpha, lamb, rest = self._each(self.alpha, g), self._each(self.lamb, g), self._each(self.rest, g)
            new = alpha * self._each(first, g).where(g, mu) + rest * g  # their code: mu = g, then the update
            mu.assign(self._keep(new, mu, g))
            out.append(g + lamb * new)
        self._tick()
        return out

    def state(self) -> dict[str, Tensor]:
        return self._state("mu", self.mu)


class MA(_Filter):
    def __init__(self, params: list[Tensor], window: int, lamb: float | Tensor, active: Tensor | None = None):
        super().__init__(params, lamb, active)
        self.window = window
        self.ring = [Tensor.zeros(window, *p.shape, device=self.device).contiguous() for p in params]
        Tensor.realize(self.count, *self.ring)

    def __call__(self, grads: list[Tensor]) -> list[Tensor]:
        w = self.window
        # (window,) for a run; (window, K) for a pack, each member's slot at its own count
        slot = Tensor.arange(w).reshape(w, *([] if self.active is None else [1])) == self.count % w
        full = self.count + 1 >= w  # the current gradient fills the window
        out = []
        for ring, g in zip(self.ring, grads, strict=True):
            here = slot.reshape(*slot.shape, *([1] * (g.ndim - slot.ndim + 1)))
            new = here.where(g.unsqueeze(0), ring)  # the oldest gradient replaced by this one
            keep = None if self.active is None else self.active.reshape(1, -1, *[1] * (g.ndim - 1))
            ring.assign(new if keep is None else keep.where(new, ring))
            # the mean of the whole window each step, not a running sum: no rounding drift over a long run
            out.append(self._each(full, g).where(g + self._each(self.lamb, g) * new.mean(0), g))
        self._tick()
        return out

    def state(self) -> dict[str, Tensor]:
        return self._state("ring", self.ring)


def make_filter(cfg: DictConfig, params: list[Tensor], each: Callable[..., Tensor] | None = None,
                active: Tensor | None = None) -> NoFilter | EMA | MA:  # fmt: skip
    """The filter the config group `grokfast` chose, with zero state for `params`; a pack's with `each(key, f)` the
    (K,) tensor of f(its members' values of grokfast.<key>), and `active` its (K,) mask of members that train."""
    value = (lambda key, f=None: cfg[key] if f is None else f(cfg[key])) if each is None else each
    if cfg.name == "ema":
        rest = None if each is None else each("alpha", lambda a: 1 - a)
        return EMA(params, value("alpha"), value("lamb"), active, rest)
    if cfg.name == "ma":
        return MA(params, cfg.window, value("lamb"), active)
    return NoFilter()
