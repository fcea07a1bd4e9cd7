"""Collect a sweep's jobs into one metrics table and one summary row per job.

Works on a finished, running or interrupted sweep (it aggregates what is there and says what is
missing) and on a single run folder. `python -m grok_sweep.aggregate SWEEP_DIR --help`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from grok_sweep.aggregate.collect import AggregateError, aggregate, unreadable_line
from grok_sweep.detect import DEFAULT_RULE, Rule
from grok_sweep.store.jobs import job_folders
from grok_sweep.store.layout import PLAN_FILE


def main(argv: Optional[list[str]] = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m grok_sweep.aggregate", description=__doc__.splitlines()[0])
    ap.add_argument("sweep_dir", type=Path, help="a sweep folder (outputs/sweeps/<date>/<time>) or a run folder")
    ap.add_argument("--rows", help="config key for the table's rows (default: train_ratio if swept)")
    ap.add_argument("--cols", help="config key for its columns (default: weight_decay if swept)")
    ap.add_argument("--threshold", type=float, default=DEFAULT_RULE.threshold, help="accuracy that counts as fit")
    ap.add_argument("--delay-ratio", type=float, default=DEFAULT_RULE.delay_ratio,
                    help="grokking: sustained grokking step >= this x memorization step ...")  # fmt: skip
    ap.add_argument("--min-delay", type=int, default=DEFAULT_RULE.min_delay, help="... and >= this many steps after")
    ap.add_argument("--watch", action="store_true",
                    help="show the sweep's jobs live until every planned job has ended, then aggregate")  # fmt: skip
    ap.add_argument("--no-figures", action="store_true", help="write the tables only (summary, metrics)")
    args = ap.parse_args(argv)
    if not 0 < args.threshold <= 1:
        ap.error(f"--threshold {args.threshold}: must be in (0, 1]")
    try:
        if args.watch:
            _watch(args.sweep_dir)
        rule = Rule(args.threshold, args.delay_ratio, args.min_delay)
        summary, _ = aggregate(args.sweep_dir, args.rows, args.cols, rule, figures=not args.no_figures)
    except AggregateError as err:
        sys.exit(f"grok_sweep.aggregate: error: {err}")
    if damaged := unreadable_line(summary):
        sys.exit(f"grok_sweep.aggregate: {damaged}")


def _watch(root: Path) -> None:
    from grok_sweep.view.live import watch

    if not root.is_dir():
        raise AggregateError(f"{root}: no such folder")
    if not (root / PLAN_FILE).exists() and not job_folders(root):
        raise AggregateError(f"{root}: not a sweep (no {PLAN_FILE} and no job folders); nothing to watch")
    try:
        watch(root)
    except KeyboardInterrupt:
        sys.exit("grok_sweep.aggregate: stopped watching; the jobs go on (watch again, or aggregate later)")


if __name__ == "__main__":
    main()
