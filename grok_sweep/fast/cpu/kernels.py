"""fast/matmuls.py's products as C kernels for tinygrad's CPU device, written with 8- or 16-float vectors.

tinygrad renders a CPU kernel as scalar C and leaves the vectors to clang's SLP vectorizer, which packed
matmuls.py's tiles into 4-float (128-bit) FMAs on an AVX2 CPU, where the same loop written with clang's
8-float vector type runs about twice as fast (docs/performance/kernels.md). So on the CPU each product is this
C source, handed to tinygrad as an uncompiled PROGRAM through Tensor.custom_kernel: tinygrad compiles it with
its own clang and flags (-O2 -march=native), caches it and replays it like its own kernels.

A kernel computes out[i, j] = sum over k, in order, of a(i, k) * B[k, j] (one FMA per product,
as clang contracts tinygrad's own kernels), for a tile of output rows by one or two vectors (16-float
vectors where clang targets AVX-512, which are faster there); a(i, k)
is A[i, k] or A[k, i], through a ReLU if asked (`a < 0 ? 0 : a`, as tinygrad renders it), and
out[i, j] is 0 where a mask M[i, j] is not > 0. Same operations in the same order as matmuls.py's
UOp kernels, so the same bits, which a test checks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from tinygrad import Device, Tensor, UOp, dtypes
from tinygrad.renderer import Estimates
from tinygrad.renderer.cstyle import ClangRenderer
from tinygrad.uop.ops import KernelInfo, Ops, ProgramInfo

ACCUMULATORS = 8  # 8-float vectors summed at once: enough independent FMAs in flight, few enough for 16 registers
# A read transposed gives each tile a few floats of each of its rows: the reduction runs in blocks of this many
# rows, so that they are still in cache for the next tiles (faster for nanda2023's weight gradient)
K_BLOCK = 256

HEAD = """typedef float f8 __attribute__((aligned(4), ext_vector_type(8)));
typedef int i8 __attribute__((aligned(4), ext_vector_type(8)));
typedef float f16 __attribute__((aligned(4), ext_vector_type(16)));
typedef int i16 __attribute__((aligned(4), ext_vector_type(16)));
"""


@functools.cache
def usable(device: str) -> bool:
    """Whether `device` compiles C source with clang (tinygrad's CPU device does; its LLVM and X86 backends don't)."""
    return device.split(":")[0] == "CPU" and type(Device[device].renderer) is ClangRenderer


def tile(rows: int, cols: int, lanes: int = 8) -> tuple[int, int] | None:
    """(output rows, vectors of `lanes` floats per row) of a kernel's tile for an output of rows x cols; None if no
    tile fits."""
    if cols % lanes:
        return None
    vectors = 2 if cols % (2 * lanes) == 0 else 1
    tile_rows = next(r for r in (ACCUMULATORS // vectors, 4, 2, 1) if rows % r == 0)
    return tile_rows, vectors


def source(name: str, shape: tuple[int, int], red: int, transposed: bool, relu: bool, masked: bool) -> str:
    """The kernel's C source (see the module's docstring); the shape must have a tile. Where clang targets AVX-512
    and the columns allow, its vectors are of 16 floats: the same sums, 20-30% faster on nanda2023's products."""
    return vectors(lambda lanes: _function(name, shape, red, transposed, relu, masked, lanes), shape[1])


def vectors(body: Callable[[int], str], width: int) -> str:
    """HEAD and body(lanes), a C function written with vectors of `lanes` floats: 16 where clang targets AVX-512
    and `width` (the floats a row holds) is a multiple of 16, else 8."""
    if width % 16:
        return HEAD + body(8)
    return HEAD + f"#ifdef __AVX512F__\n{body(16)}#else\n{body(8)}#endif\n"


