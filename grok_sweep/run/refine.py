"""A refine sweep (hydra/sweeper=refine): the coarse grid of two ranges, then the cells whose phases disagree.

The rule is detect/refine.py's; this runs it: each round is one batch through the configured launcher (joblib,
SLURM, Ray), its jobs labelled by aggregation's phase rule from their folders, the majority over each point's
replicates. Before each round the sweep folder's record (store/refine_record.py) says what runs. A re-run of the
same command derives the same plan from the labels its job folders hold, launching only jobs not finished yet.
docs/guide/refine.md.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from grok_sweep.aggregate.summary import summarize
from grok_sweep.aggregate.table import job_labels
from grok_sweep.detect import DEFAULT_RULE, Rule
from grok_sweep.detect.refine import Axis, Plan, Point, point_label
from grok_sweep.run.checks import ConfigError
from grok_sweep.run.config import RefineSweeperConfig
from grok_sweep.run.sweep_stop import stopped
from grok_sweep.store.layout import FINISHED, INCOMPLETE, PLAN_FILE
from grok_sweep.store.refine_record import PointJobs, Record, write_record
from grok_sweep.store.scan import find_jobs

log = logging.getLogger(__name__)
SWEEPER = "refine"  # hydra/sweeper=refine
SETTINGS = tuple(f.name for f in fields(RefineSweeperConfig) if f.name != "_target_")  # start, depth, max_jobs


@dataclass
class Spec:
    """What a refine sweep's command line asks for: two axes, each point's jobs (one per replicate), the budget."""

    axes: tuple[Axis, Axis]
    bases: list[list[str]]  # a point's jobs without the axes' overrides: the fixed overrides and one replicate each
    start: int
    depth: int
    max_jobs: int

    def plan(self) -> Plan:
        return Plan(self.start, self.depth, self.max_jobs // len(self.bases))

    def jobs(self, p: Point, steps: int) -> list[list[str]]:
        own = [f"{a.key}={a.text(k, steps)}" for a, k in zip(self.axes, p, strict=True)]
        return [[*base, *own] for base in self.bases]

    def record(self) -> Record:
        axes = [{"key": a.key, "lo": a.lo, "hi": a.hi, "log": a.log} for a in self.axes]
        return Record(axes, self.start, self.depth, self.max_jobs)


def settings(overrides: list[str]) -> dict[str, int]:
    """hydra.sweeper.start/depth/max_jobs from a command line's overrides, else their defaults."""
    out = {k: getattr(RefineSweeperConfig, k) for k in SETTINGS}
    for arg in overrides:
        key, _, value = arg.partition("=")
        name = key.lstrip("+~").removeprefix("hydra.sweeper.")
        if key.lstrip("+~").startswith("hydra.sweeper.") and name in out:
            try:
                out[name] = int(value)
            except ValueError:
                raise ConfigError(f"{key}={value}: not an integer") from None
    return out


