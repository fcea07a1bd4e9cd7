"""A wheel built from the repository installs into a fresh venv and runs anywhere: conf/ travels inside it."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT


def _run(cmd: list, cwd, env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_a_wheel_installs_into_a_fresh_venv_and_runs_outside_the_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["GROK_SWEEP_CACHE_DIR"] = str(tmp_path / "jit")
    wheels, venv, work = tmp_path / "wheels", tmp_path / "venv", tmp_path / "work"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT], tmp_path, env)
    (wheel,) = wheels.glob("grok_sweep-*.whl")
    _run([sys.executable, "-m", "venv", venv], tmp_path, env)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel], tmp_path, env, timeout=1800)
    work.mkdir()
    where = _run([python, "-c", "import grok_sweep; print(grok_sweep.__file__)"], work, env).stdout
    assert where.startswith(str(venv)), where  # the installed copy, not the checkout

    _run([python, "-m", "grok_sweep", "steps=50"], work, env)
    (run,) = (work / "outputs" / "runs").glob("*/*")
    assert len(pd.read_parquet(run / "metrics.parquet")) == 50 and (run / "summary.parquet").exists()

    _run([python, "-m", "grok_sweep", "-m", "seed=0,1", "steps=30"], work, env)
    (sweep,) = (work / "outputs" / "sweeps").glob("*/*")
    assert sorted(pd.read_parquet(sweep / "summary.parquet")["seed"]) == [0, 1]
    (sweep / "summary.parquet").unlink()
    shown = _run([python, "-m", "grok_sweep.aggregate", sweep], work, env).stdout
    assert "phase table" in shown and (sweep / "summary.parquet").exists()

    # the refining sweeper travels in the wheel, where Hydra's own plugin scan finds it
    scan = "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper as S; "
    found = _run([python, "-c", scan + "print([c.__name__ for c in Plugins.instance().discover(S)])"], work, env)
    assert "RefineSweeper" in found.stdout
    refine = ["hydra/sweeper=refine", "train_ratio=interval(0.3,0.8)", "weight_decay=tag(log,interval(0.1,3))",
              "hydra.sweeper.start=2", "hydra.sweeper.depth=1", "steps=30", "hydra.sweep.dir=refined"]  # fmt: skip
    _run([python, "-m", "grok_sweep", "-m", *refine], work, env)
    assert len(pd.read_parquet(work / "refined" / "summary.parquet")["round"].dropna()) >= 4
