"""Training: one jitted full-batch AdamW step and one jitted eval step, with fixed shapes.

Per-step train metrics are written by the jitted step into a small device buffer (one row per
step, `eval_every` rows) and fetched in one block at each eval, which needs a host sync anyway;
so the hot loop never waits on the device except at eval steps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from omegaconf import DictConfig
from tinygrad import Context, Tensor, TinyJit, dtypes
from tinygrad.nn.optim import AdamW
from tinygrad.nn.state import get_parameters, get_state_dict
from tqdm import tqdm

from grok_sweep import cpu_graph
from grok_sweep.early_stop import EarlyStop
from grok_sweep.grokfast import make_filter
from grok_sweep.lookup import make_groups
from grok_sweep.measures import Measures, n_freqs
from grok_sweep.model import GPT, cross_entropy
from grok_sweep.store import MetricsLog
from grok_sweep.tasks import Split, make_split


@dataclass
class Outcome:
    status: str  # "completed", "stopped_early" or "diverged"
    compile_time_s: float  # first two steps: the eager run and the JIT capture compile every kernel
    loop_time_s: float  # the rest of the loop, evals included


def _accuracy(logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    hit = (logits.argmax(axis=-1) == labels).cast(dtypes.float32)
    return hit.mean() if weight is None else (hit * weight).sum() / weight.sum()


# Full batches are padded to a multiple of this with examples of weight 0, so that kernels can split
# the batch axis into vector-sized pieces (nanda2023's 3830 = 2 x 5 x 383 has no factor 4): its step
# went from 3.8 to 4.3 steps/s with BEAM=2. The mean loss and accuracy count real examples only.
PAD_TO = 32


def _pad(x: np.ndarray, y: np.ndarray, multiple: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Pad examples (repeating the first) to a multiple of `multiple`; weights 1 real, 0 padding."""
    pad = (-len(y)) % multiple
    if pad == 0:
        return x, y, None
    w = np.r_[np.ones(len(y)), np.zeros(pad)].astype(np.float32)
    return np.concatenate([x, np.repeat(x[:1], pad, 0)]), np.concatenate([y, np.repeat(y[:1], pad)]), w


def job_split(cfg: DictConfig) -> Split:
    """The train and test pairs of a job: the first of the seed's three streams (split, weights, batches)."""
    data_seed = np.random.SeedSequence(cfg.seed).spawn(3)[0]
    return make_split(cfg.modulus, cfg.train_ratio, np.random.default_rng(data_seed), cfg.operation)


def job_model(cfg: DictConfig, rng: np.random.Generator, device: str) -> GPT:
    """The GPT a job of this config trains, its weights drawn from `rng`."""
    m = cfg.model
    return GPT(rng, cfg.modulus, cfg.width, m.heads, m.layers, m.mlp_width or 4 * cfg.width, device)


