"""Every op: its declaration (kernels, what it saves, grad_fn name) beside its
Python function (checks, shape rule, dtype rule), one file per family, named
like the file of its kernels in ``kernels/``:

- ``core``: the recording core every family uses (``_apply``), argument checks, broadcasting;
- ``movement``: dtype conversions, copies, views, concatenation, indexing, in-place writes;
- ``linalg``: matrix products, the bias add and the BLAS they call;
- ``elementwise``: unary math, arithmetic, comparisons and logic;
- ``reduce``: sum, mean, var, std, norm, max and min;
- ``nn``: softmax and log-softmax, and the losses' declarations.

The Python function validates, allocates the output and calls the op's
compiled forward entry, which also records the node's tape row when an input
requires grad. Functions are exported as ``nbgrad.<name>`` and attached as
Tensor methods at the end of this file.

The families import one another one way only, movement <- linalg <- elementwise
<- reduce <- nn, which is also the order in which their ops are declared (and
numbered); ``build()`` compiles the glue of every op once all are declared.
"""
import builtins
import warnings

import numpy as np

from .. import _compile_ahead, dtypes
from .._tensor import Tensor
from ..autograd import grad_mode, versions
from ..autograd.node import node_class
from ..autograd.registry import build
from .core import (
    _apply,
    _apply_broadcast,
    _as_tensor,
    _binary_broadcast,
    _broadcast_input,
    _broadcast_plan,
    _broadcast_shape,
    _check_ndim,
    _contiguous_data,
    _give_back_row,
    _is_scalar,
    _not_a_tensor,
    _unrolled_binary,
)
from .elementwise import (
    ABS,
    ADD,
    ADD_SCALAR,
    CLAMP,
    COS,
    DIV,
    DIV_SCALAR,
    ERF,
    EXP,
    EXPM1,
    LOG,
    LOG1P,
    MAXIMUM,
    MINIMUM,
    MUL,
    MUL_SCALAR,
    NEG,
    POW,
    POW_SCALAR,
    RDIV_SCALAR,
    RELU,
    RPOW_SCALAR,
    RSUB_SCALAR,
    SIGMOID,
    SIN,
    SQRT,
    SUB,
    TANH,
    WHERE,
    _scalar_op,
    _tensor_binary,
    abs,
    add,
    add_,
    all,
    any,
    clamp,
    clamp_,
    clip,
    cos,
    div,
    div_,
    divide,
    eq,
    equal,
    erf,
    exp,
    expm1,
    ge,
    gt,
    le,
    log,
    log1p,
    lt,
    maximum,
    minimum,
    mul,
    mul_,
    ne,
    neg,
    pow,
    relu,
    rsub,
    sigmoid,
    sin,
    sqrt,
    sub,
    sub_,
    tanh,
    true_divide,
    where,
)
from .linalg import _GEMM, _THREADS_FROM, BIAS_ADD, BLAS, LINEAR, MATMUL, addmm, bmm, dot, ger, matmul, mm, mv, outer
from .movement import (
    _T,
    CAT,
    CLONE,
    COPY,
    INDEX_ADD,
    LEAF_IN_PLACE,
    PUT,
    STRIDED,
    STRIDED_SCATTER,
    TAKE,
    TO,
    VIEW,
    _expand,
    _float_input,
    _getitem,
    _in_place,
    _mT,
    _setitem,
    _to,
    _to_dtype,
    cat,
    chunk,
    clone,
    concat,
    concatenate,
    contiguous,
    copy_,
    diagonal,
    expand,
    expand_as,
    fill_,
    flatten,
    index_add,
    narrow,
    permute,
    reshape,
    reshape_as,
    select,
    split,
    squeeze,
    stack,
    strided_scatter,
    swapaxes,
    swapdims,
    t,
    transpose,
    unbind,
    unfold,
    unsqueeze,
    view,
    view_as,
    zero_,
)
from .nn import CROSS_ENTROPY, LOG_SOFTMAX, MSE_LOSS, NLL_LOSS, SOFTMAX, log_softmax, softmax
from .reduce import SELECT, SUM, SUM_DIMS, argmax, argmin, max, mean, min, norm, std, sum, var

GENERATED = build()
_compile_ahead.install(GENERATED)


# --- Tensor methods ---------------------------------------------------------

def _reflected(fn):
    return lambda self, other: fn(other, self)


_FLOAT32 = np.dtype(np.float32)
_FLOAT64 = np.dtype(np.float64)


def _operator(op, general):
    """``Tensor.__mul__`` and friends: straight to the unrolled path for two like tensors."""
    fast = op.same_shape

    def method(self, other):
        if type(other) is Tensor:
            da = self._data
            db = other._data
            dtype = da.dtype
            if (dtype is _FLOAT32 or dtype is _FLOAT64) and db.dtype is dtype and da.shape == db.shape:
                return fast(self, other, da, db)
        return general(self, other)

    method.__name__ = general.__name__
    method.__doc__ = general.__doc__
    return method


