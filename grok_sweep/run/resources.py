"""What a job needs before it runs: an estimate of its memory, the memory there is, a device that opens.

The command-line pre-check (precheck.py) refuses a job whose estimate exceeds the memory available (or
train.max_memory_gb) and a train.device that tinygrad cannot open here, in one line each, before
any job starts. The estimate counts what grows with the config; its coefficients were fitted to
the peak RSS of jobs of different sizes on the 2-core CPU machine (docs/guide/failures.md). On
a GPU it estimates the host's memory, not the device's; train.max_memory_gb caps it on any device.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from grok_sweep.data.batches import eval_batch, padded
from grok_sweep.data.tasks import split_sizes
from grok_sweep.model.sizes import family, folds, mlp_width, n_params

GIB = 2**30
# Bytes, fitted (least squares, all >= 0) to the peak RSS of 16 jobs on the 2-core CPU machine (2026-12-02):
# p = 13 to 1009, width 16 to 128, MLP 64 to 1024, full batches and mini-batches, measures, MA filter; the
# fit is within 5% of each. B: examples in a training batch, E: in an eval chunk, p: classes, m: MLP width.
BASE_BYTES = 250 * 2**20  # a job process before its model (Python, tinygrad, numpy, pandas, Hydra) and its figures
PER_PAIR = 64  # the split on the host (int64 pairs, labels, permutation) and on the device (int32)
PER = {"B*p": 27.1, "B*m": 17.7, "E*p": 16.3, "E*m": 10.9, "param": 291.0, "measures": 14.2, "folded": 2.8}


@dataclass
class Estimate:
    total: int  # bytes
    per_example: float  # bytes per example of a training batch
    batch: int  # examples in a training batch

    def without_batch(self) -> float:
        return self.total - self.per_example * self.batch


def estimate(cfg) -> Estimate:  # noqa: ANN001 - a DictConfig or a Config
    """The peak memory of one job of `cfg`, in bytes: data, parameters, optimizer and filter state,
    the activations of one training batch and of one eval chunk, and the progress measures."""
    p, d = cfg.modulus, cfg.width
    n_train, n_test = split_sizes(p, cfg.train_ratio, cfg.operation)
    batch = cfg.train.batch_size or padded(n_train)
    n_eval = eval_batch(n_test)
    params = n_params(cfg)
    g = cfg.grokfast
    filtered = {"ema": 1, "ma": getattr(g, "window", 0)}.get(g.name, 0)  # gradients the filter keeps
    if family(cfg) == "transformer":
        m, layers, inputs = mlp_width(cfg), cfg.model.layers, 0
        folded = cfg.model.heads * 2 * (m + p) if folds(layers, d) else 0  # the per-token tables' rows
    else:  # not fitted: counted as the transformer's MLP (the fit's m) of `width`, plus the one-hot inputs (2p floats)
        m, layers, folded, inputs = d, getattr(cfg.model, "layers", 1), 0, 8 * 2 * p
    # not in the fit: ⊥Grad's projected gradients (a float32 per parameter), StableMax's s(z) and its sum (two
    # float64 per logit beside the softmax's)
    copies = filtered + (1 if cfg.optim.orthogonal else 0)
    per_example = PER["B*p"] * p + PER["B*m"] * m * layers + PER["folded"] * folded
    per_example += (16 * p if cfg.loss.name == "stablemax" else 0) + inputs
    fixed = BASE_BYTES + PER_PAIR * (n_train + n_test) + (PER["param"] + 4 * copies) * params
    fixed += n_eval * (PER["E*p"] * p + PER["E*m"] * m * layers)
    if cfg.measures:  # the model on all p^2 pairs, and the neurons' 2D DFTs
        fixed += PER["measures"] * p * p * (m + p)
    return Estimate(int(fixed + per_example * batch), per_example, batch)


def available_bytes() -> Optional[int]:
    """Memory a new job can take here: the system's available memory, within a cgroup's limit if any."""
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:  # no /proc (macOS): all of it
        avail = physical_bytes()
        if avail is None:
            return None
    try:  # a container's limit (cgroup v2)
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            avail = min(avail, int(limit) - used) if avail else int(limit) - used
    except (OSError, ValueError):
        pass
    return avail


def physical_bytes() -> Optional[int]:
    """This machine's memory, all of it: what a job on a cluster node checks itself against."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n: float) -> str:
    return f"{n / GIB:,.1f} GiB" if n >= GIB / 10 else f"{n / 2**20:.0f} MiB"


def memory_problem(cfg, available: Optional[int]) -> Optional[str]:  # noqa: ANN001
    """One line if a job of `cfg` would not fit in `available` bytes (or train.max_memory_gb), else None."""
    limit, where = available, "available here"
    if cfg.train.max_memory_gb is not None:
        limit, where = cfg.train.max_memory_gb * GIB, f"of train.max_memory_gb={cfg.train.max_memory_gb:g}"
    est = estimate(cfg)
    if limit is None or est.total <= limit:
        return None
    what = f"the job needs about {_gib(est.total)} of memory, more than the {_gib(limit)} {where}"
    room = (limit * 0.8 - est.without_batch()) / est.per_example
    if room >= 1:
        size = 2 ** int(room).bit_length() // 2  # a power of two that fits with a margin
        return f"{what}, most of it for its batch of {est.batch:,} examples; use mini-batches: train.batch_size={size}"
    if cfg.measures:
        return f"{what}, most of it the progress measures over all {cfg.modulus}^2 pairs: measures=false"
    return f"{what} even with mini-batches: a smaller modulus or width"


# compute devices tinygrad may open, as in tinygrad.device.ALL_DEVICES
COMPUTE_DEVICES = ("METAL", "AMD", "NV", "CUDA", "QCOM", "CL", "CPU", "DSP", "WEBGPU")
_PROBE = """
import json, sys
from tinygrad import Device
def ok(d):
    try:
        Device[d]
        return True
    except Exception:
        return False
opened = ok(sys.argv[1])
print(json.dumps({"ok": opened, "working": [] if opened else [d for d in json.loads(sys.argv[2]) if ok(d)]}))
"""


@functools.cache
def device_problem(device: str) -> Optional[str]:
    """One line if tinygrad cannot open `device` here (listing those it can), else None."""
    kind = device.split(":")[0].upper()
    if kind == "CPU":  # tinygrad's CPU device compiles its kernels with clang
        has_clang = shutil.which("clang") or os.environ.get("CPU_LLVM")
        return None if has_clang else "train.device=CPU needs clang to compile its kernels: bash .ci/setup installs it"
    cmd = [sys.executable, "-c", _PROBE, device, json.dumps(COMPUTE_DEVICES)]
    try:
        out = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout)
    except (subprocess.TimeoutExpired, json.JSONDecodeError):
        return f"train.device={device}: tinygrad could not open it here within 2 minutes"
    if out["ok"]:
        return None
    return f"train.device={device}: tinygrad cannot open it on this machine; devices that work here: " + (
        ", ".join(out["working"]) or "none"
    )


def job_device(device: str, devices: int, job_num: int) -> str:
    """The device job number `job_num` of a sweep trains on: with devices=N, jobs take the kind's
    devices 0..N-1 in turn (CUDA -> CUDA:0, CUDA:1, ...), so the jobs that run at once on a
    multi-GPU machine each have a GPU; with devices=1, `device` itself."""
    return device if devices == 1 else f"{device}:{job_num % devices}"
