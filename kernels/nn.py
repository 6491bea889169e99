"""Kernels of nbgrad.nn.functional: softmax, losses, dropout masks.

Softmax-like kernels see their input as ``(outer, n, inner)`` with the
reduced dimension ``n`` in the middle: element ``(o, k, j)`` is at
``(o * n + k) * inner + j``.
"""
import math

import numpy as np
from numba import prange

from .jit import PARALLEL_MIN, njit


@njit
def _softmax_line(x, line, n, inner, take_log, out):
    """exp(x - max) / sum(exp(x - max)) along one line, or its log computed as
    x - max - log(sum(exp(x - max))): exact for logits of any size, no -inf for tiny
    probabilities; exp runs once per element (it is most of the time). Returns the line's
    log-sum-exp."""
    base = (line // inner) * n * inner + line % inner
    if n == 0:
        return math.nan
    top = x[base]  # in x's dtype: exp of a float32 runs at twice the speed of a float64's
    nan = top != top
    for k in range(1, n):
        v = x[base + k * inner]
        if v != v:
            nan = True
        elif v > top:
            top = v
    if nan or top == -math.inf:  # all -inf, or a NaN: every output is NaN, as PyTorch
        top = (top - top) / (top - top)  # NaN in x's dtype (math.nan would make top a float64)
    total = 0.0
    for k in range(n):
        e = math.exp(x[base + k * inner] - top)
        total += e
        if not take_log:
            out[base + k * inner] = e
    shift = top + math.log(total)  # the log-sum-exp: log_softmax is x - shift
    if take_log:
        for k in range(n):
            out[base + k * inner] = x[base + k * inner] - shift
    else:
        scale = 1.0 / total
        for k in range(n):
            out[base + k * inner] *= scale
    return shift


@njit
def _softmax_bwd_line(g, out, line, n, inner, take_log, gx):
    """softmax: gx += y (g - sum(g y)); log_softmax: gx += g - exp(y) sum(g)"""
    base = (line // inner) * n * inner + line % inner
    total = 0.0
    for k in range(n):
        i = base + k * inner
        total += g[i] if take_log else g[i] * out[i]
    for k in range(n):
        i = base + k * inner
        gx[i] += g[i] - math.exp(out[i]) * total if take_log else out[i] * (g[i] - total)


@njit(threads=True)
def softmax_fwd(x, outer, n, inner, take_log, out):
    """softmax (or log_softmax, ``take_log``) of x seen as (outer, n, inner) over n; lines in
    parallel for a big x"""
    if x.size < PARALLEL_MIN:
        for line in range(outer * inner):
            _softmax_line(x, line, n, inner, take_log, out)
        return
    for line in prange(outer * inner):
        _softmax_line(x, line, n, inner, take_log, out)


@njit(threads=True)
def softmax_bwd(g, out, outer, n, inner, take_log, gx):
    """the backward of softmax_fwd, from its output; lines in parallel for a big g"""
    if g.size < PARALLEL_MIN:
        for line in range(outer * inner):
            _softmax_bwd_line(g, out, line, n, inner, take_log, gx)
        return
    for line in prange(outer * inner):
        _softmax_bwd_line(g, out, line, n, inner, take_log, gx)


# Reductions of the losses: 0 'none', 1 'mean', 2 'sum'.

@njit
def private_targets(target, classes, ignore_index, out):
    """out = target, the graph's own copy (the backward indexes with it); returns the position of
    the first class index outside [0, classes) (not ignore_index), or -1"""
    bad = -1
    for i in range(target.size):
        t = target[i]
        out[i] = t
        if bad < 0 and t != ignore_index and (t < 0 or t >= classes):
            bad = i
    return bad


@njit
def _class_weight(weight, t):
    return weight[t] if weight.size else 1.0


@njit
def _nll_weight_total(target, weight, ignore_index):
    total = 0.0
    for r in range(target.size):
        if target[r] != ignore_index:
            total += _class_weight(weight, target[r])
    return total


@njit
def nll_fwd(x, target, weight, n, inner, ignore_index, reduction, out):
    """-x[o, target[o, j], j] weighted by class (``weight`` empty: all 1), reduced"""
    total = 0.0
    for r in range(target.size):
        t = target[r]
        value = 0.0
        if t != ignore_index:
            o, j = divmod(r, inner)
            value = -_class_weight(weight, t) * x[(o * n + t) * inner + j]
        if reduction == 0:
            out[r] = value
        else:
            total += value
    if reduction == 1:  # all ignored: 0 / 0 = nan, as PyTorch
        out[0] = total / _nll_weight_total(target, weight, ignore_index)
    elif reduction == 2:
        out[0] = total


@njit
def nll_bwd(g, target, weight, n, inner, ignore_index, reduction, gx):
    """gx[o, target, j] -= g weight[target] (over the total weight for 'mean')"""
    scale = 1.0
    if reduction == 1:
        scale = 1.0 / _nll_weight_total(target, weight, ignore_index)
    for r in range(target.size):
        t = target[r]
        if t != ignore_index:
            o, j = divmod(r, inner)
            grad = g[r] if reduction == 0 else g[0] * scale
            gx[(o * n + t) * inner + j] -= grad * _class_weight(weight, t)


@njit
def _cross_entropy_row(x, target, r, n, ignore_index, prob, losses):
    shift = _softmax_line(x, r, n, 1, 0, prob)  # log-sum-exp: the loss is shift - x[target]
    t = target[r]
    losses[r] = 0.0 if t == ignore_index else shift - x[r * n + t]


@njit(threads=True)
def cross_entropy_fwd(x, target, n, ignore_index, reduction, prob, out):
    """-log_softmax(x)[r, target[r]] for logits x of shape (rows, n), reduced ('mean': over the
    rows not ignored); the softmax goes to ``prob`` for the backward (ignored rows too: a NaN
    there still reaches the gradient, as PyTorch's). Rows in parallel for a big x."""
    rows = target.size
    losses = out if reduction == 0 else np.empty(rows, out.dtype)
    if x.size < PARALLEL_MIN:
        for r in range(rows):
            _cross_entropy_row(x, target, r, n, ignore_index, prob, losses)
    else:
        for r in prange(rows):
            _cross_entropy_row(x, target, r, n, ignore_index, prob, losses)
    if reduction != 0:
        total = 0.0
        for r in range(rows):  # in order: the same sum on any number of threads
            total += losses[r]
        if reduction == 1:  # all ignored: 0 / 0 = nan, as PyTorch
            total /= _nll_weight_total(target, np.empty(0, out.dtype), ignore_index)
        out[0] = total


@njit
def cross_entropy_bwd(g, target, prob, n, ignore_index, reduction, gx):
    """gx[r] += g[r] (softmax(x)[r] - onehot(target[r])) (g / the rows not ignored, for 'mean';
    0 for an ignored row)"""
    scale = 1.0
    if reduction == 1:
        count = _nll_weight_total(target, np.empty(0, gx.dtype), ignore_index)
        scale = 1.0 / count if count else 0.0
    for r in range(target.size):
        t = target[r]
        ignored = t == ignore_index
        grad = 0.0 if ignored else (g[r] if reduction == 0 else g[0] * scale)
        base = r * n
        for k in range(n):
            gx[base + k] += grad * prob[base + k]
        if not ignored:
            gx[base + t] -= grad


@njit
def mse_fwd(a, b, reduction, out):
    """(a - b)^2, elementwise or summed ('mean': over the element count)"""
    if reduction == 0:
        for i in range(out.size):
            d = a[i] - b[i]
            out[i] = d * d
        return
    total = 0.0
    for i in range(a.size):
        d = a[i] - b[i]
        total += d * d
    out[0] = total / a.size if reduction == 1 else total


@njit
def mse_bwd(g, a, b, reduction, ga):
    """ga += 2 (a - b) g (and, swapped, gb += 2 (b - a) g)"""
    for i in range(a.size):
        grad = g[i] if reduction == 0 else (g[0] / a.size if reduction == 1 else g[0])
        ga[i] += 2 * (a[i] - b[i]) * grad


@njit
def dropout_mask(uniform, p, out):
    """out = 1 / (1 - p) where the uniform sample is at least p, else 0 (kept units are rescaled)"""
    scale = 1.0 / (1.0 - p)
    for i in range(out.size):
        out[i] = scale if uniform[i] >= p else 0.0
