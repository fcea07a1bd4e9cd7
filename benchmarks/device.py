"""grok_sweep on one device (a GPU, where one is lent): the default config's and nanda2023's training loops,
then one whole nanda2023 run, in one command.

    python benchmarks/device.py --device NV                          # or CUDA, AMD, METAL, CPU
    python benchmarks/device.py --device CPU --steps 20 --full-steps 40   # a quick try
    python benchmarks/device.py --device CUDA --cases --full-steps 600    # the whole run only, capped

Loops: `Trainer.fit` for --steps steps (evals every 10, no early stop, compile cache off), steps/s after
the first two steps (which compile). The whole run: `run_job` on `+experiment=nanda2023` as a user runs
it (progress measures, snapshots, early stopping; --full-steps caps it), its wall time, memorization and
grokking steps. The reference is the published notebook's 21.7 it/s (Nanda et al.'s nanda2023 run on a
GPU); issue 16 asks for 10x that.

Packs (benchmarks/pack.py, the stacked form off the CPU): run-steps/s (members x steps/s) of K seeds of nanda2023
trained as one pack, K = 1, 4, 16, 64, against one single run, and the peers on the same device (gpu_peers.py):
PyTorch eager and torch.compile, JAX jax.jit (steps/s of one run) and jax.vmap over the same K members (run-steps/s),
each training the same model, split, initial weights, loss and AdamW. --no-peers leaves them out (torch and jax
needed: pip install -e '.[bench]', or the device machine's own).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import _cfg  # noqa: E402

NOTEBOOK_STEPS_PER_S = 21.7
CASES = {"default": [], "nanda2023": ["+experiment=nanda2023", "measures=false"]}


def loop(overrides: list[str], device: str, steps: int) -> dict:
    from grok_sweep.train.trainer import Trainer

    cfg = _cfg([*overrides, f"train.device={device}", f"steps={steps}", "eval_every=10", "train.early_stop=0",
                "train.compile_cache=false"])  # fmt: skip
    out = Trainer(cfg).fit()
    return {"steps_per_s": (steps - 2) / out.loop_time_s, "compile_s": out.compile_time_s}


def whole_run(device: str, steps: int | None) -> dict:
    from grok_sweep.detect import detect
    from grok_sweep.run.job import run_job

    cfg = _cfg(["+experiment=nanda2023", f"train.device={device}", *([f"steps={steps}"] if steps else [])])
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = run_job(cfg, Path(out), progress=True)
        wall = time.perf_counter() - t0
        found = detect(pd.read_parquet(Path(out) / "metrics.parquet"))
    return {"wall_s": wall, **{k: result.get(k) for k in ("status", "steps_run", "steps_per_s")}, **found}


def packs(device: str, steps: int, ks: list[int], peers: bool) -> None:
    from pack import _configs, pack, single

    one = single("nanda2023", device, steps)["rate"]
    print(f"\n| nanda2023 on {device} | K | run-steps/s | x one run |")
    print("|---|---|---|---|")
    print(f"| grok_sweep, one run | 1 | {one:.1f} | 1.00 |", flush=True)
    for k in ks:
        r = pack("nanda2023", k, device, steps, stacked=device.split(":")[0].upper() != "CPU")
        print(f"| grok_sweep pack | {k} | {r['rate']:.1f} | {r['rate'] / one:.2f} |", flush=True)
    if not peers:
        return
    import gpu_peers

    cfg = _configs("nanda2023", 1, device, steps)[0]  # the peers read its split and initial weights
    rows = [("torch eager", 1, lambda: gpu_peers.torch_steps(cfg, steps, compiled=False)),
            ("torch.compile", 1, lambda: gpu_peers.torch_steps(cfg, steps, compiled=True)),
            ("jax.jit", 1, lambda: gpu_peers.jax_steps(cfg, steps))]  # fmt: skip
    for k in ks:
        rows.append(("jax.vmap", k, lambda k=k: gpu_peers.jax_vmap(_configs("nanda2023", k, device, steps), steps)))
    for name, k, run in rows:
        try:
            r = run()
        except Exception as err:  # noqa: BLE001 - a peer that cannot run here is said, the others go on
            print(f"| {name} | {k} | failed: {type(err).__name__}: {str(err).splitlines()[0][:80]} | |", flush=True)
            continue
        print(f"| {name} | {k} | {r['steps_per_s']:.1f} | {r['steps_per_s'] / one:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", required=True, help="a tinygrad device: NV, CUDA, AMD, METAL, CPU, ...")
    ap.add_argument("--steps", type=int, default=500, help="timed steps of each loop (default 500)")
    ap.add_argument("--full-steps", type=int, default=None, help="cap on the whole run (default: the preset's)")
    ap.add_argument("--cases", nargs="*", choices=list(CASES), default=list(CASES), help="the loops to time")
    ap.add_argument("--no-full", action="store_true", help="the loops only")
    ap.add_argument("--ks", nargs="*", type=int, default=[1, 4, 16, 64], help="pack sizes (default 1 4 16 64)")
    ap.add_argument("--pack-steps", type=int, default=50, help="timed steps of each pack and peer (default 50)")
    ap.add_argument("--no-packs", action="store_true", help="leave the packs and the peers out")
    ap.add_argument("--no-peers", action="store_true", help="leave PyTorch and JAX out")
    args = ap.parse_args()
    print(f"| case | device | steps/s | x notebook ({NOTEBOOK_STEPS_PER_S} it/s) | first 2 steps s |")
    print("|---|---|---|---|---|")
    for case in args.cases:
        r = loop(CASES[case], args.device, args.steps)
        ratio = r["steps_per_s"] / NOTEBOOK_STEPS_PER_S
        print(f"| {case} | {args.device} | {r['steps_per_s']:.2f} | {ratio:.2f} | {r['compile_s']:.1f} |", flush=True)
    if not args.no_packs:
        packs(args.device, args.pack_steps, args.ks, not args.no_peers)
    if not args.no_full:
        r = whole_run(args.device, args.full_steps)
        print(f"whole nanda2023 run on {args.device}: {r['status']} after {r['steps_run']} steps in {r['wall_s']:.1f} s"
              f" ({r['steps_per_s']} steps/s); memorized at {r.get('memorization_step')}, test acc >= 0.99 first at"
              f" {r.get('grokking_step')}, for good from {r.get('sustained_grokking_step')}")  # fmt: skip


if __name__ == "__main__":
    main()
