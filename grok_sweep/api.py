"""A job or sweep folder back as Python objects: `from grok_sweep import load_run, load_sweep`.

run = load_run("outputs/runs/2026-12-01/10-00-00")
run.metrics                       # per-step DataFrame, as in metrics.parquet
run.predict([3, 5], [4, 50])      # the final model's answers to 3 op 4 and 5 op 50
run.model(step=500)               # the tinygrad model at a snapshot (train.snapshot_every): model/family.py

sweep = load_sweep("outputs/sweeps/2026-12-01/10-00-00")
sweep.summary                     # one row per job, as in summary.parquet
sweep.runs["seed=1,weight_decay=0.1"].logits()
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from grok_sweep.aggregate.lookup import find_job, parse_values
from grok_sweep.data.tasks import all_pairs, encode, every_pair, job_split
from grok_sweep.store import safetensors
from grok_sweep.store.jobs import job_folders, load_job
from grok_sweep.store.layout import (
    CONFIG_FILE,
    HYDRA_DIR,
    INCOMPLETE,
    METRICS_FILE,
    RESULT_FILE,
    SUMMARY_FILE,
    UNREADABLE,
)
from grok_sweep.store.metrics import metrics_exist, read_metrics
from grok_sweep.store.results import read_result
from grok_sweep.store.scan import aggregates_stale, folder_problem
from grok_sweep.store.weights import find_snapshots


class LoadError(ValueError):
    """A folder or step that holds nothing to load; the message is one line."""


def _listing(folder: Path) -> str:
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    return shown or "nothing"


class Run:
    """One job folder: its config, result, metrics and model weights."""

    def __init__(self, folder: Path, device: str = "CPU"):
        self.folder, self.device = folder, device
        hydra_config = folder / HYDRA_DIR / CONFIG_FILE
        result = read_result(folder)
        if hydra_config.exists():
            self.config: DictConfig = OmegaConf.load(hydra_config)
        elif result is not None and "config" in result:  # a job run through run_job, without Hydra
            self.config = OmegaConf.create(result["config"])
        else:
            raise LoadError(f"{folder} is not a job folder (no .hydra/config.yaml or result.json); it holds: "
                            f"{_listing(folder)}")  # fmt: skip
        self.result: dict[str, Any] = result or {"status": INCOMPLETE}

    def __repr__(self) -> str:
        return f"Run({str(self.folder)!r}, status={self.result['status']!r})"

    def _repr_html_(self) -> str:  # Jupyter's view of it
        from grok_sweep.detect import detect
        from grok_sweep.report.notebook import run_view

        has = metrics_exist(self.folder / METRICS_FILE)
        return run_view(self.folder, self.result, detect(self.metrics) if has and len(self.metrics) else {})

    @cached_property
    def metrics(self) -> pd.DataFrame:
        path = self.folder / METRICS_FILE
        if not metrics_exist(path):
            raise LoadError(f"{self.folder} has no {METRICS_FILE} yet; it holds: {_listing(self.folder)}")
        return read_metrics(path)

    @property
    def snapshot_steps(self) -> list[int]:
        """The steps with weights on disk (the model after that many updates), the final one included."""
        return list(find_snapshots(self.folder))

    def model(self, step: Optional[int] = None):
        """The tinygrad model of the job's family (model/family.py: model/gpt.py's GPT, mlp.py's MLP or
        quadratic.py's Quadratic) with the weights of `step` (the final model if None)."""
        from tinygrad import Tensor
        from tinygrad.nn.state import load_state_dict

        from grok_sweep.model.family import job_model

        found = find_snapshots(self.folder)
        if not found:
            raise LoadError(f"{self.folder} holds no weights yet (model.safetensors or snapshots/)")
        path = found[max(found)] if step is None else found.get(step)
        if path is None:
            raise LoadError(f"no snapshot at step {step} in {self.folder}; steps with weights: "
                            f"{', '.join(map(str, found))}")  # fmt: skip
        m = job_model(self.config, np.random.default_rng(0), self.device)  # the weights are replaced below
        load_state_dict(m, {k: Tensor(v, device=self.device) for k, v in safetensors.read(path).items()}, verbose=False)
        return m

    def _logits(self, a: np.ndarray, b: np.ndarray, step: Optional[int]) -> np.ndarray:
        """The logits as training computed them (the transformer's through model/forward.py: its function, faster)."""
        from tinygrad import Tensor

        from grok_sweep.model.family import logits

        x = Tensor(encode(a, b, self.config.modulus), device=self.device)
        return logits(self.model(step), x).numpy()

    def logits(self, step: Optional[int] = None) -> np.ndarray:
        """(p, p, p) float: the logits for a, b, class; NaN for pairs the job's operation leaves out."""
        p = self.config.modulus
        a, b = every_pair(p)
        out = self._logits(a, b, step).reshape(p, p, p)
        defined = all_pairs(p, self.config.operation)[0]
        keep = np.zeros((p, p), dtype=bool)
        keep[defined[:, 0], defined[:, 1]] = True
        out[~keep] = np.nan
        return out

    def predict(self, a: Any, b: Any, step: Optional[int] = None) -> np.ndarray:
        """The model's answers (int) to a op b, for arrays (or numbers) a and b in 0..p-1."""
        a, b = np.broadcast_arrays(np.asarray(a), np.asarray(b))
        p = self.config.modulus
        if not (np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer)):
            raise LoadError(f"predict takes integers a and b in 0..{p - 1}; got {a.dtype} and {b.dtype}")
        if a.size and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= p):
            raise LoadError(f"predict takes a and b in 0..{p - 1} (modulus={p})")
        flat = self._logits(a.ravel(), b.ravel(), step).argmax(axis=-1) if a.size else np.zeros(0, int)
        return flat.reshape(a.shape)

    def split(self):
        """The job's train and test pairs (data.tasks.Split: x_train (n, 3) tokens a, b, "=", y_train, ...)."""
        return job_split(self.config)


