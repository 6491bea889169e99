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


@njit
def select_fwd(x, indices, outer, n, inner, largest, out):
    """out = max (``largest`` 1) or min (0) of x seen as (outer, n, inner) over n, ``indices``
    where it was found (the first one; a NaN wins, as PyTorch)"""
    for o in range(outer):
        for j in range(inner):
            base = o * n * inner + j
            best = x[base]
            at = 0
            for k in range(1, n):
                if best != best:
                    break
                v = x[base + k * inner]
                if v != v or (v > best if largest else v < best):
                    best = v
                    at = k
            out[o * inner + j] = best
            indices[o * inner + j] = at


@njit
def select_bwd(g, indices, outer, n, inner, gx):
    """gx += g at the selected elements"""
    for o in range(outer):
        for j in range(inner):
            r = o * inner + j
            gx[(o * n + indices[r]) * inner + j] += g[r]