class Trainer:
    def __init__(self, cfg: DictConfig, device: str | None = None):
        _, init_seed, batch_seed = np.random.SeedSequence(cfg.seed).spawn(3)
        self.split: Split = job_split(cfg)
        dev, self.cfg = device or cfg.train.device, cfg
        self.device, self.on_cpu = dev, dev.split(":")[0] == "CPU"
        if self.on_cpu:
            cpu_graph.install(dev)  # before the JIT captures: kernels replay without per-launch Python
        self.model = job_model(cfg, np.random.default_rng(init_seed), dev)
        self.params = get_parameters(self.model)
        self.opt = AdamW(
            self.params,
            lr=cfg.optim.lr,
            b1=cfg.optim.beta1,
            b2=cfg.optim.beta2,
            eps=cfg.optim.eps,
            weight_decay=cfg.weight_decay,
            fused=True,  # one update kernel for all parameters instead of three per tensor
        )
        self.grad_filter = make_filter(cfg.grokfast, self.params)
        self.early_stop = EarlyStop(cfg.train.early_stop, cfg.train.early_stop_acc)
        s = self.split
        x_train, y_train, w_train = _pad(s.x_train, s.y_train, PAD_TO if cfg.train.batch_size is None else 1)
        x_test, y_test, w_test = _pad(s.x_test, s.y_test, PAD_TO)
        self.x_train, self.y_train, self.x_test, self.y_test = (
            Tensor(a, device=dev) for a in (x_train, y_train, x_test, y_test)
        )
        self.w_train, self.w_test = (None if w is None else Tensor(w, device=dev) for w in (w_train, w_test))
        self.groups_train = self._groups(x_train)
        self.batch_rng = np.random.default_rng(batch_seed)
        self.block = cfg.eval_every
        self.hist = Tensor.zeros(self.block, 2, device=dev).contiguous()
        self.counter = Tensor.zeros(1, dtype=dtypes.int32, device=dev).contiguous()
        Tensor.realize(*self.params, self.x_train, self.y_train, self.x_test, self.y_test, self.hist, self.counter)
        self.measures = (
            Measures(cfg.modulus, cfg.operation, s.x_train[:, :2], dev, cfg.train.loss_dtype) if cfg.measures else None
        )
        self.log = MetricsLog(cfg.steps, n_freqs(cfg.modulus) if cfg.measures else 0)
        self.step = 0  # the next step to run
        self.train_step = TinyJit(self._train_step)
        self.eval_step = TinyJit(self._eval_step)

    def _groups(self, x: np.ndarray, capacity: int | None = None) -> tuple[Tensor, Tensor] | None:
        """The lookup groups of a batch (lookup.make_groups), which only the folded model reads."""
        if not self.model.fold_mlp:
            return None
        groups = make_groups(x[:, :2], self.cfg.modulus + 1, capacity)
        return tuple(Tensor(a, device=self.device).realize() for a in groups)

    def _train_step(self, x: Tensor, y: Tensor, groups: tuple[Tensor, Tensor] | None) -> Tensor:
        with Context(TRAINING=1):
            self.opt.zero_grad()
            logits = self.model(x, for_backward=True, groups=groups)
            w = self.w_train if x is self.x_train else None  # a mini-batch is never padded
            loss = cross_entropy(logits, y, self.cfg.train.loss_dtype, w)
            loss.backward()
            for p, g in zip(self.params, self.grad_filter([p.grad for p in self.params]), strict=True):
                p.grad = g
            row = Tensor.stack(loss.cast(dtypes.float32), _accuracy(logits, y, w)).reshape(1, 2)
            here = (Tensor.arange(self.block) == self.counter % self.block).reshape(self.block, 1)
            self.hist.assign(here.where(row, self.hist))
            self.counter.assign(self.counter + 1)
            Tensor.realize(self.hist, self.counter, *self.grad_filter.state().values(), *self.opt.schedule_step())
        return self.counter

    def _eval_step(self) -> Tensor:
        logits = self.model(self.x_test)
        loss = cross_entropy(logits, self.y_test, self.cfg.train.loss_dtype, self.w_test)
        norm = Tensor.stack(*[(p * p).sum() for p in self.params]).sum().sqrt()
        acc = _accuracy(logits, self.y_test, self.w_test)
        out = Tensor.stack(loss.cast(dtypes.float32), acc, norm)
        return (out if self.measures is None else out.cat(self.measures(self.model))).realize()

    def batch(self) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """Inputs, labels and lookup groups of the next step's batch."""
        size = self.cfg.train.batch_size
        if size is None:
            return self.x_train, self.y_train, self.groups_train
        idx = self.batch_rng.choice(len(self.split.y_train), size=size, replace=False)
        x, dev = self.split.x_train[idx], self.device
        groups = self._groups(x, capacity=size)  # a fixed shape for the JIT
        return Tensor(x, device=dev), Tensor(self.split.y_train[idx], device=dev), groups

    def fetch_train_rows(self, upto: int) -> bool:
        """Copy the train metrics of steps [log.filled, upto) from the device; False if any is non-finite."""
        if upto <= self.log.filled:
            return True
        hist = self.hist.numpy()
        rows = hist[[s % self.block for s in range(self.log.filled, upto)]]
        self.log.add_train(rows)
        return bool(np.isfinite(rows).all())

    def state(self) -> dict[str, Tensor]:
        """Everything a resumed run needs on the device: weights, optimizer moments, step counter."""
        st = {f"model.{k}": v for k, v in self.weights().items()}
        st.update({f"opt.m.{i}": t for i, t in enumerate(self.opt.m)})
        st.update({f"opt.v.{i}": t for i, t in enumerate(self.opt.v)})
        st.update(self.grad_filter.state())
        return {**st, "opt.b1_t": self.opt.b1_t, "opt.b2_t": self.opt.b2_t, "counter": self.counter}

    def weights(self) -> dict[str, Tensor]:
        """The model's parameters by name, as a snapshot or load_run reads them."""
        return get_state_dict(self.model)

    def host_state(self) -> dict:
        return {"step": self.step, "batch_rng": self.batch_rng.bit_generator.state}

    def restore(self, tensors: dict[str, Tensor], host: dict, metrics: pd.DataFrame) -> None:
        """Continue from a checkpoint taken at step host["step"], with the metrics rows before it."""
        for name, t in self.state().items():
            t.assign(tensors[name].to(t.device)).realize()
        self.step = host["step"]
        self.batch_rng.bit_generator.state = host["batch_rng"]
        self.log.restore(metrics, self.step)
        self.early_stop.restore(self.log.cols["test_acc"][: self.step])

    def fit(self, bar: tqdm | None = None, checkpoint: Callable[[], None] | None = None,
            snapshot: Callable[[int], None] | None = None) -> Outcome:  # fmt: skip
        """Train from self.step to cfg.steps; `checkpoint` is called every train.checkpoint_every steps,
        `snapshot(step)` every train.snapshot_every steps, before that step's update."""
        flush = self.cfg.train.flush_denormals and self.on_cpu
        # only the first calls compile; BEAM picks their kernels
        with Context(BEAM=self.cfg.train.beam), cpu_graph.flush_denormals(flush):
            return self._fit(bar, checkpoint, snapshot)

    def _fit(self, bar: tqdm | None, checkpoint: Callable[[], None] | None,
             snapshot: Callable[[int], None] | None) -> Outcome:  # fmt: skip
        steps, every, log = self.cfg.steps, self.cfg.train.checkpoint_every, self.log
        snap_every = self.cfg.train.snapshot_every if snapshot is not None else 0
        first, t0, t_compiled, status = self.step, time.perf_counter(), None, "completed"
        end = steps  # the loop ends with rows [0, end) trained
        for s in range(first, steps):
            self.step = s
            is_checkpoint = checkpoint is not None and every and s % every == 0 and s > first
            is_eval = s % self.cfg.eval_every == 0 or s == steps - 1
            if (is_checkpoint or is_eval) and not self.fetch_train_rows(s):
                status = "diverged"
                break
            if is_checkpoint:
                checkpoint()
            if snap_every and s % snap_every == 0:
                snapshot(s)
            if is_eval:
                log.add_eval(s, self.eval_step().numpy())
                _show(bar, log, s)
                if self.early_stop.update(s, log.cols["test_acc"][s]) and s < steps - 1:
                    status = "stopped_early"  # after this step's update, whose forward gives row s its train metrics
            _inject_fault(s, self.cfg.seed)
            self.train_step(*self.batch())
            if s == first + 1:
                self.counter.numpy()  # wait for the device so the compile time is honest
                t_compiled = time.perf_counter()
            if bar is not None:
                bar.update(1)
            if status == "stopped_early":
                end = s + 1
                _stopped(bar, s)
                break
        if status != "diverged":
            self.step = end
            status = status if self.fetch_train_rows(end) else "diverged"
        t_end = time.perf_counter()
        t_compiled = t_compiled or t_end
        return Outcome(status, t_compiled - t0, t_end - t_compiled)


def _inject_fault(step: int, seed: int) -> None:
    # failure injection for the failure-isolation tests: GROK_SWEEP_FAIL_AT_STEP=N raises at step N
    # in every job, N:S only in jobs with seed S
    spec = os.environ.get("GROK_SWEEP_FAIL_AT_STEP")
    if spec and spec in (str(step), f"{step}:{seed}"):
        raise RuntimeError(f"injected failure at step {step} (GROK_SWEEP_FAIL_AT_STEP={spec})")


def _stopped(bar: tqdm | None, step: int) -> None:
    if bar is not None:
        bar.set_description_str(f"stopped early at step {step}", refresh=False)


def _show(bar: tqdm | None, log: MetricsLog, step: int) -> None:
    if bar is None:
        return
    c, last = log.cols, log.filled - 1
    train = f"train loss {c['train_loss'][last]:.3g} acc {c['train_acc'][last]:.3f} | " if last >= 0 else ""
    bar.set_postfix_str(f"{train}test loss {c['test_loss'][step]:.3g} acc {c['test_acc'][step]:.3f}", refresh=False)
