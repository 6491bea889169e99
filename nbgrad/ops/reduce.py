"""Reductions (sum, mean, var, std, norm) and max/min, whole or over a dim: the ops whose kernels
are in ``kernels/reduce.py`` (a sum over dims is ``kernels/movement.py``'s).
"""
import math
import numbers

import numpy as np

from .. import dtypes
from .._tensor import Tensor, _normalize_dim, _wrap
from ..autograd.node import node_class
from ..autograd.registry import declare
from ..compiler import recording
from ..kernels import movement, reduce
from .core import _apply, _check_ndim, _dense_block, _not_a_tensor
from .elementwise import MUL_SCALAR, _scalar_op, abs, maximum, minimum, mul, pow, sqrt, sub
from .movement import _float_input, _to, _to_dtype

# --- declarations -----------------------------------------------------------

SUM = declare("sum", "SumBackward0", reduce.sum_all_fwd, (reduce.sum_all_bwd,), floats=("scale",), keeps_shapes=True)
SUM_DIMS = declare("sum_dims", "SumBackward1", movement.reduce_fwd, (movement.reduce_bwd,),
                   floats=("scale",), shapes=("shape", "strides"))
# The caller gets a copy of the indices (the backward indexes with the graph's own); the row also
# saves that copy, unread, so that an in-place change to it is refused as PyTorch refuses it.
SELECT = declare("select", "MaxBackward0", reduce.select_fwd, (reduce.select_bwd,),
                 arrays=(("indices", "int64"), ("caller_indices", "int64")), ints=("outer", "n", "inner", "largest"),
                 saves=("indices", "caller_indices"), keeps_shapes=True)


# --- reductions -------------------------------------------------------------

def _dims(dim, ndim, op):
    dims = [_normalize_dim(d, ndim, op) for d in ((dim,) if isinstance(dim, int) else tuple(dim))]
    for d in dims:
        if dims.count(d) > 1:
            raise RuntimeError(f"{op}: dim {d} appears multiple times in the list of dims")
    return tuple(sorted(dims))


def _reduce(input, dim, keepdim, scale_of, op_name, node_names):
    data = input._data
    if dim is None:
        scale = scale_of(data.size)
        out = np.empty((), data.dtype)
        return _apply(SUM, (input,), (data,), (scale,), out, node_names[0])
    dims = _dims(dim, data.ndim, op_name)
    if data.ndim == 0:  # dim 0 or -1 of a 0-d tensor: the whole tensor
        return _reduce(input, None, keepdim, scale_of, op_name, node_names)
    _check_ndim(data.ndim, op_name)
    if not dims:
        dims = tuple(range(data.ndim))
    keep = tuple(1 if i in dims else n for i, n in enumerate(data.shape))
    shape = np.array(data.shape, np.int64)
    strides = movement.broadcast_strides(shape, np.array(keep, np.int64))
    scale = scale_of(math.prod(data.shape[d] for d in dims))
    out = np.empty(keep, data.dtype)
    result = _apply(SUM_DIMS, (input,), (data,), (scale, shape, strides),
                    out, node_names[1])
    if not keepdim:
        result._data = out.reshape(tuple(n for i, n in enumerate(data.shape) if i not in dims))
    return result


_SUM_NODES = (SUM.node_class, SUM_DIMS.node_class)


def _sum_all(input, scale, node_class):
    """scale * the sum of all elements: of a transposed view, read in memory order (no copy)."""
    data = input._data
    if data.flags.c_contiguous:
        return _apply(SUM, (input,), (data,), (scale,), np.empty((), data.dtype), node_class)
    block = _dense_block(data)
    if block is not None and recording.active is not None:
        recording.active.view(input, block, None)
    result = _apply(SUM, (input,), (data if block is None else block,), (scale,), np.empty((), data.dtype), node_class)
    if result._node is not None:
        result._node._shapes = (data.shape,)
    return result


def sum(input, dim=None, keepdim=False, dtype=None):
    """Sum of all elements, or over ``dim`` (int or tuple); integers sum to int64."""
    if type(input) is not Tensor:
        _not_a_tensor("sum", input)
    data = input._data
    if dim is None and dtype is None and data.dtype.kind == "f":
        return _sum_all(input, 1.0, None)
    if dtype is not None:
        input = _to(input, dtype)
    elif not input.dtype.is_floating_point:
        input = _to_dtype(input, dtypes.int64)
    return _reduce(input, dim, keepdim, lambda n: 1.0, "sum", _SUM_NODES)


_MEAN_NODE = node_class("MeanBackward0")


def mean(input, dim=None, keepdim=False, dtype=None):
    """Mean of all elements, or over ``dim``; NaN for an empty reduction."""
    if type(input) is not Tensor:
        _not_a_tensor("mean", input)
    data = input._data
    if dim is None and dtype is None and data.dtype.kind == "f" and data.size:
        return _sum_all(input, 1.0 / data.size, _MEAN_NODE)
    if dtype is not None:
        input = _to(input, dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point or "
            f"complex dtype. Got: {input.dtype.name}"
        )

    names = (node_class("MeanBackward0"), node_class("MeanBackward1"))
    return _reduce(input, dim, keepdim, lambda n: 1.0 / n if n else math.nan, "mean", names)


