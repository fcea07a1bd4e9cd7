"""hydra/sweeper=refine: a phase diagram's runs spent on its phase boundary (docs/guide/refine.md).

A shell for Hydra: the settings' schema is grok_sweep.run.config.RefineSweeperConfig, the sweep grok_sweep.run.refine.
"""

from __future__ import annotations

from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from grok_sweep.run.config import RefineSweeperConfig

ConfigStore.instance().store(group="hydra/sweeper", name="refine", node=RefineSweeperConfig, provider="grok_sweep")


class RefineSweeper(Sweeper):
    """Runs the coarse grid, then round after round the points of the cells whose phases disagree."""

    def __init__(self, start: int, depth: int, max_jobs: int) -> None:
        super().__init__()
        self.start, self.depth, self.max_jobs = start, depth, max_jobs
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher: Optional[Launcher] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context, self.config = hydra_context, config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> Any:
        from grok_sweep.run.refine import run_sweep

        return run_sweep(self, arguments)
