"""report.html of a sweep and of a single run: the story on one page that opens anywhere (docs/guide/outputs.md).

Takes what aggregation made (the summary, the phase table's cells, the figures' files, what was run) and trains
nothing; html.py's blocks make the page self-contained.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pandas as pd

from grok_sweep.plot.style import COLORS, DARK
from grok_sweep.report.html import esc, image, page, pairs, table
from grok_sweep.store.layout import DIVERGED, FAILED, UNREADABLE
from grok_sweep.util.files import atomic_write

MAX_MEASURES = 12  # measures figures inlined in a sweep's report: a 100-job sweep's page stays a few MB
JOB_COLS = ("status", "phase", "memorization_step", "sustained_grokking_step", "final_test_acc", "best_test_acc",
            "steps_per_s", "wall_time_s")  # fmt: skip


def folder_title(folder: Path) -> str:
    """A sweep's or run's name on its page: its folder's last two parts, outputs' `<date>/<time>`."""
    return "/".join(folder.absolute().parts[-2:])


def _colour(label: Any) -> str:
    if label not in COLORS:
        return ""
    return f"background:{COLORS[label]};color:{'#fff' if label in DARK else '#000'}"


def phase_tables(panels: list[tuple[str, pd.DataFrame]], rows: Optional[str], cols: Optional[str]) -> str:
    """Each panel's cells (with `label` and `text`) as a table of rows x cols, each cell coloured by its label."""
    out = []
    for title, cells in panels:
        if cells.empty:
            continue
        r = cells[rows] if rows else pd.Series([""] * len(cells), index=cells.index)
        c = cells[cols] if cols else pd.Series([""] * len(cells), index=cells.index)
        grid = {(a, b): (t, lab) for a, b, t, lab in zip(r, c, cells["text"], cells["label"], strict=True)}
        col_vals, row_vals = sorted(set(c)), sorted(set(r))
        head = "".join(f"<th>{esc(v)}</th>" for v in col_vals)
        body = ""
        for a in row_vals:
            tds = "".join(f'<td style="{_colour(grid.get((a, b), ("", ""))[1])}">{esc(grid.get((a, b), ("",))[0])}</td>'
                          for b in col_vals)  # fmt: skip
            body += f"<tr><th>{esc(a)}</th>{tds}</tr>"
        corner = f"{esc(rows or '')} \\ {esc(cols or '')}"
        out.append(
            (f"<h3>{esc(title)}</h3>" if title else "")
            + f'<table><thead><tr><th class="l">{corner}</th>{head}</tr></thead><tbody>{body}</tbody></table>'
        )
    return "".join(out)


def _job_cell(column: str, value: Any, row: pd.Series) -> str:
    # a long folder name may wrap after each of its overrides, so the table stays as wide as the page
    return f'<a href="{esc(value)}/">{esc(value).replace(",", ",<wbr>")}</a>' if column == "job" else esc(value)


def job_table(summary: pd.DataFrame, keys: list[str]) -> str:
    """Every job: its folder (a link), swept values, status, phase, key steps, accuracies and speed."""
    cols = ["job", *keys, *(["seed"] if "seed" not in keys else []), *JOB_COLS]
    df = summary[[c for c in cols if c in summary]]
    return table(df, left=("job", "status", "phase"), cell=_job_cell,
                 style=lambda c, v: _colour(v) if c == "phase" else "")  # fmt: skip


def failures(summary: pd.DataFrame) -> str:
    bad = summary[summary["status"].isin([FAILED, DIVERGED, UNREADABLE])]
    if bad.empty:
        return ""
    return table(bad[["job", "status", "error"]], left=("job", "status", "error"),
                 cell=lambda c, v, _: f'<span class="err">{esc(v)}</span>' if c == "error" else esc(v))  # fmt: skip


def measures_section(paths: list[Path]) -> str:
    """The progress-measures figures of the first MAX_MEASURES jobs that have them, and how many more there are."""
    shown = "".join(f"<h3>{esc(p.parent.name)}</h3>{image(p, 'progress measures')}" for p in paths[:MAX_MEASURES])
    rest = len(paths) - MAX_MEASURES
    return shown + (f'<p class="dim">and {rest} more, each in its job\'s folder</p>' if rest > 0 else "")


def sweep_report(path: Path, about: list[tuple[str, Any]], config: str, summary: pd.DataFrame, keys: list[str],
                 panels: list[tuple[str, pd.DataFrame]], rows: Optional[str], cols: Optional[str],
                 figures: dict[str, list[Path]], notes: str = "") -> Path:  # fmt: skip
    """report.html of a sweep folder. `figures`: the phase diagram, the curves' pages, the measures' figures."""
    measured = measures_section(figures["measures"])
    sections = [
        ("What was run", pairs(about) + f"<details><summary>the config every job shares</summary><pre>{esc(config)}"
                                        "</pre></details>"),
        ("Phase table", phase_tables(panels, rows, cols) + notes),
        ("Phase diagram", "".join(image(p, "phase diagram") for p in figures["phase_diagram"])),
        ("Curves", "".join(image(p, "curves") for p in figures["curves"])),
        (f"Jobs ({len(summary)})", f'<div style="overflow-x:auto">{job_table(summary, keys)}</div>'),
        ("Progress measures", measured),
        ("Failed, diverged or unreadable jobs", failures(summary)),
    ]  # fmt: skip
    text = page(f"grok_sweep sweep: {folder_title(path.parent)}", sections)
    atomic_write(path, lambda p: p.write_text(text))
    return path


def run_report(path: Path, about: list[tuple[str, Any]], config: str, line: str, result: dict[str, Any],
               figures: dict[str, list[Path]]) -> Path:  # fmt: skip
    """report.html of a single run: what was run, what it found, its curves and measures, its result."""
    shown = {k: v for k, v in result.items() if not isinstance(v, (dict, list)) and k != "config"}
    sections = [
        ("What was run", pairs(about) + f"<details><summary>its config</summary><pre>{esc(config)}</pre></details>"),
        ("What it found", f"<p>{esc(line)}</p>"),
        ("Curves", "".join(image(p, "curves") for p in figures["curves"])),
        ("Progress measures", "".join(image(p, "progress measures") for p in figures["measures"])),
        ("Result", pairs(sorted(shown.items()))),
    ]
    text = page(f"grok_sweep run: {folder_title(path.parent)}", sections)
    atomic_write(path, lambda p: p.write_text(text))
    return path
