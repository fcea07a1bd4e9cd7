"""A fuzzed command line: a few hundred lines from the schema, each accepted or refused in one line, nothing written.

Only the pre-check runs (check_command_line, which `python -m grok_sweep` calls before Hydra starts
any job); a sample of the refused lines also goes through the real command line.
"""

import dataclasses
import subprocess
import sys
import typing

import numpy as np
import pytest

from conftest import CONF, ROOT
from grok_sweep.run.config import GROUPS, Config, schema_keys
from grok_sweep.run.precheck import check_command_line

BASE = ["modulus=11", "width=16", "model.heads=2", "steps=20"]  # a small job, so the memory check passes
VALUES = {  # valid, boundary and invalid values for each type of key
    int: ["0", "1", "2", "-1", "7", "13", "64", "1000000000", "99999999999999999999", "1.5", "1e3", "abc", "",
          "null", "true", "[1,2]", "'7'"],
    float: ["0", "1", "0.5", "-0.1", "1e-300", "1e300", "inf", "-inf", "nan", "abc", "", "null", "[0.1]", "0x10"],
    bool: ["true", "false", "True", "1", "0", "yes", "maybe", "", "null"],
    str: ["CPU", "cpu", "CUDA", "NV", "DISK", "xyz", "", "null", "'CPU'", "add", "sub", "div", "nope", "float32",
          "float16", "ema"],
}  # fmt: skip
SHAPES = [
    "{k}={v}",
    "{k}={v},{good}",
    "{k}={good},{v}",
    "+{k}={v}",
    "++{k}={v}",
    "~{k}",
    "{k}=",
    "{k}",
    "{k}=range(0,3)",
    "{k}=choice({good},{v})",
    "{k}==",
    "{k}={v}=",
    "{k}=${{oops}}",
    "{k}=[",
    '{k}="{v}',
]


def _types() -> dict[str, type]:
    """Each command-line key's type, from the schema dataclasses (Optional[X] -> X)."""
    out: dict[str, type] = {}

    def walk(node: type, prefix: str) -> None:
        for f in dataclasses.fields(node):
            hint = typing.get_type_hints(node)[f.name]
            if dataclasses.is_dataclass(f.default_factory):
                walk(f.default_factory, f"{prefix}{f.name}.")
            else:
                args = [a for a in typing.get_args(hint) if a is not type(None)]
                out[f"{prefix}{f.name}"] = args[0] if args else hint

    walk(Config, "")
    for group, schemas in GROUPS.items():
        for schema in schemas.values():
            walk(schema, f"{group}.")
    del out["init"]  # a mapping without a schema (`from` is a Python keyword): its keys' types, as checks.py holds them
    return {**out, "init.from": str, "init.step": int, "init.optimizer": bool, "init.subset": float}


def _typo(key: str, rng: np.random.Generator) -> str:
    i = int(rng.integers(len(key)))
    return [key[:i] + key[i + 1 :], key[:i] + key[i] * 2 + key[i:], key.upper(), key.replace(".", "_")][
        int(rng.integers(4))
    ]


def command_lines(n: int = 360, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    types, keys = _types(), schema_keys()
    assert set(keys) == set(types)
    lines = []
    for _ in range(n):
        args = []
        for _ in range(int(rng.integers(1, 4))):
            key = keys[int(rng.integers(len(keys)))]
            values = VALUES[types[key]] if types[key] in VALUES else VALUES[str]
            v, good = values[int(rng.integers(len(values)))], values[int(rng.integers(len(values)))]
            shape = SHAPES[int(rng.integers(len(SHAPES)))] if rng.random() < 0.5 else SHAPES[0]
            if rng.random() < 0.1:
                key = _typo(key, rng)
            args.append(shape.format(k=key, v=v, good=good))
        if rng.random() < 0.15:
            groups = [
                "grokfast=ema",
                "grokfast=ma",
                "grokfast=nope",
                "+experiment=nanda2023",
                "+experiment=none",
                "~grokfast",
                "loss=stablemax",
                "loss=nope",
                "~loss",
                "+experiment=omnigrok2023",
                "optim=muon",
                "optim=sgd",
                "optim=nope",
                "+experiment=varma2023",
            ]
            args.append(groups[int(rng.integers(len(groups)))])
        multirun = ["-m"] if any("," in a or "range(" in a for a in args) else []
        lines.append([*multirun, *BASE, *args])
    return lines


def test_every_fuzzed_line_is_accepted_or_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    accepted, refused = 0, 0
    for args in command_lines():
        found = check_command_line(args, CONF)  # raising would be a traceback: the test fails with it
        assert all(isinstance(p, str) and p and "\n" not in p and len(p) < 400 for p in found), (args, found)
        accepted, refused = accepted + (not found), refused + bool(found)
    assert list(tmp_path.iterdir()) == []  # the pre-check writes nothing
    # the fuzz reaches both sides (a line with a bare key, shape "{k}", is refused, as Hydra's parser refuses it)
    assert accepted > 20 and refused > 150


@pytest.mark.parametrize("index", range(0, 360, 90))
def test_refused_fuzzed_lines_are_refused_by_the_real_command_line(tmp_path, index):
    args = next(a for a in command_lines()[index:] if check_command_line(a, CONF))
    proc = subprocess.run([sys.executable, "-m", "grok_sweep", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("grok_sweep: error: "), proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_deleting_any_key_or_the_group_is_refused_in_one_line():
    for key in [*schema_keys(), "grokfast", "loss", "model", "optim", "train", "init"]:
        found = check_command_line([f"~{key}"], CONF)
        assert len(found) == 1 and "\n" not in found[0], (key, found)
    assert check_command_line(["~grokfast"], CONF) == ["grokfast has no value (was it deleted with ~grokfast?)"]
