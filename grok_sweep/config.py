"""Config schema: typed dataclasses registered in Hydra's ConfigStore, plus value checks.

Values live in conf/config.yaml; the dataclasses only fix names and types, so a typo or a
wrong type fails when Hydra composes the config, before any job starts. `validate` refuses
values that are well typed but impossible (train_ratio=1.5, width=30 with 4 heads, ...).
"""

from __future__ import annotations

import difflib
import importlib.util
import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig


@dataclass
class ModelConfig:
    heads: int = MISSING
    layers: int = MISSING
    mlp_width: Optional[int] = MISSING  # null means 4 * width, as in Nanda et al. 2023


@dataclass
class OptimConfig:
    lr: float = MISSING
    beta1: float = MISSING
    beta2: float = MISSING
    eps: float = MISSING


@dataclass
class TrainConfig:
    batch_size: Optional[int] = MISSING  # null means full batch
    device: str = MISSING  # a tinygrad device: CPU, CUDA, NV, METAL, ...
    devices: int = MISSING  # spread a sweep's jobs over this many devices of that kind (see job_device)
    loss_dtype: str = MISSING  # float64 or float32, see model.cross_entropy
    beam: int = MISSING  # tinygrad BEAM search width for the step's kernels; 0 = off
    flush_denormals: bool = MISSING  # CPU: subnormal floats read and written as 0 while training
    checkpoint_every: int = MISSING  # steps between checkpoints (and metrics flushes); 0 = never
    keep_checkpoint: bool = MISSING  # keep a finished job's checkpoint


@dataclass
class Config:
    modulus: int = MISSING
    train_ratio: float = MISSING
    weight_decay: float = MISSING
    width: int = MISSING
    seed: int = MISSING
    steps: int = MISSING
    eval_every: int = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def register() -> None:
    """Register the schema under a name distinct from the YAML's (Hydra needs them apart)."""
    ConfigStore.instance().store(name="base_config", node=Config)


class ConfigError(ValueError):
    """A config value that is well typed but not allowed; the message is one line."""


def split_sizes(modulus: int, train_ratio: float) -> tuple[int, int]:
    """Train and test sizes: floor(train_ratio * p^2) pairs train, the rest test."""
    total = modulus * modulus
    # the epsilon keeps 0.29 * 100 = 28.999999999999996 from flooring to 28
    n_train = math.floor(train_ratio * total + 1e-9)
    return n_train, total - n_train


def validate(cfg: DictConfig | Config) -> None:
    """Raise ConfigError naming the first bad key, its value and what is allowed."""
    if found := problems(cfg):
        raise ConfigError(found[0])


def problems(cfg: DictConfig | Config) -> list[str]:
    """Every bad value in `cfg`, one line each: the key, its value and what is allowed."""
    found: list[str] = []

    def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
        if not ok:
            found.append(f"{key}={value!r} is not allowed: {allowed}")

    m, o, t = cfg.model, cfg.optim, cfg.train
    _check(cfg.modulus >= 2, "modulus", cfg.modulus, "an integer >= 2")
    _check(0 < cfg.train_ratio < 1, "train_ratio", cfg.train_ratio, "a fraction strictly between 0 and 1")
    n_train, n_test = split_sizes(cfg.modulus, cfg.train_ratio)
    pairs = f"for modulus={cfg.modulus} ({cfg.modulus**2} pairs)"
    if 0 < cfg.train_ratio < 1:  # the sizes say more only for a ratio in range
        _check(n_train >= 1, "train_ratio", cfg.train_ratio, f"it leaves the train split empty {pairs}")
        _check(n_test >= 1, "train_ratio", cfg.train_ratio, f"it leaves the test split empty {pairs}")
    _check(cfg.weight_decay >= 0, "weight_decay", cfg.weight_decay, "a number >= 0")
    _check(m.heads >= 1, "model.heads", m.heads, "an integer >= 1")
    if m.heads >= 1:
        _check(cfg.width >= 1 and cfg.width % m.heads == 0, "width", cfg.width,
               f"a positive multiple of model.heads={m.heads}")  # fmt: skip
    _check(cfg.seed >= 0, "seed", cfg.seed, "an integer >= 0")
    _check(cfg.steps >= 1, "steps", cfg.steps, "an integer >= 1")
    _check(cfg.eval_every >= 1, "eval_every", cfg.eval_every, "an integer >= 1")
    _check(m.layers >= 1, "model.layers", m.layers, "an integer >= 1")
    _check(m.mlp_width is None or m.mlp_width >= 1, "model.mlp_width", m.mlp_width, "null (4 * width) or >= 1")
    _check(o.lr > 0, "optim.lr", o.lr, "a number > 0")
    _check(0 <= o.beta1 < 1, "optim.beta1", o.beta1, "a number in [0, 1)")
    _check(0 <= o.beta2 < 1, "optim.beta2", o.beta2, "a number in [0, 1)")
    _check(o.eps > 0, "optim.eps", o.eps, "a number > 0")
    _check(
        t.batch_size is None or 1 <= t.batch_size <= n_train,
        "train.batch_size",
        t.batch_size,
        f"null (full batch) or 1..{n_train}, the train split's size",
    )
    _check(t.loss_dtype in ("float32", "float64"), "train.loss_dtype", t.loss_dtype, "float32 or float64")
    _check(t.checkpoint_every >= 0, "train.checkpoint_every", t.checkpoint_every, "0 (never) or a number of steps")
    _check(t.beam >= 0, "train.beam", t.beam, "0 (off) or a search width >= 1")
    devices = _devices()
    _check(t.device.split(":")[0].upper() in devices, "train.device", t.device,
           f"a tinygrad device, one of {', '.join(devices)}")  # fmt: skip
    _check(t.devices >= 1, "train.devices", t.devices, "an integer >= 1")
    _check(t.devices == 1 or ":" not in t.device, "train.devices", t.devices,
           f"1 with train.device={t.device} (one device); name the kind alone (CUDA) to spread jobs")  # fmt: skip
    return found


