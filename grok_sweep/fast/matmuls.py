"""x @ w and relu(x) @ w, with their two gradients, as hand-scheduled tinygrad kernels.

A step of the model is mostly (batch, k) @ (k, n) products and their gradients, with the batch as the
reduction for the weights' gradient. tinygrad's heuristics give them 3x4 register tiles whose products are
summed along the reduction, which clang cannot pack into wide vectors; each kernel here is written in UOps
with an explicit schedule (KernelInfo.opts_to_apply): a vector of 8 or 16 output columns by 4 or 8 output
rows, the reduction unrolled by 8, which clang turns into vector FMAs (figures: docs/performance/kernels.md).
Where a shape is not a multiple of the tile, the next smaller tile that divides it is used. The ReLU and its
gradient's mask are applied as the operands are read, so neither relu(x) nor a transposed copy of x is
written; x's gradient reads a transposed copy of w (small), whose rows give it the same vector loads as the
forward product.

On tinygrad's CPU device each kernel whose shape allows runs as C written with 8-float vectors
instead (cpu/kernels.py): the same sums in the same order, faster where clang packs tinygrad's
scalar C into 4-float vectors only. Shapes without a column vector of 4 or more (an odd number of
output columns) and single rows fall back to the plain tinygrad expression, which a test checks
these kernels against (values and both gradients).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from tinygrad import Tensor, UOp
from tinygrad.codegen.opt import Opt, OptOps
from tinygrad.uop.ops import AxisType, KernelInfo, Ops

from grok_sweep.fast.cpu import kernels as cpu_kernels

Read = Callable[[UOp, UOp, UOp], UOp]  # (operand, row range, column range) -> its value there

# (output columns in one vector, output rows, reduction unroll) per kernel, tuned on nanda2023's shapes;
# on the benchmark's default model none of four other sets (8x4x8, 16x4x8, 8x8x4, 16x8x8) was faster
TILES = {"mm": (8, 8, 8), "mm_dx": (8, 8, 8), "mm_dw": (16, 4, 8)}


def _at(t: UOp, r: UOp, c: UOp) -> UOp:
    return t[r, c]


def _at_t(t: UOp, r: UOp, c: UOp) -> UOp:  # the operand is stored transposed
    return t[c, r]


def _relu_at(t: UOp, r: UOp, c: UOp) -> UOp:
    return t[r, c].maximum(0.0)


def _relu_at_t(t: UOp, r: UOp, c: UOp) -> UOp:
    return t[c, r].maximum(0.0)


def _positive(t: UOp, r: UOp, c: UOp) -> UOp:
    return t[r, c] > 0.0


_C_READS = {
    _at: (False, False),
    _at_t: (True, False),
    _relu_at: (False, True),
    _relu_at_t: (True, True),
}  # transposed, relu


def _schedule(kind: str, rows: int, cols: int, red: int) -> tuple[Opt, ...] | None:
    """The kernel's register tile and reduction unroll for an output of rows x cols; None if no vector divides it.

    The tuned tile where it divides the shape, else the largest smaller one that does (small models)."""
    col, row, unroll = TILES[kind]
    col = next((c for c in (col, 8, 4) if c <= col and cols % c == 0), None)
    row = next(r for r in (row, 8, 4, 2, 1) if r <= row and rows % r == 0)
    unroll = next(u for u in (unroll, 4, 2, 1) if u <= unroll and red % u == 0)
    if col is None or rows == 1:  # a single row: tinygrad drops its axis, and the plain product is as fast
        return None
    opts = (Opt(OptOps.UPCAST, 1, col), Opt(OptOps.UPCAST, 0, row), Opt(OptOps.UNROLL, 0, unroll))
    return tuple(o for o in opts if o.arg > 1)


def _body(kind: str, name: str, shape: tuple[int, int], red: int, a: Read,
          mask: Read | None = None) -> Callable[..., UOp]:  # fmt: skip
    """out[i, j] = sum over k in order of a(A, i, k) * B[k, j], 0 where mask(M, i, j) is False."""
    opts = _schedule(kind, *shape, red)

    def body(out: UOp, A: UOp, B: UOp, *rest: UOp) -> UOp:
        i, j, k = UOp.range(shape[0], 0), UOp.range(shape[1], 1), UOp.range(red, 2, AxisType.REDUCE)
        acc = (a(A, i, k) * B[k, j]).reduce(k, arg=Ops.ADD)
        value = acc if mask is None else mask(rest[0], i, j).where(acc, 0.0)
        info = KernelInfo(name=name, opts_to_apply=opts)
        return out[i, j].store(value).end(i, j).sink(arg=info)

    return body


def _matmul(kind: str, name: str, shape: tuple[int, int], red: int, a: Read, *srcs: Tensor,
            mask: Read | None = None, grad: Callable | None = None) -> Tensor:  # fmt: skip
    """The kernel of _body on srcs = A, B[, M], with `grad` as its gradient (none without)."""
    out = Tensor.empty(*shape, device=srcs[0].device, dtype=srcs[0].dtype)
    name, fxn = f"{name}_{shape[0]}_{shape[1]}_{red}", None
    if cpu_kernels.usable(out.device) and a in _C_READS:  # the same sums in vector C (cpu/kernels.py)
        fxn = cpu_kernels.kernel(name, shape, red, *_C_READS[a], mask is not None)
    fxn = fxn or _body(kind, name, shape, red, a, mask)
    return out.custom_kernel(*srcs, fxn=fxn, grad_fxn=grad)[0]


def _plan(x: Tensor, w: Tensor) -> dict[str, tuple[tuple[int, int], int]]:
    """Each kernel's output shape and reduction length, for x (b, k) and w (k, n)."""
    (b, k), n = x.shape, w.shape[1]
    return {"mm": ((b, n), k), "mm_dx": ((b, k), n), "mm_dw": ((k, n), b)}


