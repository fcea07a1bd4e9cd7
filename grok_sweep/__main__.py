"""Command line: `python -m grok_sweep [key=value ...]`, or `-m` for a grid (Hydra multirun)."""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from grok_sweep.aggregate import aggregate
from grok_sweep.app import run_job
from grok_sweep.cli import check_command_line
from grok_sweep.config import ConfigError, register
from grok_sweep.store import COMPLETED

register()
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


# config_path is relative to this file; it only resolves to the top-level conf/ from __main__
@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        result = run_job(cfg, out_dir, job_num=OmegaConf.select(hydra_cfg.job, "num", default=0) or 0)
    except ConfigError as err:
        sys.exit(f"grok_sweep: error: {err}")
    if hydra_cfg.mode == RunMode.RUN:  # a multirun is aggregated once, by its callback
        aggregate(out_dir)
        if result["status"] not in COMPLETED:
            sys.exit(f"grok_sweep: the run {result['status']} at step {result['stopped_at_step']}: {out_dir}")


if __name__ == "__main__":
    if problems := check_command_line(sys.argv[1:], CONF_DIR):
        sys.exit("\n".join(f"grok_sweep: error: {p}" for p in problems))
    main()
