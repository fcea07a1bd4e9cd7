"""The command-line pre-check: every job a command line asks for is composed and checked before any runs.

`python -m grok_sweep` calls `check_command_line` first, so a grid with one bad value, or one job whose output folder
holds a job of another config, is refused as a whole, one line per problem, before Hydra writes anything. It composes
each job as Hydra will: on the same config search path (--config-path/-cp, --config-name/-cn, --config-dir/-cd,
hydra.searchpath), through Hydra's own argument parser and config loader; Hydra's own commands (--help, --hydra-help,
--cfg, --info, --shell-completion, --version) pass through untouched.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf, open_dict, read_write

from grok_sweep.run.checks import ConfigError, cautions
from grok_sweep.run.checks import problems as config_problems
from grok_sweep.run.command_jobs import command_jobs, run_mode
from grok_sweep.run.config import GROUPS, register, schema_keys
from grok_sweep.run.hydra_errors import composition_problem, grammar_problem
from grok_sweep.run.outputs import folder_problem, job_folder, output_problem
from grok_sweep.run.resources import available_bytes, device_problem, memory_problem
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


def _pack_size_problem(overrides: list[str]) -> list[str]:
    """hydra/launcher=pack's size: null or a number of jobs >= 1 (Hydra checks that it is an int)."""
    size = _choice(overrides, "hydra.launcher.size")
    if _launcher(overrides) != "pack" or size is None or size == "null" or not size.lstrip("-").isdigit():
        return []
    return [] if int(size) >= 1 else [f"hydra.launcher.size={size} is not allowed: null or a number of jobs >= 1"]


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
    """Every problem in every job a command line asks for, one line each, before anything runs or is written.
    `conf_dir` is the app's config folder (@hydra.main's config_path), `main_file` the file that declares it. Values
    allowed but likely at odds (checks.cautions) go to `warnings`, each once for the whole grid."""
    parsed = _hydra_args(args)
    if parsed is None:
        return []
    if missing := _missing_launcher(list(parsed.overrides)):
        return missing
    try:
        with _hydra(parsed, conf_dir, main_file) as hydra:
            return _check_all(hydra, parsed, [] if warnings is None else warnings)
    except ConfigError as err:
        return [str(err)]
    except Exception as err:  # noqa: BLE001 - a search path Hydra refuses: --config-dir that is not a folder
        return [first_line(err)]


def _check_all(hydra: Any, parsed: Any, warnings: list[str]) -> list[str]:
    config_name, overrides = parsed.config_name or "config", list(parsed.overrides)
    multirun = parsed.multirun or run_mode(hydra, config_name, overrides) == "MULTIRUN"
    try:
        sweep_args, jobs, axes = command_jobs(
            hydra, config_name, overrides, multirun, _choice(overrides, "hydra/sweeper")
        )
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - Hydra's override grammar: say which argument, in one line
        raise ConfigError(grammar_problem(overrides, err)) from None
    if axes and (problem := _range_key_problem(hydra, config_name, jobs[0], axes)):
        return [problem]
    return _check(hydra, parsed, multirun, sweep_args, jobs, warnings)


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
        if axis.key == "init.subset":  # a fraction of the parent's train pairs (init has no schema: run/config.py)
            kind = float
        if kind is not float:
            what = "a config group" if axis.key in GROUPS else getattr(kind, "__name__", "not a float")
            return (f"{axis.key}=interval(...): {axis.key} is {what}; a range needs a float key (train_ratio, "
                    f"weight_decay, optim.lr, init.subset as a fraction, ...)")  # fmt: skip
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


def _check(hydra: Any, parsed: Any, multirun: bool, sweep_args: list[Any], jobs: list[list[str]],
           warnings: list[str]) -> list[str]:  # fmt: skip
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
    if problems := problems or _pack_size_problem(list(parsed.overrides)):
        return problems
    if folder := output_problem(parsed.overrides, multirun):
        return [folder]
    local = _launcher(parsed.overrides) not in REMOTE_LAUNCHERS
    job = _Job(hydra, config_name, multirun, local, available_bytes() if local else None)
    for num, overrides in enumerate(jobs):
        task = [o for o in overrides if not o.lstrip("+~").startswith("hydra")]
        prefix = f"job {','.join(sorted(task))}: " if len(jobs) > 1 else ""
        problems += [prefix + p for p in job.problems(overrides, num, warnings)]
    warnings[:] = dict.fromkeys(warnings)  # once for the grid, not once per job
    return list(dict.fromkeys(problems))  # a device problem once, not once per job


def _compose(hydra: Any, config_name: str, overrides: list[str]) -> Any:
    """The job's config as Hydra composes it, its hydra node included."""
    from hydra.types import RunMode

    return hydra.compose_config(config_name, overrides, run_mode=RunMode.RUN, with_log_configuration=False)


def _task(cfg: Any) -> Any:
    """The config the job's function gets, as Hydra hands it: without its hydra node (taken out of `cfg`); every
    interpolation must resolve."""
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    OmegaConf.to_container(cfg, resolve=True)  # an interpolation that does not resolve: ${oops}
    return cfg


@dataclass
class _Job:
    """What every job of a command is checked against: Hydra, the mode, where the jobs run and the memory there."""

    hydra: Any
    config_name: str
    multirun: bool
    local: bool
    available: Optional[int]

    def problems(self, overrides: list[str], num: int, warnings: list[str]) -> list[str]:
        """The job's problems: its config's, its memory and device's, then its output folder's."""
        try:
            cfg = _compose(self.hydra, self.config_name, overrides)
            folder = job_folder(cfg, self.multirun, num)  # before the hydra node goes
            task = _task(cfg)
        except Exception as err:  # noqa: BLE001 - Hydra's composition errors: wrong types, bad groups
            return [composition_problem(err)]
        # a group's own keys depend on its choice: the group itself must have one (~grokfast removes it)
        keys = [k for k in schema_keys() if k.split(".")[0] not in GROUPS] + list(GROUPS)
        missing = [k for k in keys if OmegaConf.select(task, k, default=_ABSENT) is _ABSENT]
        if missing:
            return [f"{k} has no value (was it deleted with ~{k}?)" for k in missing]
        if found := config_problems(task):
            return found
        warnings += cautions(task)
        if memory := memory_problem(task, self.available):
            return [memory]
        if device := device_problem(task.train.device) if self.local else None:
            return [device]
        return [p] if (p := folder_problem(folder, OmegaConf.to_yaml(task))) else []


_ABSENT = object()
