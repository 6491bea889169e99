"""Unary math, arithmetic, comparisons and logic: the ops whose kernels are in
``kernels/elementwise.py``, and their in-place forms.
"""
import builtins
import math

import numpy as np

from .. import dtypes
from .._tensor import Tensor, _wrap
from ..autograd.registry import Swapped
from ..kernels import elementwise as ew
from ..kernels.tape import MAX_NDIM
from .core import (
    _apply,
    _apply_broadcast,
    _as_tensor,
    _binary_broadcast,
    _broadcast_input,
    _broadcast_plan,
    _broadcast_shape,
    _is_scalar,
    _not_a_tensor,
    elementwise,
)
from .linalg import _THREADS_FROM, BIAS_ADD
from .movement import _float_input, _in_place, _to_dtype

# --- declarations -----------------------------------------------------------

NEG = elementwise("neg", "NegBackward0", ew.neg_fwd, (ew.neg_bwd,))
EXP = elementwise("exp", "ExpBackward0", ew.exp_fwd, (ew.exp_bwd,), saves=("out",), heavy=("forward",))
LOG = elementwise("log", "LogBackward0", ew.log_fwd, (ew.log_bwd,), saves=("x",), heavy=("forward",))
SQRT = elementwise("sqrt", "SqrtBackward0", ew.sqrt_fwd, (ew.sqrt_bwd,), saves=("out",))
TANH = elementwise("tanh", "TanhBackward0", ew.tanh_fwd, (ew.tanh_bwd,), saves=("out",), heavy=("forward",))
ERF = elementwise("erf", "ErfBackward0", ew.erf_fwd, (ew.erf_bwd,), saves=("x",), heavy=("forward", "backward"))
LOG1P = elementwise("log1p", "Log1PBackward0", ew.log1p_fwd, (ew.log1p_bwd,), saves=("x",), heavy=("forward",))
EXPM1 = elementwise("expm1", "Expm1Backward0", ew.expm1_fwd, (ew.expm1_bwd,), saves=("x",),
                    heavy=("forward", "backward"))
SIGMOID = elementwise("sigmoid", "SigmoidBackward0", ew.sigmoid_fwd, (ew.sigmoid_bwd,), saves=("out",),
                      heavy=("forward",))
RELU = elementwise("relu", "ReluBackward0", ew.relu_fwd, (ew.relu_bwd,), saves=("out",))
ABS = elementwise("abs", "AbsBackward0", ew.abs_fwd, (ew.abs_bwd,), saves=("x",))
SIN = elementwise("sin", "SinBackward0", ew.sin_fwd, (ew.sin_bwd,), saves=("x",), heavy=("forward", "backward"))
COS = elementwise("cos", "CosBackward0", ew.cos_fwd, (ew.cos_bwd,), saves=("x",), heavy=("forward", "backward"))
CLAMP = elementwise("clamp", "ClampBackward1", ew.clamp_fwd, (ew.clamp_bwd,), floats=("low", "high"), saves=("x",))

ADD_SCALAR = elementwise("add_scalar", "AddBackward0", ew.add_scalar_fwd, (ew.identity_bwd,), floats=("p",))
MUL_SCALAR = elementwise("mul_scalar", "MulBackward0", ew.mul_scalar_fwd, (ew.mul_scalar_bwd,), floats=("p",),
                         saves_number=True)
DIV_SCALAR = elementwise("div_scalar", "DivBackward0", ew.div_scalar_fwd, (ew.div_scalar_bwd,), floats=("p",),
                         saves_number=True)
RSUB_SCALAR = elementwise("rsub_scalar", "RsubBackward1", ew.rsub_scalar_fwd, (ew.neg_bwd,), floats=("p",))
RDIV_SCALAR = elementwise("rdiv_scalar", "DivBackward1", ew.rdiv_scalar_fwd, (ew.rdiv_scalar_bwd,),
                          floats=("p",), saves=("x",))
