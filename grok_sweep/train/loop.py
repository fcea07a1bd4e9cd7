"""The training loop of one job or a pack of jobs (train/members.py): from trainer.step until every member has ended,
with their evals, syncs, checkpoints and snapshots.

The loop waits on the device only at a sync (Runs.fetch), and syncs fall on the same steps in every run
of a config (train/device_rows.py), so a resumed run repeats an uninterrupted one; a diverged run ends at the
first sync after its first non-finite train row. In a pack, a member ends on its own (its steps, early stopping,
divergence) and takes no update after; the pack ends when its last member does, or at a signal.
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
from grok_sweep.util import interrupt

if TYPE_CHECKING:
    from grok_sweep.train.members import Member
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
class Plan:
    """What the loop does when for one member: read from its config once (a DictConfig read costs microseconds, a
    step of a small model a millisecond), with the callbacks it reports to."""

    progress: Optional[Progress]
    checkpoint: Checkpoint
    snapshot: Snapshot
    steps: int
    eval_every: int
    checkpoint_every: int  # 0: no checkpoints
    snapshot_every: int  # 0: no snapshots
    seed: int
    # called once the member's run has ended and its rows are fetched (a pack's member writes its folder then, while
    # the others train on), with the outcome so far; None: the caller reads the members after the loop
    ended: Optional[Callable[[Outcome], None]] = None

    @classmethod
    def of(cls, cfg: Any, progress: Optional[Progress] = None, checkpoint: Checkpoint = None,
           snapshot: Snapshot = None, ended: Optional[Callable[[Outcome], None]] = None) -> Plan:  # fmt: skip
        every = cfg.train.checkpoint_every if checkpoint is not None else 0
        snap_every = cfg.train.snapshot_every if snapshot is not None else 0
        return cls(progress, checkpoint, snapshot, cfg.steps, cfg.eval_every, every, snap_every, cfg.seed, ended)


def fit(t: Trainer, plans: list[Plan]) -> Outcome:
    """Train t's members from t.step until each has ended, member k reporting to plans[k]: `checkpoint` every
    train.checkpoint_every steps, `snapshot(step)` every train.snapshot_every steps, before that step's update.
    The outcome's status is the first member's; each member's is its own `status`."""
    flush = t.cfg.train.flush_denormals and t.on_cpu
    clock = _Clock(time.perf_counter())
    # only the first calls compile; BEAM picks their kernels
    with Context(BEAM=t.cfg.train.beam), flush_denormals(flush):
        try:
            _run(t, clock, plans)
        except Exception:
            if not _salvage(t):  # unless the run had diverged before it failed
                raise
    t_end = time.perf_counter()
    compiled = clock.compiled or t_end
    return Outcome(t.members[0].status or DIVERGED, compiled - clock.start, t_end - compiled)


def _run(t: Trainer, clock: _Clock, plans: list[Plan]) -> None:
    first, members = t.step, t.members
    last = max(p.steps for p in plans)
    for s in range(first, last):
        t.step = s
        stopping = _before_update(t, s, first, plans)
        _report(t, plans, clock, s)  # members that diverged at this step's sync
        if t.ended():  # every member diverged at this step's sync
            return
        t.activate(s)
        _inject_fault(s, plans)
        t.train_step(*t.batch())
        if s == first + 1:
            t.train_rows.counter.numpy()  # wait for the device so the compile time is honest
            clock.compiled = time.perf_counter()
        for k, (m, plan) in enumerate(zip(members, plans, strict=True)):
            if m.running(s):
                _advance(m, plan, s, k in stopping)
        if t.ended():
            break
        _report(t, plans, clock, s + 1)
        if interrupt.requested() and s + 1 < last:  # SIGINT or SIGTERM: the step in flight is done
            for m in members:
                m.finish(max(s + 1, m.first), INTERRUPTED)
            break
    for m, plan in zip(members, plans, strict=True):  # a run resumed at its last step took none
        m.finish(plan.steps, COMPLETED)
    if t.cache is not None:
        save_once_captured(t.cache, t)
    t.step = max(m.end for m in members)
    t.fetch(t.step)
    _report(t, plans, clock, t.step)


def _outcome(clock: _Clock, status: str) -> Outcome:
    now = time.perf_counter()
    compiled = clock.compiled or now
    return Outcome(status, compiled - clock.start, now - compiled)


def _report(t: Trainer, plans: list[Plan], clock: _Clock, upto: int) -> None:
    """Hand each member whose run has ended (and whose plan asks) to its `ended`, once, its rows fetched first."""
    done = [k for k, (m, p) in enumerate(zip(t.members, plans, strict=True))
            if m.end is not None and p.ended is not None and not m.reported]  # fmt: skip
    if not done:
        return
    if any(t.members[k].log.filled < min(t.members[k].end, upto) for k in done):
        sync(t, upto, plans)
    for k in done:
        t.members[k].reported = True
        plans[k].ended(_outcome(clock, t.members[k].status))


