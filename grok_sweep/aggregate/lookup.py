"""A job of a sweep found by its values (`train_ratio=0.5, weight_decay=1.0`), not by its folder's name, which holds
every override of the command line, constants too. Pure functions of the summary table (summary.parquet)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from grok_sweep.aggregate.summary import summary_keys
from grok_sweep.store.yaml_files import parse_scalar


def parse_values(name: str) -> dict[str, Any]:
    """`train_ratio=0.5,weight_decay=1.0` as {"train_ratio": 0.5, "weight_decay": 1.0}; ValueError if it is not of
    that form."""
    pairs = [part.partition("=") for part in name.split(",")]
    if not name or any(not k or not sep for k, sep, _ in pairs):
        raise ValueError(f"{name!r} is not of the form key=value,key=value")
    return {k.strip(): parse_scalar(v.strip()) for k, _, v in pairs}


def _same(column: pd.Series, value: Any) -> pd.Series:
    """Which cells of a summary column equal `value`: floats within rounding (0.3 is 0.30000000000000004)."""
    if pd.api.types.is_float_dtype(column) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return column.apply(lambda c: isinstance(c, float) and math.isclose(c, value, rel_tol=1e-9, abs_tol=1e-12))
    return column.astype(str) == str(value)


def _said(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def find_job(summary: pd.DataFrame, values: dict[str, Any]) -> str:
    """The name of the one job whose swept values are `values`; LookupError, one line, naming the swept keys and the
    nearest jobs (most values in common) where none is, or the jobs to choose from where several are."""
    keys = summary_keys(summary)
    if unknown := [k for k in values if k not in keys]:
        raise LookupError(f"{', '.join(unknown)}: not swept in this sweep; its swept keys: {', '.join(keys) or 'none'}")
    hits = pd.DataFrame({k: _same(summary[k], v) for k, v in values.items()}, index=summary.index)
    found = summary.loc[hits.all(axis=1), "job"].tolist() if values else summary["job"].tolist()
    if len(found) == 1:
        return found[0]
    if found:
        rest = [k for k in keys if k not in values and summary.loc[hits.all(axis=1), k].nunique() > 1]
        raise LookupError(f"{len(found)} jobs have {_said(values) or 'these values'}; say which with "
                          f"{' and '.join(rest) or 'the job name'}: {'; '.join(found[:5])}")  # fmt: skip
    score = hits.sum(axis=1)
    nearest = [_said(row[keys].to_dict()) for _, row in summary[score == score.max()].head(3).iterrows()]
    raise LookupError(f"no job has {_said(values)}; the nearest: {'; '.join(nearest)}")
