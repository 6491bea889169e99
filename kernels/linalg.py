"""Matrix products over flat buffers holding ``batch`` row-major matrices.

``a`` holds (m, k) matrices and ``b`` (k, n) ones; ``a_layout`` is twice the
number of matrices a holds (1: shared, or the output's batch count), plus 1
when they are stored transposed (a transposed view, handed to BLAS as is);
``b_layout`` likewise. ``gemm`` is the address of the BLAS table for the dtype
(see blas.py). A backward kernel's ``fresh`` says its output holds no gradient
yet: the product overwrites it (``beta = 0``) instead of adding.
"""

from numba import prange

from . import blas
from .blas import NO_TRANS, TRANS
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
    blas.gemm(gemm, out.dtype, trans_a, trans_b, rows, cols, inner, x_address, lda, y_address, ldb, beta,
              out_address, cols)


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
def matmul_fwd(a, b, a_layout, b_layout, m, k, n, gemm, out):
    """out[i] = a[i] @ b[i] for each matrix i of the batch"""
    batch_a, batch_b = a_layout >> 1, b_layout >> 1
    trans_a, trans_b = TRANS if a_layout & 1 else NO_TRANS, TRANS if b_layout & 1 else NO_TRANS
    for i in range(_batches(batch_a, batch_b)):
        _product(gemm, trans_a, trans_b, m, n, k, a, (i if batch_a > 1 else 0) * m * k,
                 b, (i if batch_b > 1 else 0) * k * n, 0.0, out, i * m * n)


@njit
def matmul_bwd_a(g, b, a_layout, b_layout, m, k, n, gemm, fresh, ga):
    """ga += g @ b^T (summed over the batch where a is shared; ga in a's logical layout)"""
    batch_a, batch_b = a_layout >> 1, b_layout >> 1
    batches = _batches(batch_a, batch_b)
    _zero_if_fresh_and_empty(fresh, batches, ga)
    for i in range(batches):
        beta = 0.0 if fresh and (batch_a > 1 or i == 0) else 1.0
        _product(gemm, NO_TRANS, NO_TRANS if b_layout & 1 else TRANS, m, k, n, g, i * m * n,
                 b, (i if batch_b > 1 else 0) * k * n, beta, ga, (i if batch_a > 1 else 0) * m * k)


@njit
def matmul_bwd_b(g, a, a_layout, b_layout, m, k, n, gemm, fresh, gb):
    """gb += a^T @ g (summed over the batch where b is shared; gb in b's logical layout)"""
    batch_a, batch_b = a_layout >> 1, b_layout >> 1
    batches = _batches(batch_a, batch_b)
    _zero_if_fresh_and_empty(fresh, batches, gb)
    for i in range(batches):
        beta = 0.0 if fresh and (batch_b > 1 or i == 0) else 1.0
        _product(gemm, NO_TRANS if a_layout & 1 else TRANS, NO_TRANS, k, n, m, a, (i if batch_a > 1 else 0) * m * k,
                 g, i * m * n, beta, gb, (i if batch_b > 1 else 0) * k * n)


# linear: out = x @ w^T + b for x holding m rows of k, w (n, k) and b (n,) or empty (no bias).
# The bias passes touch the whole output, bound by memory: from ``threads_from`` elements they run
# on Numba's threads, in blocks of rows.
# Below it they run serially, outside any parallel loop: entering one wakes the sleeping threads,
# which cost a 32x32 MLP step 300 us.

BLOCKS = 16  # blocks of a pass run on threads: a few per thread, whatever the count (a fixed number: cacheable)


@njit
def _bias_rows(xs, b, add, start, stop, rows):
    """rows[r] = xs[r] + b (b alone unless ``add``) for the rows r in [start, stop)"""
    for r in range(start, stop):  # [r, j]: no wraparound checks, a vectorized loop (see movement._lines)
        if add:
            for j in range(b.size):
                rows[r, j] = xs[r, j] + b[j]
        else:
            for j in range(b.size):
                rows[r, j] = b[j]


@njit(threads=True)
def _bias_pass(xs, b, add, m, n, threads_from, rows):
    if m * n < threads_from:
        _bias_rows(xs, b, add, 0, m, rows)
    else:
        for block in prange(BLOCKS):
            _bias_rows(xs, b, add, block * m // BLOCKS, (block + 1) * m // BLOCKS, rows)


@njit(threads=True)
def linear_fwd(x, w, b, m, k, n, gemm, threads_from, out):
    """out = x @ w^T + b: the bias is copied into each row, then one gemm accumulates onto it"""
    beta = 0.0
    if b.size:
        rows = out.reshape(m, n)
        _bias_pass(rows, b, False, m, n, threads_from, rows)
        beta = 1.0
    _product(gemm, NO_TRANS, TRANS, m, n, k, x, 0, w, 0, beta, out, 0)


@njit(threads=True)
def bias_add_fwd(x, b, m, n, threads_from, out):
    """out = x + b for x holding m rows of n and b of n (a bias added to each row): one pass,
    where a broadcast add would first copy b m times"""
    _bias_pass(x.reshape(m, n), b, True, m, n, threads_from, out.reshape(m, n))


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
    """gb += g summed over the rows, serially: a pass over rows vectorizes across the columns
    (512x512 float32: 20 us; in blocks of columns on two threads, 75 us)"""
    rows = g.reshape(m, n)
    for r in range(m):
        for j in range(n):
            gb[j] += rows[r, j]
