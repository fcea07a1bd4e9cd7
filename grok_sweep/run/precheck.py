"""The command-line pre-check: every job a command line asks for is composed and checked before any runs.

`python -m grok_sweep` calls `check_command_line` first, so a grid with one bad value is refused as a whole,
one line per problem, and no job folder is created. It composes each job as Hydra will: on the same config
search path (--config-path/-cp, --config-name/-cn, --config-dir/-cd, hydra.searchpath), through Hydra's own
argument parser and config loader; Hydra's own commands (--help, --hydra-help, --cfg, --info,
--shell-completion, --version) pass through untouched.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf, open_dict, read_write

from grok_sweep.run.checks import ConfigError, cautions
from grok_sweep.run.checks import problems as config_problems
from grok_sweep.run.config import GROUPS, register, schema_keys
from grok_sweep.run.refine import SWEEPER, parse_spec, range_problem, settings
from grok_sweep.run.resources import available_bytes, device_problem, memory_problem
from grok_sweep.store.plan import expand_sweep
from grok_sweep.util.errors import first_line

MAIN_FILE = Path(__file__).resolve().parents[1] / "__main__.py"  # the file of @hydra.main: -cp is relative to it

# launchers whose Hydra plugin is an optional extra: module to import, extra to install
LAUNCHER_EXTRAS = {
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "ray": ("hydra_plugins.hydra_ray_launcher", "ray"),
    "ray_cluster": ("hydra_plugins.hydra_ray_launcher", "ray"),
}
# launchers whose jobs run on other machines: their memory and devices are not this machine's
REMOTE_LAUNCHERS = ("slurm", "submitit_slurm", "ray", "ray_cluster")


def _choice(overrides: list[str], group: str) -> Optional[str]:
    """The option a command line picks for a Hydra group (hydra/launcher, hydra/sweeper), if any."""
    for arg in overrides:
        key, _, name = arg.partition("=")
        if key.lstrip("+~") == group:
            return name
    return None


def _launcher(overrides: list[str]) -> Optional[str]:
    return _choice(overrides, "hydra/launcher")


def _missing_launcher(overrides: list[str]) -> list[str]:
    name = _launcher(overrides)
    if name in LAUNCHER_EXTRAS:
        module, extra = LAUNCHER_EXTRAS[name]
        if importlib.util.find_spec(module) is None:
            return [f"hydra/launcher={name} needs its Hydra plugin: pip install -e '.[{extra}]'"]
    return []


def _hydra_args(args: list[str]) -> Optional[Any]:
    """The command line as Hydra's own parser reads it; None where Hydra alone should answer it (its own
    commands, or arguments its parser refuses: it says why itself)."""
    from hydra._internal.utils import get_args_parser

    if "--version" in args:
        return None
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            parsed = get_args_parser().parse_args(args)
    except SystemExit:
        return None
    own = parsed.help or parsed.hydra_help or parsed.cfg or parsed.info or parsed.shell_completion
    return None if own or parsed.experimental_rerun else parsed


def check_command_line(args: list[str], conf_dir: Path, main_file: Path = MAIN_FILE,
                       warnings: Optional[list[str]] = None) -> list[str]:  # fmt: skip
    """Every problem in every job a command line asks for, one line each, before anything runs. `conf_dir` is the
    app's config folder (@hydra.main's config_path), `main_file` the file that declares it. Values allowed but
    likely at odds (checks.cautions) go to `warnings`, each once for the whole grid."""
    parsed = _hydra_args(args)
    if parsed is None:
        return []
    overrides = list(parsed.overrides)
    if missing := _missing_launcher(overrides):
        return missing
    try:
        sweep_args, jobs, axes = _jobs(overrides)
    except ConfigError as err:
        return [str(err)]
    except Exception as err:  # noqa: BLE001 - Hydra's override grammar: say which argument, in one line
        return [f"cannot read the command line: {first_line(err)}"]
    try:
        with _hydra(parsed, conf_dir, main_file) as hydra:
            if axes and (problem := _range_key_problem(hydra, parsed.config_name or "config", jobs[0], axes)):
                return [problem]
            return _check(hydra, parsed, sweep_args, jobs, [] if warnings is None else warnings)
    except Exception as err:  # noqa: BLE001 - a search path Hydra refuses: --config-dir that is not a folder
        return [first_line(err)]


def _jobs(overrides: list[str]) -> tuple[list[Any], list[list[str]], list[Any]]:
    """Hydra's parsed overrides, the jobs to check, and a refine sweep's two axes (none for a grid). A refine sweep
    is checked on its coarse grid's four corners, each replicate: the extremes of both ranges."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if _choice(overrides, "hydra/sweeper") != SWEEPER:
        if problem := range_problem(overrides):
            raise ConfigError(problem)
        return (*expand_sweep(overrides), [])
    spec = parse_spec(overrides, **settings(overrides))
    plan = spec.plan()
    corners = [(a, b) for b in (0, plan.steps) for a in (0, plan.steps)]
    jobs = [job for p in corners for job in spec.jobs(p, plan.steps)]
    return OverridesParser.create().parse_overrides(overrides), jobs, list(spec.axes)


