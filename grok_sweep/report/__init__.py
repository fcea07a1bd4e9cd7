"""report.html: a sweep's (or a run's) story on one self-contained page, written by aggregation beside its figures.

The analysis side: it takes DataFrames and figure files, never tinygrad.
"""

from grok_sweep.report.pages import run_report, sweep_report

__all__ = ["run_report", "sweep_report"]
