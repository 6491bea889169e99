"""``nbgrad.nn.functional``: activations, ``linear``, losses and dropout, as in PyTorch.

Each differentiable op here is declared (with its kernels) in ``nbgrad.ops``;
this module checks arguments and composes them the way PyTorch does, so the
graphs carry PyTorch's node names (``cross_entropy`` is ``log_softmax`` then
``nll_loss``).
"""
import math
import warnings

import numpy as np

from .. import dtypes, factories, ops
from .._tensor import Tensor, _wrap
from ..autograd import no_grad
from ..compiler import recording
from ..kernels import nn as kernels
from ..ops import clamp, expm1, log1p, log_softmax, sigmoid, softmax, tanh, where
from ..ops import relu as _relu

__all__ = ["relu", "relu_", "sigmoid", "tanh", "softmax", "log_softmax", "linear", "nll_loss", "cross_entropy",
           "mse_loss", "dropout", "binary_cross_entropy", "binary_cross_entropy_with_logits", "l1_loss",
           "smooth_l1_loss", "huber_loss", "kl_div", "softplus", "leaky_relu", "leaky_relu_", "elu", "elu_", "gelu",
           "silu", "hardtanh", "hardtanh_", "relu6", "logsigmoid"]

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
    caller = ops._contiguous_data(target._data)  # saved, unread: an in-place change of the target is refused
    t = np.empty(target._data.size, np.int64)  # the graph's own copy: the backward indexes with it
    bad = kernels.private_targets(caller.reshape(-1), classes, int(ignore_index), t)
    if bad >= 0:
        raise IndexError(f"Target {t[bad]} is out of bounds (nll_loss over {classes} classes).")
    if recording.active is not None:
        recording.active.private_targets(target, caller, classes, int(ignore_index), t, "nll_loss")
    if weight is None:
        w = np.empty(0, x._data.dtype)
    else:
        _check_weight("nll_loss", weight, classes)
        w = np.ascontiguousarray(weight._data, x._data.dtype)
    inner = math.prod(shape[2:])
    out = np.empty(expected if code == 0 else (), x._data.dtype)
    return ops._apply(ops.NLL_LOSS, (x,), (x._data,), (t, w, caller, classes, inner, int(ignore_index), code), out)


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
        t = ops._contiguous_data(t)  # saved, unread: an in-place change of the target is refused
        own = np.empty(t.size, np.int64)  # the graph's own copy: the backward indexes with it
        bad = kernels.private_targets(t, n, int(ignore_index), own)
        if bad >= 0:
            raise IndexError(f"Target {own[bad]} is out of bounds (cross_entropy over {n} classes).")
        if recording.active is not None:
            recording.active.private_targets(target, t, n, int(ignore_index), own, "cross_entropy")
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
    if recording.active is not None:
        recording.active.dropout(uniform, float(p), mask)
    return x * _wrap(mask)


# --- activations: composites of differentiable ops ---------------------------

_TYPE_NAMES = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int", "bool": "Bool"}


def _type_name(dtype):
    return _TYPE_NAMES.get(dtype.name, dtype.name)


def _floating(name, input):
    """``input`` checked to be a floating tensor: PyTorch has no integer kernel for these activations."""
    _check_tensor(name, "input", input)
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"{name}" not implemented for \'{_type_name(input.dtype)}\'')
    return input


def _in_place(name, input, function):
    _check_tensor(name, "input", input)
    return ops._in_place(input, name, function)


def relu(input, inplace=False):
    """max(input, 0), in place with ``inplace=True``."""
    return _in_place("relu_", input, _relu) if inplace else _relu(input)


def relu_(input):
    """``relu`` in place."""
    return _in_place("relu_", input, _relu)


def _softplus_unit(z):
    """log(1 + exp(z)) for any z: relu(z) + log1p(exp(-|z|)), where -|z| is written
    clamp(z, max=0) - relu(z) so that its slope at 0 is 1 (the sum's slope at 0 is then 1/2)."""
    positive = _relu(z)
    return positive + log1p(ops.exp(clamp(z, max=0) - positive))


def softplus(input, beta=1, threshold=20):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch);
    computed without overflow for any x."""
    x = _floating("softplus", input)
    z = x if beta == 1 else x * beta
    smooth = _softplus_unit(z)
    if beta != 1:
        smooth = smooth / beta
    return where(z > threshold, x, smooth)


def logsigmoid(input):
    """log(sigmoid(x)) = min(x, 0) - log1p(exp(-|x|)), exact for large |x|."""
    x = _floating("log_sigmoid", input)
    return -_softplus_unit(-x)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope * x."""
    if inplace:
        return leaky_relu_(input, negative_slope)
    x = _floating("leaky_relu", input)
    return where(x > 0, x, x * negative_slope)


