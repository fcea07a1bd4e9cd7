"""The README and docs/ say what the code does now: their examples run, their links resolve, they hold no commit
hashes or dated run logs, and `--help` helps.

The examples run as a user would type them, in document order, in one fresh folder, with these substitutions,
each visible below: every `python -m grok_sweep` command trains a tiny config (TINY: the same keys the text sets
are replaced, so a command's own steps or modulus give way), keeps its job folders' names as the text shows them
(the tiny keys are left out of `override_dirname`), `python` is this interpreter, the set-up command is the one
CI ran already, `pytest` only collects, a SLURM or Ray example runs only where CI started that cluster, and the
placeholders `outputs/runs/<date>/<time>` and `outputs/sweeps/<date>/<time>` name the newest such folder.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import conftest
from conftest import CONF, ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md")), ROOT / "benchmarks" / "README.md"]
# README first, then the guide in reading order, then the other pages: later examples read earlier outputs
GUIDE = ["sweeps", "outputs", "api", "share", "failures", "config", "clusters", "refine"]
RUN_ORDER = [README, *(ROOT / "docs" / "guide" / f"{g}.md" for g in GUIDE)]
RUN_ORDER += [p for p in sorted((ROOT / "docs").rglob("*.md")) if p not in RUN_ORDER]

# the suite's tiny config, but the train ratio: the examples set their own
TINY = dict(o.split("=") for o in conftest.TINY if not o.startswith("train_ratio="))
_NAMING = OmegaConf.load(CONF / "config.yaml").hydra.job.config.override_dirname.exclude_keys
EXCLUDE = f"hydra.job.config.override_dirname.exclude_keys=[{','.join([*_NAMING, *TINY])}]"
SUBSTITUTE = [  # (text, replacement) in every shell block, before the tiny config is applied
    ("bash .ci/setup && .venv/bin/python", "python"),  # CI ran the set-up; the tests run in its environment
    ("python -m pytest", f"python -m pytest --collect-only -q {ROOT / 'tests'}"),  # no suite inside the suite
    ("hydra.launcher.partition=cpu", "hydra.launcher.partition=debug"),  # .ci/slurm-up's partition
    ("weight_decay=0.03,0.1,0.3,1.0,3.0 train_ratio=0.2,0.3,0.4,0.5,0.6 'seed=range(0,4)'", "weight_decay=0.1,1.0"),
]
OTHER_FAMILY = re.compile(r"(?<![.\w])model=|experiment=(prieto2025_mlp|gromov2023)\b")
NEEDS = {"hydra/launcher=slurm": "GROK_SWEEP_SLURM", "hydra/launcher=ray": "GROK_SWEEP_RAY"}
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
COMMAND = re.compile(r"python -m grok_sweep(?=\s|$)(.*)$")


def blocks(path: Path) -> list[tuple[str, str, int]]:
    """(language, code, line number) of each fenced block of a Markdown file."""
    text = path.read_text()
    return [(m.group(1), m.group(2), text[: m.start()].count("\n") + 1) for m in FENCE.finditer(text)]


def tiny(line: str) -> str:
    """A `python -m grok_sweep` command line with the tiny config: TINY's keys replaced or added, comments dropped."""
    m = COMMAND.search(line)
    if not m:
        return line
    args = [a for a in shlex.split(m.group(1), comments=True) if a.split("=")[0] not in TINY]
    # a command that picks an MLP (a model= choice, or a preset of one) gets TINY without the transformer's heads
    keys = {k: v for k, v in TINY.items() if k != "model.heads" or not OTHER_FAMILY.search(m.group(1))}
    args += [f"{k}={v}" for k, v in keys.items()] + [EXCLUDE]
    return line[: m.start()] + "python -m grok_sweep " + shlex.join(args)


def shell_script(code: str) -> str:
    code = code.replace("\\\n", " ")  # continuation lines: the tiny keys go to the end of the whole command
    for old, new in SUBSTITUTE:
        code = code.replace(old, new)
    return "set -e\n" + "\n".join(tiny(line) for line in code.splitlines())


def newest(work: Path, kind: str) -> str:
    """The newest folder of outputs/runs/<date>/<time> (a run's) or outputs/sweeps/<date>/<time> (a sweep's)."""
    mark = {"runs": ".hydra/config.yaml", "sweeps": "multirun.yaml"}[kind]
    found = [d for d in (work / "outputs" / kind).glob("*/*") if (d / mark).is_file()]
    found.sort(key=lambda p: p.stat().st_mtime)
    assert found, f"an example reads outputs/{kind}/<date>/<time>, but no earlier example made one"
    return str(found[-1].relative_to(work))


