"""What a run folder and a sweep folder hold: every file name, every status word, the metrics' columns.

Defined here once; every stage that writes or reads a folder takes its names from this module.
"""

from __future__ import annotations

import re

# ---- a job's folder: written by the job (run/job.py), read by aggregation, the live view and the API
METRICS_FILE = "metrics.parquet"  # a folder of parts (store/metrics.py), or one file in early versions
RESULT_FILE = "result.json"  # written once, when the job ends (store/results.py)
STATUS_FILE = "status.json"  # the job's progress while it runs (store/status.py)
CHECKPOINT_FILE = "checkpoint.safetensors"  # device state to resume from (train/checkpoint.py)
FINAL_FILE = "model.safetensors"  # the weights the job ended with
SNAPSHOT_DIR = "snapshots"  # the weights every train.snapshot_every steps
LOCK_FILE = ".grok_sweep.lock"  # held while a process trains the job (store/lock.py)
MEASURES_FIGURE = "measures.png"  # its progress measures, where measured
META_KEY = "grok_sweep"  # the safetensors metadata entry of our files: JSON (the step, a checkpoint's host state)
DAMAGED_SUFFIX = ".damaged"  # a damaged file set aside by a re-run (store/integrity.py): kept, never read
SNAPSHOT_NAME = re.compile(r"step_(\d+)\.safetensors")
PART_GLOB = "part-*.parquet"

# ---- Hydra's files: a job's resolved config and overrides, a sweep's plan
HYDRA_DIR = ".hydra"
CONFIG_FILE = "config.yaml"
OVERRIDES_FILE = "overrides.yaml"
HYDRA_FILE = "hydra.yaml"
PLAN_FILE = "multirun.yaml"

# ---- a sweep's folder (or a single run's): written by aggregation
SUMMARY_FILE = "summary.parquet"  # one row per job (a sweep's METRICS_FILE is one table of every job's rows)
PHASE_DIAGRAM_FILE = "phase_diagram.png"
CURVES_FILE = "curves.png"
REPORT_FILE = "report.html"  # the sweep's (or run's) story on one self-contained page (grok_sweep/report/)
# ---- exports of a sweep (or run) folder to trackers (grok_sweep/export/): each tracker's files in its own folder
WANDB_DIR = "wandb"  # W&B's own name for the folder it writes under `dir`: `wandb sync DIR/wandb/offline-run-*`
TENSORBOARD_DIR = "tensorboard"  # `tensorboard --logdir DIR/tensorboard`: one event folder per job
EXPORT_RECORD = "grok_sweep_export.json"  # in each: what of every job was exported (export/record.py)
# ---- a sweep's folder whose command SIGINT or SIGTERM stopped: its queued jobs do not start (run/sweep_stop.py)
STOP_FILE = ".grok_sweep.stop"
# ---- a refine sweep's folder (hydra/sweeper=refine): written by the sweeper before each round
REFINE_FILE = "refine.json"  # its axes and settings, and the points and jobs of every round so far


def snapshot_name(step: int, steps: int) -> str:
    """The snapshot file of the weights after `step` updates of a `steps`-step job: zero-padded, so names sort."""
    return f"step_{step:0{len(str(steps))}d}.safetensors"


def part_name(start: int) -> str:
    """The metrics part whose first row is step `start`."""
    return f"part-{start:012d}.parquet"


def part_start(name: str) -> int:
    return int(name.split("-")[1].split(".")[0])


# ---- status words. result.json's "status", and so summary.parquet's:
COMPLETED = "completed"  # trained all its steps
STOPPED_EARLY = "stopped_early"  # train.early_stop ended it once test accuracy held
FAILED = "failed"  # raised (its "error" says why); a re-run tries it again
DIVERGED = "diverged"  # a train loss or accuracy was not finite
INTERRUPTED = "interrupted"  # a signal stopped it; its checkpoint is at the step it stopped at, a re-run resumes
# ... and three more a job has in aggregation (before its result.json exists, or when a file cannot be read):
RUNNING = "running"  # a process holds its lock
INCOMPLETE = "incomplete"  # no process and no result: stopped before it ended
UNREADABLE = "unreadable"  # a file of its folder cannot be read (store/integrity.py); a re-run repairs it
RUNNING_ELSEWHERE = "running_elsewhere"  # what run_job returns for a job another process trains right now

TRAINED = (COMPLETED, STOPPED_EARLY)  # trained as configured: phases come from their metrics
FINISHED = (*TRAINED, DIVERGED)  # a re-run skips these

# status.json's "state", as the live view shows it
COMPILING, TRAINING = "compiling", "training"
LIVE = (COMPILING, TRAINING)
ENDED = {COMPLETED: "done", STOPPED_EARLY: "stopped early", FAILED: "failed", DIVERGED: "diverged"}
# ... and INTERRUPTED: stopped by a signal (its status.json says so), or said to be live while no process holds its lock
QUEUED = "queued"  # no folder or no status yet

# ---- metrics.parquet's columns, after "step"; NaN (null in the file) where not measured
# every step, on the step's train batch (the whole train split in a full batch): its loss and accuracy, and the
# fractions of it whose softmax is collapsed and whose loss is exactly 0 (model/loss.py's loss_and_collapse), and the
# learning rate of the step's update (train/schedule.py; a float32 value, as the update used it)
TRAIN_COLS = ("train_loss", "train_acc", "softmax_collapse", "zero_loss", "lr")
# eval steps: test loss and accuracy, the global weight norm, the first layer's inverse participation ratio in the
# Fourier basis (model/weight_measures.py); then LAYER_NORMS
EVAL_COLS = ("test_loss", "test_acc", "weight_norm", "ipr")
TEST_LOSS, TEST_ACC = EVAL_COLS.index("test_loss"), EVAL_COLS.index("test_acc")  # their places in an eval row
MEASURE_COLS = ("restricted_loss", "excluded_loss", "fourier_gini")  # eval steps with measures=true
FLOAT_COLS = TRAIN_COLS + EVAL_COLS + MEASURE_COLS
# then n_key_freqs (int) and key_freqs (list of int): the key frequencies 1..(p-1)/2 at eval steps with measures;
# and LAYER_NORMS (list of float): each layer's weight norm, input first, at eval steps
LAYER_NORMS = "layer_norms"


def eval_row_width(n_freqs: int, n_layers: int) -> int:
    """The values an eval step writes: EVAL_COLS, the `n_layers` layers' norms, then with measures (n_freqs > 0)
    MEASURE_COLS and one 0/1 per frequency 1..n_freqs, whether it is a key frequency."""
    return len(EVAL_COLS) + n_layers + (len(MEASURE_COLS) + n_freqs if n_freqs else 0)
