"""The speed benchmark's JAX reference: the same GPT and AdamW as grok_sweep's job, under jax.jit.

Computes every position, as the papers' code does (and as the PyTorch reference does), from the
job's own split and initial weights; the loss is the float64 log-softmax cross entropy at the last
position. AdamW is written out (decoupled weight decay, bias-corrected moments, as torch.optim.AdamW),
so the reference needs jax alone. Run through benchmarks/speed.py, which pins it to one core.
"""

from __future__ import annotations

import math
import os
import time

# one thread, before jax is imported: XLA's CPU client reads these at start-up
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")


def run_jax(cfg, steps: int, eval_every: int | None) -> dict:  # noqa: ANN001 - a DictConfig
    import jax
    import jax.numpy as jnp
    import numpy as np

    from grok_sweep.train.trainer import Trainer

    jax.config.update("jax_enable_x64", True)  # for the float64 loss; the weights stay float32
    trainer = Trainer(cfg)  # for the same split and the same initial weights
    heads, o = cfg.model.heads, cfg.optim
    params = _params(trainer.model)
    split = trainer.split
    x_train, y_train, x_test, y_test = (jnp.asarray(a) for a in (split.x_train, split.y_train, split.x_test,
                                                                  split.y_test))  # fmt: skip

    def forward(p, x):
        h = p["tok"][x] + p["pos"]
        for blk in p["blocks"]:
            h = _block(blk, h, heads)
        return (h @ p["unembed"])[:, -1]

    def loss_fn(p, x, y):
        logp = jax.nn.log_softmax(forward(p, x).astype(jnp.float64), axis=-1)
        return -jnp.take_along_axis(logp, y[:, None], axis=-1).mean()

    @jax.jit
    def evaluate(p):
        logits = forward(p, x_test)
        logp = jax.nn.log_softmax(logits.astype(jnp.float64), axis=-1)
        loss = -jnp.take_along_axis(logp, y_test[:, None], axis=-1).mean()
        return loss, (logits.argmax(-1) == y_test).mean()

    def train_step(p, state, t):
        loss, grads = jax.value_and_grad(loss_fn)(p, x_train, y_train)
        m, v = state
        m = jax.tree.map(lambda m, g: o.beta1 * m + (1 - o.beta1) * g, m, grads)
        v = jax.tree.map(lambda v, g: o.beta2 * v + (1 - o.beta2) * g * g, v, grads)
        c1, c2 = 1 - o.beta1**t, 1 - o.beta2**t

        def update(w, m, v):
            w = w * (1 - o.lr * cfg.weight_decay)
            return w - o.lr * (m / c1) / (jnp.sqrt(v / c2) + o.eps)

        return jax.tree.map(update, p, m, v), (m, v), loss

    step = jax.jit(train_step, donate_argnums=(0, 1))
    state = (jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params))
    t0, losses = time.perf_counter(), []
    for s in range(steps):
        if eval_every and s % eval_every == 0:
            _ = [float(v) for v in evaluate(params)]  # the host reads them, as a training loop does
        params, state, loss = step(params, state, jnp.float32(s + 1))
        if s < 5:
            losses.append(loss)
        if s == 1:
            loss.block_until_ready()
            first, t1 = time.perf_counter() - t0, time.perf_counter()
    loss.block_until_ready()
    rate = (steps - 2) / (time.perf_counter() - t1)
    return {"steps_per_s": rate, "first_s": first, "losses": [float(np.asarray(v)) for v in losses]}


def _params(model) -> dict:  # noqa: ANN001 - grok_sweep's tinygrad GPT
    import jax.numpy as jnp

    def a(t):  # noqa: ANN001, ANN202
        return jnp.asarray(t.numpy())

    names = ("wq", "wk", "wv", "wo", "w_in", "b_in", "w_out", "b_out")
    blocks = [{n: a(getattr(b, n)) for n in names} for b in model.blocks]
    return {"tok": a(model.tok_emb), "pos": a(model.pos_emb), "unembed": a(model.unembed), "blocks": blocks}


def _block(p: dict, x, heads: int):  # noqa: ANN001, ANN202
    import jax
    import jax.numpy as jnp

    b, t, d = x.shape
    q, k, v = ((x @ p[w]).reshape(b, t, heads, d // heads).transpose(0, 2, 1, 3) for w in ("wq", "wk", "wv"))
    att = (q @ k.transpose(0, 1, 3, 2)) / math.sqrt(d // heads)
    att = jnp.where(jnp.tril(jnp.ones((t, t), dtype=bool)), att, -jnp.inf)
    x = x + (jax.nn.softmax(att, axis=-1) @ v).transpose(0, 2, 1, 3).reshape(b, t, d) @ p["wo"]
    return x + jax.nn.relu(x @ p["w_in"] + p["b_in"]) @ p["w_out"] + p["b_out"]


def run_jax_vmap(cfgs: list, steps: int) -> dict:  # noqa: ANN001 - DictConfigs of one shape
    """K members of one shape under jax.vmap of one jitted step (the JAX way of training many small networks at
    once): each member its own split, initial weights, weight decay and lr; run-steps/s (K x steps/s)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from grok_sweep.train.trainer import Trainer

    jax.config.update("jax_enable_x64", True)
    trainers = [Trainer(c) for c in cfgs]  # the members' splits and initial weights
    heads, o = cfgs[0].model.heads, cfgs[0].optim
    params = jax.tree.map(lambda *a: jnp.stack(a), *[_params(t.model) for t in trainers])
    x, y = (jnp.asarray(np.stack([getattr(t.split, n) for t in trainers])) for n in ("x_train", "y_train"))
    lr = jnp.asarray([c.optim.lr for c in cfgs], dtype=jnp.float32)
    wd = jnp.asarray([c.weight_decay for c in cfgs], dtype=jnp.float32)

    def member_step(p, m, v, x, y, lr, wd, t):
        def loss_fn(p):
            h = p["tok"][x] + p["pos"]
            for blk in p["blocks"]:
                h = _block(blk, h, heads)
            logp = jax.nn.log_softmax((h @ p["unembed"])[:, -1].astype(jnp.float64), axis=-1)
            return -jnp.take_along_axis(logp, y[:, None], axis=-1).mean()

        loss, grads = jax.value_and_grad(loss_fn)(p)
        m = jax.tree.map(lambda m, g: o.beta1 * m + (1 - o.beta1) * g, m, grads)
        v = jax.tree.map(lambda v, g: o.beta2 * v + (1 - o.beta2) * g * g, v, grads)
        c1, c2 = 1 - o.beta1**t, 1 - o.beta2**t
        p = jax.tree.map(lambda w, m, v: w * (1 - lr * wd) - lr * (m / c1) / (jnp.sqrt(v / c2) + o.eps), p, m, v)
        return p, m, v, loss

    step = jax.jit(jax.vmap(member_step, in_axes=(0, 0, 0, 0, 0, 0, 0, None)), donate_argnums=(0, 1, 2))
    m, v = jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.zeros_like, params)
    t0 = time.perf_counter()
    for s in range(steps):
        params, m, v, loss = step(params, m, v, x, y, lr, wd, jnp.float32(s + 1))
        if s == 1:
            loss.block_until_ready()
            first, t1 = time.perf_counter() - t0, time.perf_counter()
    loss.block_until_ready()
    return {"run_steps_per_s": len(cfgs) * (steps - 2) / (time.perf_counter() - t1), "first_s": first,
            "losses": np.asarray(loss).tolist()}  # fmt: skip
