"""Optimizer steps: every parameter updated in one compiled call.

The optimizer hands a table with one int64 row per parameter: its leaf's tape
row (where the gradient buffer, its size, dtype and whether a backward wrote it
are), the address of its values and of up to three state buffers (0: none),
and its step count; and one float64 row of hyper-parameters per parameter
(from its group). Parameters without a gradient are skipped, as in PyTorch.
"""
import math

import numpy as np

from .jit import njit
from .tape import FLAGS, GRAD_BUF, GRAD_DEFINED, ITEMSIZE, NUMEL, row_at, view

# Columns of the parameter table (UPDATED: written by the step, 1 where it updated the parameter).
ROW, DATA, STATE0, STATE1, STATE2, STEP, UPDATED = range(7)
COLUMNS = 7
# Columns of the hyper-parameter table; each optimizer reads those its kernel names.
(LR, WEIGHT_DECAY, MOMENTUM, DAMPENING, NESTEROV, BETA1, BETA2, EPS, DECOUPLED, ALPHA, CENTERED, LR_DECAY,
 MAXIMIZE) = range(13)
HYPER_COLUMNS = 13
SGD, ADAM, RMSPROP, ADAGRAD = range(4)


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
def _rmsprop(p, g, square_avg, momentum_buffer, grad_avg, h):
    """PyTorch's RMSprop: d = ±g + wd p; v = alpha v + (1 - alpha) d²; centered: a += (1 - alpha)(d - a),
    avg = sqrt(v - a²) + eps, else sqrt(v) + eps; p -= lr d / avg, or with momentum
    b = momentum b + d / avg, p -= lr b. The buffers of the options not in use are not read."""
    lr, wd, momentum, alpha, eps = h[LR], h[WEIGHT_DECAY], h[MOMENTUM], h[ALPHA], h[EPS]
    sign = -1.0 if h[MAXIMIZE] != 0.0 else 1.0
    centered = h[CENTERED] != 0.0
    for i in range(p.size):
        d = sign * g[i] + wd * p[i]
        v = alpha * square_avg[i] + (1.0 - alpha) * d * d
        square_avg[i] = v
        if centered:
            a = grad_avg[i] + (1.0 - alpha) * (d - grad_avg[i])  # PyTorch's lerp for weights below 0.5
            grad_avg[i] = a
            v -= a * a
        avg = math.sqrt(v) + eps
        if momentum > 0.0:
            b = momentum * momentum_buffer[i] + d / avg
            momentum_buffer[i] = b
            p[i] -= lr * b
        else:
            p[i] -= lr * (d / avg)


@njit
def _adagrad(p, g, state_sum, step, h):
    """PyTorch's Adagrad: d = ±g + wd p; sum += d²; p -= lr / (1 + (step - 1) lr_decay) d / (sqrt(sum) + eps)"""
    wd, eps = h[WEIGHT_DECAY], h[EPS]
    sign = -1.0 if h[MAXIMIZE] != 0.0 else 1.0
    clr = h[LR] / (1.0 + (step - 1) * h[LR_DECAY])
    for i in range(p.size):
        d = sign * g[i] + wd * p[i]
        s = state_sum[i] + d * d
        state_sum[i] = s
        p[i] -= clr * (d / (math.sqrt(s) + eps))


@njit
def _update(kind, row, entry, h, dtype):
    n = row[NUMEL]
    p = view(entry[DATA], n, dtype)
    g = view(row[GRAD_BUF], n, dtype)
    s0 = view(entry[STATE0], n if entry[STATE0] else 0, dtype)
    s1 = view(entry[STATE1], n if entry[STATE1] else 0, dtype)
    s2 = view(entry[STATE2], n if entry[STATE2] else 0, dtype)
    entry[STEP] += 1
    if kind == SGD:
        _sgd(p, g, s0, entry[STEP] == 1, h)
    elif kind == ADAM:
        _adam(p, g, s0, s1, entry[STEP], h)
    elif kind == RMSPROP:
        _rmsprop(p, g, s0, s1, s2, h)
    else:
        _adagrad(p, g, s0, entry[STEP], h)


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
