"""One job's training loop: from trainer.step to cfg.steps, with its evals, syncs, checkpoints and snapshots.

The loop waits on the device only at a sync (Trainer.fetch), and syncs fall on the same steps in every run
of a config (train/device_rows.py), so a resumed run repeats an uninterrupted one; a diverged run ends at the
first sync after its first non-finite train row.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Protocol

from tinygrad import Context

from grok_sweep.fast import flush_denormals
from grok_sweep.store.layout import COMPLETED, DIVERGED, INTERRUPTED, STOPPED_EARLY, TEST_ACC
from grok_sweep.train.compile_cache import save_once_captured
from grok_sweep.train.device_rows import Diverged
from grok_sweep.util import interrupt

if TYPE_CHECKING:
    from grok_sweep.train.trainer import Trainer


class Progress(Protocol):
    """What the loop reports to (train/progress.py's JobStatus)."""

    def advance(self) -> None: ...  # one step done

    def evals(self, last_train: Optional[tuple[float, float]], evals: list[tuple[int, Any]]) -> None: ...

    def stopped(self, step: int) -> None: ...  # early stopping ended the run after this step


@dataclass
class Outcome:
    status: str  # store.layout's COMPLETED, STOPPED_EARLY, DIVERGED or INTERRUPTED (a signal: util/interrupt.py)
    compile_time_s: float  # first two steps: the eager run and the JIT capture compile every kernel
    loop_time_s: float  # the rest of the loop, evals included


Checkpoint = Optional[Callable[[], None]]
Snapshot = Optional[Callable[[int], None]]


@dataclass
class _Clock:
    start: float
    compiled: Optional[float] = None  # when the first two steps had run


@dataclass(frozen=True)
class _Plan:
    """What the loop does when: read from the config once (a DictConfig read costs microseconds, a step of a
    small model a millisecond), with the callbacks it reports to."""

    progress: Optional[Progress]
    checkpoint: Checkpoint
    snapshot: Snapshot
    steps: int
    eval_every: int
    checkpoint_every: int  # 0: no checkpoints
    snapshot_every: int  # 0: no snapshots
    seed: int

    @classmethod
    def of(cls, t: Trainer, progress: Optional[Progress], checkpoint: Checkpoint, snapshot: Snapshot) -> _Plan:
        c = t.cfg
        every = c.train.checkpoint_every if checkpoint is not None else 0
        snap_every = c.train.snapshot_every if snapshot is not None else 0
        return cls(progress, checkpoint, snapshot, c.steps, c.eval_every, every, snap_every, c.seed)


def fit(t: Trainer, progress: Optional[Progress] = None, checkpoint: Checkpoint = None,
        snapshot: Snapshot = None) -> Outcome:  # fmt: skip
    """Train from t.step to cfg.steps, reporting to `progress`; `checkpoint` is called every
    train.checkpoint_every steps, `snapshot(step)` every train.snapshot_every steps, before that step's update."""
    flush = t.cfg.train.flush_denormals and t.on_cpu
    clock, status = _Clock(time.perf_counter()), DIVERGED
    # only the first calls compile; BEAM picks their kernels
    with Context(BEAM=t.cfg.train.beam), flush_denormals(flush):
        try:
            status = _run(t, clock, _Plan.of(t, progress, checkpoint, snapshot))
        except Diverged:
            pass
        except Exception:
            if not _salvage(t):  # unless the run had diverged before it failed
                raise
    t_end = time.perf_counter()
    compiled = clock.compiled or t_end
    return Outcome(status, compiled - clock.start, t_end - compiled)


def _run(t: Trainer, clock: _Clock, plan: _Plan) -> str:
    first, stop, interrupted = t.step, False, False
    end = plan.steps  # the loop ends with rows [0, end) trained
    for s in range(first, plan.steps):
        t.step = s
        stop = _before_update(t, s, first, plan)
        _inject_fault(s, plan.seed)
        t.train_step(*t.batch())
        if s == first + 1:
            t.train_rows.counter.numpy()  # wait for the device so the compile time is honest
            clock.compiled = time.perf_counter()
        if plan.progress is not None:
            plan.progress.advance()
        if stop:
            end = s + 1
            if plan.progress is not None:
                plan.progress.stopped(s)
            break
        if interrupt.requested() and s + 1 < plan.steps:  # SIGINT or SIGTERM: the step in flight is done
            end, interrupted = s + 1, True
            break
    if t.cache is not None:
        save_once_captured(t.cache, t)
    t.step = end
    t.fetch(end)
    return INTERRUPTED if interrupted else STOPPED_EARLY if stop else COMPLETED


def _before_update(t: Trainer, s: int, first: int, plan: _Plan) -> bool:
    """Step s's syncs, checkpoint, snapshot and eval, before its update; True if early stopping ends the run
    after this step's update (whose forward gives row s its train metrics)."""
    is_checkpoint = plan.checkpoint_every and s % plan.checkpoint_every == 0 and s > first
    if is_checkpoint or s - t.log.filled >= t.block:  # the train rows' buffer is full
        sync(t, s, plan.progress)  # early stopping cannot fire on evals before s (see sync)
    if is_checkpoint:
        plan.checkpoint()
    if plan.snapshot_every and s % plan.snapshot_every == 0:
        plan.snapshot(s)
    last = s == plan.steps - 1
    if not (s % plan.eval_every == 0 or last):
        return False
    t.pending.append((s, t.run_eval()))
    if t.cache is not None:
        save_once_captured(t.cache, t)
    return _sync_due(t, last) and sync(t, s, plan.progress) and not last


def _salvage(t: Trainer) -> bool:
    """After an exception in the loop: fetch what the device still holds; True if it shows divergence."""
    try:
        t.fetch(t.step)
    except Diverged:
        return True
    except Exception:  # noqa: BLE001 - the device may be what failed; the original error is raised
        pass
    return False


def _sync_due(t: Trainer, last: bool) -> bool:
    """Whether the evals queued so far are fetched at this eval step (`last`: the run's last step)."""
    holding = t.early_stop.hold > 0 and t.early_stop.since is not None
    return holding or len(t.pending) >= t.evals_per_sync or last


def sync(t: Trainer, step: int, progress: Optional[Progress]) -> bool:
    """Fetch the rows before `step` and the queued evals; True if early stopping fires on one.

    Exact: once test accuracy holds at a sync, every eval syncs; otherwise a streak that starts
    after the sync needs train.early_stop steps to fire, more than the evals_per_sync evals
    until the next sync span. So it can only fire on an eval synced at its own step."""
    stop, evals = False, t.fetch(step)
    for s, values in evals:
        stop = t.early_stop.update(s, float(values[TEST_ACC])) or stop
    if evals and progress is not None:
        progress.evals(t.log.last_train, evals)
    return stop


def _inject_fault(step: int, seed: int) -> None:
    # failure injection for the failure-isolation tests: GROK_SWEEP_FAIL_AT_STEP=N raises at step N
    # in every job, N:S only in jobs with seed S; GROK_SWEEP_SIGNAL_AT_STEP=N:NAME sends the job's own process the
    # signal NAME (TERM, INT, USR2) at step N, before its update, as a signal arriving during that step would
    spec = os.environ.get("GROK_SWEEP_FAIL_AT_STEP")
    if spec and spec in (str(step), f"{step}:{seed}"):
        raise RuntimeError(f"injected failure at step {step} (GROK_SWEEP_FAIL_AT_STEP={spec})")
    at, _, name = os.environ.get("GROK_SWEEP_SIGNAL_AT_STEP", "").partition(":")
    if at == str(step):
        os.kill(os.getpid(), signal.Signals[f"SIG{name}"])
