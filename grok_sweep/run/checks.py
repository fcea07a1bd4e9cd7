"""Value checks of a composed config: well typed but impossible values (train_ratio=1.5, width=30 with 4 heads,
operation=div with modulus=32, ...) refused in one line each, naming the key, its value and what is allowed."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from grok_sweep.data.tasks import MEASURED, operation_problem, split_sizes
from grok_sweep.model.sizes import family
from grok_sweep.run import parent
from grok_sweep.run.config import GROKFAST, LOSSES, OPTIMS, SCHEDULES, Config


class ConfigError(ValueError):
    """A config value that is well typed but not allowed; the message is one line."""


def validate(cfg: DictConfig | Config) -> None:
    """Raise ConfigError naming the first bad key, its value and what is allowed."""
    if found := problems(cfg):
        raise ConfigError(found[0])


def problems(cfg: DictConfig | Config) -> list[str]:
    """Every bad value in `cfg`, one line each: the key, its value and what is allowed."""
    found: list[str] = []

    def check(ok: bool, key: str, value: Any, allowed: str) -> None:
        if not ok:
            found.append(f"{key}={value!r} is not allowed: {allowed}")

    for key, value in _floats(cfg):  # inf passes `lr > 0`, nan fails every comparison: one word for both
        check(math.isfinite(value), key, value, "a finite number")
    if found:
        return found
    for part in (_task_problems, _model_problems, _optim_problems, _train_problems, _grokfast_problems,
                 _loss_problems):  # fmt: skip
        part(cfg, check)
    return found + (_init_problems(cfg) if isinstance(cfg, DictConfig) else [])


def _floats(cfg: DictConfig | Config, prefix: str = "") -> list[tuple[str, float]]:
    """Every float value of the config, by its dotted key; every float key of the schema means a finite number."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    found = []
    for key, value in node.items():
        if isinstance(value, DictConfig):
            found += _floats(value, f"{prefix}{key}.")
        elif isinstance(value, float):
            found.append((f"{prefix}{key}", value))
    return found


def cautions(cfg: DictConfig | Config) -> list[str]:
    """Allowed values that likely work against each other, one line each: said once, before the jobs run."""
    found = []
    if cfg.train.constrain_norm and cfg.weight_decay > 0:
        found.append(f"train.constrain_norm=true with weight_decay={cfg.weight_decay:g}: the decay shrinks the "
                     "weights and the constraint scales them back every step; Omnigrok constrains with "
                     "weight_decay=0")  # fmt: skip
    return found


def _split_sizes(cfg: DictConfig | Config) -> Optional[tuple[int, int]]:
    """The train and test sizes, or None where the modulus or the operation rules the task out, or the job continues
    another run (init.from: a part of that run's split, _init_problems)."""
    if isinstance(cfg, DictConfig) and cfg.init["from"] is not None:
        return None
    if cfg.modulus < 2 or operation_problem(cfg.operation, cfg.modulus) is not None:
        return None
    return split_sizes(cfg.modulus, cfg.train_ratio, cfg.operation)


def _task_problems(cfg: DictConfig | Config, check: Callable[..., None]) -> None:
    op, p = cfg.operation, cfg.modulus
    check(p >= 2, "modulus", p, "an integer >= 2")
    why = operation_problem(op, p)
    if why and p >= 2:
        check(False, "operation", op, why)
    check(0 < cfg.train_ratio < 1, "train_ratio", cfg.train_ratio, "a fraction strictly between 0 and 1")
    sizes = _split_sizes(cfg)
    if sizes and 0 < cfg.train_ratio < 1:  # the sizes say more only for a ratio in range
        n_train, n_test = sizes
        pairs = f"for operation={op} modulus={p} ({n_train + n_test} pairs)"
        check(n_train >= 1, "train_ratio", cfg.train_ratio, f"it leaves the train split empty {pairs}")
        check(n_test >= 1, "train_ratio", cfg.train_ratio, f"it leaves the test split empty {pairs}")
    check(cfg.seed >= 0, "seed", cfg.seed, "an integer >= 0")
    check(cfg.steps >= 1, "steps", cfg.steps, "an integer >= 1")
    check(cfg.eval_every >= 1, "eval_every", cfg.eval_every, "an integer >= 1")
    check(not cfg.measures or op in MEASURED, "measures", cfg.measures,
          f"the progress measures are defined for operation={' or '.join(MEASURED)} only "
          f"(here operation={op})")  # fmt: skip
    name = family(cfg)
    check(not cfg.measures or name == "transformer", "measures", cfg.measures,
          f"the progress measures read the transformer's attention and MLP (here model={name}); every model has "
          "the ipr and layer_norms columns")  # fmt: skip


