"""The jobs a sweep asks for: its command line's overrides expanded as Hydra's basic sweeper expands them.

A sweep folder keeps them in multirun.yaml; the pre-check, the live view and aggregation all plan from here. A refine
sweep's jobs (ranges, `key=interval(lo,hi)`) are known round by round: from its record (store/refine_record.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from grok_sweep.store.damage import Damaged
from grok_sweep.store.layout import PLAN_FILE
from grok_sweep.store.refine_record import read_record


def expand_sweep(overrides: list[str]) -> tuple[list[Any], list[list[str]]]:
    """Hydra's parsed overrides and the jobs the basic sweeper makes of them, as override lists."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return parsed, BasicSweeper.split_arguments(parsed, None)[0]


def plan(overrides: list[str]) -> tuple[list[frozenset[str]], list[str]]:
    """The jobs a multirun's task overrides ask for, and the keys they sweep."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    swept = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    if any(o.is_interval_sweep() for o in parsed):  # a refine sweep: its jobs come round by round
        return [], swept
    return [frozenset(job) for job in expand_sweep(overrides)[1]], swept


def planned_jobs(root: Path) -> tuple[list[frozenset[str]], list[str]]:
    """The jobs a sweep folder's multirun.yaml (a refine sweep's record) asks for, and the keys it sweeps (none
    without one)."""
    try:
        record = read_record(root)
    except Damaged:  # aggregation names the damaged record itself
        record = None
    if record is not None:
        return record.jobs(), record.keys()
    path = root / PLAN_FILE
    if not path.exists():
        return [], []
    return plan(list(OmegaConf.load(path).hydra.overrides.task))