def _function(name: str, shape: tuple[int, int], red: int, transposed: bool, relu: bool, masked: bool,
              lanes: int) -> str:  # fmt: skip
    (rows, cols), (tr, nv) = shape, tile(*shape, lanes=lanes)
    fv, iv = f"f{lanes}", f"i{lanes}"
    block = K_BLOCK if transposed and red > K_BLOCK else red
    acc = [[f"c{r}_{v}" for v in range(nv)] for r in range(tr)]
    a_at = "A[k*{R} + i + {r}]" if transposed else "A[(i + {r})*{K} + k]"
    params = "float* restrict out, float* restrict A, float* restrict B" + ", float* restrict M" * masked

    def at(r: int, v: int) -> str:
        return f"(i + {r})*{cols} + j + {lanes * v}"

    # a block after the first goes on from the sums the previous one stored: the same additions, in order
    start = {
        (r, v): "0" if block == red else f"kb ? *({fv}*)(out + {at(r, v)}) : 0" for r in range(tr) for v in range(nv)
    }
    lines = [
        f"void {name}({params}) {{",
        f"  for (int kb = 0; kb < {red}; kb += {block})",
        f"  for (int i = 0; i < {rows}; i += {tr}) for (int j = 0; j < {cols}; j += {lanes * nv}) {{",
        f"    {fv} {', '.join(f'{acc[r][v]} = {start[r, v]}' for r in range(tr) for v in range(nv))};",
        f"    for (int k = kb; k < (kb + {block} < {red} ? kb + {block} : {red}); k++) {{",
        f"      {fv} {', '.join(f'b{v} = *({fv}*)(B + k*{cols} + j + {lanes * v})' for v in range(nv))};",
    ]
    for r in range(tr):
        relu_r = f" a{r} = a{r} < 0.0f ? 0.0f : a{r};" if relu else ""
        lines.append(f"      float a{r} = {a_at.format(R=rows, K=red, r=r)};{relu_r}")
        lines.append("      " + " ".join(f"{acc[r][v]} += a{r} * b{v};" for v in range(nv)))
    lines.append("    }")
    for r, v in start:
        value = f"({fv})(({iv}){acc[r][v]} & (0.0f < *({fv}*)(M + {at(r, v)})))" if masked else acc[r][v]
        value = value if block == red or not masked else f"kb + {block} >= {red} ? {value} : {acc[r][v]}"
        lines.append(f"    *({fv}*)(out + {at(r, v)}) = {value};")
    return "\n".join([*lines, "  }", "}", ""])


def kernel(name: str, shape: tuple[int, int], red: int, transposed: bool, relu: bool,
           masked: bool) -> Callable[..., UOp] | None:  # fmt: skip
    """A Tensor.custom_kernel function for (out, A, B[, M]), or None where no tile fits the shape.

    Also None for a reduction of 8 or fewer: tinygrad unrolls it into one expression, which clang contracts
    into FMAs in another order than a loop's."""
    if tile(*shape) is None or red <= 8:
        return None
    src = source(name, shape, red, transposed, relu, masked)
    n = 4 if masked else 3
    rows, cols = shape
    work = Estimates(ops=2 * rows * cols * red, mem=4 * (rows * red + red * cols + (n - 2) * rows * cols))
    return program(name, src, n, work)


def program(name: str, src: str, n_params: int, work: Estimates) -> Callable[..., UOp]:
    """A Tensor.custom_kernel function running C source `src`, whose function `name` takes n_params buffers
    (the output first)."""

    def fxn(*params: UOp) -> UOp:
        sink = UOp.sink(*params, arg=KernelInfo(name=name, estimates=work))
        info = ProgramInfo(name=name, globals=tuple(range(n_params)), outs=(0,), ins=tuple(range(1, n_params)))
        return UOp(Ops.PROGRAM, src=(sink, UOp(Ops.LINEAR, src=(*sink.src, sink)), UOp(Ops.SOURCE, arg=src)), arg=info)

    return fxn


def run(name: str, src: str, shape: tuple[int, ...], inputs: list[Tensor], work: Estimates,
        grad_fxn: Callable | None = None) -> Tensor:  # fmt: skip
    """A new float tensor of `shape` written by C function `name` of `src` from `inputs` (made contiguous, as the
    kernel reads them), with `grad_fxn` as its gradient (Tensor.custom_kernel's)."""
    out = Tensor.empty(*shape, device=inputs[0].device, dtype=dtypes.float32)
    fxn = program(name, src, 1 + len(inputs), work)
    return out.custom_kernel(*(t.contiguous() for t in inputs), fxn=fxn, grad_fxn=grad_fxn)[0]
