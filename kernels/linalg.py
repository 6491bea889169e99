"""Matrix products over flat buffers holding ``batch`` row-major matrices.

``a`` holds ``batch_a`` (m, k) matrices and ``b`` holds ``batch_b`` (k, n)
ones, where each batch count is 1 (shared) or the output's batch count.
``gemm`` is the address of a ``?gemm`` for the dtype, positive for CBLAS and
negative for Fortran (see blas.py). A backward kernel's ``fresh`` says its output
holds no gradient yet: the product overwrites it (``beta = 0``) instead of adding.
"""

from .blas import NO_TRANS, TRANS, call_gemm, call_gemm_fortran
from .jit import njit


@njit
def _product(gemm, trans_a, trans_b, rows, cols, inner, x, x_offset, y, y_offset, beta, out, out_offset):
    """out[rows, cols] = op(x) @ op(y) + beta out, each a row-major block of a flat buffer."""
    if rows == 0 or cols == 0:
        return
    if inner == 0:  # an empty sum; BLAS would refuse the zero leading dimensions
        if beta == 0:
            out[out_offset:out_offset + rows * cols] = 0
        return
    lda = rows if trans_a == TRANS else inner
    ldb = inner if trans_b == TRANS else cols
    size = x.itemsize
    x_address = x.ctypes.data + x_offset * size
    y_address = y.ctypes.data + y_offset * size
    out_address = out.ctypes.data + out_offset * size
    if gemm > 0:
        call_gemm(out.dtype, gemm, trans_a, trans_b, rows, cols, inner, 1.0, x_address, lda, y_address, ldb,
                  beta, out_address, cols)
    else:
        call_gemm_fortran(out.dtype, -gemm, trans_a, trans_b, rows, cols, inner, 1.0, x_address, lda,
                          y_address, ldb, beta, out_address, cols)


@njit
def _batches(batch_a, batch_b):
    """The output's batch count: a shared operand (1) takes the other's, which may be 0."""
    return 0 if batch_a == 0 or batch_b == 0 else max(batch_a, batch_b)


@njit
def _zero_if_fresh_and_empty(fresh, batches, grad):
    """A shared operand's gradient when the batch is empty: nothing adds to it, so a fresh one is 0."""
    if fresh and batches == 0:
        for i in range(grad.size):
            grad[i] = 0


@njit
def matmul_fwd(a, b, batch_a, batch_b, m, k, n, gemm, out):
    """out[i] = a[i] @ b[i] for each matrix i of the batch"""
    for i in range(_batches(batch_a, batch_b)):
        _product(gemm, NO_TRANS, NO_TRANS, m, n, k, a, (i if batch_a > 1 else 0) * m * k,
                 b, (i if batch_b > 1 else 0) * k * n, 0.0, out, i * m * n)


@njit
def matmul_bwd_a(g, b, batch_a, batch_b, m, k, n, gemm, fresh, ga):
    """ga += g @ b^T (summed over the batch where a is shared)"""
    batches = _batches(batch_a, batch_b)
    _zero_if_fresh_and_empty(fresh, batches, ga)
    for i in range(batches):
        beta = 0.0 if fresh and (batch_a > 1 or i == 0) else 1.0
        _product(gemm, NO_TRANS, TRANS, m, k, n, g, i * m * n,
                 b, (i if batch_b > 1 else 0) * k * n, beta, ga, (i if batch_a > 1 else 0) * m * k)


@njit
def matmul_bwd_b(g, a, batch_a, batch_b, m, k, n, gemm, fresh, gb):
    """gb += a^T @ g (summed over the batch where b is shared)"""
    batches = _batches(batch_a, batch_b)
    _zero_if_fresh_and_empty(fresh, batches, gb)
    for i in range(batches):
        beta = 0.0 if fresh and (batch_b > 1 or i == 0) else 1.0
        _product(gemm, TRANS, NO_TRANS, k, n, m, a, (i if batch_a > 1 else 0) * m * k,
                 g, i * m * n, beta, gb, (i if batch_b > 1 else 0) * k * n)


# linear: out = x @ w^T + b for x holding m rows of k, w (n, k) and b (n,) or empty (no bias).

@njit
def linear_fwd(x, w, b, m, k, n, gemm, out):
    """out = x @ w^T + b: the bias is copied into each row, then one gemm accumulates onto it"""
    beta = 0.0
    if b.size:
        rows = out.reshape(m, n)  # [r, j]: no wraparound checks, a vectorized copy (see movement._lines)
        for r in range(m):
            for j in range(n):
                rows[r, j] = b[j]
        beta = 1.0
    _product(gemm, NO_TRANS, TRANS, m, n, k, x, 0, w, 0, beta, out, 0)


@njit
def bias_add_fwd(x, b, m, n, out):
    """out = x + b for x holding m rows of n and b of n (a bias added to each row): one pass,
    where a broadcast add would first copy b m times"""
    rows, xs = out.reshape(m, n), x.reshape(m, n)
    for r in range(m):
        for j in range(n):
            rows[r, j] = xs[r, j] + b[j]


@njit
def linear_bwd_x(g, w, m, k, n, gemm, fresh, gx):
    """gx += g @ w"""
    _product(gemm, NO_TRANS, NO_TRANS, m, k, n, g, 0, w, 0, 0.0 if fresh else 1.0, gx, 0)


@njit
def linear_bwd_w(g, x, m, k, n, gemm, fresh, gw):
    """gw += g^T @ x"""
    _product(gemm, TRANS, NO_TRANS, n, k, m, g, 0, x, 0, 0.0 if fresh else 1.0, gw, 0)


@njit
def linear_bwd_b(g, m, n, gb):
    """gb += g summed over the rows"""
    rows = g.reshape(m, n)
    for r in range(m):
        for j in range(n):
            gb[j] += rows[r, j]
