"""Config schema: typed dataclasses registered in Hydra's ConfigStore, plus value checks.

Values live in conf/config.yaml (and conf/grokfast/*.yaml for the config group); the dataclasses
only fix names and types, so a typo or a wrong type fails when Hydra composes the config, before
any job starts. `validate` refuses values that are well typed but impossible (train_ratio=1.5,
width=30 with 4 heads, operation=div with modulus=32, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from grok_sweep.measures import OPERATIONS as MEASURED_OPERATIONS
from grok_sweep.tasks import operation_problem, split_sizes


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
    compile_cache: bool = MISSING  # reuse the captured step from an earlier job of the same shapes (jit_cache.py)
    checkpoint_every: int = MISSING  # steps between checkpoints (and metrics flushes); 0 = never
    keep_checkpoint: bool = MISSING  # keep a finished job's checkpoint
    snapshot_every: int = MISSING  # keep the weights every this many steps in snapshots/; 0 = off
    early_stop: int = MISSING  # end once test acc has held >= early_stop_acc for this many steps; 0 = off
    early_stop_acc: float = MISSING
    max_memory_gb: Optional[float] = MISSING  # refuse a job whose memory estimate exceeds this; null: what is free


# the config group `grokfast` (conf/grokfast/<name>.yaml): one schema per filter, see grok_sweep/grokfast.py
@dataclass
class GrokfastConfig:
    name: str = MISSING  # none, ema or ma: which filter; set by the group's YAML


@dataclass
class GrokfastEMA(GrokfastConfig):
    alpha: float = MISSING  # mu = alpha * mu + (1 - alpha) * g
    lamb: float = MISSING  # the optimizer sees g + lamb * mu


@dataclass
class GrokfastMA(GrokfastConfig):
    window: int = MISSING  # the last `window` raw gradients, the current one included
    lamb: float = MISSING  # the optimizer sees g + lamb * their mean


GROKFAST = {"none": GrokfastConfig, "ema": GrokfastEMA, "ma": GrokfastMA}


@dataclass
class Config:
    operation: str = MISSING  # a key of tasks.OPERATIONS
    modulus: int = MISSING
    train_ratio: float = MISSING
    weight_decay: float = MISSING
    width: int = MISSING
    seed: int = MISSING
    steps: int = MISSING
    eval_every: int = MISSING
    measures: bool = MISSING  # Nanda et al.'s progress measures at every eval (grok_sweep/measures.py)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    grokfast: GrokfastConfig = MISSING  # chosen with grokfast=none|ema|ma


def register() -> None:
    """Register the schemas under names distinct from the YAMLs' (Hydra needs them apart)."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for name, node in GROKFAST.items():
        cs.store(group="grokfast", name=f"base_{name}", node=node)


class ConfigError(ValueError):
    """A config value that is well typed but not allowed; the message is one line."""


def first_line(err: BaseException) -> str:
    """An exception's message cut to its first line (its type's name if it has none), for one-line errors."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


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

    for part in (_task_problems, _model_problems, _optim_problems, _train_problems, _grokfast_problems):
        part(cfg, check)
    return found


def _split_sizes(cfg: DictConfig | Config) -> Optional[tuple[int, int]]:
    """The train and test sizes, or None where the modulus or the operation rules the task out."""
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
    check(not cfg.measures or op in MEASURED_OPERATIONS, "measures", cfg.measures,
          f"the progress measures are defined for operation={' or '.join(MEASURED_OPERATIONS)} only "
          f"(here operation={op})")  # fmt: skip


def _model_problems(cfg: DictConfig | Config, check: Callable[..., None]) -> None:
    m = cfg.model
    check(m.heads >= 1, "model.heads", m.heads, "an integer >= 1")
    if m.heads >= 1:
        check(cfg.width >= 1 and cfg.width % m.heads == 0, "width", cfg.width,
              f"a positive multiple of model.heads={m.heads}")  # fmt: skip
    check(m.layers >= 1, "model.layers", m.layers, "an integer >= 1")
    check(m.mlp_width is None or m.mlp_width >= 1, "model.mlp_width", m.mlp_width, "null (4 * width) or >= 1")


def _optim_problems(cfg: DictConfig | Config, check: Callable[..., None]) -> None:
    o = cfg.optim
    check(cfg.weight_decay >= 0, "weight_decay", cfg.weight_decay, "a number >= 0")
    check(o.lr > 0, "optim.lr", o.lr, "a number > 0")
    check(0 <= o.beta1 < 1, "optim.beta1", o.beta1, "a number in [0, 1)")
    check(0 <= o.beta2 < 1, "optim.beta2", o.beta2, "a number in [0, 1)")
    check(o.eps > 0, "optim.eps", o.eps, "a number > 0")


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


def _grokfast_problems(cfg: DictConfig | Config, check: Callable[..., None]) -> None:
    g = cfg.grokfast
    schema = GROKFAST.get(g.name)
    have = {f.name for f in fields(schema)} if schema else set()
    if schema is None or set(g.keys()) != have:  # a name that does not match the group's values
        check(False, "grokfast.name", g.name, f"set by the group: choose the filter with grokfast={'|'.join(GROKFAST)}")
        return
    if "lamb" in have:
        check(g.lamb >= 0, "grokfast.lamb", g.lamb, "a number >= 0")
    if "alpha" in have:
        check(0 <= g.alpha < 1, "grokfast.alpha", g.alpha, "a number in [0, 1)")
    if "window" in have:
        check(g.window >= 1, "grokfast.window", g.window, "an integer >= 1")


def job_device(device: str, devices: int, job_num: int) -> str:
    """The device job number `job_num` of a sweep trains on: with devices=N, jobs take the kind's
    devices 0..N-1 in turn (CUDA -> CUDA:0, CUDA:1, ...), so the jobs that run at once on a
    multi-GPU machine each have a GPU; with devices=1, `device` itself."""
    return device if devices == 1 else f"{device}:{job_num % devices}"


def _devices() -> list[str]:
    from tinygrad import Device

    return sorted(Device._devices)


def schema_keys(node: type = Config, prefix: str = "") -> list[str]:
    """Every config key as written on the command line: modulus, optim.lr, grokfast.lamb, ..."""
    keys = []
    for f in fields(node):
        sub = f.default_factory if is_dataclass(f.default_factory) else None
        keys += schema_keys(sub, f"{prefix}{f.name}.") if sub else [f"{prefix}{f.name}"]
    if node is Config:  # a config group's keys: those of every choice's schema
        keys += sorted({f"grokfast.{f.name}" for schema in GROKFAST.values() for f in fields(schema)})
    return keys
