"""A pack: K jobs of one shape trained as one program, each a member on the leading axis of every tensor.

The members' weights, AdamW moments and filter states are stacked (model/packed.py, pack_adamw.py, grokfast.py);
what may differ between members (seed: split, init, batch order; weight_decay, optim.lr and its schedule's numbers,
train_ratio,
model.init_scale, Grokfast's lamb and alpha; steps and early stopping) is a (K,) tensor or host state, so a pack
compiles once per shape and K. Train sets of different sizes are padded to the largest with examples of weight 0, as
a single run's full batch is. The loss is the sum of the members' losses, so each member's gradient is its own;
the norm constraint, ⊥Grad, accuracy, the collapse fractions and the measures are per member. The loop is the single
run's (loop.py) over the members (members.py); `member(k)` is member k as job.py writes a job: its log, state and
weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from tinygrad import Context, Tensor, TinyJit, dtypes
from tinygrad.nn.state import get_parameters, get_state_dict

from grok_sweep.data.batches import PAD_TO
from grok_sweep.data.tasks import Split, job_split, seed_streams
from grok_sweep.fast import make_groups, prepare_device
from grok_sweep.model import family
from grok_sweep.model.loss import accuracy, cross_entropy, loss_and_collapse
from grok_sweep.model.measures import Measures, n_freqs
from grok_sweep.model.sizes import vocab
from grok_sweep.model.weight_measures import dft_rows, ipr
from grok_sweep.store.layout import TRAIN_COLS, eval_row_width
from grok_sweep.train import loop
from grok_sweep.train.device_rows import EVAL_ROWS, HIST_ROWS, SYNC_STEPS, Ring, evals_per_sync
from grok_sweep.train.early_stop import EarlyStop
from grok_sweep.train.grokfast import make_filter
from grok_sweep.train.inputs import stack_examples, stacked_chunks
from grok_sweep.train.loop import Outcome, Plan
from grok_sweep.train.members import Member, Runs, write_ring
from grok_sweep.train.metrics_log import MetricsLog
from grok_sweep.train.norm_constraint import NormConstraint, global_norm
from grok_sweep.train.orthograd import orthogonalize
from grok_sweep.train.pack_adamw import PackAdamW
from grok_sweep.train.pack_member import PackMember, restore
from grok_sweep.train.schedule import Schedule


class Pack(Runs):
    def __init__(self, cfgs: list[DictConfig], device: str | None = None, stacked: bool | None = None):
        """`stacked`: one forward of all members (model/packed.py); else each member through the single run's
        forward (model/forward.py). Default: member by member on the CPU (where that forward's kernels are the fast
        ones, and a member's numbers its single run's), stacked elsewhere."""
        cfg = self.cfg = cfgs[0]  # the shape: every key that changes a kernel is the same in every member
        self.cfgs, k, dev = cfgs, len(cfgs), device or cfg.train.device
        self.device, self.on_cpu, self.split_sums = dev, dev.split(":")[0] == "CPU", dev.split(":")[0] != "CPU"
        self.stacked = not self.on_cpu if stacked is None else stacked
        prepare_device(dev)
        streams = [seed_streams(c.seed) for c in cfgs]
        self.splits: list[Split] = [job_split(c) for c in cfgs]
        models = [family.job_model(c, np.random.default_rng(s[1]), dev) for c, s in zip(cfgs, streams, strict=True)]
        self.model = family.stacked(models, dev)  # each member's initial weights are its single run's, bit for bit
        self.params = get_parameters(self.model)
        self.active = Tensor.ones(k, dtype=dtypes.bool, device=dev).contiguous()
        self._mask: list[bool] = [True] * k

        def per(get: Any) -> Tensor:  # each member's value of a key, a (K,) tensor
            return Tensor(np.array([float(get(c)) for c in cfgs], dtype=np.float32), device=dev)

        def filter_value(key: str, f: Any = float) -> float | Tensor:  # one constant when every member has it
            values = {f(c.grokfast[key]) for c in cfgs}
            return values.pop() if len(values) == 1 and not self.stacked else per(lambda c: f(c.grokfast[key]))

        o = cfg.optim
        self.schedule = Schedule(cfgs, dev)  # each member's learning rate at each update
        self.opt = PackAdamW(self.params, per(lambda c: c.weight_decay), o.beta1, o.beta2, o.eps, self.active)
        self.grad_filter = make_filter(cfg.grokfast, self.params, filter_value, self.active)
        self.constraint = NormConstraint(self.params, self.active, self.norms) if cfg.train.constrain_norm else None
        self.batch_rngs = [np.random.default_rng(s[2]) for s in streams]
        chunk_n = self._examples(dev)
        self.evals_per_sync = min(evals_per_sync(c.eval_every, c.train.early_stop) for c in cfgs)
        self.block = min(max(SYNC_STEPS, cfg.eval_every), HIST_ROWS)
        self.train_rows = Ring(self.block, k * len(TRAIN_COLS), dev)
        self.n_freqs, self.n_layers = n_freqs(cfg.modulus) if cfg.measures else 0, len(models[0].layers())
        self.eval_rows = Ring(EVAL_ROWS * len(self.test), k * eval_row_width(self.n_freqs, self.n_layers), dev)
        self.dft = dft_rows(cfg.modulus, dev)
        self.eval_calls, self.pending = 0, []
        self.measures = [Measures(c.modulus, c.operation, s.x_train[:, :2], dev, c.train.loss_dtype)
                         for c, s in zip(cfgs, self.splits, strict=True)] if cfg.measures else None  # fmt: skip
        self.members = [Member(MetricsLog(c.steps, self.n_freqs, n_layers=self.n_layers),
                               EarlyStop(c.train.early_stop, c.train.early_stop_acc), c.steps, chunk_n=n)
                        for c, n in zip(cfgs, chunk_n, strict=True)]  # fmt: skip
        chunks = [t for c in self.test for t in (c.x, c.y, c.w)]
        rings = (self.train_rows.buf, self.train_rows.counter, self.eval_rows.buf, self.eval_rows.counter)
        Tensor.realize(*self.params, self.active, *self.schedule.tensors(), self.dft, self.x_train, self.y_train,
                       *chunks, *rings)  # fmt: skip
        self.step, self.cache, self._host = 0, None, None
        self.train_step, self.eval_jit = TinyJit(self._train_step), TinyJit(self._eval_step)

    def _examples(self, dev: str) -> list[list[int]]:
        """The members' train and test sets on the device, stacked; each member's real test examples per chunk."""
        self.full_batch = self.cfg.train.batch_size is None
        x, y, w = stack_examples([(s.x_train, s.y_train) for s in self.splits], PAD_TO)
        self.padded = [len(s.y_train) < x.shape[1] for s in self.splits]  # members with examples of weight 0
        self.x_train, self.y_train = Tensor(x, device=dev), Tensor(y, device=dev)
        self.w_train = Tensor(w, device=dev) if any(self.padded) else None
        self.groups_train = _flat([self._lookup_groups(a) for a in x])
        self.test, chunk_n = stacked_chunks([(s.x_test, s.y_test) for s in self.splits], dev)
        size = self.test[0].n  # a member's test examples, padded alone: weights 0 in one chunk, or several chunks
        self.test_padded = [len(self.test) > 1 or len(s.y_test) < size for s in self.splits]
        return chunk_n

    def _lookup_groups(self, x: np.ndarray, capacity: int | None = None) -> tuple[Tensor, Tensor] | None:
        """A member's lookup groups of its batch, which only the folded forward reads (as trainer.Trainer._groups)."""
        if self.stacked or not family.folded(family.member(self.model, 0)):
            return None
        groups = make_groups(x[:, :2], vocab(self.cfg.modulus), capacity)
        return tuple(Tensor(a, device=self.device).realize() for a in groups)

    def _outputs(self, x: Tensor, y: Tensor, w: Tensor | None, groups: list | None = None) -> tuple[Tensor, ...]:
        """Each member's loss, accuracy and (training) collapse fractions, as (K,) tensors.

        Stacked: one forward of all members (model/packed.py). Member by member: each member's slice through the
        single run's own forward (model/forward.py), loss and accuracy, so that on the CPU a member computes what
        its single run computes, kernel for kernel."""
        dtype, kind = self.cfg.train.loss_dtype, self.cfg.loss.name
        if self.stacked:
            logits = self.model(x)
            outs = loss_and_collapse(logits, y, dtype, w, self.split_sums, kind) if groups is not None else \
                (cross_entropy(logits, y, dtype, w, split=self.split_sums, kind=kind),)  # fmt: skip
            return outs[0], accuracy(logits, y, w, split=self.split_sums), *outs[1:]
        per = []
        for k in range(len(self.members)):
            padded = self.padded if groups is not None else self.test_padded  # as its single run's batch is
            wk = None if w is None or not padded[k] else w[k]
            logits = family.logits(family.member(self.model, k), x[k], groups[k] if groups else None)
            outs = loss_and_collapse(logits, y[k], dtype, wk, self.split_sums, kind) if groups is not None else \
                (cross_entropy(logits, y[k], dtype, wk, split=self.split_sums, kind=kind),)  # fmt: skip
            per.append((outs[0], accuracy(logits, y[k], wk, split=self.split_sums), *outs[1:]))
        return tuple(Tensor.stack(*col) for col in zip(*per, strict=True))

    def _train_step(self, x: Tensor, y: Tensor, w: Tensor | None, *groups: Tensor) -> Tensor:
        """One update of every active member: the single run's step (trainer.py), each member on its own batch
        (`groups`: each member's two lookup-group tensors in turn, for the folded forward; else none)."""
        with Context(TRAINING=1):
            self.opt.zero_grad()
            paired = [(groups[2 * k], groups[2 * k + 1]) for k in range(len(groups) // 2)]
            loss, acc, *collapsed = self._outputs(x, y, w, paired)
            loss.sum().backward()  # each member's loss reaches only its own weights
            grads = self.grad_filter([p.grad for p in self.params])
            grads = self._orthogonal(grads) if self.cfg.optim.orthogonal else grads
            for p, g in zip(self.params, grads, strict=True):
                p.grad = g.contiguous()  # as the single run's fused AdamW reads them: written before the update
            lr = self.schedule.base * self.schedule.advance(self.active)
            row = write_ring(self.train_rows, [t.cast(dtypes.float32) for t in (loss, acc, *collapsed)] + [lr])
            Tensor.realize(*row, *self.grad_filter.state().values(), *self.opt.schedule_step(lr), self.schedule.n)
            if self.constraint is not None:
                Tensor.realize(*self.constraint())
        return self.train_rows.counter

    def _eval_step(self, x: Tensor, y: Tensor, w: Tensor) -> Tensor:
        """One test chunk's eval row of every member into the eval ring."""
        loss, acc = self._outputs(x, y, w)
        views = [family.member(self.model, k) for k in range(len(self.members))]
        shape = [Tensor.stack(ipr(v.input_blocks(), self.dft), *(global_norm(ps) for ps in v.layers())) for v in views]
        row = Tensor.stack(loss.cast(dtypes.float32), acc, self.norms(self.params), dim=-1)
        row = row.cat(Tensor.stack(*shape), dim=1)
        if self.measures is not None:
            row = row.cat(Tensor.stack(*[m(views[k]) for k, m in enumerate(self.measures)]), dim=1)
        Tensor.realize(*self.eval_rows.write(row.flatten()))
        return self.eval_rows.counter

    def _orthogonal(self, grads: list[Tensor]) -> list[Tensor]:
        """⊥Grad's projection of each member's gradients (member by member as the single run's, unless stacked)."""
        if self.stacked:
            return orthogonalize(self.params, grads, packed=True)
        per = [orthogonalize([p[k] for p in self.params], [g[k] for g in grads]) for k in range(len(self.members))]
        return [Tensor.stack(*parts) for parts in zip(*per, strict=True)]

    def norms(self, params: list[Tensor]) -> Tensor:
        """Each member's global weight norm, (K,) (member by member as the single run's, unless stacked)."""
        if self.stacked:
            return global_norm(params, True)
        return Tensor.stack(*[global_norm([p[k] for p in params]) for k in range(len(self.members))])

    def activate(self, step: int) -> None:
        """Before step `step`'s update: the members whose update it is (started, not ended) move; the others not."""
        mask = [m.running(step) for m in self.members]
        if mask != self._mask:
            self.active.assign(Tensor(np.array(mask), device=self.device)).realize()
            self._mask = mask

    def batch(self) -> tuple[Tensor | None, ...]:
        """Inputs, labels and weights of the next step's batches, (K, batch, ...), then the members' lookup groups."""
        self._host = None  # the state changes with this step
        if self.full_batch:
            return self.x_train, self.y_train, self.w_train, *self.groups_train
        size, xs, ys = self.cfg.train.batch_size, [], []
        for rng, s, on in zip(self.batch_rngs, self.splits, self._mask, strict=True):
            idx = rng.choice(len(s.y_train), size=size, replace=False) if on else np.arange(size)
            xs.append(s.x_train[idx])
            ys.append(s.y_train[idx])
        groups = _flat([self._lookup_groups(a, capacity=size) for a in xs])  # a fixed shape for the JIT
        return Tensor(np.stack(xs), device=self.device), Tensor(np.stack(ys), device=self.device), None, *groups

    def fit(self, plans: list[Plan]) -> Outcome:
        return loop.fit(self, plans)

    def state_tensors(self) -> dict[str, Tensor]:
        """Every stacked tensor a member's checkpoint is cut from, by name."""
        out = {f"model.{n}": t for n, t in zip(_names(self.model), self.params, strict=True)}
        out.update({f"m.{i}": t for i, t in enumerate(self.opt.m)} | {f"v.{i}": t for i, t in enumerate(self.opt.v)})
        out.update(self.grad_filter.state())
        out.update(self.constraint.state() if self.constraint is not None else {})
        return {**out, "opt.b1_t": self.opt.b1_t, "opt.b2_t": self.opt.b2_t}

    def host(self) -> dict[str, np.ndarray]:
        """The stacked state on the host, copied once per step however many members save it."""
        if self._host is None:
            self._host = {n: t.numpy() for n, t in self.state_tensors().items()}
        return self._host

    def member(self, k: int) -> PackMember:
        return PackMember(self, k)

    def restore(self, states: dict[int, tuple[dict[str, np.ndarray], dict, Path]]) -> None:
        """Members continuing from their checkpoints: {k: (arrays, host state, folder)}; each resumes at its step."""
        restore(self, states)


def _flat(groups: list[tuple[Tensor, Tensor] | None]) -> list[Tensor]:
    return [t for g in groups if g is not None for t in g]


def _names(model: Any) -> list[str]:
    return list(get_state_dict(model))