def parse_spec(overrides: list[str], start: int, depth: int, max_jobs: int) -> Spec:
    """The sweep a refine command line's task overrides ask for; ConfigError (one line) for what cannot be one."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    ranges = [o for o in parsed if o.is_interval_sweep()]
    if len(ranges) != 2:
        keys = ", ".join(o.get_key_element() for o in ranges)
        raise ConfigError(f"hydra/sweeper={SWEEPER} sweeps two ranges (key=interval(lo,hi)); got {len(ranges)}"
                          + (f": {keys}" if keys else ""))  # fmt: skip
    axes = tuple(_axis(o) for o in ranges)
    if axes[0].key == axes[1].key:
        raise ConfigError(f"{axes[0].key}: two ranges on one key")
    for name, value, least in (("start", start, 2), ("depth", depth, 1), ("max_jobs", max_jobs, 1)):
        if value < least:
            raise ConfigError(f"hydra.sweeper.{name}={value}: must be at least {least}")
    bases = BasicSweeper.split_arguments([o for o in parsed if not o.is_interval_sweep()], None)[0]
    coarse = start**2 * len(bases)
    if max_jobs < coarse:
        times = f"{start}x{start} points x {len(bases)} replicate" + ("s" if len(bases) > 1 else "")
        raise ConfigError(f"hydra.sweeper.max_jobs={max_jobs} is less than the coarse grid's {coarse} jobs ({times})")
    return Spec(axes, bases, start, depth, max_jobs)  # type: ignore[arg-type]


def _axis(o: Any) -> Axis:
    key, sweep = o.get_key_element().lstrip("+~"), o.value()
    lo, hi, tags = float(sweep.start), float(sweep.end), set(sweep.tags)
    written = f"{key}=interval({lo:g},{hi:g})"
    written = f"{key}=tag(log,{written.split('=', 1)[1]})" if "log" in tags else written
    if tags - {"log"}:
        raise ConfigError(f"{written}: unknown tag {', '.join(sorted(tags - {'log'}))} (only log)")
    if lo >= hi:
        raise ConfigError(f"{written}: the range needs lo < hi")
    if "log" in tags and lo <= 0:
        raise ConfigError(f"{written}: a log range must stay above 0")
    return Axis(key, lo, hi, "log" in tags)


def range_problem(overrides: list[str]) -> Optional[str]:
    """One line if a command line has ranges but not the sweeper that sweeps them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    ranges = [o.get_key_element() for o in OverridesParser.create().parse_overrides(overrides) if o.is_interval_sweep()]
    return (f"{', '.join(ranges)}: a range (interval(lo,hi)) is swept by hydra/sweeper={SWEEPER} "
            "(docs/guide/refine.md)") if ranges else None  # fmt: skip


def rule_of(config: DictConfig) -> Rule:
    """The phase rule the sweep's aggregation uses (hydra.callbacks.aggregate), so rounds and figures agree."""
    node = OmegaConf.select(config, "hydra.callbacks.aggregate")
    if node is None:
        return DEFAULT_RULE
    return Rule(**{f.name: node[f.name] for f in fields(Rule) if f.name in node})


def point_labels(root: Path, points: list[PointJobs], rule: Rule) -> dict[Point, str]:
    """Each point's label: the majority of its jobs' labels (a phase, or a status such as failed), or a tie."""
    wanted = {frozenset(o) for p in points for o in p.jobs}
    jobs = {j.overrides: j for j in find_jobs(root) if j.overrides in wanted}
    summary = summarize(list(jobs.values()), [], rule)
    label = dict(zip(summary["job"], job_labels(summary), strict=True))
    name = {o: j.name for o, j in jobs.items()}
    return {p.point: point_label(label.get(name.get(frozenset(o)), INCOMPLETE) for o in p.jobs) for p in points}


def run_sweep(sweeper: Any, arguments: list[str]) -> Plan:
    """The sweep of a RefineSweeper (set up by Hydra: its config, context and launcher) on the task overrides."""
    config = sweeper.config
    spec = parse_spec(list(arguments), sweeper.start, sweeper.depth, sweeper.max_jobs)
    root = Path(config.hydra.sweep.dir)
    root.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, root / PLAN_FILE)
    rule, plan, record, launched = rule_of(config), spec.plan(), spec.record(), 0
    new: list[Point] = list(plan.points)
    labels: dict[Point, str] = {}
    while new:
        record.rounds.append([PointJobs(p, spec.jobs(p, plan.steps)) for p in new])
        write_record(root, record)
        done = {j.overrides for j in find_jobs(root) if j.status in FINISHED}
        todo = [job for p in record.rounds[-1] for job in p.jobs if frozenset(job) not in done]
        log.info("%s (%d to run)", record.round_line(), len(todo))
        if todo:
            sweeper.validate_batch_is_legal(todo)
            sweeper.launcher.launch(todo, initial_job_idx=launched)
            launched += len(todo)
        if stopped(root):  # SIGINT or SIGTERM (run/sweep_stop.py): no next round; the same command resumes
            return plan
        labels.update(point_labels(root, record.rounds[-1], rule))  # a round's jobs have ended: its labels hold
        new = plan.next_round(labels)
    record.finished = True
    write_record(root, record)
    return plan