def _model_problems(cfg: DictConfig | Config, check: Callable[..., None]) -> None:
    m, name = cfg.model, family(cfg)
    if name != "transformer":
        check(cfg.width >= 1, "width", cfg.width, "an integer >= 1")
    else:
        check(m.heads >= 1, "model.heads", m.heads, "an integer >= 1")
        if m.heads >= 1:
            check(cfg.width >= 1 and cfg.width % m.heads == 0, "width", cfg.width,
                  f"a positive multiple of model.heads={m.heads}")  # fmt: skip
        check(m.mlp_width is None or m.mlp_width >= 1, "model.mlp_width", m.mlp_width, "null (4 * width) or >= 1")
    if name != "quadratic":
        check(m.layers >= 1, "model.layers", m.layers, "an integer >= 1")
    check(math.isfinite(m.init_scale) and m.init_scale > 0, "model.init_scale", m.init_scale,
          "a finite number > 0 (1 = the plain init)")  # fmt: skip


def _optim_problems(cfg: DictConfig | Config, check: Callable[..., None]) -> None:
    o = cfg.optim
    check(cfg.weight_decay >= 0, "weight_decay", cfg.weight_decay, "a number >= 0")
    if not _group_fits("optim", o, OPTIMS, check):
        return
    check(o.lr > 0, "optim.lr", o.lr, "a number > 0")
    check(o.warmup_steps >= 0, "optim.warmup_steps", o.warmup_steps, "0 (none) or a number of updates")
    check(o.schedule in SCHEDULES, "optim.schedule", o.schedule, " or ".join(SCHEDULES))
    check(0 <= o.min_lr <= o.lr, "optim.min_lr", o.min_lr, f"a number in [0, optim.lr={o.lr}]")
    have = set(o.keys())
    if "beta1" in have:
        check(0 <= o.beta1 < 1, "optim.beta1", o.beta1, "a number in [0, 1)")
        check(0 <= o.beta2 < 1, "optim.beta2", o.beta2, "a number in [0, 1)")
        check(o.eps > 0, "optim.eps", o.eps, "a number > 0")
    if "momentum" in have:
        check(0 <= o.momentum < 1, "optim.momentum", o.momentum, "a number in [0, 1)")
    if o.name == "muon":
        check(o.ns_steps >= 1, "optim.ns_steps", o.ns_steps, "an integer >= 1")
        check(o.adam_lr > 0, "optim.adam_lr", o.adam_lr, "a number > 0")
        which = f"model={family(cfg)}" + (f" with model.layers={cfg.model.layers}" if family(cfg) == "mlp" else "")
        check(_has_hidden_matrix(cfg), "optim", o.name, f"{which} has no 2-D hidden matrix for Muon (an MLP with "
              "model.layers >= 2 and the transformer have)")  # fmt: skip


def _has_hidden_matrix(cfg: DictConfig | Config) -> bool:
    """Whether the model has a matrix family.hidden_matrices returns (tests/test_optimizers.py holds the two to
    agree): every transformer block's; an MLP's between hidden layers; the quadratic model's none."""
    name = family(cfg)
    return name == "transformer" or (name == "mlp" and cfg.model.layers >= 2)


