import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ValidationError

from conftest import CONF, ROOT, TINY, make_cfg
from grok_sweep.run import precheck as cli
from grok_sweep.run.checks import ConfigError, validate

BAD = [
    (["train_ratio=1.5"], "train_ratio=1.5", "strictly between 0 and 1"),
    (["train_ratio=0"], "train_ratio=0", "strictly between 0 and 1"),
    (["width=30"], "width=30", "multiple of model.heads=4"),
    (["modulus=1"], "modulus=1", ">= 2"),
    (["steps=0"], "steps=0", ">= 1"),
    (["eval_every=0"], "eval_every=0", ">= 1"),
    (["modulus=3", "train_ratio=0.1"], "train_ratio=0.1", "train split empty"),
    (["modulus=3", "train_ratio=0.99999999999999"], "train_ratio=0.99999999999999", "test split empty"),
    (["weight_decay=-1"], "weight_decay=-1", ">= 0"),
    (["seed=-1"], "seed=-1", ">= 0"),
    (["model.heads=0"], "model.heads=0", ">= 1"),
    (["model.layers=0"], "model.layers=0", ">= 1"),
    (["model.mlp_width=0"], "model.mlp_width=0", ">= 1"),
    (["optim.lr=0"], "optim.lr=0", "> 0"),
    (["optim.beta2=1.0"], "optim.beta2=1.0", "[0, 1)"),
    (["optim.eps=0"], "optim.eps=0", "> 0"),
    (["train.batch_size=100000"], "train.batch_size=100000", "1..1123"),  # floor(0.4 * 53^2)
    (["train.loss_dtype=float16"], "train.loss_dtype='float16'", "float32 or float64"),
    (["train.device=TPU"], "train.device='TPU'", "a tinygrad device"),
    (["train.devices=0"], "train.devices=0", ">= 1"),
    (["train.device=CUDA:1", "train.devices=2"], "train.devices=2", "name the kind alone"),
    (["operation=div", "modulus=32"], "operation='div'", "needs a prime modulus (with modulus=32, not prime)"),
    (["operation=div_or_sub", "modulus=9"], "operation='div_or_sub'", "prime modulus (with modulus=9"),
    (["operation=pow"], "operation='pow'", "one of add, sub, mul, div,"),
    # div leaves out b = 0: 7 * 6 = 42 pairs, 21 of them train
    (["operation=div", "modulus=7", "train_ratio=0.5", "train.batch_size=22"], "train.batch_size=22", "1..21"),
    (["measures=true", "operation=mul"], "measures=True", "operation=add or sub only (here operation=mul)"),
    (["train.snapshot_every=-5"], "train.snapshot_every=-5", "0 (off)"),
    (["train.early_stop=-1"], "train.early_stop=-1", "0 (off)"),
    (["train.early_stop_acc=0"], "train.early_stop_acc=0", "(0, 1]"),
    (["grokfast=ema", "grokfast.alpha=1.0"], "grokfast.alpha=1.0", "[0, 1)"),
    (["grokfast=ema", "grokfast.lamb=-1"], "grokfast.lamb=-1", ">= 0"),
    (["grokfast=ma", "grokfast.window=0"], "grokfast.window=0", ">= 1"),
    (["grokfast=ema", "grokfast.name=ma"], "grokfast.name='ma'", "grokfast=none|ema|ma"),
]


@pytest.mark.parametrize("overrides,key_value,allowed", BAD, ids=[b[1] for b in BAD])
def test_bad_values_are_refused_with_key_value_and_rule(overrides, key_value, allowed):
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(*overrides))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(key_value) and allowed in msg


def test_defaults_and_tiny_config_are_valid():
    validate(make_cfg())
    validate(make_cfg(*TINY))


def test_typos_and_wrong_types_fail_at_composition():
    with pytest.raises(ConfigCompositionException, match="wieght_decay"):
        make_cfg("wieght_decay=0.1")
    with pytest.raises((ConfigCompositionException, ValidationError), match="weight_decay"):
        make_cfg("weight_decay=abc")


