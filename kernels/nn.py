"""Kernels of nbgrad.nn.functional: softmax, losses, dropout masks.

Softmax-like kernels see their input as ``(outer, n, inner)`` with the
reduced dimension ``n`` in the middle: element ``(o, k, j)`` is at
``(o * n + k) * inner + j``.
"""
import math

from .jit import njit


@njit
def _log_sum_exp(x, base, n, inner):
    """max and log(sum(exp(x - max))) along one line of ``n`` elements: exact for logits of any size"""
    top = -math.inf
    for k in range(n):
        v = x[base + k * inner]
        if v > top or v != v:
            top = v
    if top == -math.inf or top != top:  # all -inf, or a NaN: every output is NaN, as PyTorch
        return top, math.nan
    total = 0.0
    for k in range(n):
        total += math.exp(x[base + k * inner] - top)
    return top, math.log(total)


@njit
def softmax_fwd(x, outer, n, inner, take_log, out):
    """out = exp(x - max) / sum(exp(x - max)) along the middle dimension, or its log (``take_log``)
    computed as x - max - log(sum(exp(x - max))): no -inf for tiny probabilities"""
    for o in range(outer):
        for j in range(inner):
            base = o * n * inner + j
            top, log_total = _log_sum_exp(x, base, n, inner)
            for k in range(n):
                v = x[base + k * inner] - top - log_total
                out[base + k * inner] = v if take_log else math.exp(v)


@njit
def softmax_bwd(g, out, outer, n, inner, gx):
    """gx += y (g - sum(g y)) along the middle dimension"""
    for o in range(outer):
        for j in range(inner):
            base = o * n * inner + j
            dot = 0.0
            for k in range(n):
                dot += g[base + k * inner] * out[base + k * inner]
            for k in range(n):
                i = base + k * inner
                gx[i] += out[i] * (g[i] - dot)


@njit
def log_softmax_bwd(g, out, outer, n, inner, gx):
    """gx += g - exp(y) sum(g) along the middle dimension"""
    for o in range(outer):
        for j in range(inner):
            base = o * n * inner + j
            total = 0.0
            for k in range(n):
                total += g[base + k * inner]
            for k in range(n):
                i = base + k * inner
                gx[i] += g[i] - math.exp(out[i]) * total


# Reductions of the losses: 0 'none', 1 'mean', 2 'sum'.

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