def _range_key_problem(hydra: Any, config_name: str, job: list[str], axes: list[Any]) -> Optional[str]:
    """One line if a range is on a key that is not a float (a range's points are fractions)."""
    try:
        cfg = _compose(hydra, config_name, job)
    except Exception:  # noqa: BLE001 - the job's own check says why it does not compose
        return None
    for axis in axes:
        node = cfg
        for part in axis.key.split("."):
            node = node._get_node(part) if node is not None else None
        kind = getattr(getattr(node, "_metadata", None), "ref_type", None)
        if kind is not float:
            what = "a config group" if axis.key in GROUPS else getattr(kind, "__name__", "not a float")
            return (f"{axis.key}=interval(...): {axis.key} is {what}; a range needs a float key (train_ratio, "
                    f"weight_decay, optim.lr, ...)")  # fmt: skip
    return None


@contextlib.contextmanager
def _hydra(parsed: Any, conf_dir: Path, main_file: Path) -> Iterator[Any]:
    """Hydra on the config search path that `python -m grok_sweep` with these arguments would use."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery
    from hydra.core.global_hydra import GlobalHydra

    config_path = parsed.config_path if parsed.config_path is not None else str(conf_dir)
    search_path = create_automatic_config_search_path(str(main_file), None, config_path)
    if parsed.config_dir is not None:
        folder = os.path.abspath(parsed.config_dir)
        if not os.path.isdir(folder):
            raise ValueError(f"--config-dir {parsed.config_dir}: no such folder ({folder})")
        search_path.prepend("command-line", f"file://{folder}", anchor=SearchPathQuery(provider="schema"))
    register()  # the schemas and the refining sweeper, as `python -m grok_sweep` has them
    try:
        yield Hydra.create_main_hydra2(task_name="grok_sweep", config_search_path=search_path)
    finally:
        GlobalHydra.instance().clear()


def _check(hydra: Any, parsed: Any, sweep_args: list[Any], jobs: list[list[str]], warnings: list[str]) -> list[str]:
    config_name = parsed.config_name or "config"
    searchpath = [o for o in parsed.overrides if o.split("=", 1)[0].lstrip("+") == "hydra.searchpath"]
    repo = hydra.config_loader._parse_overrides_and_create_caching_repo(config_name, searchpath)[1]
    known, problems = schema_keys(), []
    for o in sweep_args:
        key = o.get_key_element().lstrip("+~")
        if key.split(".")[0].split("/")[0] == "hydra" or key in known or repo.group_exists(key):
            continue
        close = difflib.get_close_matches(key, known, n=1)
        problems.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    if problems:
        return problems
    if folder := _output_problem(parsed.overrides, parsed.multirun):
        return [folder]
    local = _launcher(parsed.overrides) not in REMOTE_LAUNCHERS
    available = available_bytes() if local else None
    for job in jobs:
        task = [o for o in job if not o.lstrip("+~").startswith("hydra")]
        prefix = f"job {','.join(sorted(task))}: " if len(jobs) > 1 else ""
        problems += [prefix + p for p in _check_job(hydra, config_name, job, available, local, warnings)]
    warnings[:] = dict.fromkeys(warnings)  # once for the grid, not once per job
    return list(dict.fromkeys(problems))  # a device problem once, not once per job


def _compose(hydra: Any, config_name: str, overrides: list[str]) -> Any:
    """The job's config as Hydra composes it, without its hydra node, every interpolation resolved."""
    from hydra.types import RunMode

    cfg = hydra.compose_config(config_name, overrides, run_mode=RunMode.RUN, with_log_configuration=False)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.to_container(cfg, resolve=True)  # an interpolation that does not resolve: ${oops}
    return cfg


def _check_job(hydra: Any, config_name: str, overrides: list[str], available: Optional[int], local: bool,
               warnings: list[str]) -> list[str]:  # fmt: skip
    try:
        cfg = _compose(hydra, config_name, overrides)
    except Exception as err:  # noqa: BLE001 - Hydra's composition errors: wrong types, bad groups
        cause = err.__cause__ or err
        key = getattr(cause, "full_key", None)
        return [(f"{key}: " if key else "") + first_line(cause)]
    # a group's own keys depend on its choice: the group itself must have one (~grokfast removes it)
    keys = [k for k in schema_keys() if k.split(".")[0] not in GROUPS] + list(GROUPS)
    missing = [k for k in keys if OmegaConf.select(cfg, k, default=_ABSENT) is _ABSENT]
    if missing:
        return [f"{k} has no value (was it deleted with ~{k}?)" for k in missing]
    if found := config_problems(cfg):
        return found
    warnings += cautions(cfg)
    if memory := memory_problem(cfg, available):
        return [memory]
    device = device_problem(cfg.train.device) if local else None
    return [device] if device else []


_ABSENT = object()


def _output_problem(overrides: list[str], multirun: bool) -> Optional[str]:
    """One line if the run's (or sweep's) output folder cannot be made here."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    value = next((a.split("=", 1)[1] for a in overrides if a.split("=", 1)[0].lstrip("+") == key), "outputs")
    path = Path(value.split("${")[0] or ".").expanduser().absolute()  # the part before ${now:...}
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        return f"{key}={value}: {path} is a file, not a folder"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{key}={value}: cannot write in {path}"
    return None