POW_SCALAR = elementwise("pow_scalar", "PowBackward0", ew.pow_scalar_fwd, (ew.pow_scalar_bwd,),
                         floats=("p",), saves=("x",), heavy=("forward", "backward"))
RPOW_SCALAR = elementwise("rpow_scalar", "PowBackward2", ew.rpow_scalar_fwd, (ew.rpow_scalar_bwd,),
                          floats=("p",), saves=("out",), heavy=("forward",))

ADD = elementwise("add", "AddBackward0", ew.add_fwd, (ew.identity_bwd, ew.identity_bwd), inputs=("a", "b"))
SUB = elementwise("sub", "SubBackward0", ew.sub_fwd, (ew.identity_bwd, ew.neg_bwd), inputs=("a", "b"))
MUL = elementwise("mul", "MulBackward0", ew.mul_fwd, (ew.mul_bwd, Swapped(ew.mul_bwd)), inputs=("a", "b"),
                  saves=("a", "b"))
DIV = elementwise("div", "DivBackward0", ew.div_fwd, (ew.div_bwd_a, ew.div_bwd_b), inputs=("a", "b"),
                  saves=("a", "b"))
POW = elementwise("pow", "PowBackward1", ew.pow_fwd, (ew.pow_bwd_a, ew.pow_bwd_b), inputs=("a", "b"),
                  saves=("a", "b", "out"), heavy=("forward", "backward"))
MAXIMUM = elementwise("maximum", "MaximumBackward0", ew.maximum_fwd, (ew.chosen_bwd, Swapped(ew.chosen_bwd)),
                      inputs=("a", "b"), saves=("a", "b", "out"))
MINIMUM = elementwise("minimum", "MinimumBackward0", ew.minimum_fwd, (ew.chosen_bwd, Swapped(ew.chosen_bwd)),
                      inputs=("a", "b"), saves=("a", "b", "out"))
WHERE = elementwise("where", "WhereBackward0", ew.where_fwd, (ew.where_bwd_a, ew.where_bwd_b), inputs=("a", "b"),
                    arrays=(("condition", "bool_"),), saves=("condition",))


# --- unary math -------------------------------------------------------------

def _unary(op, x, float_only=True):
    if not isinstance(x, Tensor):
        raise TypeError(f"{op.name}(): argument 'input' must be Tensor, not {type(x).__name__}")
    if float_only:
        x = _float_input(x)
    data = x._data
    return _apply(op, (x,), (data,), (), np.empty(data.shape, data.dtype))


def neg(input):
    """-input"""
    if isinstance(input, Tensor) and input.dtype is dtypes.bool_:
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. "
                           "If you are trying to invert a mask, use the `~` or `logical_not()` operator instead.")
    return _unary(NEG, input, float_only=False)


def exp(input):
    """e ** input"""
    return _unary(EXP, input)


def log(input):
    """Natural logarithm; log(0) = -inf, log(x < 0) = nan."""
    return _unary(LOG, input)


def sqrt(input):
    """Square root."""
    return _unary(SQRT, input)


def tanh(input):
    """Hyperbolic tangent."""
    return _unary(TANH, input)


def erf(input):
    """The error function, 2/sqrt(pi) * integral of exp(-t^2) from 0 to input."""
    return _unary(ERF, input)


def log1p(input):
    """log(1 + input), exact for small input."""
    return _unary(LOG1P, input)


def expm1(input):
    """exp(input) - 1, exact for small input."""
    return _unary(EXPM1, input)


def sigmoid(input):
    """1 / (1 + exp(-input)), stable for large |input|."""
    return _unary(SIGMOID, input)


def relu(input):
    """max(input, 0)."""
    return _unary(RELU, input, float_only=False)


def abs(input):
    """|input|"""
    return _unary(ABS, input, float_only=False)


def sin(input):
    """Sine."""
    return _unary(SIN, input)


def cos(input):
    """Cosine."""
    return _unary(COS, input)


