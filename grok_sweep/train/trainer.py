"""A job's trainer: one jitted full-batch update (train/optimizers.py) and one jitted eval step, with fixed shapes.

Both steps write their metrics into rings on the device (device_rows.py) that the host fetches in
one block at a sync (`fetch`), so the loop (loop.py) waits on the device only there. `state` and
`restore` are what a checkpoint holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tinygrad import Context, Tensor, TinyJit, dtypes
from tinygrad.nn.state import get_parameters, get_state_dict

from grok_sweep.data.batches import PAD_TO, pad
from grok_sweep.data.start import Start
from grok_sweep.data.tasks import Split, job_split, seed_streams
from grok_sweep.fast import make_groups, prepare_device
from grok_sweep.model import family
from grok_sweep.model.loss import accuracy, cross_entropy, loss_and_collapse
from grok_sweep.model.measures import Measures, n_freqs
from grok_sweep.model.sizes import vocab
from grok_sweep.model.weight_measures import dft_rows, ipr
from grok_sweep.store.layout import TRAIN_COLS, eval_row_width
from grok_sweep.train import compile_cache, loop, optimizers
from grok_sweep.train.device_rows import EVAL_ROWS, HIST_ROWS, SYNC_STEPS, Ring, evals_per_sync
from grok_sweep.train.early_stop import EarlyStop
from grok_sweep.train.grokfast import make_filter
from grok_sweep.train.inputs import eval_chunks
from grok_sweep.train.loop import Outcome, Plan, Progress
from grok_sweep.train.members import Member, Runs
from grok_sweep.train.metrics_log import MetricsLog
from grok_sweep.train.norm_constraint import NormConstraint, global_norm
from grok_sweep.train.orthograd import orthogonalize
from grok_sweep.train.schedule import Schedule


class Trainer(Runs):
    def __init__(self, cfg: DictConfig, device: str | None = None, start: Start | None = None):
        """`start`: another run's weights (and optimizer state) and split to start from (init.from)."""
        _, init_seed, batch_seed = seed_streams(cfg.seed)
        self.split: Split = job_split(cfg) if start is None else start.split
        dev, self.cfg = device or cfg.train.device, cfg
        self.device, self.on_cpu = dev, dev.split(":")[0] == "CPU"
        self.split_sums = not self.on_cpu  # the metrics' batch sums in their own kernels (loss.cross_entropy)
        prepare_device(dev)  # before the JIT captures: kernels replay without per-launch Python
        self.model = family.job_model(cfg, np.random.default_rng(init_seed), dev)
        self.params = get_parameters(self.model)
        # weight decay and the learning rates are values on the device, not constants in the update kernel: jobs that
        # differ only in them share their compiled steps (tinygrad's kernel cache and jit_cache)
        self.wd = Tensor([float(cfg.weight_decay)], device=dev)
        self.opt = optimizers.make(cfg, self.params, family.hidden_matrices(self.model), self.wd)
        self.schedule = Schedule([cfg], dev)
        self.grad_filter = make_filter(cfg.grokfast, self.params)
        self.constraint = NormConstraint(self.params) if cfg.train.constrain_norm else None
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
        self.train_rows = Ring(self.block, len(TRAIN_COLS), dev)
        self.n_freqs, self.n_layers = n_freqs(cfg.modulus) if cfg.measures else 0, len(self.model.layers())
        self.eval_rows = Ring(EVAL_ROWS * len(self.test), eval_row_width(self.n_freqs, self.n_layers), dev)
        self.dft = dft_rows(cfg.modulus, dev)
        self.eval_calls = 0  # eval JIT calls so far: the number of the next one's row
        self.pending: list[tuple[int, int, list[int]]] = []  # (step, its first eval call, [0]) of evals not fetched
        chunks = [t for c in self.test for t in (c.x, c.y, c.w) if t is not None]
        rings = (self.train_rows.buf, self.train_rows.counter, self.eval_rows.buf, self.eval_rows.counter)
        Tensor.realize(*self.params, self.wd, *self.schedule.tensors(), self.dft, self.x_train, self.y_train, *chunks,
                       *rings)  # fmt: skip
        self.measures = (
            Measures(cfg.modulus, cfg.operation, s.x_train[:, :2], dev, cfg.train.loss_dtype) if cfg.measures else None
        )
        self.log = MetricsLog(cfg.steps, self.n_freqs, n_layers=self.n_layers)
        self.members = [Member(self.log, self.early_stop, cfg.steps)]  # one run
        self.step = 0  # the next step to run
        if start is not None:
            self._begin(start)
        self.train_step, self.eval_jit = TinyJit(self._train_step), TinyJit(self._eval_step)
        # CPU only: that is where a loaded JIT has been checked against a compiled one
        self.cache = compile_cache.attach(self) if cfg.train.compile_cache and self.on_cpu else None

    def _begin(self, start: Start) -> None:
        """Load another run's weights (and state) into this fresh one (init.from)."""
        for name, t in self.state().items():
            if (value := start.value(name)) is None:
                continue
            if value.shape != tuple(t.shape):
                raise ValueError(f"init.from: {name} has shape {value.shape} in the parent, {tuple(t.shape)} here")
            t.assign(Tensor(value, device=t.device)).realize()

    def _groups(self, x: np.ndarray, capacity: int | None = None) -> tuple[Tensor, Tensor] | None:
        """The lookup groups of a batch (fast.make_groups), which only the folded model reads."""
        if not family.folded(self.model):
            return None
        groups = make_groups(x[:, :2], vocab(self.cfg.modulus), capacity)
        return tuple(Tensor(a, device=self.device).realize() for a in groups)

    def _train_step(self, x: Tensor, y: Tensor, groups: tuple[Tensor, Tensor] | None) -> Tensor:
        """One update: loss, gradients, Grokfast's filter, then ⊥Grad's projection, the optimizer at the schedule's
        learning rate, the norm constraint. Its train row (store.layout.TRAIN_COLS) goes into the train ring."""
        w = self.w_train if x is self.x_train else None  # a mini-batch is never padded
        with Context(TRAINING=1):
            self.opt.zero_grad()
            logits = family.logits(self.model, x, groups)
            loss, *collapsed = loss_and_collapse(logits, y, self.cfg.train.loss_dtype, w, self.split_sums,
                                                 self.cfg.loss.name)  # fmt: skip
            loss.backward()
            grads = self.grad_filter([p.grad for p in self.params])
            grads = orthogonalize(self.params, grads) if self.cfg.optim.orthogonal else grads
            for p, g in zip(self.params, grads, strict=True):
                p.grad = g
            acc = accuracy(logits, y, w, split=self.split_sums)
            factor = self.schedule.advance()
            lr = (self.schedule.base * factor).reshape(())
            row = Tensor.stack(*(t.cast(dtypes.float32) for t in (loss, acc, *collapsed)), lr)
            update = optimizers.schedule_step(self.opt, factor)
            Tensor.realize(*self.train_rows.write(row), *self.grad_filter.state().values(), *update, self.schedule.n)
            if self.constraint is not None:  # on the updated weights: a second realize
                Tensor.realize(*self.constraint())
        return self.train_rows.counter

    def _eval_step(self, x: Tensor, y: Tensor, w: Tensor | None) -> Tensor:
        """One test chunk's eval row (store.layout.eval_row_width) into the eval ring."""
        logits = family.logits(self.model, x)
        loss = cross_entropy(logits, y, self.cfg.train.loss_dtype, w, split=self.split_sums, kind=self.cfg.loss.name)
        acc = accuracy(logits, y, w, self.split_sums)
        m = self.model
        weights = (global_norm(self.params), ipr(m.input_blocks(), self.dft), *(global_norm(ps) for ps in m.layers()))
        out = Tensor.stack(loss.cast(dtypes.float32), acc, *weights)
        out = out if self.measures is None else out.cat(self.measures(self.model))
        Tensor.realize(*self.eval_rows.write(out))
        return self.eval_rows.counter

    def eval_step(self) -> np.ndarray:
        """Test loss and accuracy (over the test chunks), weight norm, IPR, layer norms, then the measures if on;
        now."""
        first = self.run_eval()
        return self._eval_values(self.eval_rows.buf.numpy(), first, 0)

    def batch(self) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None]:
        """Inputs, labels and lookup groups of the next step's batch."""
        size = self.cfg.train.batch_size
        if size is None:
            return self.x_train, self.y_train, self.groups_train
        idx = self.batch_rng.choice(len(self.split.y_train), size=size, replace=False)
        x, dev = self.split.x_train[idx], self.device
        groups = self._groups(x, capacity=size)  # a fixed shape for the JIT
        return Tensor(x, device=dev), Tensor(self.split.y_train[idx], device=dev), groups

    def state(self) -> dict[str, Tensor]:
        """Everything a resumed run needs on the device: weights, optimizer moments, step counter."""
        st = {f"model.{k}": v for k, v in self.weights().items()}
        st.update(optimizers.state(self.opt))
        st.update(self.grad_filter.state())
        st.update(self.constraint.state() if self.constraint is not None else {})
        return {**st, "counter": self.train_rows.counter}

    def weights(self) -> dict[str, Tensor]:
        """The model's parameters by name, as a snapshot or load_run reads them."""
        return get_state_dict(self.model)

    def host_state(self) -> dict:
        return {"step": self.step, "batch_rng": self.batch_rng.bit_generator.state, "early_stop": self.early_stop.since}

    def restore(self, arrays: dict[str, np.ndarray], host: dict, folder: Path) -> None:
        """Continue from a checkpoint taken at step host["step"], with the metrics rows before it from `folder`."""
        for name, t in self.state().items():
            t.assign(Tensor(arrays[name], device=t.device)).realize()
        self.step = self.members[0].first = host["step"]
        self.schedule.restore([self.step])
        self.batch_rng.bit_generator.state = host["batch_rng"]
        self.log.restore(folder, self.step)
        if "early_stop" in host:
            self.early_stop.since = host["early_stop"]
        else:  # a checkpoint from before the state was kept: replay the eval rows
            self.early_stop.restore(self.log.column("test_acc")[: self.step])

    def fit(self, progress: Progress | None = None, checkpoint: Callable[[], None] | None = None,
            snapshot: Callable[[int], None] | None = None) -> Outcome:  # fmt: skip
        """Train from self.step to cfg.steps (train/loop.py's fit)."""
        return loop.fit(self, [Plan.of(self.cfg, progress, checkpoint, snapshot)])

    def activate(self, step: int) -> None:
        """Before step `step`'s update: the one run takes every update until it ends (a pack's members may not)."""
