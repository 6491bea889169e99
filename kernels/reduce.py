"""Whole-tensor reductions (reductions over dimensions live in movement.py)."""
import numpy as np
from numba import prange

from .jit import CHUNK, PARALLEL_MIN_LIGHT, njit


@njit
def _sum(x, start, stop):
    total = 0.0  # float64 accumulator: float32 sums stay accurate
    for i in range(start, stop):
        total += x[i]
    return total


@njit(threads=True)
def sum_all_fwd(x, scale, out):
    """out = scale * sum(x) (sum: scale 1, mean: scale 1/n); a big x is summed in chunks on
    all threads, the chunks' sums added in order"""
    if x.size < PARALLEL_MIN_LIGHT:
        out[0] = _sum(x, 0, x.size) * scale
        return
    chunks = (x.size + CHUNK - 1) // CHUNK
    partial = np.empty(chunks)
    for c in prange(chunks):
        partial[c] = _sum(x, c * CHUNK, min(x.size, (c + 1) * CHUNK))
    out[0] = _sum(partial, 0, chunks) * scale


@njit
def sum_all_bwd(g, scale, gx):
    """gx += scale * g"""
    grad = g[0] * scale
    for i in range(gx.size):
        gx[i] += grad


@njit
def _select_line(x, indices, line, n, inner, largest, out):
    base = (line // inner) * n * inner + line % inner
    best = x[base]
    at = 0
    for k in range(1, n):
        if best != best:
            break
        v = x[base + k * inner]
        if v != v or (v > best if largest else v < best):
            best = v
            at = k
    out[line] = best
    indices[line] = at


@njit(threads=True)
def select_fwd(x, indices, outer, n, inner, largest, out):
    """out = max (``largest`` 1) or min (0) of x seen as (outer, n, inner) over n, ``indices``
    where it was found (the first one; a NaN wins, as PyTorch); lines in parallel for a big x"""
    if x.size < PARALLEL_MIN_LIGHT:
        for line in range(outer * inner):
            _select_line(x, indices, line, n, inner, largest, out)
        return
    for line in prange(outer * inner):
        _select_line(x, indices, line, n, inner, largest, out)


@njit
def select_bwd(g, indices, outer, n, inner, gx):
    """gx += g at the selected elements"""
    for o in range(outer):
        for j in range(inner):
            r = o * inner + j
            gx[(o * n + indices[r]) * inner + j] += g[r]
