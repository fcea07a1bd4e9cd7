import numpy as np
import pytest
from tinygrad import Tensor

from grok_sweep.fast import matmuls as matmul
from grok_sweep.fast.cpu import kernels as cpu_kernels

M = matmul


@pytest.mark.parametrize(
    ("kind", "shape", "red", "read", "masked"),
    [
        ("mm", (24, 16), 56, M._at, False),  # 4 rows x 2 vectors
        ("mm", (40, 24), 12, M._relu_at, False),  # 8 rows x 1 vector; a loop of 3 x 4 in tinygrad's kernel
        ("mm_dx", (56, 32), 24, M._at, True),  # the ReLU's gradient mask
        ("mm_dw", (24, 8), 56, M._relu_at_t, True),  # x read down its columns, through the ReLU
        ("mm_dw", (32, 16), 40, M._at_t, False),
        ("mm_dw", (16, 24), 88, M._relu_at_t, False),  # in blocks of 16 rows of x (see below), the last of 8
        ("mm_dw", (8, 16), 48, M._at_t, True),  # the mask after the last block only
    ],
)
def test_c_kernels_compute_the_uop_kernels_bits(monkeypatch, kind, shape, red, read, masked):
    monkeypatch.setattr(cpu_kernels, "K_BLOCK", 16)  # 256 in use: blocks are only made for longer reductions
    rng = np.random.default_rng(1)
    a = rng.standard_normal((red, shape[0]) if read in (M._at_t, M._relu_at_t) else (shape[0], red), dtype=np.float32)
    a[a < -1.5] = -0.0  # the ReLU's kink, signed zeros included
    srcs = [Tensor(a), Tensor(rng.standard_normal((red, shape[1]), dtype=np.float32))]
    srcs += [Tensor(rng.standard_normal(shape, dtype=np.float32))] if masked else []
    assert cpu_kernels.kernel("probe", shape, red, read in (M._at_t, M._relu_at_t), False, masked) is not None
    outs = []
    for c in (True, False):
        monkeypatch.setattr(cpu_kernels, "usable", lambda device, c=c: c)
        mask = M._positive if masked else None
        outs.append(M._matmul(kind, f"t{int(c)}_{kind}", shape, red, read, *srcs, mask=mask).numpy())
    np.testing.assert_array_equal(outs[0].view(np.uint32), outs[1].view(np.uint32))
    np.testing.assert_allclose(outs[0], _plain(a, srcs, read, masked), rtol=1e-5, atol=1e-5)


def _plain(a: np.ndarray, srcs: list[Tensor], read, masked: bool) -> np.ndarray:
    a = a.T if read in (M._at_t, M._relu_at_t) else a
    a = np.maximum(a, 0) if read in (M._relu_at, M._relu_at_t) else a
    out = a.astype(np.float64) @ srcs[1].numpy()
    return np.where(srcs[2].numpy() > 0, out, 0) if masked else out


def test_shapes_without_a_c_tile_go_to_the_uop_kernels():
    assert cpu_kernels.kernel("k", (16, 12), 32, False, False, False) is None  # no 8-column vector
    assert cpu_kernels.kernel("k", (16, 16), 8, False, False, False) is None  # unrolled whole by tinygrad
    assert cpu_kernels.tile(24, 16) == (4, 2) and cpu_kernels.tile(40, 8) == (8, 1)
    assert cpu_kernels.tile(6, 16) == (2, 2)
    assert cpu_kernels.tile(24, 32, lanes=16) == (4, 2) and cpu_kernels.tile(24, 24, lanes=16) is None
    # 16-float vectors where clang targets AVX-512 and the columns allow (the cases above run them on such a CPU)
    assert "__AVX512F__" in cpu_kernels.source("k", (24, 16), 32, False, False, False)
    assert "__AVX512F__" not in cpu_kernels.source("k", (24, 24), 32, False, False, False)
    assert cpu_kernels.usable("CPU")
