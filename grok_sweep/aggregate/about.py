"""What a sweep (or a run) was, for its report.html: the command line, the swept values, the config its jobs share,
when it ran, where, and with which versions. Read from the folders aggregation has already read."""

from __future__ import annotations

import datetime as dt
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from grok_sweep.plot.style import fmt
from grok_sweep.store.jobs import Job
from grok_sweep.store.layout import CONFIG_FILE, HYDRA_DIR, PLAN_FILE, RESULT_FILE
from grok_sweep.store.yaml_files import load_yaml


def _command(root: Path, jobs: list[Job]) -> str:
    """The command line that made the folder, as Hydra kept it."""
    if jobs[0].name == ".":
        return " ".join(["python -m grok_sweep", *sorted(jobs[0].overrides)])
    try:
        hydra = (load_yaml(root / PLAN_FILE) or {}).get("hydra") or {}
        args = [*(hydra.get("overrides") or {}).get("hydra", []), *(hydra.get("overrides") or {}).get("task", [])]
    except Exception:  # noqa: BLE001 - no plan, or a damaged one: the report says so instead
        return f"(unknown: no readable {PLAN_FILE})"
    said = [a for a in args if not a.startswith(("hydra.sweep.dir=", "hydra.mode="))]  # -m is the mode
    return " ".join(["python -m grok_sweep -m", *said])


def _when(paths: list[Path], pick) -> str:
    times = [p.stat().st_mtime for p in paths if p.exists()]
    return dt.datetime.fromtimestamp(pick(times)).isoformat(" ", "seconds") if times else ""


def _versions(results: list[dict[str, Any]]) -> str:
    try:
        own = f"grok_sweep {version('grok_sweep')}"
    except PackageNotFoundError:
        own = "grok_sweep (not installed)"
    last = results[-1] if results else {}
    libs = [f"{k} {v}" for k, v in (last.get("versions") or {}).items() if k in ("tinygrad", "numpy", "pandas")]
    return ", ".join([own, *libs, *([f"Python {last['python']}"] if last.get("python") else [])])


def about(root: Path, jobs: list[Job], summary: pd.DataFrame, keys: list[str]) -> tuple[list[tuple[str, Any]], str]:
    """(name, value) pairs saying what ran, and the config every job shares as 'key: value' lines."""
    results = [j.result for j in jobs if j.result]
    folders = [root / j.name for j in jobs]
    items: list[tuple[str, Any]] = [("command", _command(root, jobs))]
    if jobs[0].name != ".":
        items += [(f"swept {k}", ", ".join(fmt(v) for v in sorted(summary[k].dropna().unique()))) for k in keys]
        counts = summary["status"].value_counts()
        items.append(("jobs", f"{len(summary)}: " + ", ".join(f"{n} {s}" for s, n in counts.items())))
    items += [("started", _when([f / HYDRA_DIR / CONFIG_FILE for f in folders], min)),
              ("ended", _when([f / RESULT_FILE for f in folders], max))]  # fmt: skip
    for name in ("host", "device"):
        items.append((name, ", ".join(sorted({str(r[name]) for r in results if r.get(name)}))))
    items.append(("versions", _versions(results)))
    first = jobs[0].config
    shared = {k: v for k, v in first.items() if k not in keys and all(j.config.get(k) == v for j in jobs[1:])}
    return items, "\n".join(f"{k}: {v}" for k, v in sorted(shared.items()))
