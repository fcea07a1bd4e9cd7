"""The folded model's table lookups (fast/fold.py) as C kernels for tinygrad's CPU device.

Each example reads a few rows of small per-token tables, weighs them by its attention weights and adds
them up: `pre` (the MLP's inputs: 8 rows of 512 and the "=" key's 4, then a fixed row) and each
position's rows of the logits' linear part (4 rows of 128). tinygrad computes them with scalar loads
per element (pre), or writes the gathered rows out first (the head rows); docs/performance/fold.md has
the figures. Here each example's row pointers are read once and the rows
go through in 8- or 16-float vectors (16 where clang targets AVX-512).

Each output is the same expression as in tinygrad's kernels, so it rounds the same: sums over heads
from 0 with one FMA per product (`acc += w * t`), the head rows' fma_chain (fast/fold.py), and
pre = fma chain of the "=" key's rows onto (s0 + s1), then + fixed. The gradients are the plain
expressions' (`expr`), which the callers pass. Elsewhere (other devices, widths not a multiple of 8)
the callers compute the plain expressions.
"""

from __future__ import annotations

from collections.abc import Callable

from tinygrad import Tensor, UOp, dtypes
from tinygrad.renderer import Estimates

from grok_sweep.fast.cpu import kernels as cpu_kernels


def usable(t: Tensor, width: int) -> bool:
    return cpu_kernels.usable(t.device) and width % 8 == 0


def _heads(acc: str, weights: str, rows: str, heads: int, v: str) -> list[str]:
    """C: acc = 0, then acc += weights[h] * rows[h] for each head in order."""
    lines = [f"      {v} {acc} = 0;"]
    return lines + [f"      {acc} += {weights}[{h}] * *({v}*)({rows} + {h}*W + j);" for h in range(heads)]


def pre_source(name: str, b: int, vocab: int, heads: int, w: int) -> str:
    """out (B, W) = (s0 + s1) + sum over h of w2[h] * L[h] (one FMA each, in order) + F, where s_p is the
    weighted sum of position p's rows: T (2, V, H, W), Wt (B, 3, H), I (B, 2), L (H, W), F (W)."""

    def body(lanes: int) -> str:
        v = f"f{lanes}"
        lines = [
            f"void {name}(float* restrict out, float* restrict T, float* restrict Wt, int* restrict I, "
            "float* restrict L, float* restrict F) {",
            f"  const int W = {w};",
            f"  for (int b = 0; b < {b}; b++) {{",
            f"    float* t0 = T + I[b*2]*{heads}*W; float* t1 = T + ({vocab} + I[b*2 + 1])*{heads}*W;",
            f"    float* w0 = Wt + b*{3 * heads}; float* w1 = w0 + {heads}; float* w2 = w1 + {heads};",
            f"    for (int j = 0; j < W; j += {lanes}) {{",
            *_heads("s0", "w0", "t0", heads, v),
            *_heads("s1", "w1", "t1", heads, v),
            f"      {v} o = s0 + s1;",
            *[f"      o += w2[{h}] * *({v}*)(L + {h}*W + j);" for h in range(heads)],
            f"      *({v}*)(out + b*W + j) = o + *({v}*)(F + j);",
            "    }",
            "  }",
            "}",
            "",
        ]
        return "\n".join(lines)

    return cpu_kernels.vectors(body, w)


def head_rows_source(name: str, b: int, heads: int, w: int) -> str:
    """out (B, W) = fma_chain over h of Wt[b, h] * T[I[b], h]: T (V, H, W), Wt (B, H), I (B,)."""
    terms = [f"w[{h}] * *(VEC*)(t + {h}*W + j)" for h in range(heads)]
    chain = f"({terms[1]} + {terms[0]})" if heads > 1 else terms[0]
    for term in terms[2:]:
        chain = f"({chain} + {term})"

    def body(lanes: int) -> str:
        v = f"f{lanes}"
        lines = [
            f"void {name}(float* restrict out, float* restrict T, float* restrict Wt, int* restrict I) {{",
            f"  const int W = {w};",
            f"  for (int b = 0; b < {b}; b++) {{",
            f"    float* t = T + I[b]*{heads}*W; float* w = Wt + b*{heads};",
            f"    for (int j = 0; j < W; j += {lanes}) *({v}*)(out + b*W + j) = {chain.replace('VEC', v)};",
            "  }",
            "}",
            "",
        ]
        return "\n".join(lines)

    return cpu_kernels.vectors(body, w)


def run(name: str, source: str, shape: tuple[int, int], inputs: list[Tensor],
        expr: Callable[..., Tensor]) -> Tensor:  # fmt: skip
    """The C kernel `source` on `inputs` (made contiguous), its gradient that of expr(*inputs)."""

    def grad(g: UOp, call: UOp) -> tuple[UOp | None, ...]:
        ins = [Tensor(u) for u in call.src[2:]]
        wrt = [t for t in ins if dtypes.is_float(t.dtype)]
        grads = iter(expr(*ins).gradient(*wrt, gradient=Tensor(g)))
        return None, *(next(grads).uop if dtypes.is_float(t.dtype) else None for t in ins)

    rows, cols = shape
    work = Estimates(ops=2 * rows * cols * 8, mem=4 * 3 * rows * cols)
    return cpu_kernels.run(name, source, shape, inputs, work, grad)