def _init_problems(cfg: DictConfig | Config) -> list[str]:
    """init.from's refusals (run/parent.py), and a mini-batch larger than the parent's pairs it trains on."""
    found = parent.problems(cfg)
    if not found and cfg.init["from"] is not None and cfg.train.batch_size is not None:
        n_train = parent.sizes(cfg)[0]
        if not 1 <= cfg.train.batch_size <= n_train:
            found.append(f"train.batch_size={cfg.train.batch_size} is not allowed: null (full batch) or 1..{n_train}, "
                         "the pairs it trains on (init.subset)")  # fmt: skip
    return found


def _train_problems(cfg: DictConfig | Config, check: Callable[..., None]) -> None:
    t = cfg.train
    if sizes := _split_sizes(cfg):
        n_train = sizes[0]
        check(t.batch_size is None or 1 <= t.batch_size <= n_train, "train.batch_size", t.batch_size,
              f"null (full batch) or 1..{n_train}, the train split's size")  # fmt: skip
    check(t.loss_dtype in ("float32", "float64"), "train.loss_dtype", t.loss_dtype, "float32 or float64")
    check(t.checkpoint_every >= 0, "train.checkpoint_every", t.checkpoint_every, "0 (never) or a number of steps")
    check(t.beam >= 0, "train.beam", t.beam, "0 (off) or a search width >= 1")
    check(t.snapshot_every >= 0, "train.snapshot_every", t.snapshot_every, "0 (off) or a number of steps")
    check(t.early_stop >= 0, "train.early_stop", t.early_stop, "0 (off) or a number of steps")
    check(0 < t.early_stop_acc <= 1, "train.early_stop_acc", t.early_stop_acc, "an accuracy in (0, 1]")
    devices = _devices()
    check(t.device.split(":")[0].upper() in devices, "train.device", t.device,
          f"a tinygrad device, one of {', '.join(devices)}")  # fmt: skip
    check(t.devices >= 1, "train.devices", t.devices, "an integer >= 1")
    check(t.max_memory_gb is None or t.max_memory_gb > 0, "train.max_memory_gb", t.max_memory_gb,
          "null (the memory available) or a number of GiB > 0")  # fmt: skip
    check(t.devices == 1 or ":" not in t.device, "train.devices", t.devices,
          f"1 with train.device={t.device} (one device); name the kind alone (CUDA) to spread jobs")  # fmt: skip


def _group_fits(group: str, node: Any, schemas: dict[str, type], check: Callable[..., None]) -> bool:
    """Whether a config group's values are those of the choice its name says (grokfast.name=ma with ema's
    values is not)."""
    schema = schemas.get(node.name)
    if schema is None or set(node.keys()) != {f.name for f in fields(schema)}:
        check(False, f"{group}.name", node.name, f"set by the group: choose with {group}={'|'.join(schemas)}")
        return False
    return True


def _loss_problems(cfg: DictConfig | Config, check: Callable[..., None]) -> None:
    _group_fits("loss", cfg.loss, LOSSES, check)


def _grokfast_problems(cfg: DictConfig | Config, check: Callable[..., None]) -> None:
    g = cfg.grokfast
    if not _group_fits("grokfast", g, GROKFAST, check):
        return
    have = set(g.keys())
    if "lamb" in have:
        check(g.lamb >= 0, "grokfast.lamb", g.lamb, "a number >= 0")
    if "alpha" in have:
        check(0 <= g.alpha < 1, "grokfast.alpha", g.alpha, "a number in [0, 1)")
    if "window" in have:
        check(g.window >= 1, "grokfast.window", g.window, "an integer >= 1")


def _devices() -> list[str]:
    """tinygrad's devices, as tinygrad lists them (a runtime/ops_<name>.py each), without importing it."""
    spec = importlib.util.find_spec("tinygrad")
    runtime = Path(next(iter(spec.submodule_search_locations))) / "runtime" if spec else None
    found = runtime.iterdir() if runtime and runtime.is_dir() else []
    return sorted({p.stem[len("ops_") :].upper() for p in found if p.stem.startswith("ops_")})
