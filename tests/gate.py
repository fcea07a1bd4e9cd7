"""A Hydra callback for tests: each job waits at its start until the file named by GROK_SWEEP_TEST_GATE exists,
so a test can start something (a --watch) before any job runs, whatever the machine's speed."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class Gate(Callback):
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        gate, deadline = Path(os.environ["GROK_SWEEP_TEST_GATE"]), time.monotonic() + 300
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
