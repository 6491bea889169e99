"""Optimizer steps: every parameter updated in one compiled call.

The optimizer hands a table with one int64 row per parameter: its leaf's tape
row (where the gradient buffer, its size, dtype and whether a backward wrote it
are), the address of its values and of up to two state buffers, and its step
count; and one float64 row of hyper-parameters per parameter (from its group).
Parameters without a gradient are skipped, as in PyTorch.
"""
import math

import numpy as np

from .jit import njit
from .tape import FLAGS, GRAD_BUF, GRAD_DEFINED, ITEMSIZE, NUMEL, row_at, view

# Columns of the parameter table (UPDATED: written by the step, 1 where it updated the parameter).
ROW, DATA, STATE0, STATE1, STEP, UPDATED = range(6)
COLUMNS = 6
# Columns of the hyper-parameter table: SGD reads LR..NESTEROV, Adam LR, WEIGHT_DECAY and BETA1..EPS.
LR, WEIGHT_DECAY, MOMENTUM, DAMPENING, NESTEROV, BETA1, BETA2, EPS, DECOUPLED = range(9)
SGD, ADAM = 0, 1


@njit
def _sgd(p, g, buf, first, h):
    """PyTorch's SGD: d = g + wd p; buf = d (first step) or momentum buf + (1 - dampening) d;
    p -= lr (d + momentum buf if nesterov else buf)"""
    lr, wd, momentum, dampening, nesterov = h[LR], h[WEIGHT_DECAY], h[MOMENTUM], h[DAMPENING], h[NESTEROV]
    for i in range(p.size):
        d = g[i] + wd * p[i]
        if momentum != 0.0:
            b = d if first else momentum * buf[i] + (1.0 - dampening) * d
            buf[i] = b
            d = d + momentum * b if nesterov else b
        p[i] -= lr * d


@njit
def _adam(p, g, m, v, step, h):
    """PyTorch's Adam (AdamW when DECOUPLED: the decay scales p instead of adding to g)."""
    lr, wd, beta1, beta2, eps = h[LR], h[WEIGHT_DECAY], h[BETA1], h[BETA2], h[EPS]
    step_size = lr / (1.0 - beta1 ** step)
    root_correction = math.sqrt(1.0 - beta2 ** step)
    decoupled = h[DECOUPLED] != 0.0
    for i in range(p.size):
        d = g[i]
        if decoupled:
            p[i] *= 1.0 - lr * wd
        else:
            d += wd * p[i]
        m[i] += (d - m[i]) * (1.0 - beta1)
        v[i] = beta2 * v[i] + (1.0 - beta2) * d * d
        p[i] -= step_size * m[i] / (math.sqrt(v[i]) / root_correction + eps)


@njit
def _update(kind, row, entry, h, dtype):
    n = row[NUMEL]
    p = view(entry[DATA], n, dtype)
    g = view(row[GRAD_BUF], n, dtype)
    s0 = view(entry[STATE0], n if entry[STATE0] else 0, dtype)
    s1 = view(entry[STATE1], n if entry[STATE1] else 0, dtype)
    entry[STEP] += 1
    if kind == SGD:
        _sgd(p, g, s0, entry[STEP] == 1, h)
    else:
        _adam(p, g, s0, s1, entry[STEP], h)


@njit
def step(chunks, kind, table, hyper):
    """One update of every parameter in ``table`` that has a gradient; returns how many."""
    updated = 0
    for k in range(table.shape[0]):
        table[k, UPDATED] = 0
        if table[k, ROW] < 0:  # a parameter that has never had a .grad
            continue
        row = row_at(chunks, table[k, ROW])
        if not row[FLAGS] & GRAD_DEFINED:
            continue
        table[k, UPDATED] = 1
        if row[ITEMSIZE] == 4:
            _update(kind, row, table[k], hyper[k], np.float32)
        else:
            _update(kind, row, table[k], hyper[k], np.float64)
        updated += 1
    return updated
