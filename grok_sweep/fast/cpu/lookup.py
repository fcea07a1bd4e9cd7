"""The grouped lookup's gradient (fast/lookups.py) as C kernels for tinygrad's CPU device.

For one position, with g the gradient of the mixed rows (B, W), w the attention weights (B, H), T the
table (V, H, W) and members (V, C) each token's examples (B in unused slots), the gradient needs

- table_grad: d_T[v, h, :] = sum over slots c of w[m, h] * g[m, :], m = members[v, c];
- slot_dots: dots[v, c, h] = sum over k of g[m, k] * T[v, h, k], each example's dot with its token's rows.

tinygrad computes both from a gathered copy of g's rows (V, C, W), the second with its lanes along k and
one accumulator per output: a quarter of a nanda2023 step (docs/performance/fold.md).
Here the rows are read in place through `members`, d_T with vectors along W, the dots with 8 examples'
values gathered into one vector per k. Each output is summed in order (k or c ascending, one FMA per
product, from 0), as tinygrad's kernels sum on nanda2023's shapes, so the bits are the same there
(tinygrad unrolls short sums, which clang contracts otherwise); unused slots are skipped (their
products are zeros: adding them changes no sum) and their dots written as 0. group_sum does the same
for the attention scores' lookup (lookups.pick_rows_grouped). Elsewhere (other devices, W not a
multiple of 8) these are the plain tinygrad expressions.
"""

from __future__ import annotations

from tinygrad import Tensor
from tinygrad.renderer import Estimates

from grok_sweep.fast.cpu import kernels as cpu_kernels

LANES = 8


def _count(c: int, b: int) -> str:
    """C: n = how many slots of token v hold an example (they come first)."""
    return f"    int n = 0; while (n < {c} && M[v*{c} + n] < {b}) n++;"


def table_grad_source(name: str, b: int, v: int, c: int, h: int, w: int) -> str:
    nv = 2 if w % 16 == 0 else 1
    acc = [f"a{i}_{j}" for i in range(h) for j in range(nv)]
    lines = [
        f"void {name}(float* restrict out, float* restrict G, float* restrict Wt, int* restrict M) {{",
        f"  for (int v = 0; v < {v}; v++) {{",
        _count(c, b),
        f"    for (int j = 0; j < {w}; j += {LANES * nv}) {{",
        f"      f8 {', '.join(f'{a} = 0' for a in acc)};",
        "      for (int s = 0; s < n; s++) {",
        f"        int m = M[v*{c} + s];",
        "        " + " ".join(f"f8 g{j} = *(f8*)(G + m*{w} + j + {LANES * j});" for j in range(nv)),
    ]
    for i in range(h):
        fmas = " ".join(f"a{i}_{j} += w{i} * g{j};" for j in range(nv))
        lines.append(f"        float w{i} = Wt[m*{h} + {i}]; {fmas}")
    lines.append("      }")
    lines += [f"      *(f8*)(out + (v*{h} + {i})*{w} + j + {LANES * j}) = {a};" for i in range(h) for j, a in
              enumerate(acc[i * nv : (i + 1) * nv])]  # fmt: skip
    return cpu_kernels.HEAD + "\n".join([*lines, "    }", "  }", "}", ""])


def slot_dots_source(name: str, b: int, v: int, c: int, h: int, w: int) -> str:
    gather = ", ".join(f"r{i}[k]" for i in range(LANES))
    lines = [
        f"void {name}(float* restrict out, float* restrict G, float* restrict T, int* restrict M) {{",
        f"  for (int v = 0; v < {v}; v++) {{",
        _count(c, b),
        f"    for (int s = 0; s < {c}; s += {LANES}) {{",
        # lanes past the token's examples read its first example's row; their dots are written as 0
        "      " + " ".join(f"float* r{i} = G + M[v*{c} + (s + {i} < n ? s + {i} : 0)]*{w};" for i in range(LANES)),
        f"      f8 {', '.join(f'a{i} = 0' for i in range(h))};",
        f"      if (s < n) for (int k = 0; k < {w}; k++) {{",
        f"        f8 g = (f8){{{gather}}};",
        "        " + " ".join(f"a{i} += g * T[(v*{h} + {i})*{w} + k];" for i in range(h)),
        "      }",
        f"      for (int l = 0; l < {LANES} && s + l < {c}; l++) {{",
        "        " + " ".join(f"out[(v*{c} + s + l)*{h} + {i}] = s + l < n ? a{i}[l] : 0.0f;" for i in range(h)),
        "      }",
        "    }",
        "  }",
        "}",
        "",
    ]
    return cpu_kernels.HEAD + "\n".join(lines)


