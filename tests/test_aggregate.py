"""Aggregation of a fake sweep folder: known curves, a failed job, an unfinished one, a missing one."""

import itertools
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from omegaconf import OmegaConf

from conftest import ROOT, make_cfg
from grok_sweep.aggregate import AggregateError, aggregate
from grok_sweep.aggregate.table import phase_cells, phase_table
from grok_sweep.detect import PHASES
from grok_sweep.store.layout import METRICS_FILE

SUMMARY_COLUMNS = [
    "job", "weight_decay", "train_ratio", "seed", "status", "steps_run", "memorization_step", "grokking_step",
    "sustained_grokking_step", "grokking_delay", "phase", "final_test_acc", "best_test_acc",
    "final_softmax_collapse", "final_zero_loss", "wall_time_s",
    "steps_per_s", "error",
]  # fmt: skip


def _metrics(mem, grok, steps=1000, eval_every=10):
    step = np.arange(steps)
    test = np.where(step >= (grok if grok is not None else steps), 1.0, 0.2)
    return pd.DataFrame({
        "step": step,
        "train_loss": np.where(step >= mem, 0.01, 2.0),
        "train_acc": np.where(step >= mem, 1.0, 0.3),
        "test_loss": np.where(step % eval_every == 0, 1.0 - test, np.nan),
        "test_acc": np.where(step % eval_every == 0, test, np.nan),
        "weight_norm": np.where(step % eval_every == 0, 10.0, np.nan),
    })  # fmt: skip


