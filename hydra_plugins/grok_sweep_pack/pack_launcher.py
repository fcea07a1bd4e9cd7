"""hydra/launcher=pack: a sweep's jobs of one shape trained as one program each pack (docs/guide/pack.md).

A shell for Hydra: the settings' schema is grok_sweep.run.config.PackLauncherConfig, the launching
grok_sweep.run.pack_launch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from grok_sweep.run.config import PackLauncherConfig

ConfigStore.instance().store(group="hydra/launcher", name="pack", node=PackLauncherConfig, provider="grok_sweep")


class PackLauncher(Launcher):
    def __init__(self, size: Optional[int] = None) -> None:
        super().__init__()
        self.size = size
        self.config: Optional[DictConfig] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.hydra_context, self.config = hydra_context, config

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        from grok_sweep.run.pack_launch import launch

        return launch(self, job_overrides, initial_job_idx)
