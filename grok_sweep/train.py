"""Training: one jitted full-batch AdamW step and one jitted eval step, with fixed shapes.

Per-step train metrics are written by the jitted step into a small device buffer (one row per
step, `eval_every` rows, at most HIST_ROWS) and fetched in one block at each eval, which needs a
host sync anyway (and when the buffer is full); so the hot loop never waits on the device but there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tinygrad import Context, Tensor, TinyJit, dtypes
from tinygrad.nn.optim import AdamW
from tinygrad.nn.state import get_parameters, get_state_dict
from tqdm import tqdm

from grok_sweep import cpu_graph
from grok_sweep.early_stop import EarlyStop
from grok_sweep.grokfast import make_filter
from grok_sweep.inputs import PAD_TO, combine, eval_chunks, pad
from grok_sweep.jit_cache import JitCache
from grok_sweep.lookup import make_groups
from grok_sweep.measures import Measures, n_freqs
from grok_sweep.metrics_log import MetricsLog
from grok_sweep.model import GPT, cross_entropy
from grok_sweep.tasks import Split, make_split


@dataclass
class Outcome:
    status: str  # "completed", "stopped_early" or "diverged"
    compile_time_s: float  # first two steps: the eager run and the JIT capture compile every kernel
    loop_time_s: float  # the rest of the loop, evals included


def _accuracy(logits: Tensor, labels: Tensor, weight: Tensor | None = None) -> Tensor:
    hit = (logits.argmax(axis=-1) == labels).cast(dtypes.float32)
    return hit.mean() if weight is None else (hit * weight).sum() / weight.sum()


# the device buffer of train rows between fetches: eval_every rows, but no more than this
HIST_ROWS = 1000


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
        # a value on the device, not a constant in the update kernel: jobs that differ only in weight
        # decay share their compiled steps (tinygrad's kernel cache and jit_cache)
        self.opt.wd = Tensor([float(cfg.weight_decay)], device=dev)
        self.grad_filter = make_filter(cfg.grokfast, self.params)
        self.early_stop = EarlyStop(cfg.train.early_stop, cfg.train.early_stop_acc)
        s = self.split
        x_train, y_train, w_train = pad(s.x_train, s.y_train, PAD_TO if cfg.train.batch_size is None else 1)
        self.x_train, self.y_train = Tensor(x_train, device=dev), Tensor(y_train, device=dev)
        self.w_train = None if w_train is None else Tensor(w_train, device=dev)
        self.test = eval_chunks(s.x_test, s.y_test, dev)
        self.groups_train = self._groups(x_train)
        self.batch_rng = np.random.default_rng(batch_seed)
        self.block = min(cfg.eval_every, HIST_ROWS)
        self.hist = Tensor.zeros(self.block, 2, device=dev).contiguous()
        self.counter = Tensor.zeros(1, dtype=dtypes.int32, device=dev).contiguous()
        chunks = [t for c in self.test for t in (c.x, c.y, c.w) if t is not None]
        Tensor.realize(*self.params, self.opt.wd, self.x_train, self.y_train, *chunks, self.hist, self.counter)
        self.measures = (
            Measures(cfg.modulus, cfg.operation, s.x_train[:, :2], dev, cfg.train.loss_dtype) if cfg.measures else None
        )
        self.log = MetricsLog(cfg.steps, n_freqs(cfg.modulus) if cfg.measures else 0)
        self.step = 0  # the next step to run
        self.train_step, self.eval_jit = TinyJit(self._train_step), TinyJit(self._eval_step)
        # CPU only: that is where a loaded JIT has been checked against a compiled one
        self.cache = JitCache.attach(self) if cfg.train.compile_cache and self.on_cpu else None

    def _groups(self, x: np.ndarray, capacity: int | None = None) -> tuple[Tensor, Tensor] | None:
        """The lookup groups of a batch (lookup.make_groups), which only the folded model reads."""
        if not self.model.fold_mlp:
            return None
        groups = make_groups(x[:, :2], self.cfg.modulus + 1, capacity)
        return tuple(Tensor(a, device=self.device).realize() for a in groups)

    def _train_step(self, x: Tensor, y: Tensor, groups: tuple[Tensor, Tensor] | None) -> Tensor:
        with Context(TRAINING=1):
            self.opt.zero_grad()
            logits = self.model(x, groups=groups)
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

    def _eval_step(self, x: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
        logits = self.model(x)
        loss = cross_entropy(logits, y, self.cfg.train.loss_dtype, w)
        norm = Tensor.stack(*[(p * p).sum() for p in self.params]).sum().sqrt()
        out = Tensor.stack(loss.cast(dtypes.float32), _accuracy(logits, y, w), norm)
        return (out if self.measures is None else out.cat(self.measures(self.model))).realize()

    def eval_step(self) -> np.ndarray:
        """Test loss and accuracy (over the test chunks), weight norm, then the measures if on."""
        values = [self.eval_jit(c.x, c.y, c.w).numpy() for c in self.test]
        return combine(values, [c.n for c in self.test])

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
        return {"step": self.step, "batch_rng": self.batch_rng.bit_generator.state, "early_stop": self.early_stop.since}

    def restore(self, tensors: dict[str, Tensor], host: dict, folder: Path) -> None:
        """Continue from a checkpoint taken at step host["step"], with the metrics rows before it from `folder`."""
        for name, t in self.state().items():
            t.assign(tensors[name].to(t.device)).realize()
        self.step = host["step"]
        self.batch_rng.bit_generator.state = host["batch_rng"]
        self.log.restore(folder, self.step)
        if "early_stop" in host:
            self.early_stop.since = host["early_stop"]
        else:  # a checkpoint from before the state was kept: replay the eval rows
            self.early_stop.restore(self.log.column("test_acc")[: self.step])

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
            is_full = s - log.filled >= self.block  # the device buffer holds no more rows
            if (is_checkpoint or is_eval or is_full) and not self.fetch_train_rows(s):
                status = "diverged"
                break
            if is_checkpoint:
                checkpoint()
            if snap_every and s % snap_every == 0:
                snapshot(s)
            if is_eval:
                log.add_eval(s, self.eval_step())
                if self.cache is not None:
                    self.cache.save_once_captured(self)
                _show(bar, log, s)
                if self.early_stop.update(s, log.value("test_acc", s)) and s < steps - 1:
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
        if self.cache is not None:
            self.cache.save_once_captured(self)
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
    loss, acc = log.value("test_loss", step), log.value("test_acc", step)
    train = f"train loss {log.last_train[0]:.3g} acc {log.last_train[1]:.3f} | " if log.last_train else ""
    bar.set_postfix_str(f"{train}test loss {loss:.3g} acc {acc:.3f}", refresh=False)
