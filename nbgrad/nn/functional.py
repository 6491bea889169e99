"""``nbgrad.nn.functional``: activations, ``linear``, losses and dropout, as in PyTorch.

Each differentiable op here is declared (with its kernels) in ``nbgrad.ops``;
this module checks arguments and composes them the way PyTorch does, so the
graphs carry PyTorch's node names (``cross_entropy`` is ``log_softmax`` then
``nll_loss``).
"""
import math

import numpy as np

from .. import dtypes, factories, ops
from .._tensor import Tensor, _wrap
from ..kernels import nn as kernels
from ..ops import log_softmax, relu, sigmoid, softmax, tanh

__all__ = ["relu", "sigmoid", "tanh", "softmax", "log_softmax", "linear", "nll_loss", "cross_entropy", "mse_loss",
           "dropout"]

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _reduction_code(reduction):
    try:
        return _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise ValueError(f"{reduction} is not a valid value for reduction (use 'mean', 'sum' or 'none')") from None


def _check_tensor(name, argument, value):
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}(): argument '{argument}' must be Tensor, not {type(value).__name__}")


def linear(input, weight, bias=None):
    """input @ weight.T + bias in one node (``AddmmBackward0``): one gemm forward, one per input backward."""
    _check_tensor("linear", "input", input)
    _check_tensor("linear", "weight", weight)
    x, w = input._data, weight._data
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise RuntimeError(f"linear: shapes {tuple(x.shape)} and {tuple(w.shape)}.T cannot be multiplied "
                           "(weight must be (out_features, in_features))")
    n, k = w.shape
    operands = (input, weight)
    if bias is not None:
        _check_tensor("linear", "bias", bias)
        if bias._data.shape != (n,):
            raise RuntimeError(f"linear: bias of shape {tuple(bias.shape)} does not match weight {tuple(w.shape)}"
                               f" (expected ({n},))")
        operands = (input, weight, bias)
    numpy_dtype = x.dtype
    if numpy_dtype.kind != "f" or w.dtype != numpy_dtype or (bias is not None and bias._data.dtype != numpy_dtype):
        dtype = dtypes.result_type(*operands)  # promote first
        if not dtype.is_floating_point:
            raise RuntimeError(f"linear: integer tensors are not supported (got {input.dtype!r} and {weight.dtype!r})")
        operands = tuple(ops._to_dtype(t, dtype) for t in operands)
        numpy_dtype = dtype.numpy
    x = operands[0]._data
    b = operands[2]._data if bias is not None else np.empty(0, numpy_dtype)
    out = np.empty(x.shape[:-1] + (n,), numpy_dtype)
    return ops._apply(ops.LINEAR, operands, (x, operands[1]._data, b), (math.prod(x.shape[:-1]), k, n,
                      ops._GEMM[numpy_dtype], ops._THREADS_FROM), out, None if bias is not None else _MM_NODE)


_MM_NODE = ops.node_class("MmBackward0")


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """-input[n, target[n]] (weighted by class), for log-probabilities ``input`` of shape (N, C, ...)
    or (C,) and class indices ``target`` (int64) of shape (N, ...) or ()."""
    _check_tensor("nll_loss", "input", input)
    _check_tensor("nll_loss", "target", target)
    code = _reduction_code(reduction)
    x = ops._float_input(input)
    shape = x._data.shape
    if target.dtype is not dtypes.int64:
        raise RuntimeError(f"nll_loss: target must hold class indices of dtype int64 (long), got {target.dtype!r}")
    if not shape or len(shape) > 8:
        raise ValueError(f"nll_loss: expected input of 1 to 8 dimensions, got shape {tuple(shape)}")
    classes = shape[0] if len(shape) == 1 else shape[1]
    expected = () if len(shape) == 1 else (shape[0],) + shape[2:]
    if target._data.shape != expected:
        raise ValueError(f"nll_loss: expected target of shape {expected} for input of shape {tuple(shape)}, "
                         f"got {tuple(target.shape)}")
    t = np.empty(target._data.size, np.int64)  # the graph's own copy: the backward indexes with it
    bad = kernels.private_targets(target._data.reshape(-1), classes, int(ignore_index), t)
    if bad >= 0:
        raise IndexError(f"Target {t[bad]} is out of bounds (nll_loss over {classes} classes).")
    if weight is None:
        w = np.empty(0, x._data.dtype)
    else:
        _check_weight("nll_loss", weight, classes)
        w = np.ascontiguousarray(weight._data, x._data.dtype)
    inner = math.prod(shape[2:])
    out = np.empty(expected if code == 0 else (), x._data.dtype)
    return ops._apply(ops.NLL_LOSS, (x,), (x._data,), (t, w, target._data, classes, inner, int(ignore_index), code),
                      out)