def _renamed(result, node_name):
    """``result`` with its node shown as ``node_name``: the last step of a composite op
    (``var`` ends in a multiply) carries the name PyTorch gives the whole op."""
    if result._node is not None:
        result._node.__class__ = node_class(node_name)
    return result


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over ``dim`` (all elements by default), dividing by n - correction (1: unbiased)."""
    if type(input) is not Tensor:
        _not_a_tensor("var", input)
    if correction is None:
        correction = 0 if unbiased is False else 1
    if input._data.dtype.kind != "f":
        raise RuntimeError(f"std and var only support floating point and complex dtypes (got {input.dtype!r})")
    x = input
    shape = x._data.shape
    count = x._data.size if dim is None else math.prod(shape[d] for d in _dims(dim, len(shape), "var")) if shape else 1
    centered = sub(x, mean(x, dim, keepdim=True) if dim is not None else mean(x))
    total = sum(mul(centered, centered), dim, keepdim)
    divisor = count - correction
    scale = 1.0 / divisor if divisor > 0 else math.inf  # too few elements: nan (0 * inf), as PyTorch
    return _renamed(_scalar_op(MUL_SCALAR, total, scale), "VarBackward0")


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Standard deviation: the square root of ``var``."""
    if type(input) is not Tensor:
        _not_a_tensor("std", input)
    return _renamed(sqrt(var(input, dim, unbiased, keepdim, correction=correction)), "StdBackward0")


def norm(input, p="fro", dim=None, keepdim=False):
    """Vector p-norm of all elements (or over ``dim``): 2 ("fro") by default, any p > 0, or inf."""
    if type(input) is not Tensor:
        _not_a_tensor("norm", input)
    x = _float_input(input)
    if p in ("fro", 2, 2.0):
        result = sqrt(sum(mul(x, x), dim=dim, keepdim=keepdim))
    elif p == 1:
        result = sum(abs(x), dim=dim, keepdim=keepdim)
    elif p in (math.inf, -math.inf):
        if dim is not None and not isinstance(dim, int):
            raise NotImplementedError("norm: p=inf over several dims is not supported; reduce one dim at a time")
        picked = (max if p > 0 else min)(abs(x), *(() if dim is None else (dim, keepdim)))
        result = picked if dim is None else picked.values
    elif isinstance(p, numbers.Real) and p > 0:
        result = pow(sum(pow(abs(x), p), dim=dim, keepdim=keepdim), 1.0 / p)
    else:
        raise ValueError(f"norm: p must be 'fro', inf, -inf or a positive number, got {p!r}")
    return _renamed(result, "LinalgVectorNormBackward0")


class _ValuesIndices(tuple):
    """``(values, indices)`` of ``max(dim)``/``min(dim)``, also readable by name."""

    __slots__ = ()
    values = property(lambda self: self[0])
    indices = property(lambda self: self[1])

    def __repr__(self):
        return f"torch.return_types(\nvalues={self[0]!r},\nindices={self[1]!r})"


def _middle(shape, d):
    """``shape`` as (outer, n, inner) around dimension ``d``."""
    return math.prod(shape[:d]), shape[d], math.prod(shape[d + 1:])


def _select(input, dim, keepdim, largest, name, record=True):
    """max (largest) or min over ``dim`` (None: every element): (values, indices) arrays, and the values'
    tensor when ``record``."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    data = input._data
    if dim is None:
        if not data.size:
            raise RuntimeError(f"{name}(): Expected reduction dim to be specified for input.numel() == 0.")
        outer, n, inner, kept = 1, data.size, 1, ()
    else:
        shape = data.shape or (1,)
        d = _normalize_dim(dim, len(shape), name)
        outer, n, inner = _middle(shape, d)
        if not n:
            raise IndexError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        kept = (shape[:d] + (1,) * keepdim + shape[d + 1:]) if data.ndim else ()
    indices = np.empty(kept, np.int64)
    caller = np.empty(kept, np.int64) if record and dim is not None else _NO_INDICES
    out = np.empty(kept, data.dtype)
    params = (indices, caller, outer, n, inner, int(largest))
    if not record:
        forward = SELECT.forward if data.size < SELECT.parallel_from[0] else SELECT.forward_parallel
        forward(data.reshape(-1), *params, out, 0, -1)
        return out, indices
    suffix = "Backward1" if dim is None else "Backward0"
    values = _apply(SELECT, (input,), (data,), params, out, node_class(name.capitalize() + suffix))
    if dim is None:
        return values
    np.copyto(caller, indices)
    return _ValuesIndices((values, _wrap(caller)))


_NO_INDICES = np.empty(0, np.int64)


def max(input, dim=None, keepdim=False):
    """The largest element, or ``(values, indices)`` over ``dim``; ``max(a, b)`` is ``maximum``."""
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    return _select(input, dim, keepdim, True, "max")


def min(input, dim=None, keepdim=False):
    """The smallest element, or ``(values, indices)`` over ``dim``; ``min(a, b)`` is ``minimum``."""
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    return _select(input, dim, keepdim, False, "min")


def argmax(input, dim=None, keepdim=False):
    """Index of the largest element (of the flattened tensor when ``dim`` is None); not differentiable."""
    return _wrap(_select(input, dim, keepdim, True, "argmax", record=False)[1])


def argmin(input, dim=None, keepdim=False):
    """Index of the smallest element (of the flattened tensor when ``dim`` is None); not differentiable."""
    return _wrap(_select(input, dim, keepdim, False, "argmin", record=False)[1])
