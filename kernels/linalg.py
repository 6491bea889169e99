"""Matrix products over flat buffers holding ``batch`` row-major matrices.

``a`` holds ``batch_a`` (m, k) matrices and ``b`` holds ``batch_b`` (k, n)
ones, where each batch count is 1 (shared) or the output's batch count.
"""
import numpy as np

from .jit import njit


@njit
def matmul_fwd(a, b, batch_a, batch_b, m, k, n, out):
    """out[i] = a[i] @ b[i] for each matrix i of the batch"""
    batch = max(batch_a, batch_b)
    a3 = a.reshape(batch_a, m, k)
    b3 = b.reshape(batch_b, k, n)
    out3 = out.reshape(batch, m, n)
    for i in range(batch):
        out3[i] = np.dot(a3[i if batch_a > 1 else 0], b3[i if batch_b > 1 else 0])


@njit
def matmul_bwd_a(g, a, b, batch_a, batch_b, m, k, n, ga):
    """ga += g @ b^T (summed over the batch where a is shared)"""
    batch = max(batch_a, batch_b)
    g3 = g.reshape(batch, m, n)
    b3 = b.reshape(batch_b, k, n)
    ga3 = ga.reshape(batch_a, m, k)
    for i in range(batch):
        ga3[i if batch_a > 1 else 0] += np.dot(g3[i], b3[i if batch_b > 1 else 0].T)


@njit
def matmul_bwd_b(g, a, b, batch_a, batch_b, m, k, n, gb):
    """gb += a^T @ g (summed over the batch where b is shared)"""
    batch = max(batch_a, batch_b)
    g3 = g.reshape(batch, m, n)
    a3 = a.reshape(batch_a, m, k)
    gb3 = gb.reshape(batch_b, k, n)
    for i in range(batch):
        gb3[i if batch_b > 1 else 0] += np.dot(a3[i if batch_a > 1 else 0].T, g3[i])