def job_device(device: str, devices: int, job_num: int) -> str:
    """The device job number `job_num` of a sweep trains on: with devices=N, jobs take the kind's
    devices 0..N-1 in turn (CUDA -> CUDA:0, CUDA:1, ...), so the jobs that run at once on a
    multi-GPU machine each have a GPU; with devices=1, `device` itself."""
    return device if devices == 1 else f"{device}:{job_num % devices}"


def _devices() -> list[str]:
    from tinygrad import Device

    return sorted(Device._devices)


def schema_keys(node: type = Config, prefix: str = "") -> list[str]:
    """Every config key as written on the command line: modulus, optim.lr, ..."""
    keys = []
    for f in fields(node):
        sub = f.default_factory if is_dataclass(f.default_factory) else None
        keys += schema_keys(sub, f"{prefix}{f.name}.") if sub else [f"{prefix}{f.name}"]
    return keys


def expand_sweep(overrides: list[str]) -> tuple[list[Any], list[list[str]]]:
    """Hydra's parsed overrides and the jobs the basic sweeper makes of them, as override lists."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return parsed, BasicSweeper.split_arguments(parsed, None)[0]


# launchers whose Hydra plugin is an optional extra: module to import, extra to install
LAUNCHER_EXTRAS = {
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
    "ray_cluster": ("hydra_plugins.hydra_ray_launcher", "ray"),
}


def _missing_launcher(args: list[str]) -> list[str]:
    for arg in args:
        key, _, name = arg.partition("=")
        if key.lstrip("+~") == "hydra/launcher" and name in LAUNCHER_EXTRAS:
            module, extra = LAUNCHER_EXTRAS[name]
            if importlib.util.find_spec(module) is None:
                return [f"hydra/launcher={name} needs its Hydra plugin: pip install -e '.[{extra}]'"]
    return []


def check_command_line(args: list[str], conf_dir: Path) -> list[str]:
    """Every problem in every job a command line asks for, one line each, before anything runs."""
    if missing := _missing_launcher(args):
        return missing
    try:
        parsed, jobs = expand_sweep([a for a in args if "=" in a and not a.startswith("-")])
    except Exception:  # noqa: BLE001 - not ours to judge: Hydra reports bad override syntax itself
        return []
    known, problems = schema_keys(), []
    for o in parsed:
        key = o.get_key_element().lstrip("+~")
        if key.split(".")[0].split("/")[0] == "hydra" or (conf_dir / key).is_dir() or key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        problems.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if problems:
        return problems
    for job in jobs:
        task = [o for o in job if not o.lstrip("+~").startswith("hydra")]
        prefix = f"job {','.join(sorted(task))}: " if len(jobs) > 1 else ""
        problems += [prefix + p for p in _check_job(task, conf_dir)]
    return problems


def _check_job(overrides: list[str], conf_dir: Path) -> list[str]:
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir)):
            cfg = compose("config", overrides=overrides)
    except Exception as err:  # noqa: BLE001 - Hydra's composition errors: wrong types, bad groups
        cause = err.__cause__ or err
        key = getattr(cause, "full_key", None)
        return [(f"{key}: " if key else "") + str(cause).strip().splitlines()[0]]
    return problems(cfg)
