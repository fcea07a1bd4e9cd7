"""The command-line pre-check: every job a command line asks for is composed and checked before any runs.

`python -m grok_sweep` calls `check_command_line` first, so a grid with one bad value is refused
as a whole, one line per problem, and no job folder is created.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from grok_sweep.config import first_line as _first_line
from grok_sweep.config import problems as config_problems
from grok_sweep.config import schema_keys
from grok_sweep.resources import available_bytes, device_problem, memory_problem


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


def _launcher(args: list[str]) -> Optional[str]:
    for arg in args:
        key, _, name = arg.partition("=")
        if key.lstrip("+~") == "hydra/launcher":
            return name
    return None


def _missing_launcher(args: list[str]) -> list[str]:
    name = _launcher(args)
    if name in LAUNCHER_EXTRAS:
        module, extra = LAUNCHER_EXTRAS[name]
        if importlib.util.find_spec(module) is None:
            return [f"hydra/launcher={name} needs its Hydra plugin: pip install -e '.[{extra}]'"]
    return []


# launchers whose jobs run on other machines: their memory and devices are not this machine's
REMOTE_LAUNCHERS = ("slurm", "submitit_slurm", "ray", "ray_cluster")


def check_command_line(args: list[str], conf_dir: Path) -> list[str]:
    """Every problem in every job a command line asks for, one line each, before anything runs."""
    if missing := _missing_launcher(args):
        return missing
    overrides = [a for a in args if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    try:
        parsed, jobs = expand_sweep(overrides)
    except Exception as err:  # noqa: BLE001 - Hydra's override grammar: say which argument, in one line
        return [f"cannot read the command line: {_first_line(err)}"]
    known, problems = schema_keys(), []
    for o in parsed:
        key = o.get_key_element().lstrip("+~")
        if key.split(".")[0].split("/")[0] == "hydra" or (conf_dir / key).is_dir() or key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        problems.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if problems:
        return problems
    if folder := _output_problem(args):
        return [folder]
    local = _launcher(args) not in REMOTE_LAUNCHERS
    available = available_bytes() if local else None
    for job in jobs:
        task = [o for o in job if not o.lstrip("+~").startswith("hydra")]
        prefix = f"job {','.join(sorted(task))}: " if len(jobs) > 1 else ""
        problems += [prefix + p for p in _check_job(task, conf_dir, available, local)]
    return list(dict.fromkeys(problems))  # a device problem once, not once per job


def _check_job(overrides: list[str], conf_dir: Path, available: Optional[int], local: bool) -> list[str]:
    from hydra import compose, initialize_config_dir

    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(conf_dir)):
            cfg = compose("config", overrides=overrides)
        OmegaConf.to_container(cfg, resolve=True)  # an interpolation that does not resolve: ${oops}
    except Exception as err:  # noqa: BLE001 - Hydra's composition errors: wrong types, bad groups
        cause = err.__cause__ or err
        key = getattr(cause, "full_key", None)
        return [(f"{key}: " if key else "") + _first_line(cause)]
    # the group's own keys depend on its choice: the group itself must have one (~grokfast removes it)
    keys = [k for k in schema_keys() if not k.startswith("grokfast.")] + ["grokfast"]
    missing = [k for k in keys if OmegaConf.select(cfg, k, default=_ABSENT) is _ABSENT]
    if missing:
        return [f"{k} has no value (was it deleted with ~{k}?)" for k in missing]
    if found := config_problems(cfg):
        return found
    if memory := memory_problem(cfg, available):
        return [memory]
    device = device_problem(cfg.train.device) if local else None
    return [device] if device else []


_ABSENT = object()


def _output_problem(args: list[str]) -> Optional[str]:
    """One line if the run's (or sweep's) output folder cannot be made here."""
    key = "hydra.sweep.dir" if {"-m", "--multirun"} & set(args) else "hydra.run.dir"
    value = next((a.split("=", 1)[1] for a in args if a.split("=", 1)[0].lstrip("+") == key), "outputs")
    path = Path(value.split("${")[0] or ".").expanduser().absolute()  # the part before ${now:...}
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        return f"{key}={value}: {path} is a file, not a folder"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{key}={value}: cannot write in {path}"
    return None
