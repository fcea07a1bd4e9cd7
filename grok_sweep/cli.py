"""The command-line pre-check: every job a command line asks for is composed and checked before any runs.

`python -m grok_sweep` calls `check_command_line` first, so a grid with one bad value is refused
as a whole, one line per problem, and no job folder is created.
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Any

from grok_sweep.config import problems as config_problems
from grok_sweep.config import schema_keys


def expand_sweep(overrides: list[str]) -> tuple[list[Any], list[list[str]]]:
    """Hydra's parsed overrides and the jobs the basic sweeper makes of them, as override lists."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    return parsed, BasicSweeper.split_arguments(parsed, None)[0]


# launchers whose Hydra plugin is an optional extra: module to import, extra to install
LAUNCHER_EXTRAS = {
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
    "ray_cluster": ("hydra_plugins.hydra_ray_launcher", "ray"),
}


def _missing_launcher(args: list[str]) -> list[str]:
    for arg in args:
        key, _, name = arg.partition("=")
        if key.lstrip("+~") == "hydra/launcher" and name in LAUNCHER_EXTRAS:
            module, extra = LAUNCHER_EXTRAS[name]
            if importlib.util.find_spec(module) is None:
                return [f"hydra/launcher={name} needs its Hydra plugin: pip install -e '.[{extra}]'"]
    return []


def check_command_line(args: list[str], conf_dir: Path) -> list[str]:
    """Every problem in every job a command line asks for, one line each, before anything runs."""
    if missing := _missing_launcher(args):
        return missing
    try:
        parsed, jobs = expand_sweep([a for a in args if "=" in a and not a.startswith("-")])
    except Exception:  # noqa: BLE001 - not ours to judge: Hydra reports bad override syntax itself
        return []
    known, problems = schema_keys(), []
    for o in parsed:
        key = o.get_key_element().lstrip("+~")
        if key.split(".")[0].split("/")[0] == "hydra" or (conf_dir / key).is_dir() or key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        problems.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if problems:
        return problems
    for job in jobs:
        task = [o for o in job if not o.lstrip("+~").startswith("hydra")]
        prefix = f"job {','.join(sorted(task))}: " if len(jobs) > 1 else ""
        problems += [prefix + p for p in _check_job(task, conf_dir)]
    return problems


def _check_job(overrides: list[str], conf_dir: Path) -> list[str]:
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir)):
            cfg = compose("config", overrides=overrides)
    except Exception as err:  # noqa: BLE001 - Hydra's composition errors: wrong types, bad groups
        cause = err.__cause__ or err
        key = getattr(cause, "full_key", None)
        return [(f"{key}: " if key else "") + str(cause).strip().splitlines()[0]]
    return config_problems(cfg)
