"""A refused command touches nothing: the pre-check reads every job's output folder before Hydra writes in it, and a
folder that holds a finished, interrupted or running job of another config is refused, for every such job at once."""

import hashlib
import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from conftest import CONF, ROOT, TINY, make_cfg
from grok_sweep.run.checks import ConfigError
from grok_sweep.run.job import run_job
from grok_sweep.run.precheck import check_command_line
from grok_sweep.store import safetensors
from grok_sweep.store.layout import CHECKPOINT_FILE, CONFIG_FILE, HYDRA_DIR, META_KEY, OVERRIDES_FILE
from grok_sweep.store.lock import JobLock

PRESET = (
    "# @package _global_\nmodulus: 7\ntrain_ratio: 0.6\nwidth: 16\nmodel:\n  heads: 2\nsteps: {steps}\neval_every: 7\n"
)


def _grok_sweep(*args, module="grok_sweep"):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def _checksums(folder):
    """Every file under `folder`: its bytes' digest and its modification time."""
    return {p.relative_to(folder).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def test_a_refused_run_leaves_every_file_of_the_finished_run_as_it_was(tmp_path):
    run = tmp_path / "run"
    first = _grok_sweep(*TINY, f"hydra.run.dir={run}")
    assert first.returncode == 0, first.stderr[-2000:]
    before = _checksums(run)
    refused = _grok_sweep(*TINY, "weight_decay=0.5", f"hydra.run.dir={run}")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == (f"grok_sweep: error: {run} holds a finished job of another config (weight_decay: 1.0 "
                              "there, 0.5 here); give this one a new output folder\n")  # fmt: skip
    assert _checksums(run) == before
    again = _grok_sweep(*TINY, f"hydra.run.dir={run}")  # its own config: skipped, readable
    assert again.returncode == 0 and "phase:" in again.stdout, again.stderr[-2000:]


@pytest.mark.slow
def test_a_refused_sweep_names_every_job_and_leaves_the_sweep_as_it_was(tmp_path):
    mine, sweep = tmp_path / "mine", tmp_path / "sweep"
    (mine / "experiment").mkdir(parents=True)
    (mine / "experiment" / "tiny.yaml").write_text(PRESET.format(steps=20))
    args = ["-m", "--config-dir", str(mine), "+experiment=tiny", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    first = _grok_sweep(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    before = _checksums(sweep)
    (mine / "experiment" / "tiny.yaml").write_text(PRESET.format(steps=30))  # the preset changed since
    refused = _grok_sweep(*args)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"grok_sweep: error: job +experiment=tiny,seed={s}: {sweep}/+experiment=tiny,seed={s} holds a finished job of "
        "another config (steps: 20 there, 30 here); give this one a new output folder"
        for s in (0, 1)
    ]
    assert _checksums(sweep) == before
    assert _grok_sweep(str(sweep), "--no-figures", module="grok_sweep.aggregate").returncode == 0


def test_an_interrupted_or_running_job_of_another_config_is_refused_too(tmp_path):
    other = OmegaConf.to_yaml(make_cfg(*TINY, "weight_decay=0.3"))
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    meta = {"step": 20, "config": other}
    safetensors.write(interrupted / CHECKPOINT_FILE, {"w": [1.0]}, {META_KEY: json.dumps(meta)})
    assert check_command_line([*TINY, f"hydra.run.dir={interrupted}"], CONF) == [
        f"{interrupted} holds an interrupted job of another config (weight_decay: 0.3 there, 1.0 here); give this "
        "one a new output folder"
    ]
    running = tmp_path / "running"
    (running / HYDRA_DIR).mkdir(parents=True)
    (running / HYDRA_DIR / CONFIG_FILE).write_text(other)
    assert check_command_line([*TINY, f"hydra.run.dir={running}"], CONF) == []  # no process trains it
    with JobLock(running) as lock:
        assert lock.acquire()
        found = check_command_line([*TINY, f"hydra.run.dir={running}"], CONF)
    assert found == [f"{running} holds a running job of another config (weight_decay: 0.3 there, 1.0 here); give "
                     "this one a new output folder"]  # fmt: skip
    assert check_command_line([*TINY, "weight_decay=0.3", f"hydra.run.dir={running}"], CONF) == []  # its own


def test_a_job_refused_when_it_starts_puts_hydras_files_back(tmp_path):
    # the pre-check refuses first; a job known only when it starts (a refine sweep's later round) is refused here
    job = tmp_path / "job"
    first = run_job(make_cfg(*TINY), job, progress=False)
    assert first["status"] == "completed"
    (job / HYDRA_DIR).mkdir()
    kept = {CONFIG_FILE: first["config"], OVERRIDES_FILE: "- seed=0\n"}
    result = json.loads((job / "result.json").read_text())
    result["overrides"] = ["seed=0"]  # as a job Hydra ran records them
    (job / "result.json").write_text(json.dumps(result))
    for name in kept:  # what Hydra writes for the refused job before it starts
        (job / HYDRA_DIR / name).write_text("- weight_decay=0.5\n" if name == OVERRIDES_FILE else "weight_decay: 0.5\n")
    with pytest.raises(ConfigError, match="holds a finished job of another config"):
        run_job(make_cfg(*TINY, "weight_decay=0.5"), job, progress=False)
    assert {n: (job / HYDRA_DIR / n).read_text() for n in kept} == kept


def test_refusals_say_what_to_type(tmp_path):
    assert check_command_line(["loss=foo"], CONF) == [
        "In 'config': Could not find 'loss/foo' (the options in loss: mse, softmax, stablemax)"
    ]
    found = check_command_line(["+experiment=missing"], CONF)
    presets = ", ".join(sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
    assert found == [f"In 'config': Could not find 'experiment/missing' (the options in experiment: {presets})"]
    assert check_command_line([f"hydra.run.dir={tmp_path}/a b(1)"], CONF) == [
        f"cannot read the command line: 'hydra.run.dir={tmp_path}/a b(1)': mismatched input '(' expecting <EOF>; a "
        f"value with spaces or any of ~'\"()[]{{}}=&#;, is quoted for Hydra, inside the shell's quotes: "
        f"'hydra.run.dir=\"{tmp_path}/a b(1)\"'"
    ]
    assert check_command_line(['hydra.run.dir="~/my dir(1)"', *TINY], CONF) == []  # quoted as it says
    assert check_command_line(["~model.mlp_width"], CONF) == [
        "~model.mlp_width: model.mlp_width is null here, and Hydra deletes only keys that hold a value; ~ removes a "
        "key (the run would lack it), while null already means the key's default: leave model.mlp_width out or set "
        "model.mlp_width=null"
    ]
    for value in ("inf", "-inf", "nan"):
        assert check_command_line([f"optim.lr={value}"], CONF) == [
            f"optim.lr={float(value)!r} is not allowed: a finite number"
        ]


def test_every_float_key_refuses_what_is_not_finite():
    from grok_sweep.run.checks import problems

    cfg = make_cfg(*TINY, "grokfast=ema")
    floats = ("train_ratio", "weight_decay", "model.init_scale", "optim.lr", "optim.beta1", "optim.beta2", "optim.eps",
              "train.early_stop_acc", "grokfast.alpha", "grokfast.lamb")  # fmt: skip
    for key in floats:
        for value in (float("inf"), float("nan")):
            bad = make_cfg(*TINY, "grokfast=ema")
            OmegaConf.update(bad, key, value)
            assert problems(bad) == [f"{key}={value!r} is not allowed: a finite number"], key
    OmegaConf.update(cfg, "train.max_memory_gb", float("inf"))
    assert problems(cfg) == ["train.max_memory_gb=inf is not allowed: a finite number"]
