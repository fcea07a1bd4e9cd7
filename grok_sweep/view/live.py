"""The sweep view: one live table of every job in a terminal, plain status lines anywhere else.

`View` polls the sweep folder (state.py) from a thread of the submitting process and draws it
with rich; run/callbacks.py's ViewCallback runs it for the length of a multirun, whatever the
launcher; `watch` runs it from any machine that sees the folder (`python -m grok_sweep.aggregate DIR --watch`).
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from grok_sweep.store.layout import (
    COMPILING,
    COMPLETED,
    DIVERGED,
    ENDED,
    FAILED,
    INTERRUPTED,
    LIVE,
    PLAN_FILE,
    QUEUED,
    STOP_FILE,
    STOPPED_EARLY,
    TRAINED,
    TRAINING,
)
from grok_sweep.view.state import JobView, Sweep, acc, clock, header, progress, shown

STYLE = {ENDED[COMPLETED]: "green", ENDED[STOPPED_EARLY]: "green", ENDED[FAILED]: "bold red", ENDED[DIVERGED]: "red",
         INTERRUPTED: "yellow", TRAINING: "cyan", COMPILING: "magenta", QUEUED: "dim"}  # fmt: skip
EVERY_PCT, EVERY_S = 25, 60.0  # plain lines: a running job reports every 25% of its steps or every minute


def table(jobs: list[JobView], elapsed: float, rows: int, width: int, common: str = "",
          round_line: Optional[str] = None) -> Group:  # fmt: skip
    """The view: a header line (and a refine sweep's round) and one row per job (as many as `rows` allows),
    `width` columns wide."""
    fit, more = shown(jobs, rows)
    grid = Table(box=None, pad_edge=False, header_style="bold")
    # a narrow terminal cuts the phase and the error first: a job's name and state stay whole
    name, step = (max((len(f(j)) for j in fit), default=4) for f in (lambda j: j.name, progress))
    widths = {"job": name, "state": 13, "step": max(step, 4), "train acc": 9, "test acc": 8, "steps/s": 7}
    if width - sum(widths.values()) - 2 * len(widths) < 20:  # the phase needs more ("memorization so far")
        del widths["steps/s"]
    for col, w in widths.items():
        grid.add_column(col, justify="left" if col in ("job", "state") else "right", no_wrap=True, width=w)
    rest = max(width - sum(widths.values()) - 2 * len(widths), 12)  # columns are 2 apart
    grid.add_column("phase (or error)", no_wrap=True, overflow="ellipsis", width=rest)
    for j in fit:
        rate = f"{j.steps_per_s:.0f}" if j.steps_per_s else ""
        phase = j.error or (j.phase if not j.phase or j.ended else f"{j.phase} so far")
        cells = [j.name, Text(j.state, style=STYLE.get(j.state, "")), progress(j), acc(j.train_acc), acc(j.test_acc)]
        grid.add_row(*cells, *([rate] if "steps/s" in widths else []), phase)
    lines: list[Any] = [Text(header(jobs, elapsed), style="bold")]
    if round_line:
        lines.append(Text(round_line, style="bold"))
    if common:
        lines.append(Text(f"every job: {common}", style="dim"))
    lines.append(grid)
    if more:
        lines.append(Text(more, style="dim"))
    return Group(*lines)


class Lines:
    """Plain status lines: a job's start, every EVERY_PCT % or EVERY_S seconds, and its end with its phase."""

    def __init__(self, out: TextIO):
        self.out = out
        self.seen: dict[str, tuple[str, int, float]] = {}  # name -> (state, pct bucket, time of last line)
        self.round_line: Optional[str] = None  # a refine sweep's round, said once

    def update(self, jobs: list[JobView], elapsed: float, round_line: Optional[str] = None) -> None:
        now = time.monotonic()
        if round_line and round_line != self.round_line:
            self.out.write(f"[{clock(elapsed)}] {round_line}\n")
            self.round_line = round_line
        for j in jobs:
            state, bucket, last = self.seen.get(j.name, (QUEUED, 0, now))
            pct = 100 * j.step // j.steps if j.steps else 0
            said = self._event(j, state, pct // EVERY_PCT > bucket or now - last >= EVERY_S)
            if said:
                self.out.write(f"[{clock(elapsed)}] {j.name}: {said}\n")
                bucket, last = pct // EVERY_PCT, now
            self.seen[j.name] = (j.state, bucket, last)
        self.out.flush()

    @staticmethod
    def _event(j: JobView, before: str, due: bool) -> Optional[str]:
        if j.state == before and not (due and j.state == TRAINING):
            return None
        if j.ended:
            phase = f", phase {j.phase}" if j.phase and j.state in (ENDED[s] for s in TRAINED) else ""
            error = f": {j.error}" if j.error else ""
            return f"finished ({j.state}{error}) at step {j.step}/{j.steps}{phase}, test acc {acc(j.test_acc) or '-'}"
        if j.state == INTERRUPTED:
            return f"interrupted at step {j.step} (the same command resumes it)"
        if j.state in LIVE and before not in LIVE:
            return f"started ({j.state})"
        if j.state == TRAINING and due:
            return (f"step {progress(j)}, train acc {acc(j.train_acc) or '-'}, test acc {acc(j.test_acc) or '-'}, "
                    f"phase so far {j.phase or '-'}")  # fmt: skip
        return None


class View:
    """Shows a sweep's jobs until `stop`: a live table on a terminal, status lines otherwise."""

    def __init__(self, sweep: Sweep, out: TextIO = sys.stdout, interval: float = 0.5, since: Optional[float] = None):
        self.sweep, self.out, self.interval = sweep, out, interval
        self.t0 = time.time() if since is None else since
        self.live = Live(console=Console(file=out), auto_refresh=False, redirect_stdout=True, redirect_stderr=True,
                         vertical_overflow="visible") if out.isatty() else None  # fmt: skip
        self.lines = None if self.live else Lines(out)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="sweep-view")
        self.jobs: list[JobView] = []

    def start(self) -> View:
        if self.live:
            self.live.start()
            self._route_logs(sys.stdout)  # rich's proxy: log lines go above the table
        self.thread.start()
        atexit.register(self.stop)  # a sweep ended by Ctrl-C or an error still gives the terminal back
        return self

    def stop(self) -> list[JobView]:
        """Draw the final state and end; returns it."""
        if not self.done.is_set():
            self.done.set()
            self.thread.join()
            self.show()
            if self.live:
                self._route_logs(sys.__stdout__)
                self.live.stop()
        return self.jobs

    def show(self) -> list[JobView]:
        self.jobs = self.sweep.scan()
        elapsed = time.time() - self.t0
        if self.live:
            size = self.live.console.size
            rows = max(size.height - 7, 3)  # the header, the round, the common line, the column names, the count
            view = table(self.jobs, elapsed, rows, size.width, self.sweep.common(), self.sweep.round)
            self.live.update(view, refresh=True)
        else:
            self.lines.update(self.jobs, elapsed, self.sweep.round)
        return self.jobs

    def _loop(self) -> None:
        while not self.done.wait(self.interval):
            try:
                self.show()
            except Exception as err:  # noqa: BLE001 - the view must never take the sweep down
                logging.getLogger(__name__).debug("sweep view: %s", err)

    @staticmethod
    def _route_logs(stream: TextIO) -> None:
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler and getattr(handler.stream, "isatty", lambda: False)():
                handler.setStream(stream)


def watch(root: Path, interval: float = 1.0, out: TextIO = sys.stdout) -> list[JobView]:
    """Show the sweep in `root` until every job it plans has ended; returns their final states."""
    sweep = Sweep.from_folder(root)
    plan = root / PLAN_FILE
    view = View(sweep, out, interval, since=plan.stat().st_mtime if plan.exists() else None)
    if view.lines is not None:  # a log shows at once that the watch runs, before any job changes state
        planned = f": {len(sweep.planned)} jobs planned" if sweep.planned else ""
        print(f"watching {root}{planned}", file=out, flush=True)
    view.start()
    try:
        while True:
            jobs = view.jobs  # the view's thread scans; an interrupted job may still be run again
            if jobs and all(j.ended for j in jobs) and len(jobs) >= len(sweep.planned) and not sweep.more:
                break
            if (root / STOP_FILE).exists() and not any(j.state in LIVE for j in jobs):  # a signal stopped the sweep
                break
            time.sleep(interval)
    finally:
        jobs = view.stop()
    if view.lines is not None:
        print(header(jobs, time.time() - view.t0), file=out, flush=True)
    return jobs