def _advance(m: Member, plan: Plan, s: int, stop: bool) -> None:
    """Member m has taken step s's update: its run ends after it if early stopping fired or it was its last."""
    if plan.progress is not None:
        plan.progress.advance()
        if stop:
            plan.progress.stopped(s)
    if stop:
        m.finish(s + 1, STOPPED_EARLY)
    elif s + 1 == plan.steps:
        m.finish(s + 1, COMPLETED)


def _before_update(t: Trainer, s: int, first: int, plans: list[Plan]) -> set[int]:
    """Step s's syncs, checkpoints, snapshots and evals, before its update; the members whose run early stopping
    ends after this step's update (whose forward gives row s its train metrics)."""
    members = t.members
    saving = [k for k, (m, p) in enumerate(zip(members, plans, strict=True))
              if p.checkpoint_every and s % p.checkpoint_every == 0 and s > max(first, m.first)
              and m.end is None]  # fmt: skip
    behind = min((m.log.filled for m in members if m.end is None), default=s)
    if saving or s - behind >= t.block:  # the train rows' buffer is full
        sync(t, s, plans)  # early stopping cannot fire on evals before s (see sync)
    for k in saving:
        if members[k].end is None:
            plans[k].checkpoint()
    for m, p in zip(members, plans, strict=True):
        if p.snapshot_every and s % p.snapshot_every == 0 and m.running(s):
            p.snapshot(s)
    due = [k for k, (m, p) in enumerate(zip(members, plans, strict=True))
           if m.running(s) and (s % p.eval_every == 0 or s == p.steps - 1)]  # fmt: skip
    if not due:
        return set()
    t.pending.append((s, t.run_eval(), due))
    if t.cache is not None:
        save_once_captured(t.cache, t)
    lasts = {k for k in due if s == plans[k].steps - 1}
    if not _sync_due(t, bool(lasts)):
        return set()
    return sync(t, s, plans) - lasts


def _salvage(t: Trainer) -> bool:
    """After an exception in the loop: fetch what the device still holds; True if it shows every member diverged."""
    try:
        t.fetch(t.step)
    except Exception:  # noqa: BLE001 - the device may be what failed; the original error is raised
        return False
    return all(m.status == DIVERGED for m in t.members)


def _sync_due(t: Trainer, last: bool) -> bool:
    """Whether the evals queued so far are fetched at this eval step (`last`: a member's last step)."""
    holding = any(m.early_stop.hold > 0 and m.early_stop.since is not None for m in t.members if m.end is None)
    return holding or len(t.pending) >= t.evals_per_sync or last


def sync(t: Trainer, step: int, plans: list[Plan]) -> set[int]:
    """Fetch the rows before `step` and the queued evals; the members on one of whose evals early stopping fires.

    Exact: once test accuracy holds at a sync, every eval syncs; otherwise a streak that starts
    after the sync needs train.early_stop steps to fire, more than the evals_per_sync evals
    until the next sync span. So it can only fire on an eval synced at its own step."""
    stops, evals = set(), t.fetch(step)
    for k, s, values in evals:
        if t.members[k].early_stop.update(s, float(values[TEST_ACC])) and t.members[k].end is None:
            stops.add(k)
    for k, (m, p) in enumerate(zip(t.members, plans, strict=True)):
        own = [(s, v) for j, s, v in evals if j == k]
        if own and p.progress is not None:
            p.progress.evals(m.log.last_train, own)
    return stops


def _inject_fault(step: int, plans: list[Plan]) -> None:
    # failure injection for the failure-isolation tests: GROK_SWEEP_FAIL_AT_STEP=N raises at step N
    # in every job, N:S only in jobs with seed S (in a pack: if a member has seed S); GROK_SWEEP_SIGNAL_AT_STEP=N:NAME
    # sends the job's own process the signal NAME (TERM, INT, USR2) at step N, before its update, as a signal
    # arriving during that step would
    spec = os.environ.get("GROK_SWEEP_FAIL_AT_STEP")
    if spec and spec in {str(step), *(f"{step}:{p.seed}" for p in plans)}:
        raise RuntimeError(f"injected failure at step {step} (GROK_SWEEP_FAIL_AT_STEP={spec})")
    at, _, name = os.environ.get("GROK_SWEEP_SIGNAL_AT_STEP", "").partition(":")
    if at == str(step):
        os.kill(os.getpid(), signal.Signals[f"SIG{name}"])
