"""Matrix products over flat buffers holding ``batch`` row-major matrices.

``a`` holds ``batch_a`` (m, k) matrices and ``b`` holds ``batch_b`` (k, n)
ones, where each batch count is 1 (shared) or the output's batch count.
``gemm`` is the address of a CBLAS ``?gemm`` for the dtype (see blas.py), or 0
for Numba's ``np.dot``.
"""
import numpy as np

from .blas import NO_TRANS, TRANS, call_gemm
from .jit import njit


@njit
def _product(gemm_address, trans_a, trans_b, rows, cols, inner, x, x_offset, y, y_offset, beta, out, out_offset):
    """out[rows, cols] = op(x) @ op(y) + beta out, each a row-major block of a flat buffer."""
    lda = rows if trans_a == TRANS else inner
    ldb = inner if trans_b == TRANS else cols
    if gemm_address != 0 and rows > 0 and cols > 0 and inner > 0:
        size = x.itemsize
        call_gemm(out.dtype, gemm_address, trans_a, trans_b, rows, cols, inner, 1.0,
             x.ctypes.data + x_offset * size, lda, y.ctypes.data + y_offset * size, ldb, beta,
             out.ctypes.data + out_offset * size, cols)
        return
    # The fallback copies op(x) and op(y) into C order: np.dot's fast path, and one array type.
    xm = x[x_offset:x_offset + rows * inner]
    ym = y[y_offset:y_offset + inner * cols]
    if trans_a == TRANS:
        left = np.ascontiguousarray(xm.reshape(inner, rows).T)
    else:
        left = np.ascontiguousarray(xm).reshape(rows, inner)
    if trans_b == TRANS:
        right = np.ascontiguousarray(ym.reshape(cols, inner).T)
    else:
        right = np.ascontiguousarray(ym).reshape(inner, cols)
    block = out[out_offset:out_offset + rows * cols].reshape(rows, cols)
    if beta == 0:
        block[:] = np.dot(left, right)
    else:
        block += np.dot(left, right)


@njit
def matmul_fwd(a, b, batch_a, batch_b, m, k, n, gemm, out):
    """out[i] = a[i] @ b[i] for each matrix i of the batch"""
    for i in range(max(batch_a, batch_b)):
        _product(gemm, NO_TRANS, NO_TRANS, m, n, k, a, (i if batch_a > 1 else 0) * m * k,
                 b, (i if batch_b > 1 else 0) * k * n, 0.0, out, i * m * n)


@njit
def matmul_bwd_a(g, b, batch_a, batch_b, m, k, n, gemm, ga):
    """ga += g @ b^T (summed over the batch where a is shared)"""
    for i in range(max(batch_a, batch_b)):
        _product(gemm, NO_TRANS, TRANS, m, k, n, g, i * m * n,
                 b, (i if batch_b > 1 else 0) * k * n, 1.0, ga, (i if batch_a > 1 else 0) * m * k)


@njit
def matmul_bwd_b(g, a, batch_a, batch_b, m, k, n, gemm, gb):
    """gb += a^T @ g (summed over the batch where b is shared)"""
    for i in range(max(batch_a, batch_b)):
        _product(gemm, TRANS, NO_TRANS, k, n, m, a, (i if batch_a > 1 else 0) * m * k,
                 g, i * m * n, 1.0, gb, (i if batch_b > 1 else 0) * k * n)