def run_block(lang: str, code: str, work: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    for kind in ("runs", "sweeps"):
        if f"outputs/{kind}/<date>/<time>" in code:
            code = code.replace(f"outputs/{kind}/<date>/<time>", newest(work, kind))
    argv = ["bash", "-c", shell_script(code)] if lang == "bash" else [sys.executable, "-c", code]
    return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)


def examples() -> list[tuple[Path, str, str, int]]:
    return [(p, lang, code, n) for p in RUN_ORDER for lang, code, n in blocks(p) if lang in ("bash", "python")]


def example_env(tmp_path: Path) -> dict[str, str]:
    """The environment the examples run in: `python` is this interpreter."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    (bin_dir / "python").chmod(0o755)  # not a symlink: a venv's python finds its packages by its own path
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "120"}


@pytest.mark.slow
def test_every_example_of_the_readme_and_docs_runs(tmp_path):
    env = example_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    ran = 0
    for path, lang, code, line in examples():
        where = f"{path.relative_to(ROOT)}:{line}"
        if any(k in code and not os.environ.get(v) for k, v in NEEDS.items()):
            print(f"{where}: not run, no cluster here (CI sets {', '.join(NEEDS.values())} where it starts one)")
            continue
        out = run_block(lang, code, work, env)
        why = f"{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        assert out.returncode == 0, f"{where}: the example failed ({out.returncode}):\n{why}"
        ran += 1
    assert ran >= 15, f"only {ran} examples ran"


def test_the_examples_are_found_and_the_tiny_config_is_applied():
    found = examples()
    assert {p for p, *_ in found} >= {README, *(ROOT / "docs" / "guide" / f"{g}.md" for g in GUIDE)}
    cmd = tiny("python -m grok_sweep -m modulus=97 steps=2000 'seed=range(0,2)'  # a comment")
    assert shlex.split(cmd)[3:] == ["-m", "seed=range(0,2)", *(f"{k}={v}" for k, v in TINY.items()), EXCLUDE]
    assert tiny("python -m grok_sweep.aggregate DIR") == "python -m grok_sweep.aggregate DIR"


def test_a_broken_example_fails_the_run(tmp_path):
    env = example_env(tmp_path)
    out = run_block("python", "from grok_sweep import load_runs", tmp_path, env)
    assert out.returncode != 0 and "ImportError" in out.stderr
    out = run_block("bash", "python -m grok_sweep wieght_decay=1", tmp_path, env)
    assert out.returncode != 0 and "did you mean 'weight_decay'" in out.stderr


def test_readme_is_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= 250


HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")
DATE = re.compile(r"\b20\d\d-[01]\d-[0-3]\d\b")
ALLOWED = {  # text that looks like a hash or a date but is neither, with the reason it stays
}


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_commit_hash_or_dated_run_log(path):
    # history lives in git and in the issue notes; the docs say what the code does now
    text = path.read_text()
    for pattern in (HASH, DATE):
        found = [m.group(0) for m in pattern.finditer(text) if m.group(0) not in ALLOWED]
        assert not found, f"{path.relative_to(ROOT)} holds {found[:5]}"


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    text = FENCE.sub("", path.read_text())
    targets = [t.split("#")[0] for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    missing = [t for t in targets if t and not (path.parent / t).exists()]
    assert not missing, f"{path.relative_to(ROOT)} links to missing {missing}"


def test_help_says_what_the_app_does_and_lists_the_groups_a_user_picks():
    out = subprocess.run([sys.executable, "-m", "grok_sweep", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("grok_sweep: grokking sweeps") and "python -m grok_sweep -m " in text
    assert "base_" not in text and "is powered by Hydra" not in text
    groups = dict(re.findall(r"^(\+experiment|model|optim|grokfast|loss)\s+([\w, ]+?)\s{2}", text, re.M))
    for group in ("+experiment", "model", "optim", "grokfast", "loss"):
        folder = group.lstrip("+")
        listed = {o.strip() for o in groups[group].split(",")}
        assert listed == {f.stem for f in (CONF / folder).glob("*.yaml")}, group
    assert "modulus: 53" in text and "README.md" in text  # the config, and where to read on
