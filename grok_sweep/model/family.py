"""The model families (config group `model`): which model a job's config builds, and how training reads each, so
that the trainer, a pack and the measures never branch on the family themselves.

- transformer: Nanda et al.'s GPT (gpt.py), trained through its fast forms (forward.py, packed.py);
- mlp: Prieto et al.'s MLP (mlp.py); quadratic: Gromov's quadratic MLP (quadratic.py). Both are their plain
  function, and hold a pack's members as themselves with a leading member axis on every weight.

Every family has `layers()` (each layer's parameters, input first) and `input_blocks()` (the first layer's weights
over the p values of an input, (p, units) each): each layer's weight norm and the IPR (weight_measures.py) at
every eval read them, and `hidden_matrices` (Muon's) is read from the layers.
"""

from __future__ import annotations

from typing import Any, Union

import numpy as np
from tinygrad import Tensor
from tinygrad.nn.state import get_parameters, get_state_dict

from grok_sweep.model import forward
from grok_sweep.model.gpt import GPT
from grok_sweep.model.mlp import MLP
from grok_sweep.model.packed import PackedGPT
from grok_sweep.model.quadratic import Quadratic
from grok_sweep.model.sizes import family, mlp_width

Model = Union[GPT, MLP, Quadratic]
Groups = tuple[Tensor, Tensor]


def job_model(cfg: Any, rng: np.random.Generator, device: str) -> Model:
    """The model a job of `cfg` trains, its weights drawn from `rng`, then times model.init_scale (Omnigrok's
    alpha: a smaller initial weight norm)."""
    m, name = cfg.model, family(cfg)
    if name == "mlp":
        model = MLP(rng, cfg.modulus, cfg.width, m.layers, m.bias, device)
    elif name == "quadratic":
        model = Quadratic(rng, cfg.modulus, cfg.width, m.mean_field, device)
    else:
        model = GPT(rng, cfg.modulus, cfg.width, m.heads, m.layers, mlp_width(cfg), device)
    scale = getattr(m, "init_scale", 1.0)  # absent from the config of a job of an earlier version
    if scale != 1.0:  # x * 1.0 would change no bit either; skipping it keeps the plain init's kernels away
        for w in get_parameters(model):
            w.assign(w * scale).realize()
    return model


def hidden_matrices(model: Model) -> list[Tensor]:
    """The 2-D weights of every layer but the first (embedding, or an MLP's layer on one-hot inputs) and the last
    (read-out): what optim=muon trains with Muon. The transformer: each block's W_Q, W_K, W_V, W_O, W_in, W_out;
    an MLP: its hidden-to-hidden layers (none with model.layers=1); the quadratic model: none."""
    return [p for layer in model.layers()[1:-1] for p in layer if p.ndim == 2]


def logits(model: Model, x: Tensor, groups: Groups | None = None) -> Tensor:
    """Tokens (batch, 3) -> logits (batch, p): the transformer through its fast forward (forward.py), the others
    as they are."""
    return forward.logits(model, x, groups) if isinstance(model, GPT) else model(x)


def folded(model: Model) -> bool:
    """Whether training reads lookup groups of its batches (the folded transformer's, forward.py)."""
    return isinstance(model, GPT) and forward.folded(model)


def stacked(models: list[Model], device: str) -> Any:
    """K models of one shape as one, each weight stacked on a leading member axis (bit for bit each member's)."""
    if isinstance(models[0], GPT):
        return PackedGPT(models, device)
    states = [get_state_dict(m) for m in models]
    return _with(models[0], {n: Tensor(np.stack([s[n].numpy() for s in states]), device=device) for n in states[0]})


def member(packed: Any, i: int) -> Model:
    """Member i of `stacked`'s model, its weights views of the stacked ones whose gradients are written alone (else
    tinygrad computes the members' gradients in one kernel over the stack, rounding in another order)."""
    if isinstance(packed, PackedGPT):
        return packed.member(i)
    return _with(packed, {n: t[i].contiguous_backward() for n, t in get_state_dict(packed).items()})


def _with(model: Model, tensors: dict[str, Tensor]) -> Model:
    """A copy of an MLP or Quadratic with its weights replaced by `tensors` (named as its state dict)."""
    out = object.__new__(type(model))
    for attr, value in vars(model).items():
        if isinstance(value, Tensor):
            value = tensors[attr]
        elif isinstance(value, list) and value and isinstance(value[0], Tensor):
            value = [tensors[f"{attr}.{i}"] for i in range(len(value))]
        setattr(out, attr, value)
    return out
