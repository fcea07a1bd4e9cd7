"""Command line: `python -m grok_sweep [key=value ...]`, or `-m` for a grid (Hydra multirun).

A shell around plain functions: run/precheck.py checks the command line, run/job.py trains the job,
grok_sweep.aggregate writes what a run or a sweep found.
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from grok_sweep.aggregate import aggregate
from grok_sweep.run import sweep_stop
from grok_sweep.run.callbacks import quiet_console
from grok_sweep.run.checks import ConfigError
from grok_sweep.run.config import CONF_DIR, register
from grok_sweep.run.job import run_job
from grok_sweep.run.precheck import check_command_line
from grok_sweep.store.layout import INTERRUPTED, RUNNING_ELSEWHERE, TRAINED
from grok_sweep.util import interrupt
from grok_sweep.util.files import WriteError

register()
logging.raiseExceptions = False  # a log line that cannot be written (full disk) is dropped, not a traceback


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    out_dir = Path(hydra_cfg.runtime.output_dir)
    single = hydra_cfg.mode == RunMode.RUN
    quiet_console(multirun=not single)  # a sweep's jobs show in its view, not as bars and log lines
    if not single and sweep_stop.stopped(Path(hydra_cfg.sweep.dir)):  # its command was interrupted: start no job
        return
    try:
        result = run_job(cfg, out_dir, progress=single, job_num=OmegaConf.select(hydra_cfg.job, "num", default=0) or 0)
    except ConfigError as err:
        if not single:  # the sweep's other jobs go on (the pre-check refuses what it can before any starts)
            logging.getLogger("grok_sweep").error("job refused: %s", err)
            return
        sys.exit(f"grok_sweep: error: {err}")
    if not single:  # a multirun is aggregated once, by its callback
        return
    if result["status"] == RUNNING_ELSEWHERE:
        sys.exit(f"grok_sweep: error: {out_dir} is being trained by {result['holder']} right now; "
                 "wait for it, or give this run another folder")  # fmt: skip
    try:
        aggregate(out_dir)
        unwritten = None
    except WriteError as err:  # the run's own failure, if any, says more
        unwritten = f"grok_sweep: error: {err}"
    if result["status"] == INTERRUPTED:
        at = result["stopped_at_step"]
        print(f"grok_sweep: interrupted {'before its first step' if at is None else f'at step {at}'}; the same "
              "command resumes from it", file=sys.stderr)  # fmt: skip
        sys.exit(interrupt.exit_code(result["signal"]))
    if result["status"] not in TRAINED:
        why = f": {result['error']}" if result.get("error") else ""
        sys.exit(f"grok_sweep: the run {result['status']} at step {result['stopped_at_step']}{why} ({out_dir})")
    if unwritten:
        sys.exit(unwritten)


if __name__ == "__main__":
    with interrupt.handling():  # Ctrl-C or SIGTERM: the job ends at a checkpoint, a sweep after its running jobs
        warnings: list[str] = []
        if problems := check_command_line(sys.argv[1:], CONF_DIR, warnings=warnings):
            sys.exit("\n".join(f"grok_sweep: error: {p}" for p in problems))
        for line in warnings:
            print(f"grok_sweep: warning: {line}", file=sys.stderr)
        main()
