from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from grok_sweep.run.config import register

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
# small enough to compile and train in seconds on a 2-core CPU
TINY = ["modulus=7", "train_ratio=0.6", "width=16", "model.heads=2", "steps=40", "eval_every=7"]

register()

# the suite's own JIT cache (fast/jit_cache.py), shared by its jobs and subprocesses: it starts empty, so the
# first job of each shape compiles as a new user's would, and ~/.cache is left alone
if "GROK_SWEEP_CACHE_DIR" not in os.environ:
    os.environ["GROK_SWEEP_CACHE_DIR"] = tempfile.mkdtemp(prefix="grok_sweep_jit_")
    atexit.register(shutil.rmtree, os.environ["GROK_SWEEP_CACHE_DIR"], ignore_errors=True)


def make_cfg(*overrides: str) -> DictConfig:
    """The real conf/config.yaml composed through Hydra, with command-line style overrides."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("config", overrides=list(overrides))


def has_fma() -> bool:
    """Whether this CPU has fused multiply-add (x86's flag), which tests of exact float results need."""
    try:
        return " fma " in Path("/proc/cpuinfo").read_text().replace("\n", " ")
    except OSError:
        return False


@pytest.fixture
def tiny_cfg() -> DictConfig:
    return make_cfg(*TINY)
