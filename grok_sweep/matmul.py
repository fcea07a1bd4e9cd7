"""relu(x) @ w and its two gradients as hand-scheduled tinygrad kernels.

nanda2023's folded model spends most of a step in three matmuls through the MLP's ReLU:
(batch x 512) @ (512 x 128) forward, and for the backward the same shapes with the 128 columns or
the batch as the reduction. tinygrad's heuristics give them 3x4 register tiles whose products
are summed along the reduction (18-24 GFLOP/s on one core here); each kernel here is written in
UOps with an explicit schedule (KernelInfo.opts_to_apply): a vector of 8 or 16 output columns by
4 or 8 output rows, the reduction unrolled by 8, which clang turns into vector FMAs (45-59 GFLOP/s).
The ReLU and its gradient's mask are applied as the operands are read, so neither relu(x) nor a
transposed copy of it is written.

Shapes the tiles do not divide fall back to the plain tinygrad expression, which a test checks
these kernels against (values and both gradients).
"""

from __future__ import annotations

from collections.abc import Callable

from tinygrad import Tensor, UOp
from tinygrad.codegen.opt import Opt, OptOps
from tinygrad.uop.ops import AxisType, KernelInfo, Ops

Read = Callable[[UOp, UOp, UOp], UOp]  # (operand, row range, column range) -> its value there

# (output columns in one vector, output rows, reduction unroll) per kernel, tuned on nanda2023's shapes
TILES = {"relu_mm": (8, 8, 8), "relu_mm_dx": (8, 8, 8), "relu_mm_dw": (16, 4, 8)}


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


def _schedule(kind: str, rows: int, cols: int, red: int) -> tuple[Opt, ...] | None:
    """The kernel's register tile and reduction unroll for an output of rows x cols; None if they do not divide it."""
    col, row, unroll = TILES[kind]
    if cols % col or rows % row or red % unroll:
        return None
    return (Opt(OptOps.UPCAST, 1, col), Opt(OptOps.UPCAST, 0, row), Opt(OptOps.UNROLL, 0, unroll))


def _matmul(kind: str, shape: tuple[int, int], red: int, a: Read, b: Read, *srcs: Tensor, mask: Read | None = None):
    """out[i, j] = sum over k in order of a(A, i, k) * b(B, k, j), 0 where mask(M, i, j) is False; srcs = A, B[, M]."""
    opts = _schedule(kind, *shape, red)

    def body(out: UOp, A: UOp, B: UOp, *rest: UOp) -> UOp:
        i, j, k = UOp.range(shape[0], 0), UOp.range(shape[1], 1), UOp.range(red, 2, AxisType.REDUCE)
        acc = (a(A, i, k) * b(B, k, j)).reduce(k, arg=Ops.ADD)
        value = acc if mask is None else mask(rest[0], i, j).where(acc, 0.0)
        info = KernelInfo(name=f"{kind}_{shape[0]}_{shape[1]}_{red}", opts_to_apply=opts)
        return out[i, j].store(value).end(i, j).sink(arg=info)

    out = Tensor.empty(*shape, device=srcs[0].device, dtype=srcs[0].dtype)
    return out, body


def _plan(x: Tensor, w: Tensor) -> dict[str, tuple[tuple[int, int], int]]:
    """Each kernel's output shape and reduction length, for x (b, k) and w (k, n)."""
    (b, k), n = x.shape, w.shape[1]
    return {"relu_mm": ((b, n), k), "relu_mm_dx": ((b, k), n), "relu_mm_dw": ((k, n), b)}


def fits(x: Tensor, w: Tensor) -> bool:
    """Whether relu_matmul(x, w) runs the hand-scheduled kernels (else the plain expression)."""
    plan = _plan(x, w).items()
    return x.device == w.device and all(_schedule(kind, *shape, red) is not None for kind, (shape, red) in plan)


def relu_matmul(x: Tensor, w: Tensor) -> Tensor:
    """relu(x) @ w for x (batch, k), w (k, n), with gradients for both.

    As with any custom kernel, take gradients before the result is realized (a training step does)."""
    if not fits(x, w):
        return x.relu() @ w
    x, w = x.contiguous(), w.contiguous()
    out, body = _matmul("relu_mm", *_plan(x, w)["relu_mm"], _relu_at, _at, x, w)
    return out.custom_kernel(x, w, fxn=body, grad_fxn=_relu_matmul_grad)[0]


def _relu_matmul_grad(grad: UOp, call: UOp) -> tuple[UOp | None, ...]:
    _, x, w = (Tensor(u) for u in call.src[1:])
    g, plan = Tensor(grad).contiguous(), _plan(x, w)
    # dx = (g @ w.T) where x > 0, w read along its rows
    out, body = _matmul("relu_mm_dx", *plan["relu_mm_dx"], _at, _at_t, g, w, x, mask=_positive)
    dx = out.custom_kernel(g, w, x, fxn=body)[0]
    # dw = relu(x).T @ g, x read down its columns
    out, body = _matmul("relu_mm_dw", *plan["relu_mm_dw"], _relu_at_t, _at, x, g)
    dw = out.custom_kernel(x, g, fxn=body)[0]
    return None, dx.uop, dw.uop
