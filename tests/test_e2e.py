"""The default experiment, run as a user runs it: it must memorize early and grok much later."""

import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT


@pytest.mark.slow
def test_default_config_groks_with_a_visible_delay(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "grok_sweep", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    evals = pd.read_parquet(tmp_path / "metrics.parquet").dropna(subset=["test_acc"])
    memorized = evals.loc[evals["train_acc"] >= 0.99, "step"].min()
    grokked = evals.loc[evals["test_acc"] >= 0.99, "step"].min()
    assert memorized > 0 and grokked >= 5 * memorized, (memorized, grokked)
    assert evals["test_acc"].iloc[-1] >= 0.99