def clamp(input, min=None, max=None):
    """``input`` limited to [min, max] (either may be None); the gradient flows where it is not clipped."""
    if min is None and max is None:
        raise RuntimeError("clamp: at least one of 'min' or 'max' must not be None")
    bounds = [b for b in (min, max) if b is not None]
    for b in bounds:
        if not _is_scalar(b):
            raise TypeError(f"clamp: 'min' and 'max' must be numbers, got {type(b).__name__}")
    x = _to_dtype(input, dtypes.result_type(input, *bounds))
    low = -math.inf if min is None else float(min)
    high = math.inf if max is None else float(max)
    data = x._data
    return _apply(CLAMP, (x,), (data,), (low, high), np.empty(data.shape, data.dtype))


clip = clamp


def _binary_tensors(name, input, other):
    """Both operands as tensors of their promoted dtype (Python numbers welcome)."""
    a = input if isinstance(input, Tensor) else None
    b = other if isinstance(other, Tensor) else None
    if a is None and b is None:
        raise TypeError(f"{name}(): expected a Tensor, got {type(input).__name__} and {type(other).__name__}")
    dtype = dtypes.result_type(a if a is not None else input, b if b is not None else other)
    a = _to_dtype(_as_tensor(input, name), dtype) if a is None else _to_dtype(a, dtype)
    b = _to_dtype(_as_tensor(other, name), dtype) if b is None else _to_dtype(b, dtype)
    return a, b


