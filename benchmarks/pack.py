"""Packs against single jobs on one device: run-steps/s (members x steps/s) of K jobs trained as one pack, beside the
same jobs trained one after another as single jobs, in one command.

    python benchmarks/pack.py                               # CPU: default config and nanda2023, K = 1, 4, 16, 64
    python benchmarks/pack.py --device CUDA                 # a GPU
    python benchmarks/pack.py --cases default --ks 4 --steps 50
    python benchmarks/pack.py --science                     # the same science: members against single runs

Each pack is K seeds of the case (the members of a phase diagram differ in more keys; the step is the same program),
timed with the real loop (Pack.fit: evals every 10, no early stopping) for --steps steps after the first two, which
compile. Both of a pack's forms are timed where they differ: `members` (each member through the single run's
forward, the CPU's default) and `stacked` (one forward of all members, train/pack.py; the default elsewhere). The
single jobs' rate is one single job's loop (Trainer.fit, the same steps), which K single jobs one after another repeat
K times. "first 2 steps" is the compile time: a pack compiles once, single jobs once per shape (the compile cache).
A K whose memory estimate exceeds the memory available is left out, and so is one whose time, extrapolated from the
form's last K (the same run-steps/s, a compile time growing with K), exceeds --budget seconds.

--science trains the default config's seeds 0-3 and weight decays 0.3 and 3 (seed 0) to the end (early stopping
on), as single runs, as one pack of members and as one stacked pack, and prints each job's memorization step,
grokking step and phase in the three, and whether the members' metrics equal the single runs' bit for bit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import _cfg  # noqa: E402

CASES = {"default": [], "nanda2023": ["+experiment=nanda2023", "measures=false"]}
COMMON = ["eval_every=10", "train.early_stop=0", "train.checkpoint_every=0", "train.compile_cache=false"]


def _configs(case: str, k: int, device: str, steps: int) -> list:
    common = [*CASES[case], *COMMON, f"steps={steps + 2}", f"train.device={device}"]
    return [_cfg([*common, f"seed={s}"]) for s in range(k)]


def single(case: str, device: str, steps: int) -> dict:
    from grok_sweep.train.trainer import Trainer

    cfg = _configs(case, 1, device, steps)[0]
    out = Trainer(cfg).fit()
    return {"rate": steps / out.loop_time_s, "compile_s": out.compile_time_s}


def pack(case: str, k: int, device: str, steps: int, stacked: bool) -> dict:
    from grok_sweep.train.loop import Plan
    from grok_sweep.train.pack import Pack

    cfgs = _configs(case, k, device, steps)
    t0 = time.perf_counter()
    p = Pack(cfgs, device, stacked=stacked)
    built = time.perf_counter() - t0
    out = p.fit([Plan.of(c) for c in cfgs])
    return {"rate": k * steps / out.loop_time_s, "compile_s": out.compile_time_s + built}


SCIENCE = [["seed=0"], ["seed=1"], ["seed=2"], ["seed=3"], ["weight_decay=0.3"], ["weight_decay=3"]]


def science(device: str) -> None:
    from grok_sweep.detect import detect
    from grok_sweep.train.loop import Plan
    from grok_sweep.train.pack import Pack
    from grok_sweep.train.trainer import Trainer

    cfgs = [_cfg([*o, "train.compile_cache=false", f"train.device={device}"]) for o in SCIENCE]
    singles = []
    for cfg in cfgs:
        t = Trainer(cfg)
        t.fit()
        singles.append(t.log.frame())
    packs = {}
    for form in ("members", "stacked"):
        p = Pack(cfgs, device, stacked=form == "stacked")
        p.fit([Plan.of(c) for c in cfgs])
        packs[form] = [m.log.frame() for m in p.members]
    keys = ("memorization_step", "grokking_step", "phase")
    print("| job | single run | pack, members | pack, stacked | members' metrics bit for bit |")
    print("|---|---|---|---|---|")
    for k, o in enumerate(SCIENCE):
        cells = [" / ".join(str(detect(f)[x]) for x in keys) for f in (singles[k], *(v[k] for v in packs.values()))]
        same = singles[k].equals(packs["members"][k])
        print(f"| {' '.join(o)} | {' | '.join(cells)} | {'yes' if same else 'no'} |", flush=True)


def fits(case: str, k: int, device: str) -> bool:
    from grok_sweep.run.resources import BASE_BYTES, available_bytes, estimate

    room = available_bytes()
    per = estimate(_configs(case, 1, device, 1)[0]).total - BASE_BYTES
    return room is None or BASE_BYTES + k * per < room


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="CPU", help="a tinygrad device: CPU, CUDA, NV, AMD, METAL, ...")
    ap.add_argument("--cases", nargs="*", choices=list(CASES), default=list(CASES))
    ap.add_argument("--ks", nargs="*", type=int, default=[1, 4, 16, 64], help="pack sizes (default 1 4 16 64)")
    ap.add_argument("--steps", type=int, default=0, help="timed steps of each loop (default 100; nanda2023: 20)")
    ap.add_argument("--budget", type=float, default=300, help="seconds a pack may take, extrapolated (default 300)")
    ap.add_argument("--forms", nargs="*", choices=["members", "stacked"], default=["members", "stacked"])
    ap.add_argument("--science", action="store_true", help="members against single runs, to the end (~10 min)")
    args = ap.parse_args()
    if args.science:
        print("memorization step / grokking step / phase (default config, early stopping on)")
        science(args.device)
        return
    print("| case | device | form | K | run-steps/s | single jobs' run-steps/s | pack / single | first 2 steps s |")
    print("|---|---|---|---|---|---|---|---|")
    for case in args.cases:
        steps = args.steps or (20 if case == "nanda2023" else 100)
        one = single(case, args.device, steps)
        print(f"| {case} | {args.device} | single jobs | 1 | {one['rate']:.1f} | {one['rate']:.1f} | 1.00 | "
              f"{one['compile_s']:.1f} |", flush=True)  # fmt: skip
        for form in args.forms:
            last = None  # (K, rate, compile s) of the form's last pack
            for k in args.ks:
                if not fits(case, k, args.device):
                    print(f"| {case} | {args.device} | {form} | {k} | (over the memory available) | | | |")
                    continue
                if last and (need := k * steps / last[1] + last[2] * k / last[0]) > args.budget:
                    print(f"| {case} | {args.device} | {form} | {k} | (left out: ~{need:.0f} s, over --budget) | | | |")
                    continue
                r = pack(case, k, args.device, steps, stacked=form == "stacked")
                last = (k, r["rate"], r["compile_s"])
                print(f"| {case} | {args.device} | {form} | {k} | {r['rate']:.1f} | {one['rate']:.1f} | "
                      f"{r['rate'] / one['rate']:.2f} | {r['compile_s']:.1f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
