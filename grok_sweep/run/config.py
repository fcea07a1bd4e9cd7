"""Config schema: typed dataclasses registered in Hydra's ConfigStore.

Values live in conf/config.yaml (and conf/model/, conf/optim/, conf/grokfast/, conf/loss/ for the config groups); the
dataclasses only fix names and types, so a typo or a wrong type fails when Hydra composes the config, before any job
starts. checks.py refuses values that are well typed but impossible.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf


def _conf_dir() -> Path:
    """Where the YAML values are: conf/ inside the installed package (a wheel carries it there), else the
    repository's top-level conf/ (a checkout, or an editable install)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "conf"
    return installed if installed.is_dir() else package.parent / "conf"


CONF_DIR = _conf_dir()


# the config group `model` (conf/model/<name>.yaml): the family, see model/family.py; `width` is each one's width
@dataclass
class ModelConfig:
    name: str = MISSING  # transformer, mlp or quadratic; set by the group's YAML
    init_scale: float = MISSING  # every initial weight times this (Omnigrok's alpha); 1 = the plain init


@dataclass
class TransformerModel(ModelConfig):
    heads: int = MISSING
    layers: int = MISSING  # blocks
    mlp_width: Optional[int] = MISSING  # null means 4 * width, as in Nanda et al. 2023


@dataclass
class MLPModel(ModelConfig):
    layers: int = MISSING  # hidden layers of `width` units
    bias: bool = MISSING  # biases on every layer (Prieto et al.'s have none)


@dataclass
class QuadraticModel(ModelConfig):
    mean_field: bool = MISSING  # Gromov's scaling: N(0, 1) weights, 1/sqrt(2p) and 1/width on the two layers


MODELS = {"transformer": TransformerModel, "mlp": MLPModel, "quadratic": QuadraticModel}


# the config group `optim` (conf/optim/<name>.yaml, the shared keys in conf/optim_common.yaml): the optimizer and
# its learning-rate schedule, see train/optimizers.py and train/schedule.py; `weight_decay` stays a top-level key
@dataclass
class OptimConfig:
    name: str = MISSING  # adamw, adam, sgd or muon; set by the group's YAML
    lr: float = MISSING
    warmup_steps: int = MISSING  # linear warmup over the first N updates; 0 = none
    schedule: str = MISSING  # constant, cosine or linear (from lr to min_lr at the last step)
    min_lr: float = MISSING
    orthogonal: bool = MISSING  # ⊥Grad: each gradient without its component along its weights (train/orthograd.py)


@dataclass
class AdamWOptim(OptimConfig):
    beta1: float = MISSING
    beta2: float = MISSING
    eps: float = MISSING


@dataclass
class SGDOptim(OptimConfig):
    momentum: float = MISSING
    nesterov: bool = MISSING


@dataclass
class MuonOptim(AdamWOptim):  # beta1, beta2, eps: the AdamW on the parameters Muon does not take
    momentum: float = MISSING
    nesterov: bool = MISSING
    ns_steps: int = MISSING  # Newton-Schulz iterations
    adam_lr: float = MISSING  # the AdamW part's learning rate


OPTIMS = {"adamw": AdamWOptim, "adam": AdamWOptim, "sgd": SGDOptim, "muon": MuonOptim}
SCHEDULES = ("constant", "cosine", "linear")
INIT_KEYS = ("from", "step", "optimizer", "subset")


@dataclass
class TrainConfig:
    batch_size: Optional[int] = MISSING  # null means full batch
    device: str = MISSING  # a tinygrad device: CPU, CUDA, NV, METAL, ...
    devices: int = MISSING  # spread a sweep's jobs over this many devices of that kind (see job_device)
    loss_dtype: str = MISSING  # float64 or float32, see model/loss.py
    beam: int = MISSING  # tinygrad BEAM search width for the step's kernels; 0 = off
    flush_denormals: bool = MISSING  # CPU: subnormal floats read and written as 0 while training
    compile_cache: bool = (
        MISSING  # reuse the captured step from an earlier job of the same shapes (train/compile_cache.py)
    )
    checkpoint_every: int = MISSING  # steps between checkpoints (and metrics flushes); 0 = never
    keep_checkpoint: bool = MISSING  # keep a finished job's checkpoint
    snapshot_every: int = MISSING  # keep the weights every this many steps in snapshots/; 0 = off
    early_stop: int = MISSING  # end once test acc has held >= early_stop_acc for this many steps; 0 = off
    early_stop_acc: float = MISSING
    constrain_norm: bool = MISSING  # after every update, the weights rescaled to their global norm at step 0
    max_memory_gb: Optional[float] = MISSING  # refuse a job whose memory estimate exceeds this; null: what is free


# the config group `grokfast` (conf/grokfast/<name>.yaml): one schema per filter, see train/grokfast.py
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


# the config group `loss` (conf/loss/<name>.yaml): the function of the logits a job trains on, see model/loss.py
@dataclass
class LossConfig:
    name: str = MISSING  # softmax, stablemax or mse; set by the group's YAML


