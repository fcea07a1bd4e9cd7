"""The compile cache of a job's two JITs (fast.JitCache): a job whose shapes ran before skips compiling them.

Why and what it saves: docs/performance/compile-cache.md.

An entry is keyed by the config without the keys that change no kernel (seed, split ratio, weight decay, learning
rates and their schedule's numbers, the initial weight scale, the run started from, and host-only keys: the input
shapes are in the key, and weight decay and the learning rates are tensors), and
holds the train and eval JITs; on a hit the trainer's tensors (weights, optimizer moments, masks, named by
attribute path) are moved into them. `python -m grok_sweep.jit_cache` shows or clears the cache.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from grok_sweep.fast import JitCache, named_tensors

HOST_ONLY = {"seed", "steps", "train_ratio", "weight_decay", "init"}  # init.from: the start's weights are tensors
HOST_ONLY_OPTIM = {"lr", "adam_lr", "min_lr", "warmup_steps"}  # tensors: train/schedule.py, train/optimizers.py
HOST_ONLY_MODEL = {"init_scale"}  # only the initial weights; the norm constraint's target is a tensor
HOST_ONLY_TRAIN = {"checkpoint_every", "keep_checkpoint", "snapshot_every", "early_stop", "early_stop_acc",
                   "max_memory_gb", "flush_denormals", "devices", "compile_cache"}  # fmt: skip


def kernel_config(cfg: DictConfig) -> dict[str, Any]:
    """The config's keys that shape the kernels."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    kernels = {k: v for k, v in plain.items() if k not in HOST_ONLY}
    kernels["train"] = {k: v for k, v in plain["train"].items() if k not in HOST_ONLY_TRAIN}
    kernels["model"] = {k: v for k, v in plain["model"].items() if k not in HOST_ONLY_MODEL}
    kernels["optim"] = {k: v for k, v in plain["optim"].items() if k not in HOST_ONLY_OPTIM}
    return kernels


def attach(trainer: Any) -> JitCache:
    """The entry of a Trainer's shapes; its JITs replace the trainer's if the entry holds them."""
    rng = trainer.batch_rng.bit_generator
    drawn, (x, y, groups) = rng.state, trainer.batch()  # a mini-batch has the shape of every other
    rng.state = drawn  # the first batch is still to be drawn
    first = trainer.test[0]
    inputs = [t for t in (x, y, *(groups or ()), first.x, first.y, first.w) if t is not None]
    cache = JitCache(kernel_config(trainer.cfg), inputs, trainer.device)
    if (jits := cache.load(_trainer_tensors(trainer))) is not None:
        trainer.train_step, trainer.eval_jit = jits
    else:
        cache.note_existing()
    return cache


def save_once_captured(cache: JitCache, trainer: Any) -> None:
    """Save the trainer's JITs the first time both have been captured."""
    if not cache.done and trainer.train_step.captured and trainer.eval_jit.captured:
        cache.save([trainer.train_step, trainer.eval_jit], _trainer_tensors(trainer))


def _trainer_tensors(trainer: Any) -> dict[str, Any]:
    """A trainer's tensors by attribute path: what a cached JIT's buffers are filled from."""
    return named_tensors({k: v for k, v in vars(trainer).items() if k not in ("train_step", "eval_jit", "cache")})
