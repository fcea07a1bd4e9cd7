"""python -m grok_sweep.export: every job of a sweep as a W&B offline run or a TensorBoard event folder, read back
with each tool's own reader (`wandb leet inspect`, TensorBoard's EventAccumulator and its server's HParams plugin);
exporting again adds nothing, and a job that moved on replaces its earlier run."""

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import ROOT, TINY
from grok_sweep.export import export
from grok_sweep.export.__main__ import main
from grok_sweep.store.layout import EXPORT_RECORD, METRICS_FILE, SUMMARY_FILE, TENSORBOARD_DIR, WANDB_DIR
from test_aggregate import _job, _metrics

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """A real two-job sweep of the tiny config, through the command line."""
    folder = tmp_path_factory.mktemp("grid")
    cmd = [sys.executable, "-m", "grok_sweep", "-m", "weight_decay=0.1,1.0", *TINY, f"hydra.sweep.dir={folder}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return folder


def fake_sweep(folder: Path) -> Path:
    """Six jobs: three phases, a failed and a diverged one, and one that has not started."""
    _job(folder, 1.0, 0.5, "completed", mem=50, grok=600)
    _job(folder, 1.0, 0.7, "completed", mem=50, grok=80)
    _job(folder, 0.1, 0.5, "completed", mem=50, grok=None)
    failed = _job(folder, 0.1, 0.3, "failed", mem=50, grok=None, steps=200)
    result = json.loads((failed / "result.json").read_text())
    (failed / "result.json").write_text(json.dumps({**result, "error": "RuntimeError: out of cheese"}))
    _job(folder, 0.1, 0.7, "diverged", mem=50, grok=None, steps=300)
    _job(folder, 1.0, 0.3)
    return folder


@pytest.fixture(params=["grid", "fake"])
def sweep(request, tmp_path):
    folder = tmp_path / "2026-12-05" / "10-00-00"
    if request.param == "grid":
        shutil.copytree(request.getfixturevalue("grid"), folder)
    else:
        fake_sweep(folder)
    return folder


def expected(sweep: Path) -> dict[str, dict]:
    """Each job's flattened config, swept values and last metrics row (its measured values), as on disk."""
    summary = pd.read_parquet(sweep / SUMMARY_FILE)
    keys = list(summary.columns[1 : list(summary.columns).index("seed")])
    out = {}
    for row in summary.to_dict("records"):
        folder = sweep / row["job"]
        config = pd.json_normalize(OmegaConf.to_container(OmegaConf.load(folder / ".hydra/config.yaml")), sep=".")
        last = pd.read_parquet(folder / METRICS_FILE).iloc[-1] if (folder / METRICS_FILE).exists() else None
        lists = ("step", "key_freqs", "layer_norms")
        measured = {} if last is None else {k: float(v) for k, v in last.items() if k not in lists and not pd.isna(v)}
        if last is not None and last.get("layer_norms") is not None:  # one scalar per layer
            measured |= {f"layer_norms/{i}": float(v) for i, v in enumerate(last["layer_norms"])}
        out[row["job"]] = dict(config=config.iloc[0].to_dict(), swept={k: row[k] for k in keys}, row=row,
                               last_step=None if last is None else int(last["step"]), last=measured)  # fmt: skip
    return out


def files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def again_adds_nothing(sweep: Path, tracker: str, jobs: int, capsys) -> None:
    before = files(sweep / tracker)
    capsys.readouterr()
    main([tracker, str(sweep)])
    assert f"wrote 0 of {jobs} jobs" in capsys.readouterr().out
    assert files(sweep / tracker) == before  # not a file added, rewritten or touched


def wandb_runs(sweep: Path) -> dict[str, dict]:
    """Every offline run under DIR/wandb as W&B's own reader sees it: its run record, last history row, summary."""
    out = {}
    for run_dir in sorted((sweep / WANDB_DIR).glob("offline-run-*")):
        cmd = [str(BIN / "wandb"), "leet", "inspect", "--json", str(run_dir)]
        lines = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout.splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        run = next(r["run"] for r in records if r["type"] == "run")
        history = [r["history"] for r in records if r["type"] == "history"]
        cmd = [str(BIN / "wandb"), "leet", "inspect", "--summary", "--json", str(run_dir)]
        state = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout)
        assert run["display_name"] not in out, f"two runs of {run['display_name']}"
        out[run["display_name"]] = dict(run=run, history=history, summary=state["summary"], dir=run_dir.name)
    return out