def _install_methods():
    for op in (ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM):
        op.same_shape = _unrolled_binary(op)
    for name in ("neg", "exp", "log", "sqrt", "tanh", "erf", "log1p", "expm1", "sigmoid", "relu", "abs", "sin",
                 "cos", "clamp", "clip",
                 "maximum", "minimum", "add", "sub", "mul", "div", "var", "std", "max", "min", "argmax",
                 "argmin", "unsqueeze", "squeeze", "expand", "expand_as", "softmax", "log_softmax",
                 "true_divide", "divide", "pow", "clone", "contiguous", "reshape", "view", "flatten",
                 "permute", "transpose", "swapaxes", "swapdims", "t", "view_as", "reshape_as", "narrow", "select",
                 "unbind", "split", "chunk", "diagonal", "unfold", "sum", "mean", "norm", "matmul", "mm", "dot", "mv",
                 "bmm", "addmm",
                 "outer", "ger", "eq", "ne", "lt",
                 "le", "gt", "ge", "all", "any", "equal", "add_", "sub_", "mul_", "div_", "clamp_",
                 "copy_", "fill_", "zero_"):
        setattr(Tensor, name, globals()[name])
    Tensor.to = _to
    Tensor.is_floating_point = lambda self: self._data.dtype.kind == "f"
    Tensor.float = lambda self: _to(self, dtypes.float32)
    Tensor.double = lambda self: _to(self, dtypes.float64)
    Tensor.long = lambda self: _to(self, dtypes.int64)
    Tensor.int = lambda self: _to(self, dtypes.int32)
    Tensor.bool = lambda self: _to(self, dtypes.bool_)
    Tensor.T = property(_T)
    Tensor.mT = property(_mT)
    Tensor.__neg__ = neg
    Tensor.__abs__ = abs
    Tensor.__getitem__ = _getitem
    Tensor.__setitem__ = _setitem
    Tensor.clip_ = clamp_
    Tensor._version = property(lambda self: versions.version(self._data))
    Tensor.where = lambda self, condition, other: where(condition, self, other)
    Tensor.__add__ = _operator(ADD, add)
    Tensor.__radd__ = _reflected(add)
    Tensor.__sub__ = _operator(SUB, sub)
    Tensor.__rsub__ = _reflected(sub)
    Tensor.__mul__ = _operator(MUL, mul)
    Tensor.__rmul__ = _reflected(mul)
    Tensor.__truediv__ = _operator(DIV, div)
    Tensor.__rtruediv__ = _reflected(div)
    Tensor.__iadd__ = add_  # `y += b` changes y in place, as in PyTorch (not a rebinding)
    Tensor.__isub__ = sub_
    Tensor.__imul__ = mul_
    Tensor.__itruediv__ = div_
    Tensor.__pow__ = pow
    Tensor.__rpow__ = _reflected(pow)
    Tensor.__matmul__ = matmul
    Tensor.__rmatmul__ = _reflected(matmul)
    Tensor.__eq__ = eq
    Tensor.__ne__ = ne
    Tensor.__lt__ = lt
    Tensor.__le__ = le
    Tensor.__gt__ = gt
    Tensor.__ge__ = ge
    Tensor.__hash__ = lambda self: id(self)


_install_methods()


# --- in-place forms and out= ------------------------------------------------------------------

IN_PLACE_FORMS = ("neg", "exp", "log", "sqrt", "tanh", "erf", "log1p", "expm1", "sigmoid", "relu", "abs", "sin",
                  "cos", "pow")


def _in_place_form(function):
    """``x.exp_()``: x takes the values of ``exp(x)`` through copy_ (a version bump, the in-place
    rules, the gradient flowing through exp). Under a graph the op reads a copy of x, which its
    node may save: x itself is about to change."""

    def method(self, *args, **kwargs):
        source = clone(self) if self._requires_grad and grad_mode.state.enabled else self
        return copy_(self, function(source, *args, **kwargs))

    method.__name__ = function.__name__ + "_"
    method.__doc__ = f"In place: ``x.{method.__name__}()`` gives x the values of ``x.{function.__name__}()``."
    return method


for _name in IN_PLACE_FORMS:
    globals()[_name + "_"] = _in_place_form(globals()[_name])
    setattr(Tensor, _name + "_", globals()[_name + "_"])

# The forms with out= (nbgrad.add(a, b, out=c), as PyTorch) of these functions: nbgrad exports them
# (see _api.py); the ops' own names, the Tensor methods and operators, and the callers inside nbgrad
# keep the plain functions, without the wrapper's call.
OUT_FORMS = ("add", "sub", "mul", "div", "true_divide", "divide", "pow", "neg", "exp", "log", "sqrt", "tanh", "erf",
             "log1p", "expm1",
             "sigmoid", "abs", "sin", "cos", "clamp", "clip", "maximum", "minimum", "where", "matmul", "mm", "dot",
             "mv", "bmm", "addmm", "outer")
_CASTS_TO = {"b": "biuf", "i": "iuf", "u": "iuf", "f": "f"}  # the kinds a result kind may be written into
_KINDS = {"b": "Bool", "i": "Long", "f": "Float"}


def _with_out(function):
    def with_out(*args, out=None, **kwargs):
        if out is None:
            return function(*args, **kwargs)
        name = function.__name__
        if not isinstance(out, Tensor):
            raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
        if grad_mode.state.enabled and builtins.any(
                isinstance(a, Tensor) and a.requires_grad for a in (*args, *kwargs.values(), out)):
            raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic "
                               "differentiation, but one of the arguments requires grad.")
        result = function(*args, **kwargs)
        found, wanted = result._data.dtype, out._data.dtype
        if wanted.kind not in _CASTS_TO[found.kind]:
            raise RuntimeError(f"result type {_KINDS.get(found.kind, found)} can't be cast to the desired output "
                               f"type {_KINDS.get(wanted.kind, wanted)}")
        if out.shape != result.shape:  # resized, as PyTorch does (it warns when out held elements)
            if out.numel():
                warnings.warn(f"An output with one or more elements was resized since it had shape "
                              f"{list(out.shape)}, which does not match the required output shape "
                              f"{list(result.shape)}.", UserWarning, stacklevel=2)
            out.data = _to(result, out.dtype)
            return out
        return copy_(out, result)

    with_out.__name__, with_out.__doc__ = function.__name__, function.__doc__
    with_out.__wrapped__ = function
    return with_out


WITH_OUT = {name: _with_out(globals()[name]) for name in OUT_FORMS}
