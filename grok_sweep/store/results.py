"""A job's result.json: what it ended as (store.layout's status words), its timings, versions and config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from grok_sweep.store.layout import RESULT_FILE
from grok_sweep.util.files import atomic_write


def read_result(out_dir: Path) -> Optional[dict[str, Any]]:
    path = out_dir / RESULT_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_result(result: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / RESULT_FILE
    atomic_write(path, lambda p: p.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n"))
    return path
