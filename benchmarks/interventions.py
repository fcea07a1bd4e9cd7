"""The controls of the grokking literature side by side on one CPU-size config, over seeds: what each does here.

    python benchmarks/interventions.py                     # the documented config (CONFIG below), 3 seeds
    python benchmarks/interventions.py --seeds 5 modulus=47 --only stablemax,orthograd
    python benchmarks/interventions.py --model mlp         # Prieto et al.'s MLP on their setup (MODELS below)
    python benchmarks/interventions.py --model quadratic   # Gromov's quadratic MLP: a row per train_ratio

Runs every variant of VARIANTS with every seed, one job per core at a time, each a real grok_sweep job (run_job)
in `--out`, and prints one table row per variant: the median over seeds of the memorization step (train accuracy
>= 0.99), the first step with test accuracy >= 0.99 ("never" if half the seeds or more did not get there within
the budget), the grokking delay (sustained grokking step - memorization step), the seeds' phases, the train and
test accuracy at the last step, and the fraction of train examples whose softmax had collapsed at the last step,
with each seed's numbers. A run folder that holds a finished run is not run again: `--out` an earlier command's
folder prints its table again. The detection is aggregation's (grok_sweep.detect, its default rule). The
reference is the first row (the transformer's: plain AdamW with weight decay 1), in the same command.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pandas as pd
from jobs import ROOT, budget, folder, run_all, say_unfinished, table_head

# the default model and task (x + y mod 53, 40% train, width 64, full batch, AdamW lr 1e-2), as long as a
# weight-decay-0 run may need to show what it does, evaluated every 10 steps; a run ends 200 steps after test
# accuracy holds >= 0.99
CONFIG = ["steps=10000", "eval_every=10", "train.early_stop=200", "train.checkpoint_every=0"]
VARIANTS = {  # name: (what it is, overrides)
    "adamw_wd1": ("AdamW, weight decay 1 (the default config)", ["weight_decay=1"]),
    "wd0_float32": ("weight decay 0, softmax loss in float32", ["weight_decay=0", "train.loss_dtype=float32"]),
    "wd0_float64": ("weight decay 0, softmax loss in float64", ["weight_decay=0"]),
    "stablemax": ("weight decay 0 + StableMax (float64, as their code)", ["weight_decay=0", "loss=stablemax"]),
    "orthograd": ("weight decay 0 + ⊥Grad (float32 softmax, as their run)",
                  ["weight_decay=0", "optim.orthogonal=true", "train.loss_dtype=float32"]),
    "constrained": ("weight decay 0 + init scale 0.8, constrained norm",
                    ["weight_decay=0", "model.init_scale=0.8", "train.constrain_norm=true"]),
    "grokfast_ema": ("Grokfast EMA (alpha 0.98, lamb 2), weight decay 1", ["weight_decay=1", "grokfast=ema"]),
}  # fmt: skip
# --model mlp|quadratic: the families' own setups (conf/experiment/), each with its variants
MLP_VARIANTS = {
    "mlp_float32": ("AdamW, weight decay 0, softmax in float32", ["optim.orthogonal=false"]),
    "mlp_float64": ("AdamW, weight decay 0, softmax in float64",
                    ["optim.orthogonal=false", "train.loss_dtype=float64"]),
    "mlp_stablemax": ("weight decay 0 + StableMax (float64, as their code)",
                      ["optim.orthogonal=false", "loss=stablemax", "train.loss_dtype=float64"]),
    "mlp_orthograd": ("weight decay 0 + ⊥Grad (float32 softmax: their Fig. 1 run)", []),
    "mlp_wd1": ("AdamW, weight decay 1, float32", ["optim.orthogonal=false", "weight_decay=1"]),
}  # fmt: skip
RATIOS = {f"quadratic_{r}": (f"train_ratio {r}", [f"train_ratio={r}"]) for r in ("0.2", "0.3", "0.4", "0.5")}
MODELS = {  # --model: (the config every run starts from, its variants)
    "transformer": (CONFIG, VARIANTS),
    # their 300 epochs are enough for ⊥Grad; the others get 1500 steps to show what they do (StableMax needed ~30k+)
    "mlp": (["+experiment=prieto2025_mlp", "steps=1500", "train.early_stop=200", "train.checkpoint_every=0"],
            MLP_VARIANTS),
    "quadratic": (["+experiment=gromov2023", "steps=3000", "train.early_stop=200", "train.checkpoint_every=0"], RATIOS),
}  # fmt: skip
VARIANTS = {**VARIANTS, **MLP_VARIANTS, **RATIOS}


def _median(values: list) -> float:
    """Median with "never" (NaN) sorting last: half the seeds or more never got there -> NaN."""
    return statistics.median([float("inf") if pd.isna(v) else float(v) for v in values])


def _fmt(value: float, digits: int = 0) -> str:
    return "never" if pd.isna(value) or value == float("inf") else f"{value:.{digits}f}"


def _row(name: str, found: list[dict]) -> str:
    med = {c: _median([f[c] for f in found]) for c in ("memorization_step", "grokking_step", "grokking_delay")}
    collapse = statistics.median(f["final_softmax_collapse"] for f in found)
    final = " / ".join(f"{statistics.median(f[c] for f in found):.2f}" for c in ("final_train_acc", "final_test_acc"))
    seeds = "; ".join(f"{_fmt(f['memorization_step'])} / {_fmt(f['grokking_step'])} / "
                      f"{f['final_softmax_collapse']:.2f}" for f in found)  # fmt: skip
    phases = ", ".join(str(f["phase"]) for f in found)
    delay = "-" if med["grokking_delay"] == float("inf") else _fmt(med["grokking_delay"])
    return (f"| {VARIANTS[name][0]} | {_fmt(med['memorization_step'])} | {_fmt(med['grokking_step'])} | {delay} | "
            f"{phases} | {final} | {collapse:.2f} | {seeds} |")  # fmt: skip


def _found(job: Path) -> dict:
    from grok_sweep.aggregate.summary import COLLAPSE_COLS
    from grok_sweep.detect import detect

    metrics = pd.read_parquet(job / "metrics.parquet")
    found = detect(metrics)
    found.update({f"final_{c}": float(metrics[c].iloc[-1]) for c in (*COLLAPSE_COLS, "train_acc")})
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("overrides", nargs="*", help="config overrides for every run, after the documented config")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--model", choices=list(MODELS), default="transformer", help="the family and its setup")
    ap.add_argument("--only", help="comma-separated variants (default: every variant of --model's)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time (one core each)")
    stamp = time.strftime("interventions-%Y%m%d-%H%M%S")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / stamp, help="where the runs go")
    args = ap.parse_args()
    config, variants = MODELS[args.model]
    names = args.only.split(",") if args.only else list(variants)
    if unknown := [n for n in names if n not in variants]:
        ap.error(f"unknown variant(s) {', '.join(unknown)} of --model {args.model}; known: {', '.join(variants)}")
    base = [*config, *args.overrides]
    runs = {(n, s): [*base, *variants[n][1], f"seed={s}"] for n in names for s in range(args.seeds)}
    print(f"config: the default config with {' '.join(base)}; seeds 0..{args.seeds - 1}")
    status = {k: v[0] for k, v in run_all(runs, args.out, args.jobs).items()}
    table_head("variant", "memorization step", "test acc >= 0.99", "delay", "phases", "train / test acc at the end",
               "softmax collapse at the end", "per seed: memorization / test >= 0.99 / collapse")  # fmt: skip
    for n in names:
        print(_row(n, [_found(folder(args.out, n, s)) for s in range(args.seeds)]))
    print(f"(medians over seeds; never: not within the {budget(base)}-step budget; delay: sustained grokking step - "
          "memorization step, '-' where it never grokked)")  # fmt: skip
    say_unfinished(status)


if __name__ == "__main__":
    main()
