"""Config schema: typed dataclasses registered in Hydra's ConfigStore, plus value checks.

Values live in conf/config.yaml; the dataclasses only fix names and types, so a typo or a
wrong type fails when Hydra composes the config, before any job starts. `validate` refuses
values that are well typed but impossible (train_ratio=1.5, width=30 with 4 heads, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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
    loss_dtype: str = MISSING  # float64 or float32, see model.cross_entropy


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


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def validate(cfg: DictConfig | Config) -> None:
    """Raise ConfigError naming the first bad key, its value and what is allowed."""
    m, o, t = cfg.model, cfg.optim, cfg.train
    _check(cfg.modulus >= 2, "modulus", cfg.modulus, "an integer >= 2")
    _check(0 < cfg.train_ratio < 1, "train_ratio", cfg.train_ratio, "a fraction strictly between 0 and 1")
    n_train, n_test = split_sizes(cfg.modulus, cfg.train_ratio)
    _check(
        n_train >= 1,
        "train_ratio",
        cfg.train_ratio,
        f"it leaves the train split empty for modulus={cfg.modulus} ({cfg.modulus**2} pairs)",
    )
    _check(
        n_test >= 1,
        "train_ratio",
        cfg.train_ratio,
        f"it leaves the test split empty for modulus={cfg.modulus} ({cfg.modulus**2} pairs)",
    )
    _check(cfg.weight_decay >= 0, "weight_decay", cfg.weight_decay, "a number >= 0")
    _check(m.heads >= 1, "model.heads", m.heads, "an integer >= 1")
    _check(
        cfg.width >= 1 and cfg.width % m.heads == 0, "width", cfg.width, f"a positive multiple of model.heads={m.heads}"
    )
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
    _check_device(t.device)


def _check_device(device: str) -> None:
    from tinygrad import Device

    backend = device.split(":")[0].upper()
    known = sorted(Device._devices)
    _check(backend in known, "train.device", device, f"a tinygrad device, one of {', '.join(known)}")
