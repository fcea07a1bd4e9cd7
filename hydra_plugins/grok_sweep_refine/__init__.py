"""grok_sweep's refining sweeper (hydra/sweeper=refine), where Hydra looks for plugins: a `hydra_plugins` package.

Hydra imports this in every app of the environment, so it stays small: the sweep itself is grok_sweep.run.refine.
"""
