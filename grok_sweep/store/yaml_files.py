"""Hydra's YAML files read fast: the values OmegaConf.load gives, parsed by libyaml without building a DictConfig.

Aggregating thousands of jobs parses three YAML files per job; OmegaConf.load builds a DictConfig first and
its pure-Python parser dominates the reading (docs/performance/aggregate.md).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from omegaconf._utils import get_yaml_loader


@cache
def _loader() -> type:
    # OmegaConf's resolvers (floats like 1e-3, no timestamps) on libyaml's parser where PyYAML has it
    omegaconf_loader = get_yaml_loader()

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        yaml_implicit_resolvers = omegaconf_loader.yaml_implicit_resolvers
        yaml_constructors = omegaconf_loader.yaml_constructors

    return Loader


def load_yaml(path: Path) -> Any:
    """The file's content as plain Python (dicts, lists, scalars), as OmegaConf.to_container(OmegaConf.load(path))
    gives it for the files Hydra writes."""
    return parse_yaml(path.read_bytes())


def parse_yaml(text: str | bytes) -> Any:
    return yaml.load(text, Loader=_loader())


def parse_scalar(text: str) -> Any:
    """A command-line value ('0.1', '1e-3', 'true', 'ema') as Hydra's config would hold it."""
    try:
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError:
        return text


def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as one level, its keys dotted: {"optim.lr": 0.01, ...}."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
