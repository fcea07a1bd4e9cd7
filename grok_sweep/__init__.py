"""grok_sweep: grokking sweeps on modular arithmetic (README.md). The Python API reads runs back."""

from grok_sweep.api import LoadError, Run, Sweep, load_run, load_sweep

__all__ = ["LoadError", "Run", "Sweep", "load_run", "load_sweep"]
