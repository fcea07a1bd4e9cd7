"""The package's shape: the wheel lists every folder, modules stay short, the run folder's names and status words
are written once (store/layout.py), and importing the light parts pulls in no tinygrad."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from grok_sweep.store import layout

PACKAGE = ROOT / "grok_sweep"
MAX_LINES = 260  # "about 250"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_wheel_lists_every_folder_of_the_package_and_conf():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in PACKAGE.rglob("__init__.py")}
    folders |= {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "hydra_plugins").rglob("__init__.py")}
    conf = {".".join(("grok_sweep", *p.relative_to(ROOT).parts)) for p in (ROOT / "conf").rglob("*") if p.is_dir()}
    assert listed == folders | conf | {"grok_sweep.conf"}


def test_no_module_is_long():
    long = {p.relative_to(ROOT).as_posix(): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long


def _strings(path: Path) -> set[str]:
    """The string constants of a module, its docstrings left out."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}  # fmt: skip
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs}  # fmt: skip


def test_file_names_and_status_words_are_written_in_store_layout_only():
    names = {v for k, v in vars(layout).items() if k.isupper() and isinstance(v, str) and v != layout.META_KEY}
    names |= set(layout.ENDED.values())
    assert {"metrics.parquet", "result.json", "completed", "stopped_early", "stopped early"} <= names
    found = {p.relative_to(ROOT).as_posix(): _strings(p) & names for p in _modules() if p.name != "layout.py"}
    assert not {k: v for k, v in found.items() if v}


@pytest.mark.parametrize(
    "module", ["grok_sweep.run.config", "grok_sweep.run.precheck", "grok_sweep.aggregate", "grok_sweep.api",
               "grok_sweep.view.live", "grok_sweep.model", "grok_sweep.model.sizes", "grok_sweep.store.weights",
               "grok_sweep.export.__main__"],
)  # fmt: skip
def test_light_modules_import_no_tinygrad(module):
    code = f"import sys, {module}; print('tinygrad' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