def test_nanda2023_preset_is_nandas_setup():
    cfg = make_cfg("+experiment=nanda2023")
    validate(cfg)
    assert (cfg.modulus, cfg.train_ratio, cfg.weight_decay, cfg.width) == (113, 0.3, 1.0, 128)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.beta1, cfg.optim.beta2) == ("adamw", 1e-3, 0.9, 0.98)
    assert cfg.optim.warmup_steps == 10 and cfg.optim.schedule == "constant"  # their LambdaLR's 10 updates
    assert (cfg.model.heads, cfg.model.layers, cfg.train.batch_size, cfg.train.early_stop) == (4, 1, None, 0)
    assert cfg.measures and cfg.train.snapshot_every > 0


@pytest.mark.parametrize(
    "overrides,line",
    [
        (["train_ratio=1.5"], "train_ratio=1.5 is not allowed: a fraction strictly between 0 and 1"),
        (["operation=div", "modulus=32"],
         "operation='div' is not allowed: div divides by b, so it needs a prime modulus (with modulus=32, not prime)"),
    ],
)  # fmt: skip
def test_cli_refuses_bad_value_in_one_line_before_training(tmp_path, overrides, line):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "grok_sweep", *overrides, f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"grok_sweep: error: {line}"]
    assert not run_dir.exists()


def test_a_launcher_without_its_plugin_is_refused_with_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(cli.LAUNCHER_EXTRAS, "ray", ("no_such_plugin_module", "ray"))
    got = cli.check_command_line(["-m", "hydra/launcher=ray", "seed=0,1"], CONF)
    assert got == ["hydra/launcher=ray needs its Hydra plugin: pip install -e '.[ray]'"]
    assert cli.check_command_line(["-m", "hydra/launcher=joblib", "seed=0,1"], CONF) == []


def test_grokfast_group_and_its_values_are_known_keys():
    assert cli.check_command_line(["grokfast=ema", "grokfast.lamb=5", "grokfast.alpha=0.9"], CONF) == []
    assert cli.check_command_line(["-m", "grokfast=none,ema,ma", "operation=add,div"], CONF) == []
    assert cli.check_command_line(["grokfast.lamd=5"], CONF) == [
        "unknown key 'grokfast.lamd' (did you mean 'grokfast.lamb'?)"
    ]
    assert cli.check_command_line(["grokfast=ema", "grokfast.window=5"], CONF) == [
        "grokfast.window: Key 'window' not in 'GrokfastEMA'"
    ]


def test_an_operation_grid_is_refused_per_job_when_a_combination_is_impossible():
    assert cli.check_command_line(["-m", "operation=add,div", "modulus=32"], CONF) == [
        "job modulus=32,operation=div: operation='div' is not allowed: div divides by b, so it needs a prime modulus "
        "(with modulus=32, not prime)"
    ]


def test_grokfast2024_preset_is_their_algorithmic_setup():
    cfg = make_cfg("+experiment=grokfast2024")
    validate(cfg)
    assert (cfg.operation, cfg.modulus, cfg.train_ratio, cfg.width) == ("mul", 97, 0.5, 128)
    assert (cfg.model.layers, cfg.model.heads, cfg.train.batch_size) == (2, 4, 512)
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.optim.beta2) == (1e-3, 0.9, 0.98)
    assert dict(cfg.grokfast) == {"name": "ema", "alpha": 0.98, "lamb": 2.0}
    assert cfg.optim.warmup_steps == 10
    assert make_cfg("+experiment=grokfast2024", "grokfast=ma").grokfast.name == "ma"
    theirs = make_cfg("+experiment=grokfast2024", "optim=adam")  # their optimizer, the preset's numbers kept
    assert (theirs.optim.name, theirs.optim.lr, theirs.optim.beta2, theirs.optim.warmup_steps) == (
        "adam",
        1e-3,
        0.98,
        10,
    )


def test_muon2025_preset_is_the_default_task_with_muon():
    cfg = make_cfg("+experiment=muon2025")
    validate(cfg)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.adam_lr) == ("muon", 0.02, 0.95, 0.01)
    assert (cfg.modulus, cfg.train_ratio, cfg.weight_decay, cfg.width) == (53, 0.4, 1.0, 64)


def test_varma2023_preset_continues_a_run_for_3000_steps_with_a_fresh_optimizer():
    cfg = make_cfg("+experiment=varma2023", "init.subset=150")
    assert (cfg.steps, cfg.train.early_stop, cfg.init.optimizer, cfg.optim.name) == (3000, 0, False, "adamw")
    with pytest.raises(ConfigError, match="^init.subset=150 needs init.from=PATH"):
        validate(cfg)
