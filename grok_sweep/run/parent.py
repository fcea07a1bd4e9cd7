"""init.from: a job that continues another run (its parent). What is checked before the job starts (`problems`, each
one line), and what it starts from (`start`): the parent's weights at its end or at a snapshot, optionally its
optimizer state, and the parent's split cut to the first init.subset train pairs (in the parent's order, so subsets
are nested) with the parent's whole test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from grok_sweep.data.start import Start
from grok_sweep.data.tasks import Split, job_split, split_sizes
from grok_sweep.store import safetensors
from grok_sweep.store.layout import CHECKPOINT_FILE, FINAL_FILE, RESULT_FILE, TRAINED
from grok_sweep.store.results import read_result
from grok_sweep.store.weights import file_meta, find_snapshots
from grok_sweep.store.yaml_files import parse_yaml
from grok_sweep.util.errors import first_line

SAME = ("operation", "modulus", "width", "model")  # the parent's task and model shape (model.init_scale aside)
SAME_STATE = ("optim.name", "grokfast.name", "train.constrain_norm")  # init.optimizer=true: what its state is of


def _get(cfg: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        cfg = cfg.get(key) if isinstance(cfg, dict) else getattr(cfg, key, None)
    return cfg


def parent_config(folder: Path) -> dict[str, Any]:
    """The parent's resolved config, as its result.json holds it."""
    return parse_yaml(read_result(folder)["config"])


def subset_size(subset: Any, n_train: int) -> Optional[int]:
    """init.subset as a number of pairs (an int N, or a fraction f: floor(f * n_train), at least 1); None: all."""
    if subset is None:
        return None
    return int(subset) if isinstance(subset, int) else max(1, int(subset * n_train))


def sizes(cfg: Any) -> tuple[int, int]:
    """A job's train and test split sizes: its own (split_sizes), or with init.from its subset of the parent's."""
    if cfg.init["from"] is None:
        return split_sizes(cfg.modulus, cfg.train_ratio, cfg.operation)
    p = parent_config(Path(cfg.init["from"]))
    n_train, n_test = split_sizes(p["modulus"], p["train_ratio"], p["operation"])
    return subset_size(cfg.init.subset, n_train) or n_train, n_test


def _whole(v: Any) -> bool:
    """An integer, not a bool (YAML's true is Python's int too)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _type_problems(init: Any) -> list[str]:
    """init's values of the wrong kind (init is a mapping without a schema: run/config.py)."""
    allowed = {
        "from": (lambda v: v is None or (isinstance(v, str) and v != ""), "null or a run folder"),
        "step": (lambda v: v is None or (_whole(v) and v >= 0), "null (the weights it ended with) or a step >= 0"),
        "optimizer": (lambda v: isinstance(v, bool), "true or false"),
        "subset": (lambda v: v is None or _whole(v) or isinstance(v, float), "null (all), a number of pairs or a "
                   "fraction of them"),
    }  # fmt: skip
    return [f"init.{k}={init[k]!r} is not allowed: {why}" for k, (ok, why) in allowed.items() if not ok(init[k])]


def problems(cfg: Any) -> list[str]:
    """Why a job of `cfg` cannot start from its init.from, one line each (none without init.from)."""
    init = cfg.init
    if found := _type_problems(init):
        return found
    src = init["from"]
    if src is None:
        used = [f"init.{k}={init[k]}" for k in ("step", "subset") if init[k] is not None]
        return [f"{k} needs init.from=PATH (the run to continue)" for k in used + (["init.optimizer=true"]
                if init.optimizer else [])]  # fmt: skip
    try:
        return _folder_problems(cfg, Path(src))
    except Exception as err:  # noqa: BLE001 - a damaged parent is bad input: one line, as any other
        return [f"init.from={src}: a file of it cannot be read ({first_line(err)})"]


