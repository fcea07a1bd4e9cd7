"""What `measures=true` costs: steps/s of the same run with and without the progress measures.

    python benchmarks/measures.py                          # the default config (evals every 10) and nanda2023
    python benchmarks/measures.py --cases default --steps 1000 --repeats 3

Each measurement is a fresh subprocess running the real training loop (Trainer.fit, early stopping off), on one
thread; the two settings alternate, so that a slow spell of the machine hits both. The ratio is the median steps/s
with measures over the median without.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import _cfg, run_worker  # noqa: E402  (the speed benchmark's config composition and workers)

CASES = {"default": [], "nanda2023": ["+experiment=nanda2023"]}
STEPS = {"default": 1500, "nanda2023": 300}


def _worker(case: str, steps: int, measures: bool) -> None:
    from grok_sweep.train.trainer import Trainer

    cfg = _cfg([*CASES[case], f"steps={steps}", f"measures={measures}", "train.early_stop=0"])
    out = Trainer(cfg).fit()
    evals = len(range(0, steps, cfg.eval_every))
    print("RESULT " + json.dumps({"steps_per_s": (steps - 2) / out.loop_time_s, "evals": evals,
                                  "first_s": out.compile_time_s}))  # fmt: skip


def _measure(case: str, steps: int, measures: bool) -> dict:
    return run_worker([__file__, "--worker", case, "--steps", str(steps), "--measures", str(measures)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--steps", type=int, default=0, help="steps per run (default: 1500 default, 300 nanda2023)")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each setting, alternating")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--measures", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return _worker(args.worker, args.steps, args.measures == "True")
    print("| case | steps | evals | steps/s, measures=false | steps/s, measures=true | ratio (true / false) |\n"
          "|---|---|---|---|---|---|", flush=True)  # fmt: skip
    for case in args.cases.split(","):
        steps = args.steps or STEPS[case]
        runs = {False: [], True: []}
        for _ in range(args.repeats):
            for measures in (False, True):
                runs[measures].append(_measure(case, steps, measures))
        rate = {m: [r["steps_per_s"] for r in rs] for m, rs in runs.items()}
        ratio = statistics.median(rate[True]) / statistics.median(rate[False])
        print(f"| {case} | {steps} | {runs[True][0]['evals']} | {', '.join(f'{v:.1f}' for v in rate[False])} | "
              f"{', '.join(f'{v:.1f}' for v in rate[True])} | {ratio:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