def _check_weight(op, weight, classes):
    _check_tensor(op, "weight", weight)
    if tuple(weight.shape) != (classes,):
        raise RuntimeError(f"{op}: weight tensor should be defined either for all {classes} classes or no classes "
                           f"but got weight tensor of shape: {list(weight.shape)}")


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Cross-entropy of logits ``input`` (N, C, ...) against class indices (int64) or class
    probabilities (a float tensor shaped like ``input``): ``log_softmax`` then ``nll_loss``."""
    _check_tensor("cross_entropy", "input", input)
    _check_tensor("cross_entropy", "target", target)
    code = _reduction_code(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    x, t = input._data, target._data
    if (weight is None and not label_smoothing and x.ndim == 2 and x.dtype.kind == "f" and t.dtype == np.int64
            and t.shape == x.shape[:1]):  # one fused node
        n = x.shape[1]
        own = np.empty(t.size, np.int64)  # the graph's own copy: the backward indexes with it
        bad = kernels.private_targets(t, n, int(ignore_index), own)
        if bad >= 0:
            raise IndexError(f"Target {own[bad]} is out of bounds (cross_entropy over {n} classes).")
        return ops._apply(ops.CROSS_ENTROPY, (input,), (x,), (own, np.empty(x.shape, x.dtype), t, n,
                          int(ignore_index), code), np.empty(x.shape[:1] if code == 0 else (), x.dtype))
    class_dim = 1 if input.ndim >= 2 else 0
    classes = input.shape[class_dim] if input.ndim else 0
    if weight is not None:
        _check_weight("cross_entropy", weight, classes)
    log_p = log_softmax(input, class_dim)
    if weight is not None:
        class_weight = weight.reshape((classes,) + (1,) * (input.ndim - class_dim - 1))
    if target.dtype.is_floating_point:  # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(f"cross_entropy: probability targets must have the input's shape {tuple(input.shape)}, "
                             f"got {tuple(target.shape)}")
        if label_smoothing:
            target = target * (1 - label_smoothing) + label_smoothing / classes
        terms = log_p * target if weight is None else log_p * target * class_weight
        loss = -terms.sum(class_dim)
        return loss if code == 0 else (loss.sum() if code == 2 else loss.sum() / (input.numel() // classes))
    loss = nll_loss(log_p, target, weight, ignore_index, reduction)
    if not label_smoothing:
        return loss
    smooth = -(log_p if weight is None else log_p * class_weight).sum(class_dim)
    kept = target != ignore_index
    smooth = ops.where(kept, smooth, 0.0)
    if code == 2:
        smooth = smooth.sum()
    elif code == 1:
        total = kept.sum() if weight is None else ops.where(kept, weight[target * kept], 0.0).sum()
        smooth = smooth.sum() / total
    return loss * (1 - label_smoothing) + smooth * (label_smoothing / classes)


def mse_loss(input, target, reduction="mean"):
    """(input - target)^2, averaged (``mean``), summed or elementwise; shapes broadcast."""
    _check_tensor("mse_loss", "input", input)
    _check_tensor("mse_loss", "target", target)
    code = _reduction_code(reduction)
    dtype = dtypes.result_type(input, target)
    if not dtype.is_floating_point:
        dtype = dtypes.get_default_dtype()
    a, b = ops._to_dtype(input, dtype), ops._to_dtype(target, dtype)
    shape, plans = ops._binary_broadcast(a._data.shape, b._data.shape, "mse_loss")
    out = np.empty(shape if code == 0 else (), dtype.numpy)
    return ops._apply_broadcast(ops.MSE_LOSS, (a, b), plans, (code,), out)


def dropout(input, p=0.5, training=True, inplace=False):
    """Zeroes each element with probability ``p`` and scales the rest by 1 / (1 - p) when
    ``training``; the identity otherwise. Seeded by ``nbgrad.manual_seed``."""
    _check_tensor("dropout", "input", input)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    x = ops._float_input(input)
    data = x._data
    uniform = factories.generator().random(data.size, dtype=data.dtype)
    mask = np.empty(data.shape, data.dtype)
    kernels.dropout_mask(uniform, float(p), mask.reshape(-1))
    return x * _wrap(mask)