def leaky_relu_(input, negative_slope=0.01):
    """``leaky_relu`` in place."""
    return _in_place("leaky_relu_", input, lambda x: leaky_relu(x, negative_slope))


def elu(input, alpha=1.0, inplace=False):
    """x where x > 0, else alpha * (exp(x) - 1) (expm1: exact near 0)."""
    if inplace:
        return elu_(input, alpha)
    x = _floating("elu", input)
    return where(x > 0, x, expm1(clamp(x, max=0)) * alpha)


def elu_(input, alpha=1.0):
    """``elu`` in place."""
    return _in_place("elu_", input, lambda x: elu(x, alpha))


_SQRT1_2 = math.sqrt(0.5)
_GELU_BETA = math.sqrt(2) * (2 / math.sqrt(math.pi)) * 0.5  # sqrt(2 / pi)
_GELU_KAPPA = 0.044715


def gelu(input, approximate="none"):
    """x * Phi(x) (Phi the standard normal CDF, through ``erf``), or with ``approximate='tanh'``
    0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError("approximate argument must be either none or tanh.")
    x = _floating("GeluKernelImpl", input)
    if approximate == "tanh":
        inner = (x + x * x * x * _GELU_KAPPA) * _GELU_BETA
        return x * 0.5 * (tanh(inner) + 1)
    return x * 0.5 * (ops.erf(x * _SQRT1_2) + 1)


def silu(input, inplace=False):
    """x * sigmoid(x) (also called swish)."""
    if inplace:
        return _in_place("silu_", input, silu)
    x = _floating("silu", input)
    return x * sigmoid(x)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """x limited to [min_val, max_val]; as in PyTorch the gradient is zero at the bounds themselves."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if inplace:
        return hardtanh_(input, min_val, max_val)
    _check_tensor("hardtanh", "input", input)
    if not input.dtype.is_floating_point:  # an integer tensor stays integer, as in PyTorch
        min_val, max_val = math.ceil(min_val), math.floor(max_val)
    return where(input <= min_val, min_val, where(input >= max_val, max_val, input))


def hardtanh_(input, min_val=-1.0, max_val=1.0):
    """``hardtanh`` in place."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    return _in_place("hardtanh_", input, lambda x: hardtanh(x, min_val, max_val))


def relu6(input, inplace=False):
    """min(max(x, 0), 6): ``hardtanh(x, 0, 6)``."""
    return hardtanh(input, 0.0, 6.0, inplace)


# --- losses: composites of differentiable ops ----------------------------------

def _legacy_reduction(size_average, reduce, reduction):
    """PyTorch's deprecated ``size_average`` and ``reduce`` arguments, when given, decide (with its warning)."""
    if size_average is None and reduce is None:
        _reduction_code(reduction)
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    reduction = "mean" if size_average and reduce else ("sum" if reduce else "none")
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' instead.",
                  stacklevel=3)
    return reduction


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _warn_on_broadcast(input, target):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.shape!r}) that is different to the input size "
                      f"({input.shape!r}). This will likely lead to incorrect results due to broadcasting. "
                      "Please ensure they have the same size.", stacklevel=3)


def _weighted(name, loss, weight, input, reduction):
    """PyTorch's elementwise ``weight`` of l1_loss and huber_loss: input's size; 'mean' divides by its sum
    (huber_loss: by the number of elements)."""
    _check_tensor(name, "weight", weight)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    loss = loss * weight
    if reduction == "mean" and name == "l1_loss":
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def _pair(name, input, target):
    _check_tensor(name, "input", input)
    _check_tensor(name, "target", target)
    ops._broadcast_shape(tuple(input.shape), tuple(target.shape), name)  # a clear error naming the function


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """|input - target|, averaged (``mean``), summed or elementwise; shapes broadcast (with PyTorch's warning)."""
    _pair("l1_loss", input, target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _warn_on_broadcast(input, target)
    loss = ops.abs(input - target)
    if weight is not None:
        return _weighted("l1_loss", loss, weight, input, reduction)
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target); beta = 0 is ``l1_loss``."""
    _pair("smooth_l1_loss", input, target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _warn_on_broadcast(input, target)
    z = ops.abs(input - target)
    if beta == 0:
        return _reduce(z, reduction)
    return _reduce(where(z < beta, z * 0.5 * z / beta, z - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta) (d = input - target)."""
    _pair("huber_loss", input, target)
    _reduction_code(reduction)
    if not delta > 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _warn_on_broadcast(input, target)
    z = ops.abs(input - target)
    loss = where(z < delta, z * 0.5 * z, (z - 0.5 * delta) * delta)
    if weight is not None:
        return _weighted("huber_loss", loss, weight, input, reduction)
    return _reduce(loss, reduction)