def _folder_problems(cfg: Any, folder: Path) -> list[str]:
    init, src = cfg.init, cfg.init["from"]
    result = read_result(folder) if (folder / RESULT_FILE).is_file() else None
    if not isinstance(result, dict) or result.get("status") not in TRAINED or not result.get("config"):
        return [f"init.from={src} is not a finished run folder (one whose result.json says completed or stopped_early)"]
    p = parent_config(folder)
    out = [f"init.from={src}: its {k} is {_plain(_get(p, k), k)}, this job's {_plain(_get(cfg, k), k)} (the model and "
           f"task must be the parent's)" for k in SAME if _plain(_get(p, k), k) != _plain(_get(cfg, k), k)]  # fmt: skip
    steps = find_snapshots(folder)
    if init.step is not None and init.step not in steps:
        out.append(f"init.step={init.step}: {src} has weights after steps {', '.join(map(str, steps)) or 'none'}")
    if init.optimizer:
        out += _state_problems(cfg, p, folder, init.step if init.step is not None else _final_step(folder))
    out += _subset_problems(init.subset, split_sizes(p["modulus"], p["train_ratio"], p["operation"])[0])
    return out


def _plain(value: Any, key: str) -> Any:
    if key == "model" and isinstance(value, dict):  # an earlier version's model has no name: the transformer's
        return {"name": "transformer", **{k: v for k, v in value.items() if k != "init_scale"}}
    if key == "model" and value is not None:
        return _plain(dict(value), key)
    return value


def _final_step(folder: Path) -> Optional[int]:
    final = folder / FINAL_FILE
    return file_meta(final)["step"] if final.exists() else None


def _state_problems(cfg: Any, p: dict[str, Any], folder: Path, step: Optional[int]) -> list[str]:
    checkpoint = folder / CHECKPOINT_FILE
    if not checkpoint.is_file() or file_meta(checkpoint).get("step") != step:
        return [f"init.optimizer=true: {folder} keeps no optimizer state after step {step} (train.keep_checkpoint=true"
                " keeps a finished run's)"]  # fmt: skip
    return [f"init.optimizer=true: the parent's {k} is {_get(p, k)}, this job's {_get(cfg, k)} (its state is of that)"
            for k in SAME_STATE if _get(p, k) != _get(cfg, k)]  # fmt: skip


def _subset_problems(subset: Any, n_train: int) -> list[str]:
    ok = subset is None or (_whole(subset) and 1 <= subset <= n_train) or (
        isinstance(subset, float) and 0 < subset <= 1)  # fmt: skip
    if ok:
        return []
    return [f"init.subset={subset} is not allowed: null (all), 1..{n_train} pairs of the parent's train split, or a "
            f"fraction in (0, 1]"]  # fmt: skip


def start(cfg: Any) -> Optional[Start]:
    """What a job of `cfg` starts from (None: fresh weights, without init.from). Assumes `problems` found none."""
    init = cfg.init
    if init["from"] is None:
        return None
    folder = Path(init["from"])
    p = parent_config(folder)
    split = job_split(_Task(p))
    n = subset_size(init.subset, len(split.y_train)) or len(split.y_train)
    split = Split(split.x_train[:n], split.y_train[:n], split.x_test, split.y_test)
    weights = safetensors.read(find_snapshots(folder)[init.step] if init.step is not None else folder / FINAL_FILE)
    state = safetensors.read(folder / CHECKPOINT_FILE) if init.optimizer else None
    return Start(split, weights, state)


def describe(cfg: Any) -> Optional[dict[str, Any]]:
    """result.json's "init": the parent's folder, the step its weights are from, the train pairs used."""
    init = cfg.init
    if init["from"] is None:
        return None
    folder = Path(init["from"])
    step = init.step if init.step is not None else _final_step(folder)
    return {"from": str(folder.resolve()), "step": step, "subset": sizes(cfg)[0], "optimizer": bool(init.optimizer)}


class _Task:
    """The keys of a parent's config (a plain mapping) that job_split reads."""

    def __init__(self, p: dict[str, Any]):
        self.seed, self.modulus, self.train_ratio, self.operation = p["seed"], p["modulus"], p["train_ratio"], \
            p["operation"]  # fmt: skip