LOSSES = {"softmax": LossConfig, "stablemax": LossConfig, "mse": LossConfig}
# the config groups whose choice is a schema
GROUPS = {"model": MODELS, "optim": OPTIMS, "grokfast": GROKFAST, "loss": LOSSES}


@dataclass
class Config:
    operation: str = MISSING  # a key of data.tasks.OPERATIONS
    modulus: int = MISSING
    train_ratio: float = MISSING
    weight_decay: float = MISSING
    width: int = MISSING
    seed: int = MISSING
    steps: int = MISSING
    eval_every: int = MISSING
    measures: bool = MISSING  # Nanda et al.'s progress measures at every eval (model/measures.py)
    model: ModelConfig = MISSING  # chosen with model=transformer|mlp|quadratic
    optim: OptimConfig = MISSING  # chosen with optim=adamw|adam|sgd|muon
    train: TrainConfig = field(default_factory=TrainConfig)
    grokfast: GrokfastConfig = MISSING  # chosen with grokfast=none|ema|ma
    loss: LossConfig = MISSING  # chosen with loss=softmax|stablemax|mse
    # start from another run (init.from, init.step, init.optimizer, init.subset: INIT_KEYS; run/parent.py). A mapping,
    # not a dataclass: `from` is a Python keyword. Hydra's struct mode still refuses a key not in conf/config.yaml;
    # checks.py checks the values' types
    init: Any = MISSING


# hydra/sweeper=refine: the refining sweeper's settings (hydra.sweeper.start=5 ...), registered in Hydra's ConfigStore
# by its plugin (hydra_plugins/grok_sweep_refine), which Hydra imports in every app; docs/guide/refine.md
@dataclass
class RefineSweeperConfig:
    _target_: str = "hydra_plugins.grok_sweep_refine.refine_sweeper.RefineSweeper"
    start: int = 5  # points per axis of the coarse grid, round 0
    depth: int = 2  # how many times a cell may be halved: the finest cell is 1/2**depth of a coarse one
    max_jobs: int = 200  # the budget: jobs in all (points times replicates), the coarse grid's included


# hydra/launcher=pack: jobs of one shape trained as one program (hydra.launcher.size=16 ...), registered by its plugin
# (hydra_plugins/grok_sweep_pack); docs/guide/pack.md
@dataclass
class PackLauncherConfig:
    _target_: str = "hydra_plugins.grok_sweep_pack.pack_launcher.PackLauncher"
    size: Optional[int] = None  # members per pack at most; null: 1 on the CPU, else what memory allows (at most 64)


# `${grok_sweep.cwd:}` in conf/config.yaml: the command's working directory. Cached like Hydra's `${now:...}`, and
# Hydra copies the cache into every job's config, so a job that runs elsewhere (a Ray worker) gets the command's.
# Registered on import: a launcher's worker imports this module with the job's function.
if not OmegaConf.has_resolver("grok_sweep.cwd"):
    OmegaConf.register_new_resolver("grok_sweep.cwd", os.getcwd, use_cache=True)
# `${grok_sweep.dirname:...}`: a job's folder name from its overrides, one folder deep: a path in a value
# (init.from=outputs/runs/x) has its slashes as underscores
if not OmegaConf.has_resolver("grok_sweep.dirname"):
    OmegaConf.register_new_resolver("grok_sweep.dirname", lambda name: str(name).replace("/", "_"))


def register() -> None:
    """Register the schemas (a group's in schema/<group>, which its YAMLs extend), the refining sweeper and the pack
    launcher: Hydra's plugin scan misses them in an editable install (setuptools' import hook lists no modules), so
    they are registered by hand as well (Hydra's own Plugins.register; twice is once)."""
    from hydra.core.plugins import Plugins

    from hydra_plugins.grok_sweep_pack.pack_launcher import PackLauncher
    from hydra_plugins.grok_sweep_refine.refine_sweeper import RefineSweeper

    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, schemas in GROUPS.items():
        for name, node in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=node)  # not an option of the group: glob(*) skips it
    Plugins.instance().register(RefineSweeper)
    Plugins.instance().register(PackLauncher)


def schema_keys(node: type = Config, prefix: str = "") -> list[str]:
    """Every config key as written on the command line: modulus, optim.lr, grokfast.lamb, ..."""
    keys = []
    for f in fields(node):
        sub = f.default_factory if is_dataclass(f.default_factory) else None
        keys += schema_keys(sub, f"{prefix}{f.name}.") if sub else [f"{prefix}{f.name}"]
    if node is Config:  # a config group's keys: those of every choice's schema
        for group, schemas in GROUPS.items():
            keys += sorted({f"{group}.{f.name}" for schema in schemas.values() for f in fields(schema)})
        keys = [k for k in keys if k != "init"] + [f"init.{k}" for k in INIT_KEYS]
    return keys
