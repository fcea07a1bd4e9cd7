"""Which jobs a pack launcher trains together: pure rules on the jobs' configs (tests/test_pack.py).

Jobs share a pack when every key that changes a kernel is the same (their shape: compile_cache.kernel_config's keys,
but for those a pack keeps per member); the members of a pack may differ in everything else: seed, weight_decay,
optim.lr, optim.warmup_steps, optim.min_lr, train_ratio, model.init_scale, Grokfast's lamb and alpha, steps and early
stopping, the host's keys. Jobs of another optimizer than AdamW, or continuing a run (init.from), train alone.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from grok_sweep.run.resources import BASE_BYTES, estimate
from grok_sweep.train.compile_cache import kernel_config

MAX_SIZE = 64  # members of a pack by default, at most
PER_MEMBER = {"grokfast": ("lamb", "alpha")}  # kernel keys a pack holds as (K,) tensors (and the optimizer's lrs)


def alone(cfg: Any) -> str | None:
    """Why a job trains alone, not in a pack (None: it may share one): a pack's optimizer is AdamW
    (train/pack_adamw.py), and its members start from fresh weights."""
    if cfg.optim.name != "adamw":
        return f"optim={cfg.optim.name} (a pack trains with AdamW only)"
    if cfg.init["from"] is not None:
        return "init.from (a pack's members start from fresh weights)"
    return None


def shape_key(cfg: Any) -> str:
    """What must be equal in the members of one pack, as one string."""
    kernels = kernel_config(cfg)
    for group, keys in PER_MEMBER.items():
        kernels[group] = {k: v for k, v in kernels[group].items() if k not in keys}
    return json.dumps(kernels, sort_keys=True)


def default_size(cfg: Any, available: Optional[int]) -> int:
    """Members per pack when hydra.launcher.size is not given: 1 on the CPU (where single jobs are faster,
    docs/guide/pack.md), else as many as `available` bytes hold by the memory estimate, at most MAX_SIZE."""
    if cfg.train.device.split(":")[0].upper() == "CPU":
        return 1
    budget = cfg.train.max_memory_gb * 2**30 if cfg.train.max_memory_gb is not None else available
    if budget is None:
        return MAX_SIZE
    per_member = max(estimate(cfg).total - BASE_BYTES, 1)
    return int(max(1, min(MAX_SIZE, (budget - BASE_BYTES) // per_member)))


def packs(cfgs: list[Any], size: int) -> list[list[int]]:
    """The jobs (indices into `cfgs`) of each pack: those `alone` names one by one, then the others grouped by shape in
    the order they come, each group cut into packs of at most `size`, as even as that allows."""
    groups: dict[str, list[int]] = {}
    out = []
    for i, cfg in enumerate(cfgs):
        if alone(cfg) is not None:
            out.append([i])
        else:
            groups.setdefault(shape_key(cfg), []).append(i)
    for members in groups.values():
        n = -(-len(members) // size)  # packs in this group
        cut = [-(-len(members) * j // n) for j in range(n + 1)]  # sizes as even as can be, larger first
        out += [members[cut[j] : cut[j + 1]] for j in range(n)]
    return out