def fits(x: Tensor, w: Tensor) -> bool:
    """Whether matmul(x, w) runs the hand-scheduled kernels (else the plain expression)."""
    plan = _plan(x, w).items()
    return x.device == w.device and all(_schedule(kind, *shape, red) is not None for kind, (shape, red) in plan)


def matmul(x: Tensor, w: Tensor, relu: bool = False) -> Tensor:
    """x @ w (relu(x) @ w with `relu`) for x (batch, k), w (k, n), with gradients for both.

    As with any custom kernel, take gradients before the result is realized (a training step does)."""
    if not fits(x, w):
        return (x.relu() if relu else x) @ w
    x, w = x.contiguous(), w.contiguous()
    name, a = ("relu_mm", _relu_at) if relu else ("mm", _at)
    return _matmul("mm", name, *_plan(x, w)["mm"], a, x, w, grad=partial(_grads, relu=relu))


def relu_matmul(x: Tensor, w: Tensor) -> Tensor:
    """relu(x) @ w, as matmul."""
    return matmul(x, w, relu=True)


def _grads(grad: UOp, call: UOp, relu: bool) -> tuple[UOp | None, ...]:
    _, x, w = (Tensor(u) for u in call.src[1:])
    g, plan = Tensor(grad).contiguous(), _plan(x, w)
    # dx = g @ w.T (where x > 0 with relu), through a transposed copy of w: read in place, w.T's column vectors
    # are strided loads, an order of magnitude slower on an AVX2 CPU than reading the copy (w is small)
    wt = w.T.contiguous()
    if relu:
        dx = _matmul("mm_dx", "relu_mm_dx", *plan["mm_dx"], _at, g, wt, x, mask=_positive)
    else:
        dx = _matmul("mm_dx", "mm_dx", *plan["mm_dx"], _at, g, wt)
    # dw = relu(x).T @ g, x read down its columns
    dw = _matmul("mm_dw", "relu_mm_dw" if relu else "mm_dw", *plan["mm_dw"], _relu_at_t if relu else _at_t, x, g)
    return None, dx.uop, dw.uop
