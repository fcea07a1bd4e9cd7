"""hydra/launcher=pack (hydra_plugins/grok_sweep_pack): a sweep's jobs, grouped by shape, trained as packs.

Each job's folder is set up as Hydra's launchers set it up (its .hydra files, through Hydra's run_job), then the jobs
are grouped (run/packing.py) and each pack trained in this process (run/pack_job.py), one pack after another on
`train.device` (with train.devices = N, pack j on device j mod N). A pack of one job is an ordinary job (run/job.py).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, open_dict

from grok_sweep.run import sweep_stop
from grok_sweep.run.callbacks import quiet_console
from grok_sweep.run.checks import ConfigError
from grok_sweep.run.job import run_job
from grok_sweep.run.pack_job import run_pack
from grok_sweep.run.packing import alone, default_size, packs
from grok_sweep.run.resources import available_bytes, job_device

log = logging.getLogger(__name__)


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
    """The pack launcher's launch: Hydra's JobReturns, each with its job's result."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import configure_log, setup_globals
    from hydra.core.utils import run_job as hydra_run_job

    setup_globals()
    config, context = launcher.config, launcher.hydra_context
    configure_log(config.hydra.hydra_logging, config.hydra.verbose)
    sweep = Path(str(config.hydra.sweep.dir))
    sweep.mkdir(parents=True, exist_ok=True)
    jobs, returns = [], []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        job_config = context.config_loader.load_sweep_config(config, list(overrides))
        with open_dict(job_config):
            job_config.hydra.job.id = job_config.hydra.job.num = idx
        seen: dict[str, Any] = {}

        def collect(cfg: DictConfig, seen: dict = seen) -> None:  # the job's config and folder, trained below
            seen.update(cfg=cfg, out=Path(HydraConfig.get().runtime.output_dir))

        returns.append(hydra_run_job(hydra_context=context, task_function=collect, config=job_config,
                                     job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir"))  # fmt: skip
        jobs.append((seen["cfg"], seen["out"]))
    quiet_console(multirun=True)
    for ret, result in zip(returns, train(jobs, launcher.size, sweep), strict=True):
        ret.return_value = result
    return returns


def train(jobs: list[tuple[DictConfig, Path]], size: Optional[int], sweep: Optional[Path] = None) -> list[Any]:
    """Train `jobs` as packs of at most `size` (None: packing.default_size); each job's result (None: refused)."""
    if not jobs:
        return []
    cfgs = [cfg for cfg, _ in jobs]
    asked = size if size is not None else default_size(cfgs[0], available_bytes())
    if size is None and asked == 1 and len(jobs) > 1:
        print(f"grok_sweep: on the CPU a pack trains slower than single jobs (docs/guide/pack.md): the {len(jobs)} "
              "jobs train one after another; hydra.launcher.size=N packs them anyway", file=sys.stderr)  # fmt: skip
    if asked > 1:
        for why in sorted({why for cfg in cfgs if (why := alone(cfg)) is not None}):
            print(f"grok_sweep: jobs with {why} train alone, one after another", file=sys.stderr)
    results: list[Any] = [None] * len(jobs)
    for j, members in enumerate(packs(cfgs, asked)):
        if sweep is not None and sweep_stop.stopped(sweep):  # the command was interrupted: start no more
            break
        cfg = cfgs[members[0]]
        device = job_device(cfg.train.device, cfg.train.devices, j)
        if len(members) == 1:
            results[members[0]] = _single(*jobs[members[0]], j)
            continue
        log.info("pack %d: %d jobs on %s", j, len(members), device)
        for i, result in zip(members, run_pack([jobs[i] for i in members], device), strict=True):
            results[i] = result
    return results


def _single(cfg: DictConfig, out_dir: Path, num: int) -> Any:
    try:
        return run_job(cfg, out_dir, progress=False, job_num=num)  # on device num mod train.devices
    except ConfigError as err:
        log.error("job refused: %s", err)
        return None
