"""The peers of benchmarks/device.py on one device: PyTorch (eager, and torch.compile) and JAX (jax.jit, and jax.vmap
over K members for a pack) training the same model, split, initial weights, loss (float64 cross entropy at the last
position) and AdamW as grok_sweep's job, every position computed as the papers' code does.

Each returns steps/s (or run-steps/s, K x steps/s, for the vmapped pack) after the first two steps, which compile.
PyTorch runs on "cuda" when it has it, else the CPU; JAX on its default device. Run through device.py.
"""

from __future__ import annotations

import time


def torch_steps(cfg, steps: int, compiled: bool) -> dict:  # noqa: ANN001 - a DictConfig
    import numpy as np
    import torch
    from speed import TorchGPT, _loss

    from grok_sweep.train.trainer import Trainer

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    trainer = Trainer(cfg)  # for the same split and the same initial weights
    model = TorchGPT(trainer.model, cfg.model.heads).to(dev)
    o = cfg.optim
    opt = torch.optim.AdamW(model.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps,
                            weight_decay=cfg.weight_decay)  # fmt: skip
    x, y = (torch.from_numpy(np.asarray(a, dtype=np.int64)).to(dev) for a in (trainer.split.x_train,
                                                                              trainer.split.y_train))  # fmt: skip

    def step() -> torch.Tensor:
        loss = _loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    run = torch.compile(step) if compiled else step
    t0 = time.perf_counter()
    for s in range(steps):
        loss = run()
        if s == 1:
            loss.item()
            first, t1 = time.perf_counter() - t0, time.perf_counter()
    loss.item()
    return {"steps_per_s": (steps - 2) / (time.perf_counter() - t1), "first_s": first, "device": dev}


def jax_steps(cfg, steps: int) -> dict:  # noqa: ANN001
    from jax_ref import run_jax

    r = run_jax(cfg, steps, None)
    return {"steps_per_s": r["steps_per_s"], "first_s": r["first_s"]}


def jax_vmap(cfgs: list, steps: int) -> dict:
    from jax_ref import run_jax_vmap

    r = run_jax_vmap(cfgs, steps)
    return {"steps_per_s": r["run_steps_per_s"], "first_s": r["first_s"]}
