"""Optimizer steps: every parameter updated in one compiled call.

The optimizer hands a table with one int64 row per parameter: its leaf's tape
row (where the gradient buffer, its size, dtype and whether a backward wrote it
are), the address of its values and of up to three state buffers (0: none),
and its step count; and one float64 row of hyper-parameters per parameter
(from its group). Parameters without a gradient are skipped, as in PyTorch.
"""
import math

import numpy as np
from numba.core import types
from numba.extending import overload

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


@njit(literals=True)  # kind: see _update
def _step(chunks, kind, table, hyper, dtype, itemsize):
    """One update of every parameter of ``itemsize`` bytes (``dtype``) in ``table`` that has a
    gradient; returns how many. ``kind`` is a constant of the entry below: only its kernel, and
    only for this dtype, is compiled (a first step compiles what it runs, not every optimizer)."""
    updated = 0
    for k in range(table.shape[0]):
        entry = table[k]
        if entry[ROW] < 0:  # a parameter that has never had a .grad
            entry[UPDATED] = 0
            continue
        row = row_at(chunks, entry[ROW])
        if row[ITEMSIZE] != itemsize:
            continue
        entry[UPDATED] = 0
        if not row[FLAGS] & GRAD_DEFINED:
            continue
        entry[UPDATED] = 1
        updated += 1
        n = row[NUMEL]
        p = view(entry[DATA], n, dtype)
        g = view(row[GRAD_BUF], n, dtype)
        s0 = view(entry[STATE0], n if entry[STATE0] else 0, dtype)
        s1 = view(entry[STATE1], n if entry[STATE1] else 0, dtype)
        s2 = view(entry[STATE2], n if entry[STATE2] else 0, dtype)
        entry[STEP] += 1
        _update(kind, p, g, s0, s1, s2, entry[STEP], hyper[k])
    return updated


def _update(kind, p, g, s0, s1, s2, step, h):
    """The update rule of optimizer ``kind``, chosen while compiling (see the overload below)."""


@overload(_update)
def _update_of_kind(kind, p, g, s0, s1, s2, step, h):
    """``kind`` is a literal (each entry passes its constant): the rule is picked at compile time, so
    the others are never compiled (Numba does not prune branches on a literal's value)."""
    if not isinstance(kind, types.IntegerLiteral):
        return None
    return {
        SGD: lambda kind, p, g, s0, s1, s2, step, h: _sgd(p, g, s0, step == 1, h),
        ADAM: lambda kind, p, g, s0, s1, s2, step, h: _adam(p, g, s0, s1, step, h),
        RMSPROP: lambda kind, p, g, s0, s1, s2, step, h: _rmsprop(p, g, s0, s1, s2, h),
        ADAGRAD: lambda kind, p, g, s0, s1, s2, step, h: _adagrad(p, g, s0, step, h),
    }[kind.literal_value]


# The optimizer's step for its kind (STEPS[kind]), called once per dtype among its parameters.

@njit
def sgd_step(chunks, table, hyper, dtype, itemsize):
    return _step(chunks, SGD, table, hyper, dtype, itemsize)


@njit
def adam_step(chunks, table, hyper, dtype, itemsize):
    return _step(chunks, ADAM, table, hyper, dtype, itemsize)


@njit
def rmsprop_step(chunks, table, hyper, dtype, itemsize):
    return _step(chunks, RMSPROP, table, hyper, dtype, itemsize)


@njit
def adagrad_step(chunks, table, hyper, dtype, itemsize):
    return _step(chunks, ADAGRAD, table, hyper, dtype, itemsize)


STEPS = (sgd_step, adam_step, rmsprop_step, adagrad_step)


@njit
def step(chunks, kind, table, hyper):
    """Any kind, both dtypes: what a replayed program calls (its kind is a number it reads)."""
    if kind == SGD:
        return sgd_step(chunks, table, hyper, np.float32, 4) + sgd_step(chunks, table, hyper, np.float64, 8)
    if kind == ADAM:
        return adam_step(chunks, table, hyper, np.float32, 4) + adam_step(chunks, table, hyper, np.float64, 8)
    if kind == RMSPROP:
        return rmsprop_step(chunks, table, hyper, np.float32, 4) + rmsprop_step(chunks, table, hyper, np.float64, 8)
    return adagrad_step(chunks, table, hyper, np.float32, 4) + adagrad_step(chunks, table, hyper, np.float64, 8)