_KL_MEAN_WARNING = ("reduction: 'mean' divides the total loss by both the batch size and the support size."
                    "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                    "'mean' will be changed to behave the same as 'batchmean' in the next major release.")


def _xlogx(t):
    """t log t, 0 where t == 0 (``xlogy(t, t)``), with a finite gradient there."""
    zero = t == 0
    return where(zero, 0.0, t * ops.log(where(zero, 1.0, t)))


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """target (log target - input), ``input`` holding log-probabilities (and ``target`` too with
    ``log_target``). 'mean' divides by the number of elements (PyTorch warns), 'batchmean' by the batch size."""
    _pair("kl_div", input, target)
    if not input.dtype.is_floating_point or not target.dtype.is_floating_point:
        raise RuntimeError("kl_div: Integral inputs not supported.")
    if size_average is not None or reduce is not None:
        reduction = _legacy_reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn(_KL_MEAN_WARNING, stacklevel=2)
    elif reduction != "batchmean":
        _reduction_code(reduction)
    if log_target:
        loss = ops.exp(target) * (target - input)
    else:
        loss = _xlogx(target) - target * input
    if reduction == "batchmean":
        return loss.sum() / input.shape[0] if input.ndim else loss.sum()
    return _reduce(loss, reduction)


_BCE_EPSILON = float(np.float32(1e-12))  # PyTorch's backward divides by max(x (1 - x), EPSILON), a float


def _check_same_dtype(input, target):
    if target.dtype is not input.dtype:
        raise RuntimeError(f"Found dtype {_type_name(target.dtype)} but expected {_type_name(input.dtype)}")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-weight (target log(input) + (1 - target) log(1 - input)) for probabilities ``input``; each log is
    clamped at -100 and the gradient's denominator x (1 - x) at 1e-12, as in PyTorch."""
    _check_tensor("binary_cross_entropy", "input", input)
    _check_tensor("binary_cross_entropy", "target", target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape!r}) that is different to the input size "
                         f"({input.shape!r}) is deprecated. Please ensure they have the same size.")
    if weight is not None:
        _check_tensor("binary_cross_entropy", "weight", weight)
        shape = ops._broadcast_shape(tuple(target.shape), tuple(weight.shape), "binary_cross_entropy")
        if shape != tuple(input.shape):
            raise RuntimeError(f"binary_cross_entropy: weight of shape {tuple(weight.shape)} must broadcast to the "
                               f"input's shape {tuple(input.shape)}")
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"binary_cross_entropy" not implemented for \'{_type_name(input.dtype)}\'')
    _check_same_dtype(input, target)
    x, y = input._data, target._data
    if not ((x >= 0) & (x <= 1)).all():
        raise RuntimeError("all elements of input should be between 0 and 1")
    if not ((y >= 0) & (y <= 1)).all():
        raise RuntimeError("all elements of target should be between 0 and 1")
    edge = x * (1 - x) < _BCE_EPSILON
    if not edge.any():  # every log is above log(1e-12): no clamp acts
        loss = (target - 1) * log1p(-input) - target * ops.log(input)
    else:
        edge = _wrap(edge)
        safe = where(edge, 0.5, input)
        smooth = (target - 1) * log1p(-safe) - target * ops.log(safe)
        with no_grad():  # PyTorch's values and gradients at the edges, as constants
            log_x = clamp(ops.log(input), min=-100)
            log_1mx = clamp(log1p(-input), min=-100)
            value = (target - 1) * log_1mx - target * log_x
            slope_x = (input - target) / _BCE_EPSILON
            slope_y = log_1mx - log_x
        at_edge = value + (input - input.detach()) * slope_x + (target - target.detach()) * slope_y
        loss = where(edge, at_edge, smooth)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """``binary_cross_entropy(sigmoid(input), target)`` computed stably from the logits:
    (1 - target) x - log_weight logsigmoid(x), log_weight = 1 + (pos_weight - 1) target; then weight."""
    name = "binary_cross_entropy_with_logits"
    _check_tensor(name, "input", input)
    _check_tensor(name, "target", target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape!r}) must be the same as input size ({input.shape!r})")
    shape = tuple(input.shape)
    for argument, extra in (("pos_weight", pos_weight), ("weight", weight)):
        if extra is not None:
            _check_tensor(name, argument, extra)
            shape = ops._broadcast_shape(shape, tuple(extra.shape), name)
    if not input.dtype.is_floating_point:
        raise NotImplementedError(f'"log_sigmoid_cpu" not implemented for \'{_type_name(input.dtype)}\'')
    log_sigmoid = logsigmoid(input)
    if pos_weight is not None:
        log_sigmoid = log_sigmoid * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input - log_sigmoid
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
