"""The jobs a sweep asks for: its overrides expanded as Hydra's basic sweeper expands them.

The basic sweeper takes the sweep values kept in the config (`hydra.sweeper.params`, from the primary config, a preset
or --config-dir) first, then the command line's, and lists a config group's options for `glob(...)` on Hydra's config
search path. A sweep folder keeps all three in multirun.yaml; the pre-check, the live view and aggregation all plan
from here. A refine sweep's jobs (ranges, `key=interval(lo,hi)`) are known round by round: from its record
(store/refine_record.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from grok_sweep.store.damage import Damaged
from grok_sweep.store.layout import PLAN_FILE
from grok_sweep.store.refine_record import read_record

log = logging.getLogger(__name__)


def sweep_params(hydra: Optional[DictConfig]) -> list[str]:
    """The sweep values a config keeps in `hydra.sweeper.params`, as the basic sweeper writes them (`key=value`)."""
    params = OmegaConf.select(hydra, "sweeper.params") if hydra is not None else None
    return [f"{k}={v}" for k, v in params.items()] if isinstance(params, DictConfig) else []


def group_lister(sources: Optional[Iterable[Any]]) -> Optional[Any]:
    """A Hydra config loader on a config search path as multirun.yaml records it (hydra.runtime.config_sources),
    for the options a `glob(...)` on a config group lists; None without sources."""
    if not sources:
        return None
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.config_search_path_impl import ConfigSearchPathImpl
    from hydra._internal.core_plugins.file_config_source import FileConfigSource
    from hydra._internal.core_plugins.importlib_resources_config_source import ImportlibResourcesConfigSource
    from hydra._internal.core_plugins.structured_config_source import StructuredConfigSource
    from hydra._internal.sources_registry import SourcesRegistry

    for kind in (FileConfigSource, ImportlibResourcesConfigSource, StructuredConfigSource):  # as Hydra's app has them
        SourcesRegistry.instance().register(kind)
    path = ConfigSearchPathImpl()
    for source in sources:
        path.append(source.provider, f"{source.schema}://{source.path}")
    return ConfigLoaderImpl(config_search_path=path)


def expand_sweep(overrides: list[str], params: Iterable[str] = (),
                 config_loader: Optional[Any] = None) -> tuple[list[Any], list[list[str]]]:  # fmt: skip
    """Hydra's parsed overrides and the jobs the basic sweeper makes of the config's sweep `params` and the command
    line's `overrides`, as override lists; `config_loader` lists a group's options for glob(...)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create(config_loader=config_loader).parse_overrides([*params, *overrides])
    return parsed, BasicSweeper.split_arguments(parsed, None)[0]


def plan(overrides: list[str], hydra: Optional[DictConfig] = None) -> tuple[list[frozenset[str]], list[str]]:
    """The jobs a multirun's task overrides ask for, with the sweep values of its config's `hydra` node (as in
    multirun.yaml), and the keys they sweep."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = sweep_params(hydra)
    parsed = OverridesParser.create().parse_overrides([*params, *overrides])
    swept = list(dict.fromkeys(o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()))
    if any(o.is_interval_sweep() for o in parsed):  # a refine sweep: its jobs come round by round
        return [], swept
    sources = OmegaConf.select(hydra, "runtime.config_sources") if hydra is not None else None
    globbed = any(o.is_sweep_override() and type(o.value()).__name__ == "Glob" for o in parsed)
    try:
        jobs = expand_sweep(overrides, params, group_lister(sources) if globbed else None)[1]
    except Exception as err:  # noqa: BLE001 - a config folder gone since: the jobs found are all there is to show
        log.debug("cannot plan the sweep's jobs: %s", err)
        return [], swept
    return [frozenset(job) for job in jobs], swept


def planned_jobs(root: Path) -> tuple[list[frozenset[str]], list[str]]:
    """The jobs a sweep folder's multirun.yaml (a refine sweep's record) asks for, and the keys it sweeps (none
    without one)."""
    try:
        record = read_record(root)
    except Damaged:  # aggregation names the damaged record itself
        record = None
    if record is not None:
        return record.jobs(), record.keys()
    path = root / PLAN_FILE
    if not path.exists():
        return [], []
    hydra = OmegaConf.load(path).hydra
    return plan(list(hydra.overrides.task), hydra)
