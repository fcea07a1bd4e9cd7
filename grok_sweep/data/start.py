"""Where a run starts when it continues another (init.from; run/parent.py reads the parent, the trainer loads it):
the parent's weights, optionally its optimizer state, and the split it trains and tests on (a prefix of the parent's
train split, the parent's test split)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from grok_sweep.data.tasks import Split


@dataclass
class Start:
    split: Split
    weights: dict[str, np.ndarray]  # the model's state dict, named as in model.safetensors
    state: Optional[dict[str, np.ndarray]] = None  # init.optimizer=true: the parent's checkpoint at that step

    def value(self, name: str) -> Optional[np.ndarray]:
        """The starting value of the trainer's state tensor `name` (Trainer.state()), None to keep the fresh one: the
        weights, and with `state` every optimizer, filter and norm-constraint tensor (never the metrics rows' counter:
        the run's rows start at its own step 0)."""
        if name.startswith("model."):
            return self.weights[name[len("model.") :]]
        return None if self.state is None or name == "counter" else self.state[name]