def test_wandb_offline_runs_hold_every_job_its_config_and_rows_and_a_second_export_adds_nothing(sweep, capsys):
    pytest.importorskip("wandb")
    main([WANDB_DIR, str(sweep)])
    want, runs = expected(sweep), wandb_runs(sweep)
    assert set(runs) == set(want)
    for name, job in want.items():
        run = runs[name]
        assert run["run"]["run_group"] == "2026-12-05/10-00-00" and run["run"]["project"] == "grok_sweep"
        config = {k: v for k, v in run["run"]["config"]["update"].items() if k != "_wandb"}
        assert run["run"]["notes"] == "swept: " + ", ".join(f"{k}={v}" for k, v in job["swept"].items())
        assert {k: config[k] for k in job["config"]} == job["config"]
        assert run["summary"]["status"] == job["row"]["status"]
        assert run["summary"].get("error") == (None if pd.isna(job["row"]["error"]) else job["row"]["error"])
        assert run["summary"].get("phase") == (None if pd.isna(job["row"]["phase"]) else job["row"]["phase"])
        if job["last_step"] is None:  # not started: config and status, no rows
            assert not run["history"]
            continue
        last = run["history"][-1]
        assert int(last["step"]["num"]) == job["last_step"]
        assert {k: last["item"][k] for k in job["last"]} == pytest.approx(job["last"])
    again_adds_nothing(sweep, WANDB_DIR, len(want), capsys)


@pytest.fixture
def exported(tmp_path):
    """The fake sweep, exported once to both trackers."""
    pytest.importorskip("wandb")
    pytest.importorskip("tensorboard")
    sweep = fake_sweep(tmp_path / "sweep")
    for tracker in (WANDB_DIR, TENSORBOARD_DIR):
        export(sweep, tracker, echo=lambda *_: None)
    return sweep


def test_a_job_that_moved_on_replaces_its_earlier_run_and_events(exported):
    sweep = exported
    late = sweep / "train_ratio=0.3,weight_decay=1.0"  # not started at the first export; it ends now
    _metrics(50, 400, 700).to_parquet(late / METRICS_FILE)
    (late / "result.json").write_text(json.dumps({"status": "completed", "steps_run": 700}))
    for tracker in (WANDB_DIR, TENSORBOARD_DIR):
        assert export(sweep, tracker, echo=lambda *_: None) == [late.name]
    runs = wandb_runs(sweep)
    assert len(runs) == 6 and int(runs[late.name]["history"][-1]["step"]["num"]) == 699
    assert len(list((sweep / TENSORBOARD_DIR / late.name).iterdir())) == 1
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    events = accumulator.EventAccumulator(str(sweep / TENSORBOARD_DIR / late.name))
    events.Reload()
    assert events.Scalars("train_loss")[-1].step == 699


def tensorboard_runs(sweep: Path) -> tuple[dict[str, dict], object]:
    """Every job's event folder as TensorBoard's EventAccumulator reads it; and the top folder's experiment."""
    acc = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    from tensorboard.plugins.hparams import metadata

    def read(folder: Path):
        events = acc.EventAccumulator(str(folder), size_guidance={acc.SCALARS: 0, acc.TENSORS: 0})
        events.Reload()
        return events

    out = {}
    for folder in sorted(p for p in (sweep / TENSORBOARD_DIR).iterdir() if p.is_dir()):
        events = read(folder)
        start = metadata.parse_session_start_info_plugin_data(
            events.PluginTagToContent("hparams")[metadata.SESSION_START_INFO_TAG]
        )
        hparams = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
        text = events.Tensors("config")[0].tensor_proto.string_val[0].decode()
        config = dict(line.strip("| ").split(" | ", 1) for line in text.splitlines()[2:])
        scalars = {tag: events.Scalars(tag)[-1] for tag in events.Tags()["scalars"]}
        out[folder.name] = dict(hparams=hparams, config=config, scalars=scalars)
    top = read(sweep / TENSORBOARD_DIR).PluginTagToContent("hparams")[metadata.EXPERIMENT_TAG]
    return out, metadata.parse_experiment_plugin_data(top)


def test_tensorboard_event_folders_hold_every_job_its_config_and_rows_and_a_second_export_adds_nothing(sweep, capsys):
    pytest.importorskip("tensorboard")
    main([TENSORBOARD_DIR, str(sweep)])
    want, (runs, experiment) = expected(sweep), tensorboard_runs(sweep)
    assert set(runs) == set(want)
    keys = [h.name for h in experiment.hparam_infos]
    assert keys == list(next(iter(want.values()))["swept"])
    assert {m.name.tag for m in experiment.metric_infos} >= {"result/final_test_acc", "result/grokking_step"}
    for name, job in want.items():
        run = runs[name]
        assert run["hparams"] == pytest.approx({k: float(v) for k, v in job["swept"].items()})
        assert {k: run["config"][k] for k in job["config"]} == {k: str(v) for k, v in job["config"].items()}
        for tag, value in job["last"].items():
            assert run["scalars"][tag].value == pytest.approx(value, rel=1e-6), (name, tag)
        if job["last"]:
            assert run["scalars"]["train_loss"].step == job["last_step"]
        acc = job["row"]["final_test_acc"]
        assert math.isnan(acc) or run["scalars"]["result/final_test_acc"].value == pytest.approx(acc, rel=1e-6)
    again_adds_nothing(sweep, TENSORBOARD_DIR, len(want), capsys)


