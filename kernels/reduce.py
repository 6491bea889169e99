"""Whole-tensor reductions (reductions over dimensions live in movement.py)."""
from .jit import njit


@njit
def sum_all_fwd(x, scale, out):
    """out = scale * sum(x) (sum: scale 1, mean: scale 1/n)"""
    total = 0.0  # float64 accumulator: float32 sums stay accurate
    for i in range(x.size):
        total += x[i]
    out[0] = total * scale


@njit
def sum_all_bwd(g, scale, gx):
    """gx += scale * g"""
    grad = g[0] * scale
    for i in range(gx.size):
        gx[i] += grad
