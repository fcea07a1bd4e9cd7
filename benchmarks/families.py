"""The MLP families' training step against PyTorch eager runs of the same model, side by side.

    python benchmarks/families.py                  # Prieto et al.'s MLP and Gromov's quadratic MLP, their presets
    python benchmarks/families.py --cases gromov2023 --steps 200

As benchmarks/speed.py does for the transformer: each measurement in a fresh subprocess, single-threaded and pinned
to core 0; PyTorch trains the same model (the tinygrad model's initial weights, copied) on the same split with the
same loss in the same precision and AdamW, and its first losses are checked against grok_sweep's. grok_sweep runs
its real training loop (Trainer.fit). ⊥Grad is off (the comparison is of the model's step; torch has no ⊥Grad).
Needs the `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import math
import os

from speed import MODES, _cfg, run_grok_sweep, run_worker, torch_loop

CASES = {
    "prieto2025_mlp": ["+experiment=prieto2025_mlp", "optim.orthogonal=false"],
    "gromov2023": ["+experiment=gromov2023"],
}


def run_torch(overrides: list[str], steps: int, eval_every: int | None) -> dict:
    import torch
    import torch.nn.functional as F

    from grok_sweep.train.trainer import Trainer

    torch.set_num_threads(1)
    cfg = _cfg(overrides)
    trainer = Trainer(cfg)  # for the same split and the same initial weights
    dtype = torch.float64 if cfg.train.loss_dtype == "float64" else torch.float32

    def loss_of(out, y):
        out = out.to(dtype)
        if cfg.loss.name == "mse":
            return F.mse_loss(out, F.one_hot(y, out.shape[-1]).to(dtype))
        return F.cross_entropy(out, y)

    return torch_loop(TorchModel(trainer.model), cfg, trainer.split, loss_of, steps, eval_every)


def TorchModel(tg_model):  # noqa: N802 - a class factory, so importing this file needs no torch
    """The tinygrad MLP or quadratic MLP (model/mlp.py, model/quadratic.py) in torch, its weights copied."""
    import torch
    from torch import nn

    weights = getattr(tg_model, "weights", None) or [tg_model.fc1, tg_model.fc2]
    biases = getattr(tg_model, "biases", [])
    quadratic, p = not hasattr(tg_model, "weights"), tg_model.modulus

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.ParameterList(nn.Parameter(torch.from_numpy(t.numpy().copy())) for t in weights)
            self.b = nn.ParameterList(nn.Parameter(torch.from_numpy(t.numpy().copy())) for t in biases)

        def forward(self, x):
            h = torch.cat([nn.functional.one_hot(x[:, 0], p), nn.functional.one_hot(x[:, 1], p)], 1).float()
            if quadratic:
                return (h @ self.w[0]) ** 2 @ self.w[1]
            for i, w in enumerate(self.w):
                h = (torch.relu(h) if i else h) @ w + (self.b[i] if len(self.b) else 0)
            return h

    return Model()


def _worker(args: argparse.Namespace) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    overrides, every = CASES[args.case], args.eval_every or None
    result = run_torch(overrides, args.steps, every) if args.worker == "torch" else \
        run_grok_sweep(overrides, args.steps, every, 0)  # fmt: skip
    print("RESULT " + __import__("json").dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--steps", type=int, default=300, help="timed steps per run")
    ap.add_argument("--worker", choices=["grok_sweep", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--eval-every", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return _worker(args)
    print("| case | mode | grok_sweep steps/s | torch eager | grok_sweep / torch | first 2 steps s (grok_sweep / "
          "torch) | peak RSS MiB (grok_sweep / torch) |\n|---|---|---|---|---|---|---|", flush=True)  # fmt: skip
    for case in args.cases.split(","):
        for mode, every in MODES.items():
            g, t = (run_worker([__file__, "--worker", kind, "--case", case, "--steps", str(args.steps),
                                "--eval-every", str(every or 0)]) for kind in ("grok_sweep", "torch"))  # fmt: skip
            if not all(math.isclose(a, b, rel_tol=1e-3) for a, b in zip(g["losses"], t["losses"], strict=True)):
                print(f"warning: torch's first losses {t['losses']} differ from grok_sweep's {g['losses']}")
            print(f"| {case} | {mode} | {g['steps_per_s']:.2f} | {t['steps_per_s']:.2f} | "
                  f"{g['steps_per_s'] / t['steps_per_s']:.2f} | {g['first_s']:.1f} / {t['first_s']:.2f} | "
                  f"{g['rss_mb']:.0f} / {t['rss_mb']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
