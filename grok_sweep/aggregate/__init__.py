"""Aggregation: a sweep's (or a run's) jobs read back into summary.parquet, metrics.parquet, the phase table
and its figures. `aggregate(folder)` from Python, `python -m grok_sweep.aggregate DIR` from a shell.

The analysis side: it reads the folders (grok_sweep.store) and never imports tinygrad, the model or the trainer.
"""

from grok_sweep.aggregate.collect import AggregateError, aggregate, unreadable_line

__all__ = ["AggregateError", "aggregate", "unreadable_line"]
