"""A job's status.json: its progress while it runs, for the live view (train/progress.py writes it).

Small JSON written atomically, so a reader sees a whole old or a whole new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from grok_sweep.store.layout import STATUS_FILE
from grok_sweep.util.files import atomic_write


def write_status(fields: dict[str, Any], folder: Path) -> None:
    text = json.dumps(fields)
    atomic_write(folder / STATUS_FILE, lambda p: p.write_text(text))


def read_status(folder: Path) -> Optional[dict[str, Any]]:
    """A job folder's status.json, or None if it has none (or it is being replaced right now)."""
    try:
        return json.loads((folder / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
