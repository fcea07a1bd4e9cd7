"""A job's output folder, and whether a command may write into it: one that holds a job of another config may not.

A finished job is skipped by a re-run of its own config and an interrupted one resumes; a job of another config in
the same folder would mix two runs, so it is refused. The pre-check (run/precheck.py) asks before Hydra writes
anything, for every job of the command at once; run/job.py asks again when the job starts, for the jobs only known
then (a refine sweep's later rounds).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf, open_dict

from grok_sweep.run.checks import ConfigError
from grok_sweep.store.damage import Damaged
from grok_sweep.store.integrity import read_json
from grok_sweep.store.layout import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    DIVERGED,
    FAILED,
    FINISHED,
    HYDRA_DIR,
    INTERRUPTED,
    OVERRIDES_FILE,
    RESULT_FILE,
    RUNNING,
)
from grok_sweep.store.lock import held_by
from grok_sweep.store.weights import file_meta
from grok_sweep.store.yaml_files import flatten, parse_yaml
from grok_sweep.util.files import atomic_write

FINISHED_WORD = "finished"  # completed or stopped early, as a refusal says it


def job_folder(cfg: DictConfig, multirun: bool, num: int = 0) -> Path:
    """The folder Hydra gives the job of `cfg` (its hydra node included): hydra.run.dir, or hydra.sweep.dir and its
    subdir for job number `num` of a multirun."""
    with open_dict(cfg.hydra.job):
        cfg.hydra.job.num = num
    if not multirun:
        return Path(str(OmegaConf.select(cfg, "hydra.run.dir"))).absolute()
    sweep, sub = OmegaConf.select(cfg, "hydra.sweep.dir"), OmegaConf.select(cfg, "hydra.sweep.subdir")
    return (Path(str(sweep)) / str(sub)).absolute()


def recorded(folder: Path) -> Optional[tuple[str, str]]:
    """(what kind of job, its config as YAML) of a job in `folder` that a run of another config must not touch: a
    finished one (result.json), an interrupted one (its checkpoint), one a process trains now (Hydra's config.yaml);
    None if the folder holds none (a damaged file included: the job's own repair sets it aside)."""
    try:
        result = read_json(folder / RESULT_FILE) if (folder / RESULT_FILE).is_file() else None
        status = result.get("status") if result else None
        if status in FINISHED and isinstance(result.get("config"), str):
            return (DIVERGED if status == DIVERGED else FINISHED_WORD), result["config"]
        if (folder / CHECKPOINT_FILE).is_file():
            config = file_meta(folder / CHECKPOINT_FILE).get("config")
            if isinstance(config, str):  # a re-run resumes it: a failed one too
                return (FAILED if status == FAILED else INTERRUPTED), config
        if held_by(folder) and (folder / HYDRA_DIR / CONFIG_FILE).is_file():
            return RUNNING, (folder / HYDRA_DIR / CONFIG_FILE).read_text()
    except (Damaged, OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None
    return None


def differences(old: str, new: str, most: int = 3) -> str:
    """The keys whose values differ between two configs (YAML), `key: old there, new here`, at most `most`."""
    try:
        a, b = flatten(parse_yaml(old) or {}), flatten(parse_yaml(new) or {})
    except Exception:  # noqa: BLE001 - a config that does not parse: say that they differ
        return "another config"
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k, "(none)") != b.get(k, "(none)")]
    said = [f"{k}: {_value(a, k)} there, {_value(b, k)} here" for k in keys[:most]]
    return "; ".join(said + ([f"{len(keys) - most} more"] if len(keys) > most else [])) or "another config"


def _value(config: dict[str, Any], key: str) -> str:
    return "(none)" if key not in config else str(config[key]).lower() if config[key] is None else str(config[key])


def folder_problem(folder: Path, config: str) -> Optional[str]:
    """One line if `folder` holds a job (finished, interrupted or running) of a config other than `config`."""
    found = recorded(folder)
    if found is None or found[1] == config:
        return None
    return refusal(folder, *found, config)


def refusal(folder: Path, what: str, old: str, new: str) -> str:
    """The line that refuses a job of config `new` in `folder`, whose `what` job ran with `old`."""
    return (f"{folder} holds a{'n' if what[0] in 'aeiou' else ''} {what} job of another config "
            f"({differences(old, new)}); give this one a new output folder")  # fmt: skip


def refuse_other_config(folder: Path, old: Optional[str], new: str, overrides: Optional[list]) -> None:
    """Refuse a job of config `new` in a folder whose job ran with `old` (ConfigError); Hydra's files, which Hydra
    wrote for the refused job before it started, are put back as the folder's job had them."""
    if old is None or old == new:
        return
    restore_hydra_files(folder, old, overrides)
    raise ConfigError(refusal(folder, (recorded(folder) or (INTERRUPTED,))[0], old, new))


def restore_hydra_files(folder: Path, config: str, overrides: Optional[list]) -> None:
    """Hydra's config.yaml and overrides.yaml of the job in `folder`, as it ran (`config`, `overrides`), where Hydra
    wrote those of a refused job over them; its hydra.yaml (Hydra's own settings) stays the refused job's."""
    where = folder / HYDRA_DIR
    files = {CONFIG_FILE: config}
    if overrides is not None:
        files[OVERRIDES_FILE] = OmegaConf.to_yaml(OmegaConf.create(list(overrides)))
    for name, text in files.items():
        path = where / name
        try:
            if path.exists() and path.read_text() != text:
                atomic_write(path, lambda p, t=text: p.write_text(t))
        except OSError:  # the refusal itself is what the user must see
            pass


def output_problem(overrides: list[str], multirun: bool) -> Optional[str]:
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