def test_a_damaged_summary_is_made_again_from_the_jobs(tmp_path):
    pytest.importorskip("tensorboard")
    sweep = fake_sweep(tmp_path / "sweep")
    export(sweep, TENSORBOARD_DIR, echo=lambda *_: None)  # aggregates first: summary.parquet is written
    (sweep / SUMMARY_FILE).write_bytes(b"PAR1 cut short")
    shutil.rmtree(sweep / TENSORBOARD_DIR)
    assert len(export(sweep, TENSORBOARD_DIR, echo=lambda *_: None)) == 6
    assert len(pd.read_parquet(sweep / SUMMARY_FILE)) == 6


def test_a_damaged_export_record_is_said_and_the_jobs_written_again_without_duplicates(exported):
    sweep = exported
    for tracker in (WANDB_DIR, TENSORBOARD_DIR):
        (sweep / tracker / EXPORT_RECORD).write_text('{"offline": {"train_ratio=')
        said: list[str] = []
        assert len(export(sweep, tracker, echo=said.append)) == 6
        assert said[0].startswith("warning: ") and EXPORT_RECORD in said[0] and len(said) == 2
    assert len(wandb_runs(sweep)) == 6 and len(list((sweep / WANDB_DIR).glob("offline-run-*"))) == 6
    assert all(len(list(job.iterdir())) == 1 for job in (sweep / TENSORBOARD_DIR).iterdir() if job.is_dir())


def test_a_run_folder_exports_as_one_run_named_by_its_folder(tmp_path):
    pytest.importorskip("tensorboard")
    run = _job(tmp_path, 1.0, 0.5, "completed", mem=50, grok=600)
    assert export(run, TENSORBOARD_DIR, echo=lambda *_: None) == [run.name]
    runs, _ = tensorboard_runs(run)
    assert list(runs) == [run.name] and runs[run.name]["scalars"]["result/grokking_step"].value == 600


def _error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    said = str(exit_.value.code)
    assert said.startswith("grok_sweep.export: error: ") and "\n" not in said
    return said


def test_bad_input_gets_one_line_and_writes_nothing(tmp_path, monkeypatch, capsys):
    (tmp_path / "notes.txt").write_text("not a sweep")
    assert "no such folder" in _error([WANDB_DIR, str(tmp_path / "nowhere")], capsys)
    assert "not a grok_sweep sweep or run folder" in _error([TENSORBOARD_DIR, str(tmp_path)], capsys)
    sweep = fake_sweep(tmp_path / "sweep")
    for name in [m for m in sys.modules if m.split(".")[0] in ("wandb", "tensorboard")] + ["wandb", "tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if the extras were not installed
    assert "pip install 'grok_sweep[wandb]'" in _error([WANDB_DIR, str(sweep)], capsys)
    assert "pip install 'grok_sweep[tensorboard]'" in _error([TENSORBOARD_DIR, str(sweep)], capsys)
    assert "--online is for the W&B export" in _error([TENSORBOARD_DIR, str(sweep), "--online"], capsys)
    assert not (sweep / WANDB_DIR).exists() and not (sweep / TENSORBOARD_DIR).exists()


def test_online_without_a_wandb_login_says_how_to_log_in(tmp_path):
    pytest.importorskip("wandb")
    sweep = fake_sweep(tmp_path / "sweep")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")} | {"HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "grok_sweep.export", WANDB_DIR, str(sweep), "--online"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    said = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and "wandb login" in said and "wandb sync" in said, proc.stderr[-2000:]
    record = sweep / WANDB_DIR / EXPORT_RECORD
    assert not record.exists() or not json.loads(record.read_text()).get("online")


@pytest.mark.slow
def test_tensorboards_own_server_shows_every_job_in_its_hparams_view(tmp_path):
    pytest.importorskip("tensorboard")
    sweep = fake_sweep(tmp_path / "sweep")
    export(sweep, TENSORBOARD_DIR, echo=lambda *_: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        str(BIN / "tensorboard"),
        "--logdir",
        str(sweep / TENSORBOARD_DIR),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ask = {"experimentName": "", "startIndex": 0, "sliceSize": 100, "colParams": [],
           "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]}  # fmt: skip
    url = f"http://127.0.0.1:{port}/data/plugin/hparams/session_groups"
    try:
        for _ in range(120):
            try:
                req = urllib.request.Request(url, json.dumps(ask).encode(), {"Content-Type": "application/json"})
                groups = json.load(urllib.request.urlopen(req, timeout=5))["sessionGroups"]
                if len(groups) == 6:
                    break
            except OSError:
                pass
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(30)
    shown = {g["name"]: g["hparams"] for g in groups}
    assert shown["train_ratio=0.5,weight_decay=1.0"] == {"train_ratio": 0.5, "weight_decay": 1.0}
    assert set(shown) == {p.name for p in sweep.iterdir() if (p / ".hydra").is_dir()}
