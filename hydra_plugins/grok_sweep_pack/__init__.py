"""grok_sweep's pack launcher (hydra/launcher=pack), where Hydra looks for plugins: a `hydra_plugins` package.

Hydra imports this in every app of the environment, so it stays small: the launching
itself is grok_sweep.run.pack_launch.
"""
