"""Early stopping: the rule on synthetic accuracies, and a real run that stops, aggregates and is not re-trained."""

import json

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from conftest import TINY, make_cfg
from grok_sweep.aggregate import aggregate
from grok_sweep.detect import sustained_grokking_step
from grok_sweep.run.job import run_job
from grok_sweep.train.early_stop import EarlyStop


def _first_stop(steps, accs, hold, acc=0.99):
    rule = EarlyStop(hold, acc)
    return next((s for s, a in zip(steps, accs, strict=True) if rule.update(s, a)), None)


def test_stops_once_the_accuracy_has_held_for_the_given_steps():
    steps = list(range(0, 200, 10))
    accs = [0.1] * 5 + [0.995] * 3 + [0.5] + [0.999] * 11  # held from 50 to 70, broken at 80, held again from 90
    assert _first_stop(steps, accs, hold=30) == 120  # 90 + 30
    assert _first_stop(steps, accs, hold=20) == 70  # 50 + 20: the first run of good evals is long enough
    assert _first_stop(steps, accs, hold=0) is None  # 0 is off
    assert _first_stop(steps, accs, hold=30, acc=1.0) is None
    assert _first_stop(steps, [np.nan] + accs[1:], hold=20) == 70  # NaN counts as below


def test_restore_continues_the_streak_of_a_resumed_run():
    test_acc = np.full(100, np.nan)
    test_acc[::10] = [0.2, 0.995, 0.4, 0.996, 0.997, 0.999, 0.999, 0.999, 0.999, 0.999]
    rule = EarlyStop(hold=40, acc=0.99)
    rule.restore(test_acc[:60])  # resumed at step 60: good evals since step 30
    assert rule.since == 30
    assert not rule.update(60, 0.999) and rule.update(70, 0.999)  # 70 - 30 >= 40


def test_a_run_stops_early_is_aggregated_as_completed_and_not_trained_again(tmp_path):
    # p = 11 with 80% of the pairs for training: test accuracy climbs to ~0.84 by step ~100 and stays there
    base = [*TINY, "modulus=11", "train_ratio=0.8", "steps=200"]
    whole = tmp_path / "whole"
    run_job(make_cfg(*base), whole, progress=False)
    full = pd.read_parquet(whole / "metrics.parquet")
    evals = full.dropna(subset=["test_acc"])
    # a threshold the run reaches: the test accuracy of its last eval; where the rule must stop, from detect
    acc, hold = float(evals["test_acc"].iloc[-1]), 28
    stop = next(s for s in evals["step"] if (g := sustained_grokking_step(full[full.step <= s], acc)) is not None
                and s - g >= hold)  # fmt: skip
    assert stop < 150, "pick a config whose accuracy settles before its last eval"

    out = tmp_path / "stopped"
    cfg = make_cfg(*base, f"train.early_stop={hold}", f"train.early_stop_acc={acc}")
    result = run_job(cfg, out, progress=False)
    assert (result["status"], result["stopped_at_step"], result["steps_run"]) == ("stopped_early", stop, stop + 1)
    metrics = pd.read_parquet(out / "metrics.parquet")
    pd.testing.assert_frame_equal(metrics, full[full.step <= stop], check_exact=True)  # the same run, cut there

    (out / ".hydra").mkdir()  # what Hydra writes beside a job, which the aggregator reads
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create([]), out / ".hydra" / "overrides.yaml")
    summary, _ = aggregate(out, echo=lambda *a: None)
    row = summary.iloc[0]
    assert row["status"] == "stopped_early" and row["steps_run"] == stop + 1
    assert row["phase"] in ("comprehension", "grokking", "memorization", "confusion")  # a phase, as if completed

    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    again = run_job(cfg, out, progress=False)
    assert again == json.loads((out / "result.json").read_text()) == result
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing trained or rewritten
