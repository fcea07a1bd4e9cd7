"""Figures from DataFrames: a sweep's phase diagram, its jobs' curves, a job's progress measures.

matplotlib's object API (no pyplot): no display, no global state; every figure is saved atomically. Plotting
takes the summary and metrics tables and trains nothing.
"""

from grok_sweep.plot.curves import curves
from grok_sweep.plot.measures import measures
from grok_sweep.plot.phase_diagram import phase_diagram

__all__ = ["curves", "measures", "phase_diagram"]
