"""Member k of a pack as a job's writer sees a trainer (run/job_folder.py): its log, step, device, state and weights.

A member's checkpoint holds what a single run's holds, by the same names and shapes (the AdamW moments of all its
parameters as one flat vector, as the single run's fused AdamW keeps them), so a job trained in a pack resumes in a
pack or alone, and one trained alone resumes in a pack. Its tensors are cut from one host copy of the pack's stacked
state (Pack.host), whatever the number of members that save at a step.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from grok_sweep.train.pack import Pack


def _cut(name: str, a: np.ndarray, k: int) -> np.ndarray:
    """Member k's part of a stacked array: a Grokfast ring keeps the member axis second."""
    if name.startswith("grokfast.ring."):
        return a[:, k]
    return a[k : k + 1] if a.ndim == 1 else a[k]


def _flat(host: dict[str, np.ndarray], kind: str, k: int) -> np.ndarray:
    parts, i = [], 0
    while f"{kind}.{i}" in host:
        parts.append(host[f"{kind}.{i}"][k].ravel())
        i += 1
    return np.concatenate(parts)


class PackMember:
    def __init__(self, pack: Pack, k: int):
        self.pack, self.k = pack, k
        m = pack.members[k]
        self.cfg, self.log, self.early_stop = pack.cfgs[k], m.log, m.early_stop
        self.device, self.cache = pack.device, None

    @property
    def step(self) -> int:
        """The updates it has taken: its end once ended, else the pack's step (its own first until it starts)."""
        m = self.pack.members[self.k]
        return m.end if m.end is not None else max(self.pack.step, m.first)

    def weights(self) -> dict[str, np.ndarray]:
        host = self.pack.host()
        return {n.removeprefix("model."): a[self.k] for n, a in host.items() if n.startswith("model.")}

    def state(self) -> dict[str, np.ndarray]:
        """As trainer.Trainer.state names it."""
        host, k = self.pack.host(), self.k
        out = {n: _cut(n, a, k) for n, a in host.items() if not n.startswith(("m.", "v."))}
        out |= {"opt.m.0": _flat(host, "m", k), "opt.v.0": _flat(host, "v", k)}
        return {**out, "counter": np.array([self.step], dtype=np.int32)}

    def host_state(self) -> dict[str, Any]:
        rng = self.pack.batch_rngs[self.k].bit_generator.state
        return {"step": self.step, "batch_rng": rng, "early_stop": self.early_stop.since}


def restore(pack: Pack, states: dict[int, tuple[dict[str, np.ndarray], dict, Path]]) -> None:
    """Members continuing from their checkpoints ({k: (arrays, host state, folder)}): each stacked tensor is written
    once; each member resumes at its own step, and the pack at the earliest."""
    if not states:
        return
    host = {n: a.copy() for n, a in pack.host().items()}
    for k, (arrays, meta, folder) in states.items():
        for name, a in host.items():
            if name.startswith(("m.", "v.")):
                continue
            part = arrays[name]
            if name.startswith("grokfast.ring."):
                a[:, k] = part
            elif a.ndim == 1:
                a[k] = part[0]
            else:
                a[k] = part.reshape(a.shape[1:])
        for kind in ("m", "v"):
            flat, at, i = arrays[f"opt.{kind}.0"], 0, 0
            while f"{kind}.{i}" in host:
                size = host[f"{kind}.{i}"][k].size
                host[f"{kind}.{i}"][k] = flat[at : at + size].reshape(host[f"{kind}.{i}"].shape[1:])
                at, i = at + size, i + 1
        m = pack.members[k]
        m.first = meta["step"]
        pack.batch_rngs[k].bit_generator.state = meta["batch_rng"]
        m.log.restore(folder, m.first)
        if "early_stop" in meta:
            m.early_stop.since = meta["early_stop"]
        else:
            m.early_stop.restore(m.log.column("test_acc")[: m.first])
    from tinygrad import Tensor

    for name, t in pack.state_tensors().items():
        t.assign(Tensor(host[name], device=t.device)).realize()
    pack.step = min(m.first for m in pack.members)
    pack.schedule.restore([m.first for m in pack.members])
    pack._host = None
    # the train ring's slots are steps (Ring.take); the eval ring's, eval calls of this process (from 0)
    counter = pack.train_rows.counter
    counter.assign(Tensor([pack.step], dtype=counter.dtype, device=pack.device)).realize()
