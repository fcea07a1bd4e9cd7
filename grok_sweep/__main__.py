"""Command line: `python -m grok_sweep [key=value ...]`, or `-m` for a grid (Hydra multirun)."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from grok_sweep.app import run_job
from grok_sweep.config import ConfigError, register

register()


# config_path is relative to this file; it only resolves to the top-level conf/ from __main__
@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run_job(cfg, Path(HydraConfig.get().runtime.output_dir))
    except ConfigError as err:
        sys.exit(f"grok_sweep: error: {err}")


if __name__ == "__main__":
    main()
