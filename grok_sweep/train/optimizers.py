"""The optimizers of the config group `optim` (conf/optim/): AdamW, Adam with L2, SGD with momentum, Muon.

Each is tinygrad's rule (nn/optim.py) over a job's parameters, fused into one update kernel where the rule is
elementwise, with two numbers on the device instead of in the kernels: the learning rate (train/schedule.py sets it
before every update) and the weight decay, so jobs that differ only in them share their compiled steps. Weight decay
as each optimizer defines it: AdamW's decoupled (p -= lr * wd * p), Adam's and SGD's coupled L2 (g += wd * p), Muon's
decoupled (p *= 1 - lr * wd, as torch.optim.Muon). Grokfast's filter and ⊥Grad act on the gradients before any of
them (trainer.py).
"""

from __future__ import annotations

import math
from typing import Any

from tinygrad import Tensor
from tinygrad.nn.optim import LAMB, LARS, AdamW, Optimizer, OptimizerGroup

NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)  # Keller Jordan's quintic Newton-Schulz iteration (torch.optim.Muon's)


class AdamL2(LAMB):
    """Adam with coupled L2 weight decay (torch.optim.Adam(weight_decay=wd)): Adam's update of g + wd * p."""

    def __init__(self, params: list[Tensor], wd: Tensor, **adam: Any):
        super().__init__(params, weight_decay=0.0, adam=True, fused=True, **adam)
        self.l2 = wd

    def _step(self, params: list[Tensor], grads: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        return super()._step(params, [g + self.l2 * p.detach() for p, g in zip(params, grads, strict=True)])


class SGDL2(LARS):
    """SGD with momentum and coupled L2 weight decay (torch.optim.SGD): g += wd * p; buf = momentum * buf + g;
    p -= lr * (g + momentum * buf if nesterov else buf)."""

    def __init__(self, params: list[Tensor], lr: float, wd: Tensor, momentum: float, nesterov: bool):
        super().__init__(params, lr, momentum, 0.0, nesterov=nesterov, classic=False, tcoef=0.0, fused=True)
        self.l2 = wd

    def _step(self, params: list[Tensor], grads: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        return super()._step(params, [g + self.l2 * p.detach() for p, g in zip(params, grads, strict=True)])


class Muon(Optimizer):
    """Muon on 2-D matrices stored (fan_in, fan_out), as torch.optim.Muon on its (fan_out, fan_in) weights:
    buf = momentum * buf + (1 - momentum) * g;  u = (1 - momentum) * g + momentum * buf if nesterov else buf;
    p = p * (1 - lr * wd) - lr * sqrt(max(1, fan_out / fan_in)) * NewtonSchulz(u) (in float32; torch's in bfloat16)."""

    def __init__(self, params: list[Tensor], lr: float, wd: Tensor, momentum: float, nesterov: bool, ns_steps: int):
        super().__init__(params, lr, fused=False)
        self.wd, self.momentum, self.nesterov, self.ns_steps = wd, momentum, nesterov, ns_steps
        self.b = self._new_optim_param()

    def _step(self, params: list[Tensor], grads: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        ups, mu = [], self.momentum
        for p, g, b in zip(params, grads, self.b, strict=True):
            b.assign(mu * b + (1 - mu) * g)
            u = (1 - mu) * g + mu * b if self.nesterov else b
            scale = math.sqrt(max(1.0, p.shape[1] / p.shape[0]))
            ortho = u.newton_schulz(self.ns_steps, NS_COEFFICIENTS)
            ups.append(self.lr * self.wd * p.detach() + (self.lr * scale) * ortho)
        return ups, self.b


def make(cfg: Any, params: list[Tensor], hidden: list[Tensor], wd: Tensor) -> Optimizer:
    """The optimizer `cfg.optim` names over `params`; Muon takes the 2-D hidden matrices `hidden` (model/family.py
    hidden_matrices) and an AdamW the rest."""
    o = cfg.optim
    if o.name == "adamw":
        return _adamw(params, o.lr, o, wd)
    if o.name == "adam":
        return AdamL2(params, wd, lr=o.lr, b1=o.beta1, b2=o.beta2, eps=o.eps)
    if o.name == "sgd":
        return SGDL2(params, o.lr, wd, o.momentum, o.nesterov)
    ids = {id(t) for t in hidden}
    muon = Muon(hidden, o.lr, wd, o.momentum, o.nesterov, o.ns_steps)
    return OptimizerGroup(muon, _adamw([p for p in params if id(p) not in ids], o.adam_lr, o, wd))


def _adamw(params: list[Tensor], lr: float, o: Any, wd: Tensor) -> Optimizer:
    """tinygrad's AdamW, fused, its weight decay the device tensor `wd` (a constant 0 to build it: replaced)."""
    opt = AdamW(params, lr=lr, b1=o.beta1, b2=o.beta2, eps=o.eps, weight_decay=0.0, fused=True)
    opt.wd = wd
    return opt


def schedule_step(opt: Optimizer, factor: Tensor) -> list[Tensor]:
    """Inside a jitted step: the update of every parameter from its .grad at this update's learning rates, each
    optimizer's own lr (a (1,) tensor: optim.lr, Muon's AdamW part's optim.adam_lr) times the schedule's `factor`;
    the tensors to realize. Each optimizer's .lr stays its base lr between steps."""
    opts = getattr(opt, "optimizers", [opt])
    base = [o.lr for o in opts]
    for o, lr in zip(opts, base, strict=True):
        o.lr = lr * factor
    try:
        return opt.schedule_step()
    finally:
        for o, lr in zip(opts, base, strict=True):
            o.lr = lr


def state(opt: Optimizer) -> dict[str, Tensor]:
    """The optimizer's state by name, as a checkpoint holds it: AdamW's opt.m.i, opt.v.i, opt.b1_t, opt.b2_t (the
    names of every earlier version), momentum buffers opt.b.i, Muon's AdamW part under opt.adam."""
    out: dict[str, Tensor] = {}
    for prefix, o in zip(("opt", "opt.adam"), getattr(opt, "optimizers", [opt]), strict=False):
        for name in ("m", "v", "b"):
            out.update({f"{prefix}.{name}.{i}": t for i, t in enumerate(getattr(o, name, []))})
        if hasattr(o, "b1_t"):
            out.update({f"{prefix}.b1_t": o.b1_t, f"{prefix}.b2_t": o.b2_t})
    return out
