"""Training: one jitted full-batch AdamW step and one jitted eval step, with fixed shapes.

Both steps write their metrics into rings on the device (device_rows.py) that the host fetches in
one block at a sync, so the loop waits on the device only there; syncs fall on the same steps in
every run of a config, and a diverged run ends at the first sync after its first non-finite train row.
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

from grok_sweep import cpu_graph
from grok_sweep.device_rows import EVAL_ROWS, HIST_ROWS, SYNC_STEPS, Diverged, Ring, evals_per_sync
from grok_sweep.early_stop import EarlyStop
from grok_sweep.grokfast import make_filter
from grok_sweep.inputs import PAD_TO, combine, eval_chunks, pad
from grok_sweep.jit_cache import JitCache
from grok_sweep.job_status import JobStatus
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
        self.evals_per_sync = evals_per_sync(cfg.eval_every, cfg.train.early_stop)
        self.block = min(max(SYNC_STEPS, cfg.eval_every), HIST_ROWS)
        self.train_rows = Ring(self.block, 2, dev)
        n_eval_cols = 3 + (3 + n_freqs(cfg.modulus) if cfg.measures else 0)
        self.eval_rows = Ring(EVAL_ROWS * len(self.test), n_eval_cols, dev)
        self.eval_calls = 0  # eval JIT calls so far: the number of the next one's row
        self.pending: list[tuple[int, int]] = []  # (step, its first eval call) of evals not fetched yet
        chunks = [t for c in self.test for t in (c.x, c.y, c.w) if t is not None]
        rings = (self.train_rows.buf, self.train_rows.counter, self.eval_rows.buf, self.eval_rows.counter)
        Tensor.realize(*self.params, self.opt.wd, self.x_train, self.y_train, *chunks, *rings)
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
            row = Tensor.stack(loss.cast(dtypes.float32), _accuracy(logits, y, w))
            Tensor.realize(*self.train_rows.write(row), *self.grad_filter.state().values(), *self.opt.schedule_step())
        return self.train_rows.counter

    def _eval_step(self, x: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
        logits = self.model(x)
        loss = cross_entropy(logits, y, self.cfg.train.loss_dtype, w)
        norm = Tensor.stack(*[(p * p).sum() for p in self.params]).sum().sqrt()
        out = Tensor.stack(loss.cast(dtypes.float32), _accuracy(logits, y, w), norm)
        out = out if self.measures is None else out.cat(self.measures(self.model))
        Tensor.realize(*self.eval_rows.write(out))
        return self.eval_rows.counter

    def _run_eval(self) -> int:
        """Evaluate every test chunk into the device buffer; the number of its first call."""
        first = self.eval_calls
        for c in self.test:
            self.eval_jit(c.x, c.y, c.w)
        self.eval_calls += len(self.test)
        return first

    def _eval_values(self, rows: np.ndarray, first: int) -> np.ndarray:
        return combine(list(Ring.take(rows, first, len(self.test))), [c.n for c in self.test])

    def eval_step(self) -> np.ndarray:
        """Test loss and accuracy (over the test chunks), weight norm, then the measures if on; now."""
        first = self._run_eval()
        return self._eval_values(self.eval_rows.buf.numpy(), first)

    def fetch(self, upto: int) -> list[tuple[int, np.ndarray]]:
        """Copy the train rows of steps [log.filled, upto) and the queued evals from the device into the log;
        the evals' (step, values). Raises Diverged if a train row is non-finite."""
        hist = self.train_rows.buf.numpy() if upto > self.log.filled else None
        rows = self.eval_rows.buf.numpy() if self.pending else None
        finite, evals = True, []
        for step, first in self.pending:  # in step order, as if each had been fetched at its step
            finite &= self._add_train_rows(hist, step)
            evals.append((step, self._eval_values(rows, first)))
            self.log.add_eval(*evals[-1])
        self.pending = []
        if not (finite & self._add_train_rows(hist, upto)):
            raise Diverged
        return evals

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
        return self._add_train_rows(self.train_rows.buf.numpy() if upto > self.log.filled else None, upto)

    def _add_train_rows(self, hist: np.ndarray | None, upto: int) -> bool:
        if upto <= self.log.filled:
            return True
        rows = Ring.take(hist, self.log.filled, upto - self.log.filled)
        self.log.add_train(rows)
        return bool(np.isfinite(rows).all())

    def state(self) -> dict[str, Tensor]:
        """Everything a resumed run needs on the device: weights, optimizer moments, step counter."""
        st = {f"model.{k}": v for k, v in self.weights().items()}
        st.update({f"opt.m.{i}": t for i, t in enumerate(self.opt.m)})
        st.update({f"opt.v.{i}": t for i, t in enumerate(self.opt.v)})
        st.update(self.grad_filter.state())
        return {**st, "opt.b1_t": self.opt.b1_t, "opt.b2_t": self.opt.b2_t, "counter": self.train_rows.counter}

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

    def fit(self, progress: JobStatus | None = None, checkpoint: Callable[[], None] | None = None,
            snapshot: Callable[[int], None] | None = None) -> Outcome:  # fmt: skip
        """Train from self.step to cfg.steps, reporting to `progress`; `checkpoint` is called every
        train.checkpoint_every steps, `snapshot(step)` every train.snapshot_every steps, before that step's update."""
        flush = self.cfg.train.flush_denormals and self.on_cpu
        # only the first calls compile; BEAM picks their kernels
        with Context(BEAM=self.cfg.train.beam), cpu_graph.flush_denormals(flush):
            return self._fit(progress, checkpoint, snapshot)

    def _fit(self, progress: JobStatus | None, checkpoint: Callable[[], None] | None,
             snapshot: Callable[[int], None] | None) -> Outcome:  # fmt: skip
        steps, every, log = self.cfg.steps, self.cfg.train.checkpoint_every, self.log
        snap_every = self.cfg.train.snapshot_every if snapshot is not None else 0
        first, t0, t_compiled, status = self.step, time.perf_counter(), None, "completed"
        end = steps  # the loop ends with rows [0, end) trained
        try:
            for s in range(first, steps):
                self.step = s
                is_checkpoint = checkpoint is not None and every and s % every == 0 and s > first
                if is_checkpoint or s - log.filled >= self.block:  # the train rows' buffer is full
                    self._sync(s, progress)  # early stopping cannot fire on evals before s (see _sync)
                if is_checkpoint:
                    checkpoint()
                if snap_every and s % snap_every == 0:
                    snapshot(s)
                if s % self.cfg.eval_every == 0 or s == steps - 1:
                    self.pending.append((s, self._run_eval()))
                    if self.cache is not None:
                        self.cache.save_once_captured(self)
                    # stopped after this step's update, whose forward gives row s its train metrics
                    if self._sync_due(s) and self._sync(s, progress) and s < steps - 1:
                        status = "stopped_early"
                _inject_fault(s, self.cfg.seed)
                self.train_step(*self.batch())
                if s == first + 1:
                    self.train_rows.counter.numpy()  # wait for the device so the compile time is honest
                    t_compiled = time.perf_counter()
                if progress is not None:
                    progress.advance()
                if status == "stopped_early":
                    end = s + 1
                    if progress is not None:
                        progress.stopped(s)
                    break
            if self.cache is not None:
                self.cache.save_once_captured(self)
            self.step = end
            self.fetch(end)
        except Diverged:
            status = "diverged"
        except Exception:
            if self._salvage():  # the run had diverged before it failed
                status = "diverged"
            else:
                raise
        t_end = time.perf_counter()
        t_compiled = t_compiled or t_end
        return Outcome(status, t_compiled - t0, t_end - t_compiled)

    def _salvage(self) -> bool:
        """After an exception in the loop: fetch what the device still holds; True if it shows divergence."""
        try:
            self.fetch(self.step)
        except Diverged:
            return True
        except Exception:  # noqa: BLE001 - the device may be what failed; the original error is raised
            pass
        return False

    def _sync_due(self, step: int) -> bool:
        """Whether the evals queued so far are fetched at this eval step."""
        holding = self.early_stop.hold > 0 and self.early_stop.since is not None
        return holding or len(self.pending) >= self.evals_per_sync or step == self.cfg.steps - 1

    def _sync(self, step: int, progress: JobStatus | None) -> bool:
        """Fetch the rows before `step` and the queued evals; True if early stopping fires on one.

        Exact: once test accuracy holds at a sync, every eval syncs; otherwise a streak that starts
        after the sync needs train.early_stop steps to fire, more than the evals_per_sync evals
        until the next sync span. So it can only fire on an eval synced at its own step."""
        stop, evals = False, self.fetch(step)
        for s, values in evals:
            stop = self.early_stop.update(s, float(values[1])) or stop
        if evals and progress is not None:
            progress.evals(self.log.last_train, evals)
        return stop


def _inject_fault(step: int, seed: int) -> None:
    # failure injection for the failure-isolation tests: GROK_SWEEP_FAIL_AT_STEP=N raises at step N
    # in every job, N:S only in jobs with seed S
    spec = os.environ.get("GROK_SWEEP_FAIL_AT_STEP")
    if spec and spec in (str(step), f"{step}:{seed}"):
        raise RuntimeError(f"injected failure at step {step} (GROK_SWEEP_FAIL_AT_STEP={spec})")