def _job(sweep, wd, ratio, status=None, mem=50, grok=None, steps=1000):
    overrides = [f"weight_decay={wd}", f"train_ratio={ratio}"]
    folder = sweep / f"train_ratio={ratio},weight_decay={wd}"
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(make_cfg(*overrides), folder / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
    if status is not None:
        _metrics(mem, grok, steps).to_parquet(folder / METRICS_FILE)
        result = {"status": status, "steps_run": steps, "wall_time_s": 12.5, "steps_per_s": 80.0}
        (folder / "result.json").write_text(json.dumps(result))
    return folder


@pytest.fixture
def sweep(tmp_path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    task = {"hydra": {"overrides": {"task": ["weight_decay=0.1,1.0", "train_ratio=0.3,0.5,0.7"]}}}
    OmegaConf.save(OmegaConf.create(task), sweep / "multirun.yaml")
    _job(sweep, 1.0, 0.5, "completed", mem=50, grok=600)  # grokking
    _job(sweep, 1.0, 0.7, "completed", mem=50, grok=80)  # comprehension
    _job(sweep, 0.1, 0.5, "completed", mem=50, grok=None)  # memorization
    _job(sweep, 0.1, 0.3, "failed", mem=50, grok=None, steps=200)
    _job(sweep, 1.0, 0.3)  # started, no metrics or result yet; (0.1, 0.7) never started
    return sweep


def test_aggregate_writes_summary_metrics_and_figures(sweep):
    printed = []
    _, written = aggregate(sweep, echo=printed.append)
    assert set(written) == {"summary", "metrics", "phase_diagram", "curves", "report"}
    s = pd.read_parquet(sweep / "summary.parquet")
    assert list(s.columns) == SUMMARY_COLUMNS and len(s) == 5
    for col in ("steps_run", "memorization_step", "grokking_step", "sustained_grokking_step", "grokking_delay"):
        assert str(s[col].dtype) == "Int64", col
    assert isinstance(s["phase"].dtype, pd.CategoricalDtype) and s["phase"].cat.ordered
    assert list(s["phase"].cat.categories) == list(PHASES)
    by = s.set_index(["train_ratio", "weight_decay"])
    assert by.loc[(0.5, 1.0), "phase"] == "grokking" and by.loc[(0.5, 1.0), "grokking_delay"] == 550
    assert by.loc[(0.7, 1.0), "phase"] == "comprehension"
    assert by.loc[(0.5, 0.1), "phase"] == "memorization" and pd.isna(by.loc[(0.5, 0.1), "grokking_step"])
    assert by.loc[(0.3, 0.1), "status"] == "failed" and pd.isna(by.loc[(0.3, 0.1), "phase"])
    assert by.loc[(0.3, 1.0), "status"] == "incomplete"
    m = pd.read_parquet(sweep / "metrics.parquet")
    assert len(m) == 3 * 1000 + 200 and {"job", "weight_decay", "train_ratio", "step"} <= set(m.columns)
    text = "\n".join(printed)
    assert "grokking @600" in text and "failed: train_ratio=0.3,weight_decay=0.1" in text
    assert "missing (1 planned jobs not started): train_ratio=0.7,weight_decay=0.1" in text
    for name in ("phase_diagram", "curves"):
        image = imread(written[name])
        assert image.shape[0] > 200 and image.shape[1] > 200 and image.std() > 0.05, name


def test_phase_table_has_rows_by_cols_and_seed_agreement():
    summary = pd.DataFrame({
        "train_ratio": [0.3, 0.3, 0.3, 0.5],
        "weight_decay": [1.0, 1.0, 1.0, 1.0],
        "status": ["completed", "completed", "diverged", "completed"],
        "phase": ["grokking", "grokking", None, "comprehension"],
        "sustained_grokking_step": [1000, 3000, None, 200],
    })  # fmt: skip
    table = phase_table(phase_cells(summary, "train_ratio", "weight_decay"), "train_ratio", "weight_decay")
    assert table.loc[0.3, 1.0] == "grokking @2000 (2/3)"
    assert table.loc[0.5, 1.0] == "comprehension @200"


def test_single_run_folder_keeps_its_own_metrics(sweep):
    job = sweep / "train_ratio=0.5,weight_decay=1.0"
    before = (job / METRICS_FILE).read_bytes()
    printed = []
    _, written = aggregate(job, echo=printed.append)
    assert set(written) == {"summary", "curves", "report"}
    assert (job / METRICS_FILE).read_bytes() == before
    assert "first at step 600, for good from step 600; phase: grokking" in printed[0]


def test_bad_requests_are_one_line_errors(sweep, tmp_path):
    with pytest.raises(AggregateError, match="no such folder"):
        aggregate(tmp_path / "nope")
    with pytest.raises(AggregateError, match="no job folders"):
        aggregate(tmp_path / "sweep" / "train_ratio=0.5,weight_decay=1.0" / ".hydra")
    with pytest.raises(AggregateError, match="did you mean weight_decay"):
        aggregate(sweep, rows="wieght_decay")
    proc = subprocess.run([sys.executable, "-m", "grok_sweep.aggregate", str(tmp_path / "nope")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.strip().count("\n") == 0 and "no such folder" in proc.stderr


def test_operation_and_grokfast_sweeps_show_in_summary_table_and_panels(tmp_path):
    # a grid over a string key (operation), a config group (grokfast) and train_ratio; one job stopped early
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    task = ["operation=add,mul", "grokfast=none,ema", "train_ratio=0.3,0.5"]
    OmegaConf.save(OmegaConf.create({"hydra": {"overrides": {"task": task}}}), sweep / "multirun.yaml")
    for op, gf, ratio in itertools.product(("add", "mul"), ("none", "ema"), (0.3, 0.5)):
        overrides = [f"grokfast={gf}", f"operation={op}", f"train_ratio={ratio}"]
        folder = sweep / ",".join(overrides)
        (folder / ".hydra").mkdir(parents=True)
        OmegaConf.save(make_cfg(*overrides), folder / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
        choices = {"grokfast": gf, "hydra/launcher": "joblib"}  # as Hydra records them
        OmegaConf.save(OmegaConf.create({"hydra": {"runtime": {"choices": choices}}}), folder / ".hydra/hydra.yaml")
        stopped = (op, gf) == ("mul", "ema")  # groks at 600, stopped at step 699
        steps = 700 if stopped else 1000
        _metrics(50, 300 if op == "add" else 600 if stopped else None, steps).to_parquet(folder / METRICS_FILE)
        status = "stopped_early" if stopped else "completed"
        (folder / "result.json").write_text(json.dumps({"status": status, "steps_run": steps}))
    printed = []
    summary, _ = aggregate(sweep, echo=printed.append)
    assert {"operation", "grokfast"} <= set(summary.columns)
    by = summary.set_index(["operation", "grokfast", "train_ratio"])
    assert by.loc[("mul", "ema", 0.5), "status"] == "stopped_early"
    assert by.loc[("mul", "ema", 0.5), "phase"] == "grokking" and by.loc[("mul", "ema", 0.5), "steps_run"] == 700
    assert (
        by.loc[("mul", "none", 0.5), "phase"] == "memorization" and by.loc[("add", "none", 0.5), "phase"] == "grokking"
    )
    text = "\n".join(printed)
    # rows train_ratio, columns operation, one table (and diagram panel) per filter
    assert "phase table: grokfast=ema (rows train_ratio, columns operation" in text
    assert "phase table: grokfast=none (rows train_ratio, columns operation" in text
    assert "stopped_early:" not in text  # not listed among the jobs that went wrong
    assert (sweep / "phase_diagram.png").exists()


def _seed_sweep(root, cells, seeds):
    """Job folders of `cells` weight decays x `seeds` seeds, each with its metrics and result."""
    for wd, seed in itertools.product(range(cells), range(seeds)):
        overrides = [f"weight_decay={wd / 10}", f"seed={seed}"]
        folder = root / ",".join(overrides)
        (folder / ".hydra").mkdir(parents=True)
        OmegaConf.save(make_cfg(*overrides), folder / ".hydra" / "config.yaml")
        OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
        _metrics(50, 300 + seed, steps=400).to_parquet(folder / METRICS_FILE)
        (folder / "result.json").write_text(json.dumps({"status": "completed", "steps_run": 400}))


def test_curves_draw_one_pair_of_panels_per_cell_with_its_seeds_and_go_on_to_pages(tmp_path):
    from grok_sweep.plot.curves import CELLS_PER_PAGE

    _seed_sweep(tmp_path, CELLS_PER_PAGE + 2, 3)
    printed = []
    summary, written = aggregate(tmp_path, echo=printed.append)
    assert len(summary) == 3 * (CELLS_PER_PAGE + 2)
    assert written["curves"] == tmp_path / "curves.png" and written["curves (+1 pages)"] == tmp_path / "curves_2.png"
    first, second = (imread(tmp_path / name) for name in ("curves.png", "curves_2.png"))
    assert first.shape[0] > 2 * second.shape[0]  # 24 cells, then the 2 left: 6 rows of panels, then 1
    assert not (tmp_path / "curves_3.png").exists()


def test_a_finished_job_is_read_again_only_when_its_files_change(tmp_path, monkeypatch):
    from grok_sweep.store import scan

    _seed_sweep(tmp_path, 2, 2)
    calls = []
    real = scan.load_job
    monkeypatch.setattr(scan, "load_job", lambda f, root: calls.append(f.name) or real(f, root))
    first = scan.find_jobs(tmp_path)
    assert len(calls) == 4 and [j.status for j in first] == ["completed"] * 4
    again = scan.find_jobs(tmp_path)
    assert len(calls) == 4 and all(a is b for a, b in zip(again, first, strict=True))  # unchanged: from memory
    changed = tmp_path / first[0].name / "result.json"
    changed.write_text(json.dumps({"status": "completed", "steps_run": 400, "wall_time_s": 1.0}))
    third = scan.find_jobs(tmp_path)
    assert calls[4:] == [first[0].name] and third[0].result["wall_time_s"] == 1.0


def test_reading_in_worker_processes_gives_what_reading_here_gives(tmp_path, monkeypatch):
    from grok_sweep.store import scan
    from grok_sweep.store.jobs import job_folders

    _seed_sweep(tmp_path, 3, 2)
    folders = job_folders(tmp_path)
    here = scan._load_all(folders, tmp_path)
    monkeypatch.setattr(scan, "PARALLEL_FROM", 2)
    monkeypatch.setattr(scan, "CHUNK", 4)
    monkeypatch.setattr(scan, "workers", lambda: 2)
    there = scan._load_all(folders, tmp_path)
    assert [j.name for j in there] == [j.name for j in here] and len(here) == 6
    for a, b in zip(here, there, strict=True):
        assert (a.config, a.overrides, a.result, a.damaged) == (b.config, b.overrides, b.result, b.damaged)
        pd.testing.assert_frame_equal(a.metrics, b.metrics)


def test_a_folder_of_several_sweeps_or_a_file_is_refused_naming_what_to_give(sweep, tmp_path):
    day = tmp_path / "2026-12-06"
    for time in ("10-00-00", "11-00-00"):  # two sweeps of one day, the same config in each
        (day / time).mkdir(parents=True)
        (day / time / "multirun.yaml").write_text((sweep / "multirun.yaml").read_text())
        _job(day / time, 1.0, 0.5, "completed", mem=50, grok=600)
    with pytest.raises(AggregateError, match=r"holds 2 sweep folder\(s\), not one sweep: 10-00-00, 11-00-00; "
                                             rf"aggregate each on its own, e\.g\. .* {day / '10-00-00'}$"):  # fmt: skip
        aggregate(day)
    assert not (day / "summary.parquet").exists()
    with pytest.raises(AggregateError, match=rf"multirun.yaml is a file; give the folder .* \({sweep}\)"):
        aggregate(sweep / "multirun.yaml")


def test_a_sweep_of_seeds_alone_has_one_cell_and_its_report_the_folders_date_and_time(tmp_path):
    root = tmp_path / "2026-12-06" / "10-00-00"
    _seed_sweep(root, 1, 2)
    printed = []
    aggregate(root, echo=printed.append)
    assert "\nphase table (one cell, every job; phase @median sustained grokking step)" in printed
    assert "<title>grok_sweep sweep: 2026-12-06/10-00-00</title>" in (root / "report.html").read_text()