def group_sum_source(name: str, b: int, v: int, c: int, h: int) -> str:
    lines = [
        f"void {name}(float* restrict out, float* restrict D, int* restrict M) {{",
        f"  for (int v = 0; v < {v}; v++) {{",
        _count(c, b),
        f"    float {', '.join(f'a{i} = 0' for i in range(h))};",
        "    for (int s = 0; s < n; s++) {",
        f"      int m = M[v*{c} + s];",
        "      " + " ".join(f"a{i} += D[m*{h} + {i}];" for i in range(h)),
        "    }",
        "    " + " ".join(f"out[v*{h} + {i}] = a{i};" for i in range(h)),
        "  }",
        "}",
        "",
    ]
    return "\n".join(lines)


def group_sum(d: Tensor, members: Tensor) -> Tensor | None:
    """(B, H), (V, C) -> (V, H): each token's examples' rows of d summed in order (onehot.T @ d, whose kernel
    adds them in order too, with exact zeros between), or None where no C kernel runs."""
    if not cpu_kernels.usable(d.device):
        return None
    (b, h), (v, c) = d.shape, members.shape
    name = f"lookup_sum_{b}_{v}_{c}_{h}"
    work = Estimates(ops=b * h, mem=4 * b * h)
    return cpu_kernels.run(name, group_sum_source(name, b, v, c, h), (v, h), [d, members], work)


def _usable(g: Tensor, w: int) -> bool:
    return cpu_kernels.usable(g.device) and w % LANES == 0


def _run(kind: str, shape: tuple[int, ...], g: Tensor, other: Tensor, members: Tensor, source) -> Tensor:
    (b, w), (v, c), h = g.shape, members.shape, other.shape[1]
    name = f"lookup_{kind}_{b}_{v}_{c}_{h}_{w}"
    work = Estimates(ops=2 * v * c * h * w, mem=4 * (v * c * w + 2 * v * h * w))
    return cpu_kernels.run(name, source(name, b, v, c, h, w), shape, [g, other, members], work)


def _gathered(g: Tensor, members: Tensor) -> Tensor:
    """g's rows of each token's examples (V, C, W); row B (unused slots) is zero. g is materialized with its
    zero row: tinygrad turns a gather from a buffer into loads, from an expression into a reduction."""
    return g.pad(((0, 1), (0, 0))).contiguous()[members]


def table_grad(g: Tensor, weights: Tensor, members: Tensor) -> Tensor:
    """(B, W), (B, H), (V, C) -> (V, H, W): sum over c of weights[members[v, c], h] * g[members[v, c]]."""
    w, v, h = g.shape[1], members.shape[0], weights.shape[1]
    if _usable(g, w):
        return _run("dtab", (v, h, w), g, weights, members, table_grad_source)
    w_pad = weights.pad(((0, 1), (0, 0))).contiguous()
    # materialized: summed into one gradient, unmaterialized matmuls fuse into one kernel that runs every
    # reduction for every output
    return (w_pad[members].transpose(1, 2) @ _gathered(g, members)).contiguous()


def slot_dots(g: Tensor, table: Tensor, members: Tensor) -> Tensor:
    """(B, W), (V, H, W), (V, C) -> (V, C, H): g[members[v, c]] . table[v, h] (0 in unused slots)."""
    (_, w), (v, c), h = g.shape, members.shape, table.shape[1]
    if _usable(g, w):
        return _run("dots", (v, c, h), g, table, members, slot_dots_source)
    # per token, the rows stay in cache, where table[idx] would write a (B, H, W) copy of them
    return (_gathered(g, members) @ table.transpose(1, 2)).contiguous()