class Runs(dict):
    """Job name (its folder, relative to the sweep's) -> Run; a key that is no folder's name is read as the job's
    swept values, `"train_ratio=0.5,weight_decay=1.0"` (Sweep.run)."""

    def __init__(self, runs: dict[str, Run], sweep: Sweep):
        super().__init__(runs)
        self._sweep = sweep

    def __missing__(self, name: str) -> Run:
        try:
            values = parse_values(name)
        except ValueError:
            raise KeyError(f"no job folder {name!r} in {self._sweep.folder}") from None
        return self._sweep.run(**values)


@dataclass
class Sweep:
    folder: Path
    summary: pd.DataFrame  # as summary.parquet: one row per job
    metrics: pd.DataFrame  # as the sweep's metrics.parquet: every job's rows
    runs: dict[str, Run]  # job name (its folder, relative to the sweep's) -> Run, for every readable job
    unreadable: dict[str, str]  # job name -> its damaged file and why (status `unreadable` in the summary)

    def __post_init__(self) -> None:
        self.runs = Runs(self.runs, self)

    def run(self, **values: Any) -> Run:
        """The one job with these swept values, `sweep.run(train_ratio=0.5, weight_decay=1.0)` (a dotted key as
        `**{"optim.lr": 0.01}`); LoadError naming the nearest jobs if none has them, or the keys to add if several
        do (the seeds of a cell)."""
        try:
            name = find_job(self.summary, values)
        except LookupError as err:
            raise LoadError(f"{self.folder}: {err}") from None
        if name in self.unreadable:
            raise LoadError(f"{self.folder / name}: {self.unreadable[name]}; run its command again to repair it")
        return dict.__getitem__(self.runs, name)

    def __repr__(self) -> str:
        return f"Sweep({str(self.folder)!r}, jobs={len(self.summary)})"

    def _repr_html_(self) -> str:  # Jupyter's view of it: the phase table and diagram
        from grok_sweep.aggregate.summary import summary_keys
        from grok_sweep.aggregate.table import default_axes, phase_panels, with_text
        from grok_sweep.report.notebook import sweep_view

        s = self.summary
        keys = summary_keys(s)  # the seed among them: the table's axes and panels leave it out
        rows, cols = default_axes(keys)
        coarse = s[s["round"] == 0] if "round" in s else s  # a refine sweep's table: its coarse grid
        split = [(t, with_text(cells)) for t, cells in phase_panels(coarse, keys, rows, cols)]
        return sweep_view(self.folder, s, split, rows, cols)


def load_run(job_dir: str | Path, device: str = "CPU") -> Run:
    """A job folder (a run's, or one job of a sweep) as a Run; its models go on `device`."""
    folder = Path(job_dir)
    if not folder.is_dir():
        raise LoadError(f"{folder}: no such folder")
    if damage := load_job(folder, folder).damage:
        raise LoadError(f"{folder}: {damage}; run its command again to repair it")
    return Run(folder, device)


def load_sweep(sweep_dir: str | Path, device: str = "CPU") -> Sweep:
    """A sweep folder's aggregates (made first if missing) and its runs."""
    from grok_sweep.aggregate import aggregate

    folder = Path(sweep_dir)
    if problem := folder_problem(folder):
        raise LoadError(problem)
    names = [f.relative_to(folder).as_posix() for f in job_folders(folder)]
    if not names or names == ["."]:
        is_run = names or (folder / RESULT_FILE).exists()  # a run of run_job has no .hydra folder
        what = "a run folder (use load_run)" if is_run else "not a sweep folder (no job folders in it)"
        raise LoadError(f"{folder} is {what}; it holds: {_listing(folder)}")
    if aggregates_stale(folder, [folder / n for n in names]):
        aggregate(folder, echo=lambda *_: None)
    try:
        summary, metrics = pd.read_parquet(folder / SUMMARY_FILE), read_metrics(folder / METRICS_FILE)
    except Exception:  # noqa: BLE001 - the sweep's own tables are damaged: they are made again from the jobs
        aggregate(folder, echo=lambda *_: None)
        summary, metrics = pd.read_parquet(folder / SUMMARY_FILE), read_metrics(folder / METRICS_FILE)
    bad = summary[summary["status"] == UNREADABLE]
    unreadable = dict(zip(bad["job"], bad["error"], strict=True))
    runs = {name: Run(folder / name, device) for name in names if name not in unreadable}
    return Sweep(folder, summary, metrics, runs, unreadable)
