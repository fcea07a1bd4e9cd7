"""grok_sweep: grokking sweeps on modular arithmetic (README.md). The Python API reads runs back.

`from grok_sweep import load_run, load_sweep` loads grok_sweep.api on first use, so that a training job, which
imports this package too, does not import the API.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LoadError", "Run", "Sweep", "load_run", "load_sweep"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from grok_sweep import api

        return getattr(api, name)
    raise AttributeError(f"module 'grok_sweep' has no attribute {name!r}")
