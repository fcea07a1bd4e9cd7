"""The pre-check composes what Hydra composes: a user's config folder (--config-dir, hydra.searchpath, --config-path,
--config-name), and Hydra's own commands pass through to Hydra untouched."""

import shutil
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from conftest import CONF, ROOT
from grok_sweep.run.precheck import check_command_line

MINE = "# @package _global_\nmodulus: 11\nwidth: 16\nmodel:\n  heads: 2\nsteps: 20\neval_every: 5\n"
BAD = "# @package _global_\ntrain_ratio: 1.5\n"
REFUSED = ["train_ratio=1.5 is not allowed: a fraction strictly between 0 and 1"]


@pytest.fixture
def myconf(tmp_path):
    """A user's own config folder with two presets of their own, the usual Hydra way to keep experiments."""
    folder = tmp_path / "myconf"
    (folder / "experiment").mkdir(parents=True)
    (folder / "experiment" / "mine.yaml").write_text(MINE)
    (folder / "experiment" / "bad.yaml").write_text(BAD)
    return folder


def _ways(myconf) -> list[list[str]]:
    """The command-line arguments that add `myconf` to Hydra's config search path."""
    return [["--config-dir", str(myconf)], ["-cd", str(myconf)], [f"hydra.searchpath=[file://{myconf}]"]]


def test_a_preset_in_a_users_config_folder_is_composed_and_checked(myconf):
    assert check_command_line(["+experiment=mine"], CONF)  # not on the search path: Hydra could not find it
    for way in _ways(myconf):
        assert check_command_line([*way, "+experiment=mine"], CONF) == [], way
        assert check_command_line([*way, "+experiment=bad"], CONF) == REFUSED, way
        assert check_command_line(["-m", *way, "+experiment=mine", "seed=0,1", "width=15"], CONF) == [
            "job +experiment=mine,seed=0,width=15: width=15 is not allowed: a positive multiple of model.heads=2",
            "job +experiment=mine,seed=1,width=15: width=15 is not allowed: a positive multiple of model.heads=2",
        ], way
    assert check_command_line(["--config-dir", str(myconf / "nope")], CONF)[0].startswith("--config-dir ")


def test_a_users_own_primary_config_is_composed_and_checked(tmp_path):
    theirs = tmp_path / "theirs"
    shutil.copytree(CONF, theirs)
    cfg = OmegaConf.load(theirs / "config.yaml")
    cfg.train_ratio = 1.5
    OmegaConf.save(cfg, theirs / "other.yaml")
    for path in (["--config-path", str(theirs)], ["-cp", str(theirs)]):
        assert check_command_line(path, CONF) == []
        assert check_command_line([*path, "--config-name", "other"], CONF) == REFUSED
        assert check_command_line([*path, "-cn", "other"], CONF) == REFUSED
    assert check_command_line(["-cp", "../conf"], CONF) == []  # relative to grok_sweep/__main__.py, as Hydra reads it


HYDRA_OWN = [
    ["--help"],
    ["--hydra-help"],
    ["--cfg", "job"],
    ["--cfg", "job", "--resolve"],
    ["--cfg", "job", "--package", "model"],
    ["--info", "searchpath"],
]


@pytest.mark.parametrize("own", HYDRA_OWN, ids=lambda a: " ".join(a))
def test_hydras_own_commands_pass_through_to_hydra(myconf, own):
    args = [*own, "--config-dir", str(myconf), "+experiment=mine"]
    assert check_command_line(args, CONF) == []
    proc = subprocess.run([sys.executable, "-m", "grok_sweep", *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    if own[0] == "--cfg":
        assert ("heads: 2" if "--package" in own else "modulus: 11") in proc.stdout  # the user's preset
    if own[0] == "--info":
        assert str(myconf) in proc.stdout


def test_shell_completion_passes_through_to_hydra(myconf):
    args = ["--config-dir", str(myconf), "--shell-completion", "install=bash"]
    assert check_command_line(args, CONF) == []
    proc = subprocess.run([sys.executable, "-m", "grok_sweep", *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and "complete" in proc.stdout, proc.stderr[-2000:]


def test_a_run_from_a_users_preset_trains_with_its_values(myconf, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "grok_sweep", "--config-dir", str(myconf), "+experiment=mine", f"hydra.run.dir={out}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cfg = OmegaConf.load(out / ".hydra" / "config.yaml")
    assert (cfg.modulus, cfg.width, cfg.steps) == (11, 16, 20) and (out / "metrics.parquet").exists()
    refused = subprocess.run([*cmd[:-2], "+experiment=bad", f"hydra.run.dir={tmp_path / 'bad'}"], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
    assert refused.returncode == 1 and refused.stderr.strip() == f"grok_sweep: error: {REFUSED[0]}"
    assert not (tmp_path / "bad").exists()
