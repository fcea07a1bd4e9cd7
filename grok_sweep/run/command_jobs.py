"""The jobs a command line asks for, as Hydra will run them: its mode (RUN, or MULTIRUN from -m or a config's
`hydra.mode`), and a sweep's jobs as the basic sweeper expands them (the pre-check composes and checks each)."""

from __future__ import annotations

from typing import Any, Optional

from grok_sweep.run.checks import ConfigError
from grok_sweep.run.refine import SWEEPER, parse_spec, range_problem, settings
from grok_sweep.store.plan import expand_sweep, sweep_params


def run_mode(hydra: Any, config_name: str, overrides: list[str]) -> Optional[str]:
    """RUN or MULTIRUN, as the config says (hydra.mode, e.g. set in a preset) where the command line does not."""
    try:
        mode = hydra.get_mode(config_name=config_name, overrides=overrides)
    except Exception:  # noqa: BLE001 - a config that does not compose: its jobs' checks say why
        return None
    return getattr(mode, "name", None)


def command_jobs(hydra: Any, config_name: str, overrides: list[str], multirun: bool,
                 sweeper: Optional[str]) -> tuple[list, list[list[str]], list]:  # fmt: skip
    """Hydra's parsed overrides, the jobs to check, and a refine sweep's two axes (none for a grid). A grid's jobs are
    those Hydra's basic sweeper runs: the config's own sweep values (hydra.sweeper.params) with the command line's,
    glob(...) over a group's options. A refine sweep is checked on its coarse grid's four corners, each replicate."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if sweeper != SWEEPER:
        if problem := range_problem(overrides):
            raise ConfigError(problem)
        params = sweep_values(hydra, config_name, overrides) if multirun else []
        return (*expand_sweep(overrides, params, hydra.config_loader), [])
    spec = parse_spec(overrides, **settings(overrides))
    plan = spec.plan()
    corners = [(a, b) for b in (0, plan.steps) for a in (0, plan.steps)]
    jobs = [job for p in corners for job in spec.jobs(p, plan.steps)]
    return OverridesParser.create().parse_overrides(overrides), jobs, list(spec.axes)


def sweep_values(hydra: Any, config_name: str, overrides: list[str]) -> list[str]:
    """The sweep values the config itself keeps (hydra.sweeper.params), as the basic sweeper reads them."""
    from hydra.types import RunMode

    try:
        cfg = hydra.compose_config(config_name, overrides, run_mode=RunMode.MULTIRUN, with_log_configuration=False)
    except Exception:  # noqa: BLE001 - a config that does not compose: its jobs' checks say why
        return []
    return sweep_params(cfg.hydra)
