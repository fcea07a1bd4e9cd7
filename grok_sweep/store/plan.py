"""The jobs a sweep asks for: its command line's overrides expanded as Hydra's basic sweeper expands them.

A sweep folder keeps them in multirun.yaml; the pre-check, the live view and aggregation all plan from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from grok_sweep.store.layout import PLAN_FILE


def expand_sweep(overrides: list[str]) -> tuple[list[Any], list[list[str]]]:
    """Hydra's parsed overrides and the jobs the basic sweeper makes of them, as override lists."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return parsed, BasicSweeper.split_arguments(parsed, None)[0]


def plan(overrides: list[str]) -> tuple[list[frozenset[str]], list[str]]:
    """The jobs a multirun's task overrides ask for, and the keys they sweep."""
    parsed, jobs = expand_sweep(overrides)
    swept = [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
    return [frozenset(job) for job in jobs], swept


def planned_jobs(root: Path) -> tuple[list[frozenset[str]], list[str]]:
    """The jobs a sweep folder's multirun.yaml asks for, and the keys it sweeps (none without one)."""
    path = root / PLAN_FILE
    if not path.exists():
        return [], []
    return plan(list(OmegaConf.load(path).hydra.overrides.task))
