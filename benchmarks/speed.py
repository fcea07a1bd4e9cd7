"""grok_sweep's training step against PyTorch eager and JAX jit runs of the same model, side by side.

    python benchmarks/speed.py                     # default config and nanda2023, train only and eval/10
    python benchmarks/speed.py --cases default --steps 500

Each measurement runs in a fresh subprocess (so compile time and peak memory are the job's own),
single-threaded and pinned to one core (core 0) on every side. PyTorch and JAX (benchmarks/jax_ref.py)
train the same model on the same split from the same initial weights with the same loss (float64
log-softmax at the last position) and AdamW, computing every position as the papers' code does.
grok_sweep runs its real training loop (Trainer.fit), and as a user runs it: whole jobs (run_job, evals
every 10, progress bar, checkpoints and files) of N and 2N steps (N = 2x the timed steps), N / the
difference of their wall times; a 20-step job first puts their compiled steps in the command's own jit
cache, so both start at once, as a user's later jobs of a shape do (the other workers compile).
Needs the `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# "default" is the default model at p = 31 with 50% train (the default config until 2026-11-28, and the
# issue's reference numbers); timed steps never stop early, and nanda2023 runs without its progress measures,
# which the peers do not compute (benchmarks/measures.py times them)
CASES = {
    "default": ["modulus=31", "train_ratio=0.5", "width=32"],
    "nanda2023": ["+experiment=nanda2023", "measures=false"],
}
MODES = {"train only": None, "eval every 10": 10}


def _cfg(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    from grok_sweep.run.checks import validate
    from grok_sweep.run.config import register

    register()
    with initialize_config_dir(version_base="1.3", config_dir=str(ROOT / "conf")):
        cfg = compose("config", overrides=overrides)
    validate(cfg)
    return cfg


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_grok_sweep(overrides: list[str], steps: int, eval_every: int | None, beam: int) -> dict:
    from grok_sweep.train.trainer import Trainer

    # train only: evals at the first and last step, as the loop always does
    cfg = _cfg([*overrides, f"steps={steps}", f"eval_every={eval_every or steps}", f"train.beam={beam}",
                "train.early_stop=0", "train.compile_cache=false"])  # fmt: skip
    trainer = Trainer(cfg)
    out = trainer.fit()
    return {"steps_per_s": (steps - 2) / out.loop_time_s, "first_s": out.compile_time_s, "rss_mb": _peak_rss_mb(),
            "losses": trainer.log.cols["train_loss"][:5].tolist()}  # fmt: skip


def run_user(overrides: list[str], steps: int, beam: int) -> dict:
    """One whole job as a user runs it (run_job: evals every 10, progress bar, checkpoints, files): its wall time."""
    from grok_sweep.run.job import run_job

    cfg = _cfg([*overrides, f"steps={steps}", "eval_every=10", f"train.beam={beam}", "train.early_stop=0"])
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = run_job(cfg, Path(out), progress=True)
        wall = time.perf_counter() - t0
    assert result["status"] == "completed", result
    return {"wall_s": wall, "rss_mb": _peak_rss_mb(), "first_s": result["compile_time_s"],
            "compile_cache": result["compile_cache"]}  # fmt: skip


def run_torch(overrides: list[str], steps: int, eval_every: int | None) -> dict:
    import torch

    from grok_sweep.train.trainer import Trainer

    torch.set_num_threads(1)
    cfg = _cfg(overrides)
    trainer = Trainer(cfg)  # for the same split and the same initial weights
    return torch_loop(TorchGPT(trainer.model, cfg.model.heads), cfg, trainer.split, _loss, steps, eval_every)


def torch_loop(model, cfg, split, loss_of, steps: int, eval_every: int | None) -> dict:  # noqa: ANN001
    """PyTorch's full-batch AdamW loop of `model` on `split` (evals every `eval_every` steps): steps/s after the
    first two, their time, peak RSS, the first losses."""
    import numpy as np
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2),
                            eps=cfg.optim.eps, weight_decay=cfg.weight_decay)  # fmt: skip
    xs = [
        torch.from_numpy(np.asarray(a, dtype=np.int64))
        for a in (split.x_train, split.y_train, split.x_test, split.y_test)
    ]
    t0, first, losses = time.perf_counter(), None, []
    for s in range(steps):
        if eval_every and s % eval_every == 0:
            with torch.no_grad():
                logits = model(xs[2])
                _ = (loss_of(logits, xs[3]).item(), (logits.argmax(-1) == xs[3]).float().mean().item())
        loss = loss_of(model(xs[0]), xs[1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        if s == 1:
            first = time.perf_counter() - t0
            t1 = time.perf_counter()
    return {"steps_per_s": (steps - 2) / (time.perf_counter() - t1), "first_s": first, "rss_mb": _peak_rss_mb(),
            "losses": [float(v) for v in losses[:5]]}  # fmt: skip


def _loss(logits, labels):
    import torch.nn.functional as F

    return F.cross_entropy(logits.double(), labels)


def TorchGPT(tg_model, heads: int):  # noqa: N802 - a class factory, so importing this file needs no torch
    import torch
    from torch import nn

    def p(t):
        return nn.Parameter(torch.from_numpy(t.numpy().copy()))

    class Block(nn.Module):
        def __init__(self, blk):
            super().__init__()
            self.wq, self.wk, self.wv, self.wo = p(blk.wq), p(blk.wk), p(blk.wv), p(blk.wo)
            self.w_in, self.b_in, self.w_out, self.b_out = p(blk.w_in), p(blk.b_in), p(blk.w_out), p(blk.b_out)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = ((x @ w).view(b, t, heads, d // heads).transpose(1, 2) for w in (self.wq, self.wk, self.wv))
            att = (q @ k.transpose(-1, -2)) / math.sqrt(d // heads)
            att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
            x = x + (att @ v).transpose(1, 2).reshape(b, t, d) @ self.wo
            return x + torch.relu(x @ self.w_in + self.b_in) @ self.w_out + self.b_out

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos, self.unembed = p(tg_model.tok_emb), p(tg_model.pos_emb), p(tg_model.unembed)
            self.blocks = nn.ModuleList(Block(b) for b in tg_model.blocks)

        def forward(self, x):
            h = self.tok[x] + self.pos
            for block in self.blocks:
                h = block(h)
            return (h @ self.unembed)[:, -1]  # every position computed, the last one read

    return GPT()


def _worker(args: argparse.Namespace) -> None:
    if hasattr(os, "sched_setaffinity"):  # one core each, as the table was measured
        os.sched_setaffinity(0, {0})
    overrides, eval_every = CASES[args.case], args.eval_every or None
    if args.worker == "torch":
        result = run_torch(overrides, args.steps, eval_every)
    elif args.worker == "user":
        result = run_user(overrides, args.steps, args.beam)
    elif args.worker == "jax":
        from jax_ref import run_jax

        result = {**run_jax(_cfg(overrides), args.steps, eval_every), "rss_mb": _peak_rss_mb()}
    else:
        result = run_grok_sweep(overrides, args.steps, eval_every, args.beam)
    print("RESULT " + json.dumps(result))


def _measure(kind: str, case: str, steps: int, eval_every: int | None, beam: int) -> dict:
    return run_worker([__file__, "--worker", kind, "--case", case, "--steps", str(steps),
                       "--eval-every", str(eval_every or 0), "--beam", str(beam)])  # fmt: skip


def run_worker(args: list[str]) -> dict:
    """Run `python *args` in a fresh process and return the dict it printed on its RESULT line."""
    cmd = [sys.executable, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise SystemExit(f"benchmark worker failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return json.loads(line[len("RESULT ") :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--steps", type=int, default=0, help="timed steps per run (default: 2000 default, 60 nanda2023)")
    ap.add_argument("--beam", type=int, default=None, help="grok_sweep's train.beam (default: the config's)")
    ap.add_argument("--worker", choices=["grok_sweep", "user", "torch", "jax"], help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--eval-every", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return _worker(args)
    beam = args.beam if args.beam is not None else _cfg([]).train.beam
    # the command's own jit cache, for the user jobs (the train-only and eval workers compile, as a new shape does)
    os.environ["GROK_SWEEP_CACHE_DIR"] = tempfile.mkdtemp(prefix="grok_sweep_speed_")
    print("| case | mode | grok_sweep steps/s | torch eager | jax jit | grok_sweep / best peer | first 2 steps s "
          "(grok_sweep / torch / jax) | peak RSS MiB (grok_sweep / torch / jax) |\n|---|---|---|---|---|---|---|---|",
          flush=True)  # fmt: skip
    for case in args.cases.split(","):
        steps = args.steps or (60 if case == "nanda2023" else 2000)
        for mode, every in MODES.items():
            g, t, j = (_measure(kind, case, steps, every, beam) for kind in ("grok_sweep", "torch", "jax"))
            for name, peer in (("torch", t), ("jax", j)):  # the same computation: the first steps' losses agree
                if not all(math.isclose(a, b, rel_tol=1e-4) for a, b in zip(g["losses"], peer["losses"], strict=True)):
                    print(f"warning: {name}'s first losses {peer['losses']} differ from grok_sweep's {g['losses']}")
            _row(case, mode, g, t, j)
        # as a user runs it: whole jobs of N and 2N steps (evals every 10, bar, checkpoints), the difference, after
        # a 20-step job that puts their compiled steps in the command's jit cache (so both load them, as a user's
        # second job of a shape does, and their compile times cancel)
        n = 2 * steps
        warm, one, two = (_measure("user", case, k, 10, beam) for k in (20, n, 2 * n))
        assert (warm["compile_cache"], one["compile_cache"], two["compile_cache"]) == ("miss", "hit", "hit")
        user = {"steps_per_s": n / (two["wall_s"] - one["wall_s"]), "first_s": one["first_s"],
                "rss_mb": max(one["rss_mb"], two["rss_mb"])}  # fmt: skip
        _row(case, f"as a user runs it (N = {n}; first 2 steps from the cache, {warm['first_s']:.1f} s compiled)",
             user, t, j)  # fmt: skip


def _row(case: str, mode: str, g: dict, t: dict, j: dict) -> None:
    best = max(t["steps_per_s"], j["steps_per_s"])
    print(f"| {case} | {mode} | {g['steps_per_s']:.2f} | {t['steps_per_s']:.2f} | {j['steps_per_s']:.2f} | "
          f"{g['steps_per_s'] / best:.2f} | {g['first_s']:.1f} / {t['first_s']:.2f} / {j['first_s']:.2f} | "
          f"{g['rss_mb']:.0f} / {t['rss_mb']:.0f} / {j['rss_mb']:.0f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
