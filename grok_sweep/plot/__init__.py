"""Figures from DataFrames: a sweep's phase diagram (a grid's, or a refine sweep's), its jobs' curves, a job's
progress measures.

matplotlib's object API (no pyplot): no display, no global state; every figure is saved atomically. Plotting
takes the summary and metrics tables and trains nothing.
"""

from grok_sweep.plot.curves import curves
from grok_sweep.plot.measures import measures
from grok_sweep.plot.phase_diagram import phase_diagram
from grok_sweep.plot.refined_diagram import refined_diagram

__all__ = ["curves", "measures", "phase_diagram", "refined_diagram"]