def maximum(input, other):
    """Elementwise maximum, broadcasting; on ties each input gets half the gradient."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("maximum(): argument 'other' must be Tensor")
    return _tensor_binary(MAXIMUM, *_binary_tensors("maximum", input, other))


def minimum(input, other):
    """Elementwise minimum, broadcasting; on ties each input gets half the gradient."""
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("minimum(): argument 'other' must be Tensor")
    return _tensor_binary(MINIMUM, *_binary_tensors("minimum", input, other))


def where(condition, input=None, other=None):
    """``input`` where ``condition`` else ``other``, broadcasting all three; ``where(condition)``
    gives the indices of the true elements, one int64 tensor per dimension."""
    cond = _as_tensor(condition, "where")
    if cond.dtype is not dtypes.bool_:
        raise RuntimeError(f"where expected condition to be a boolean tensor, but got a tensor with dtype "
                           f"{cond.dtype.name.capitalize()}")
    if input is None and other is None:
        return tuple(_wrap(i.astype(np.int64)) for i in np.nonzero(cond._data))
    a, b = _binary_tensors("where", input, other)
    shape = _broadcast_shape(_broadcast_shape(a._data.shape, b._data.shape, "where"), cond._data.shape, "where")
    numel = math.prod(shape)
    plans = [None if t._data.shape == shape else _broadcast_plan(t._data.shape, shape) + (numel,) for t in (a, b)]
    condition = _broadcast_input(cond._data, None if cond._data.shape == shape else
                                 _broadcast_plan(cond._data.shape, shape) + (numel,), 2, False)
    return _apply_broadcast(WHERE, (a, b), plans, (condition,), np.empty(shape, a._data.dtype))


# --- arithmetic ------------------------------------------------------------

def _tensor_binary(op, a, b, node_class=None, dtype=None):
    da, db = a._data, b._data
    if dtype is None and da.dtype == db.dtype:
        if da.shape == db.shape and node_class is None:
            return op.same_shape(a, b, da, db)
        numpy_dtype = da.dtype
    else:
        dtype = dtype or dtypes.result_type(a, b)
        a = _to_dtype(a, dtype)
        b = _to_dtype(b, dtype)
        da, db = a._data, b._data
        numpy_dtype = dtype.numpy
    if da.shape == db.shape:
        return _apply(op, (a, b), (da, db), (), np.empty(da.shape, numpy_dtype),
                      node_class)
    if op is ADD and node_class is None and 0 < db.ndim <= da.ndim <= MAX_NDIM and da.size and (
            da.shape[da.ndim - db.ndim:] == db.shape):  # a bias: no broadcast copy of b
        return _apply(BIAS_ADD, (a, b), (da, db), (da.size // db.size, db.size, _THREADS_FROM),
                      np.empty(da.shape, numpy_dtype))
    shape, plans = _binary_broadcast(da.shape, db.shape, op.name)
    return _apply_broadcast(op, (a, b), plans, (), np.empty(shape, numpy_dtype), node_class)


def _scalar_op(op, x, p, node_class=None, dtype=None):
    data = x._data
    if dtype is None and data.dtype.kind == "f":  # a float tensor keeps its dtype
        p = float(p)
    else:
        dtype = dtype or dtypes.result_type(x, p)
        x = _to_dtype(x, dtype)
        data = x._data
        if dtype.is_floating_point:
            p = float(p)
        else:
            p = int(p)
            if not -(1 << 63) <= p < (1 << 63):
                raise RuntimeError(f"{op.name}: value {p} cannot be converted to type int64 without overflow")
    inputs = (x,) if op in _ONE_ENTRY else (x, None)  # next_functions as long as PyTorch's
    return _apply(op, inputs, (data,), (p,), np.empty(data.shape, data.dtype), node_class)


# PyTorch's nodes for `1 - x`, `x ** 2` and `2 ** x` list only the tensor in next_functions.
_ONE_ENTRY = {RSUB_SCALAR, POW_SCALAR, RPOW_SCALAR}


_SUB_NODE = SUB.node_class


def add(input, other, alpha=1):
    """input + alpha * other, broadcasting."""
    if type(input) is Tensor and alpha == 1:
        kind = type(other)
        if kind is Tensor:
            return _tensor_binary(ADD, input, other)
        if kind is float:
            return _scalar_op(ADD_SCALAR, input, other)
    if alpha != 1:
        other = mul(other, alpha)
    if _is_scalar(other):
        return _scalar_op(ADD_SCALAR, _as_tensor(input, "add"), other)
    if _is_scalar(input):
        return _scalar_op(ADD_SCALAR, other, input)
    return _tensor_binary(ADD, _as_tensor(input, "add"), _as_tensor(other, "add"))


def sub(input, other, alpha=1):
    """input - alpha * other, broadcasting."""
    if (isinstance(input, Tensor) and input._data.dtype.kind == "b" and isinstance(other, (Tensor, builtins.bool))
            and (not isinstance(other, Tensor) or other._data.dtype.kind == "b")):
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. "
                           "Use the `^` or `logical_xor()` operator instead.")
    if alpha != 1:
        other = mul(other, alpha)
    if _is_scalar(other):
        return _scalar_op(ADD_SCALAR, _as_tensor(input, "sub"), -other, _SUB_NODE)
    if _is_scalar(input):
        return _scalar_op(RSUB_SCALAR, other, input)
    return _tensor_binary(SUB, _as_tensor(input, "sub"), _as_tensor(other, "sub"))


def rsub(input, other):
    """other - input"""
    return sub(other, input)


def mul(input, other):
    """input * other, broadcasting."""
    if type(input) is Tensor:
        kind = type(other)
        if kind is Tensor:
            return _tensor_binary(MUL, input, other)
        if kind is float:
            return _scalar_op(MUL_SCALAR, input, other)
    if _is_scalar(other):
        return _scalar_op(MUL_SCALAR, _as_tensor(input, "mul"), other)
    if _is_scalar(input):
        return _scalar_op(MUL_SCALAR, other, input)
    return _tensor_binary(MUL, _as_tensor(input, "mul"), _as_tensor(other, "mul"))


def _true_division_dtype(*operands):
    dtype = dtypes.result_type(*operands)
    return dtype if dtype.is_floating_point else dtypes.get_default_dtype()


def div(input, other):
    """input / other (true division: integers give the default float dtype)."""
    if _is_scalar(other):
        x = _as_tensor(input, "div")
        return _scalar_op(DIV_SCALAR, x, other, dtype=_true_division_dtype(x, other))
    if _is_scalar(input):
        return _scalar_op(RDIV_SCALAR, other, input, dtype=_true_division_dtype(other, input))
    a, b = _as_tensor(input, "div"), _as_tensor(other, "div")
    return _tensor_binary(DIV, a, b, dtype=_true_division_dtype(a, b))


true_divide = divide = div


def pow(input, exponent):
    """input ** exponent; either may be a Python number."""
    if _is_scalar(exponent):
        x = _as_tensor(input, "pow")
        if not x.dtype.is_floating_point and isinstance(exponent, float):
            x = _float_input(x)
        if not x.dtype.is_floating_point and exponent < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return _scalar_op(POW_SCALAR, x, exponent)
    if _is_scalar(input):
        x = _as_tensor(exponent, "pow")
        dtype = dtypes.result_type(x, input)
        if not dtype.is_floating_point and (x._data < 0).any():
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return _scalar_op(RPOW_SCALAR, x, input, dtype=dtype)
    return _tensor_binary(POW, _as_tensor(input, "pow"), _as_tensor(exponent, "pow"))


# --- in-place arithmetic (``_in_place`` is in movement.py) ------------------

def add_(self, other, alpha=1):
    return _in_place(self, "add_", lambda x, y: add(x, y, alpha), other)


def sub_(self, other, alpha=1):
    return _in_place(self, "sub_", lambda x, y: sub(x, y, alpha), other)


def mul_(self, other):
    return _in_place(self, "mul_", mul, other)


def div_(self, other):
    return _in_place(self, "div_", div, other)


def clamp_(self, min=None, max=None):
    return _in_place(self, "clamp_", lambda x: clamp(x, min, max))


# --- comparisons and logic (not differentiable) -------------------------------

_COMPARISONS = {"eq": 0, "ne": 1, "lt": 2, "le": 3, "gt": 4, "ge": 5}


def _compare(name, input, other):
    a = _as_tensor(input, name)
    dtype = dtypes.result_type(a, other if _is_scalar(other) else _as_tensor(other, name))
    # A Python scalar is made in the promoted dtype directly: never rounded through float32.
    b = _wrap(np.asarray(other, dtype.numpy)) if _is_scalar(other) else _as_tensor(other, name)
    da = a._data.astype(dtype.numpy, copy=False)
    db = b._data.astype(dtype.numpy, copy=False)
    shape, plans = _binary_broadcast(da.shape, db.shape, name)
    out = np.empty(shape, np.bool_)
    ew.compare(_broadcast_input(da, plans[0], 0, True).reshape(-1), _broadcast_input(db, plans[1], 1, True).reshape(-1),
               _COMPARISONS[name], out.reshape(-1))
    return _wrap(out)


def _comparison(name, symbol):
    def compare(input, other):
        return _compare(name, input, other)

    compare.__name__ = compare.__qualname__ = name
    compare.__doc__ = f"Elementwise ``input {symbol} other`` as a bool tensor (not differentiable)."
    return compare


eq = _comparison("eq", "==")
ne = _comparison("ne", "!=")
lt = _comparison("lt", "<")
le = _comparison("le", "<=")
gt = _comparison("gt", ">")
ge = _comparison("ge", ">=")


def _flat_contiguous(t):
    return t._data.reshape(-1)


def all(input):
    """True when every element is nonzero (a 0-d bool tensor)."""
    if type(input) is not Tensor:
        _not_a_tensor("all", input)
    return _wrap(np.array(ew.all_nonzero(_flat_contiguous(input))))


def any(input):
    """True when some element is nonzero (a 0-d bool tensor)."""
    if type(input) is not Tensor:
        _not_a_tensor("any", input)
    return _wrap(np.array(ew.any_nonzero(_flat_contiguous(input))))


def equal(input, other):
    """True when both have the same shape and values."""
    if type(input) is not Tensor:
        _not_a_tensor("equal", input)
    return input.shape == other.shape and builtins.bool(all(eq(input, other)))
