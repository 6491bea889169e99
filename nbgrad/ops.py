"""Every op: its declaration (kernels, what it saves, grad_fn name) beside its
Python function (checks, shape rule, dtype rule).

The Python function validates, allocates the output and calls the op's
compiled forward entry, which also records the node's tape row when an input
requires grad. Functions are exported as ``nbgrad.<name>`` and attached as
Tensor methods at the end of this file.
"""
import builtins
import math
import numbers
import threading

import numpy as np

from . import dtypes
from .autograd import grad_mode, tape
from .autograd.node import node_class
from .autograd.registry import _same, build, declare
from .kernels import blas, linalg, movement, reduce
from .kernels import elementwise as ew
from .kernels import tape as layout
from .kernels.tape import MAX_NDIM
from .tensor import Tensor, _contiguous, _normalize_dim, _wrap

# --- declarations: one per op ----------------------------------------------
NEG = declare("neg", "NegBackward0", ew.neg_fwd, (ew.neg_bwd,))
EXP = declare("exp", "ExpBackward0", ew.exp_fwd, (ew.exp_bwd,), saves=("out",))
LOG = declare("log", "LogBackward0", ew.log_fwd, (ew.log_bwd,), saves=("x",))
SQRT = declare("sqrt", "SqrtBackward0", ew.sqrt_fwd, (ew.sqrt_bwd,), saves=("out",))
TANH = declare("tanh", "TanhBackward0", ew.tanh_fwd, (ew.tanh_bwd,), saves=("out",))
SIGMOID = declare("sigmoid", "SigmoidBackward0", ew.sigmoid_fwd, (ew.sigmoid_bwd,), saves=("out",))
RELU = declare("relu", "ReluBackward0", ew.relu_fwd, (ew.relu_bwd,), saves=("out",))

ADD_SCALAR = declare("add_scalar", "AddBackward0", ew.add_scalar_fwd, (ew.identity_bwd,), floats=("p",))
MUL_SCALAR = declare("mul_scalar", "MulBackward0", ew.mul_scalar_fwd, (ew.mul_scalar_bwd,), floats=("p",))
DIV_SCALAR = declare("div_scalar", "DivBackward0", ew.div_scalar_fwd, (ew.div_scalar_bwd,), floats=("p",))
RSUB_SCALAR = declare("rsub_scalar", "RsubBackward1", ew.rsub_scalar_fwd, (ew.neg_bwd,), floats=("p",))
RDIV_SCALAR = declare("rdiv_scalar", "DivBackward1", ew.rdiv_scalar_fwd, (ew.rdiv_scalar_bwd,),
                      floats=("p",), saves=("x",))
POW_SCALAR = declare("pow_scalar", "PowBackward0", ew.pow_scalar_fwd, (ew.pow_scalar_bwd,),
                     floats=("p",), saves=("x",))
RPOW_SCALAR = declare("rpow_scalar", "PowBackward2", ew.rpow_scalar_fwd, (ew.rpow_scalar_bwd,),
                      floats=("p",), saves=("out",))

ADD = declare("add", "AddBackward0", ew.add_fwd, (ew.identity_bwd, ew.identity_bwd), inputs=("a", "b"))
SUB = declare("sub", "SubBackward0", ew.sub_fwd, (ew.identity_bwd, ew.neg_bwd), inputs=("a", "b"))
MUL = declare("mul", "MulBackward0", ew.mul_fwd, (ew.mul_bwd_a, ew.mul_bwd_b), inputs=("a", "b"),
              saves=("a", "b"))
DIV = declare("div", "DivBackward0", ew.div_fwd, (ew.div_bwd_a, ew.div_bwd_b), inputs=("a", "b"),
              saves=("a", "b"))
POW = declare("pow", "PowBackward1", ew.pow_fwd, (ew.pow_bwd_a, ew.pow_bwd_b), inputs=("a", "b"),
              saves=("a", "b", "out"))

TO = declare("to", "ToCopyBackward0", ew.cast, (ew.cast_add,), cross_dtype=True)
CLONE = declare("clone", "CloneBackward0", ew.cast, (ew.identity_bwd,))
VIEW = declare("view", "ViewBackward0", None, (ew.identity_bwd,))
PERMUTE = declare("permute", "PermuteBackward0", movement.permute_fwd, (movement.permute_bwd,),
                  shapes=("shape", "strides"))

SUM = declare("sum", "SumBackward0", reduce.sum_all_fwd, (reduce.sum_all_bwd,), floats=("scale",))
SUM_DIMS = declare("sum_dims", "SumBackward1", movement.reduce_fwd, (movement.reduce_bwd,),
                   floats=("scale",), shapes=("shape", "strides"))
MATMUL = declare("matmul", "MmBackward0", linalg.matmul_fwd, (linalg.matmul_bwd_a, linalg.matmul_bwd_b),
                 inputs=("a", "b"), ints=("batch_a", "batch_b", "m", "k", "n", "gemm"), saves=("a", "b"))

GENERATED = build()

# --- the recording core -----------------------------------------------------
_state = grad_mode.state
_chunks = tape.chunks
_row_addresses = tape.row_addresses
_saved = tape.saved
_alloc_row = tape.alloc_row
_free_rows_pop = tape.free_rows.pop
_SHIFT = tape.CHUNK_SHIFT
_MASK = tape.CHUNK_MASK


def _apply(op, inputs, arrays, params, out, node_class=None):
    """Run ``op`` on ``arrays``; record its node when grad mode is on and an input requires grad.

    ``inputs`` are the Tensors behind ``arrays`` (None for a Python scalar: it
    shows as ``(None, 0)`` in ``next_functions``); arrays are C-contiguous.
    Returns the result tensor over ``out``. This is every op's hot path: keep it lean.
    """
    if _state.enabled:
        n0 = n1 = n2 = None
        t = inputs[0]
        if t is not None and t._requires_grad:
            n0 = t._node
        count = len(inputs)
        if count > 1:
            t = inputs[1]
            if t is not None and t._requires_grad:
                n1 = t._node
            if count > 2:
                t = inputs[2]
                if t is not None and t._requires_grad:
                    n2 = t._node
        if n0 is not None or n1 is not None or n2 is not None:
            node = (node_class or op.node_class)()
            try:
                r = _free_rows_pop()
            except IndexError:
                r = _alloc_row()
            node._row = r
            node._arity = count
            node._in0 = n0
            node._in1 = n1
            node._in2 = n2
            rows = (-1 if n0 is None else n0._row, -1 if n1 is None else n1._row, -1 if n2 is None else n2._row)
            op.forward(*arrays, *params, out, _row_addresses[r], *rows[:len(arrays)])
            pick = op.pick_saved
            if pick is not None:
                _saved[r] = pick(arrays) if pick is _same else pick(arrays + (out,))
            return _wrap(out, node)
    op.forward(*arrays, *params, out, 0, *_NO_ROWS[len(arrays)])
    return _wrap(out)


_NO_ROWS = (None, (-1,), (-1, -1), (-1, -1, -1))  # by number of inputs


def _unrolled_binary(op):
    """``_apply`` unrolled for ``op`` on two like tensors, with the op's fields bound as locals:
    this path is a third faster than the general one, and it is what small models run."""
    forward = op.forward
    node_class = op.node_class
    pick = op.pick_saved
    new = object.__new__

    def run(a, b, da, db):
        out = np.empty_like(da)
        ra = a._requires_grad
        rb = b._requires_grad
        t = new(Tensor)
        t._data = out
        if (ra or rb) and _state.enabled:
            node = node_class()
            try:
                r = _free_rows_pop()
            except IndexError:
                r = _alloc_row()
            node._row = r
            na = a._node if ra else None
            nb = b._node if rb else None
            node._arity = 2
            node._in0 = na
            node._in1 = nb
            node._in2 = None
            forward(da, db, out, _row_addresses[r], na._row if ra else -1, nb._row if rb else -1)
            if pick is not None:
                _saved[r] = (da, db) if pick is _same else pick((da, db, out))
            t._node = node
            t._requires_grad = True
            return t
        forward(da, db, out, 0, -1, -1)
        t._node = None
        t._requires_grad = False
        return t

    return run


_PYTHON_SCALARS = (float, int, builtins.bool)


def _is_scalar(x):
    kind = type(x)
    if kind is Tensor:
        return False
    return kind in _PYTHON_SCALARS or isinstance(x, numbers.Number)


def _as_tensor(x, op):
    if isinstance(x, Tensor):
        return x
    if _is_scalar(x):
        return _wrap(np.asarray(x, dtypes.result_type(x).numpy))
    if isinstance(x, np.ndarray):
        return _wrap(_contiguous(x))
    raise TypeError(f"{op}(): expected a Tensor or a number, got {type(x).__name__}")


def _to_dtype(t, dtype):
    """``t`` as ``dtype``, through a differentiable ToCopy node when it changes."""
    if t._data.dtype == dtype.numpy:
        return t
    if t._requires_grad and not dtype.is_floating_point:
        return _wrap(t._data.astype(dtype.numpy))  # an integer result has no gradient
    return _apply(TO, (t,), (t._data,), (), np.empty(t._data.shape, dtype.numpy))


def _float_input(t):
    """Math on integer tensors happens in the default float dtype, as in PyTorch."""
    return t if t.dtype.is_floating_point else _to_dtype(t, dtypes.get_default_dtype())


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


def sigmoid(input):
    """1 / (1 + exp(-input)), stable for large |input|."""
    return _unary(SIGMOID, input)


def relu(input):
    """max(input, 0)."""
    return _unary(RELU, input, float_only=False)


# --- arithmetic ------------------------------------------------------------

def _broadcast_shape(a, b, op):
    ndim = max(len(a), len(b))
    _check_ndim(ndim, op)
    a = (1,) * (ndim - len(a)) + tuple(a)
    b = (1,) * (ndim - len(b)) + tuple(b)
    shape = []
    for i, (m, n) in enumerate(zip(a, b)):
        if m != n and m != 1 and n != 1:
            raise RuntimeError(
                f"{op}: the size of tensor a ({m}) must match the size of tensor b ({n}) at "
                f"non-singleton dimension {i} (shapes {a} and {b})"
            )
        shape.append(n if m == 1 else m)
    return tuple(shape)


_broadcast_plans = {}


def _broadcast_plan(small_shape, shape):
    """Shape and strides (as int64 arrays) that read ``small_shape`` broadcast to ``shape``; cached."""
    key = (small_shape, shape)
    plan = _broadcast_plans.get(key)
    if plan is None:
        if len(_broadcast_plans) > 4096:  # many distinct shapes: start over rather than grow
            _broadcast_plans.clear()
        small = np.array((1,) * (len(shape) - len(small_shape)) + small_shape, np.int64)
        big = np.array(shape, np.int64)
        plan = _broadcast_plans[key] = (big, movement.broadcast_strides(big, small))
    return plan


_binary_plans = {}


class _ScratchBuffers(threading.local):
    by_key = None


_scratch_buffers = _ScratchBuffers()
_SCRATCH_MAX = 1 << 22  # elements: a larger broadcast gets its own allocation, not a resident buffer


def _scratch(i, numel, dtype):
    """A per-thread buffer for broadcasting input ``i`` of an op that does not save it (a bias
    add): the kernel reads it only during the call, so one buffer serves every call."""
    buffers = _scratch_buffers.by_key
    if buffers is None:
        buffers = _scratch_buffers.by_key = {}
    buffer = buffers.get((i, dtype))
    if buffer is None or buffer.size < numel:
        buffer = buffers[(i, dtype)] = np.empty(numel, dtype)
    return buffer[:numel]


def _binary_broadcast(sa, sb, op):
    """The output shape of ``sa`` op ``sb`` and, per input, None or (shape, strides, numel) to broadcast it."""
    key = (sa, sb)
    found = _binary_plans.get(key)
    if found is None:
        shape = _broadcast_shape(sa, sb, op)
        numel = math.prod(shape)
        plans = tuple(None if s == shape else _broadcast_plan(s, shape) + (numel,) for s in (sa, sb))
        if len(_binary_plans) > 4096:
            _binary_plans.clear()
        found = _binary_plans[key] = (shape, plans)
    return found


def _broadcast_input(data, plan, i, scratch):
    """Flat values of ``data`` (input ``i``) broadcast by ``plan``; with ``scratch`` into a
    per-thread buffer, for ops that read their inputs only during the call."""
    if plan is None:
        return data
    if scratch and plan[2] <= _SCRATCH_MAX:
        flat = _scratch(i, plan[2], data.dtype)
    else:
        flat = np.empty(plan[2], data.dtype)
    movement.gather(data.reshape(-1), plan[0], plan[1], flat)
    return flat


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
    shape, plans = _binary_broadcast(da.shape, db.shape, op.name)
    arrays = (_broadcast_input(da, plans[0], 0, not op.saves), _broadcast_input(db, plans[1], 1, not op.saves))
    result = _apply(op, (a, b), arrays, (), np.empty(shape, numpy_dtype), node_class)
    if result._node is not None:  # the executor sums these inputs' gradients back to their shapes
        r = result._node._row
        for i, plan in enumerate(plans):
            if plan is not None:
                layout.save_broadcast(_chunks[r >> _SHIFT], r & _MASK, i, plan[0], plan[1])
    return result


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


# --- dtype, copies, views ---------------------------------------------------

def _to(self, *args, dtype=None, copy=False, **kwargs):
    """``x.to(nbgrad.float64)``; device arguments other than 'cpu' are refused."""
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, (str,)) or type(a).__name__ == "device":
            if str(a).split(":")[0] != "cpu":
                raise RuntimeError(f"to(): nbgrad tensors live on the CPU; got device {a!r}")
        else:
            dtype = a
    if dtype is None:
        return clone(self) if copy else self
    dtype = dtypes.as_dtype(dtype)
    if dtype.numpy == self._data.dtype and not copy:
        return self
    if dtype.numpy == self._data.dtype:
        return clone(self)
    return _to_dtype(self, dtype)


def clone(input):
    """A copy with its own storage, differentiable."""
    data = input._data
    return _apply(CLONE, (input,), (data,), (), np.empty(data.shape, data.dtype))


def contiguous(input):
    """The tensor itself: nbgrad tensors are always C-contiguous."""
    return input


def _infer_shape(shape, numel, op):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(int(d) for d in shape)
    if shape.count(-1) > 1:
        raise RuntimeError(f"{op}: only one dimension can be inferred")
    known = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or numel % known:
            raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel}")
        shape = tuple(numel // known if d == -1 else d for d in shape)
    if math.prod(shape) != numel or builtins.any(d < 0 for d in shape):
        raise RuntimeError(f"{op}: shape '{list(shape)}' is invalid for input of size {numel}")
    return shape


def reshape(input, *shape):
    """The same values in a new shape; shares storage when the input is contiguous."""
    data = input._data
    shape = _infer_shape(shape, data.size, "reshape")
    out = data.reshape(shape)
    return _apply(VIEW, (input,), (data,), (), out)


def view(input, *shape):
    """``reshape`` that never copies: the input must be contiguous."""
    return reshape(input, *shape)  # nbgrad tensors are always contiguous


def flatten(input, start_dim=0, end_dim=-1):
    shape = input._data.shape
    if not shape:
        return reshape(input, 1)
    start = _normalize_dim(start_dim, len(shape), "flatten")
    end = _normalize_dim(end_dim, len(shape), "flatten")
    return reshape(input, shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])


def _check_ndim(ndim, op):
    if ndim > MAX_NDIM:
        raise RuntimeError(f"{op}: nbgrad supports at most {MAX_NDIM} dimensions, got {ndim}")


def _permute(input, dims, node_name):
    data = input._data
    _check_ndim(data.ndim, node_name.replace("Backward0", "").lower())
    shape = np.array([data.shape[d] for d in dims], np.int64)
    contiguous_strides = np.cumprod((1,) + data.shape[:0:-1])[::-1].astype(np.int64)
    strides = np.array([contiguous_strides[d] for d in dims], np.int64)
    out = np.empty(tuple(shape), data.dtype)

    return _apply(PERMUTE, (input,), (data,), (shape, strides), out,
                  node_class(node_name))


def permute(input, *dims):
    """Dimensions reordered: ``x.permute(2, 0, 1)``."""
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    ndim = input._data.ndim
    dims = tuple(_normalize_dim(d, ndim, "permute") for d in dims)
    if sorted(dims) != list(range(ndim)):
        raise RuntimeError(f"permute: dims {dims} are not a permutation of the {ndim} dimensions")
    return _permute(input, dims, "PermuteBackward0")


def transpose(input, dim0, dim1):
    """Dimensions ``dim0`` and ``dim1`` swapped."""
    ndim = input._data.ndim
    dims = list(range(ndim))
    d0, d1 = _normalize_dim(dim0, ndim, "transpose"), _normalize_dim(dim1, ndim, "transpose")
    if not ndim:
        return input
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _permute(input, tuple(dims), "TransposeBackward0")


def t(input):
    """Transpose of a matrix (tensors of up to 2 dimensions)."""
    if input._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input._data.ndim}D")
    if input._data.ndim < 2:
        return input
    return _permute(input, (1, 0), "TBackward0")


def _T(self):
    return _permute(self, tuple(range(self._data.ndim))[::-1], "PermuteBackward0") if self._data.ndim >= 2 else self


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


def sum(input, dim=None, keepdim=False, dtype=None):
    """Sum of all elements, or over ``dim`` (int or tuple); integers sum to int64."""
    data = input._data
    if dim is None and dtype is None and data.dtype.kind == "f":
        return _apply(SUM, (input,), (data,), (1.0,), np.empty((), data.dtype))
    if dtype is not None:
        input = _to(input, dtype)
    elif not input.dtype.is_floating_point:
        input = _to_dtype(input, dtypes.int64)
    return _reduce(input, dim, keepdim, lambda n: 1.0, "sum", _SUM_NODES)


_MEAN_NODE = node_class("MeanBackward0")


def mean(input, dim=None, keepdim=False, dtype=None):
    """Mean of all elements, or over ``dim``; NaN for an empty reduction."""
    data = input._data
    if dim is None and dtype is None and data.dtype.kind == "f" and data.size:
        return _apply(SUM, (input,), (data,), (1.0 / data.size,), np.empty((), data.dtype), _MEAN_NODE)
    if dtype is not None:
        input = _to(input, dtype)
    if not input.dtype.is_floating_point:
        raise RuntimeError(
            "mean(): could not infer output dtype. Input dtype must be either a floating point or "
            f"complex dtype. Got: {input.dtype.name}"
        )

    names = (node_class("MeanBackward0"), node_class("MeanBackward1"))
    return _reduce(input, dim, keepdim, lambda n: 1.0 / n if n else math.nan, "mean", names)


def norm(input, p="fro", dim=None, keepdim=False):
    """2-norm of all elements (or over ``dim``): sqrt(sum(x * x))."""
    if p not in ("fro", 2, 2.0):
        raise NotImplementedError(f"norm: p={p!r} is not supported yet (only the 2-norm)")
    x = _float_input(input)
    return sqrt(sum(mul(x, x), dim=dim, keepdim=keepdim))


# --- matrix products ----------------------------------------------------------

def _matmul_error(op, sa, sb):
    return RuntimeError(f"{op}: shapes {tuple(sa)} and {tuple(sb)} cannot be multiplied")


_GEMM = dict(zip((np.dtype(np.float32), np.dtype(np.float64)), blas.find_gemm()))


def matmul(input, other):
    """Matrix product with NumPy's rules: 1-D vectors, 2-D matrices, batches broadcast."""
    if type(input) is Tensor and type(other) is Tensor:  # fast path: two float matrices
        da, db = input._data, other._data
        if da.ndim == 2 and db.ndim == 2 and da.dtype == db.dtype and da.dtype.kind == "f":
            m, k = da.shape
            if k == db.shape[0]:
                n = db.shape[1]
                return _apply(MATMUL, (input, other), (da, db), (1, 1, m, k, n, _GEMM[da.dtype]),
                              np.empty((m, n), da.dtype))
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("matmul(): both arguments must be Tensors")
    dtype = dtypes.result_type(input, other)
    if not dtype.is_floating_point:
        raise RuntimeError(f"matmul: integer tensors are not supported (got {input.dtype!r} and {other.dtype!r})")
    a, b = _to_dtype(input, dtype), _to_dtype(other, dtype)
    sa, sb = a._data.shape, b._data.shape
    if not sa or not sb:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes {sa} and {sb}")
    k = sa[-1]
    if k != (sb[0] if len(sb) == 1 else sb[-2]):
        raise _matmul_error("matmul", sa, sb)
    n = 1 if len(sb) == 1 else sb[-1]
    name = "MmBackward0"
    if len(sa) == 1 and len(sb) == 1:
        name, m, batch_a, batch_b, out_shape = "DotBackward0", 1, 1, 1, ()
    elif len(sb) <= 2:  # a's batch folds into its rows: one matrix product
        m = math.prod(sa[:-1])
        batch_a = batch_b = 1
        out_shape = sa[:-1] + ((n,) if len(sb) == 2 else ())
        if len(sa) == 2 and len(sb) == 1:
            name = "MvBackward0"
    else:
        m = 1 if len(sa) == 1 else sa[-2]
        batch = _broadcast_shape(sa[:-2], sb[:-2], "matmul")
        batch_count = math.prod(batch)
        counts = []  # matrices held by each input: 1 (shared), the batch, or None (to expand)
        for data in (a._data, b._data):
            if data.ndim <= 2:
                counts.append(1)
            elif data.shape[:-2] == batch:
                counts.append(batch_count)
            else:
                counts.append(None)
        batch_a, batch_b = counts
        if batch_a is None:
            a = _expand(a, batch + sa[-2:])
            batch_a = batch_count
        if batch_b is None:
            b = _expand(b, batch + sb[-2:])
            batch_b = batch_count
        out_shape = batch + ((m,) if len(sa) > 1 else ()) + (n,)
        name = "BmmBackward0"

    out = np.empty(out_shape, dtype.numpy)
    return _apply(MATMUL, (a, b), (a._data, b._data), (batch_a, batch_b, m, k, n, _GEMM[a._data.dtype]), out,
                  node_class(name))


def _flat_contiguous(t):
    return t._data.reshape(-1)


def _expand(t, shape):
    """``t`` broadcast to ``shape`` as a differentiable copy: an add of zeros, whose backward
    sums the gradient back to ``t``'s shape (only batched matmuls with partly broadcast batches)."""
    zeros = _wrap(np.zeros(shape, t._data.dtype))
    return _tensor_binary(ADD, t, zeros)


def mm(input, mat2):
    """Product of two matrices (2-D only)."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(
            f"mm: both arguments must be matrices, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    if input.shape[1] != mat2.shape[0]:
        raise _matmul_error("mm", input.shape, mat2.shape)
    return matmul(input, mat2)


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


def all(input):
    """True when every element is nonzero (a 0-d bool tensor)."""
    return _wrap(np.array(ew.all_nonzero(_flat_contiguous(input))))


def any(input):
    """True when some element is nonzero (a 0-d bool tensor)."""
    return _wrap(np.array(ew.any_nonzero(_flat_contiguous(input))))


def equal(input, other):
    """True when both have the same shape and values."""
    return input.shape == other.shape and builtins.bool(all(eq(input, other)))


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
    for op in (ADD, SUB, MUL, DIV, POW):
        op.same_shape = _unrolled_binary(op)
    for name in ("neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "add", "sub", "mul", "div",
                 "true_divide", "divide", "pow", "clone", "contiguous", "reshape", "view", "flatten",
                 "permute", "transpose", "t", "sum", "mean", "norm", "matmul", "mm", "eq", "ne", "lt",
                 "le", "gt", "ge", "all", "any", "equal"):
        setattr(Tensor, name, globals()[name])
    Tensor.to = _to
    Tensor.float = lambda self: _to(self, dtypes.float32)
    Tensor.double = lambda self: _to(self, dtypes.float64)
    Tensor.long = lambda self: _to(self, dtypes.int64)
    Tensor.int = lambda self: _to(self, dtypes.int32)
    Tensor.bool = lambda self: _to(self, dtypes.bool_)
    Tensor.T = property(_T)
    Tensor.__neg__ = neg
    Tensor.__add__ = _operator(ADD, add)
    Tensor.__radd__ = _reflected(add)
    Tensor.__sub__ = _operator(SUB, sub)
    Tensor.__rsub__ = _reflected(sub)
    Tensor.__mul__ = _operator(MUL, mul)
    Tensor.__rmul__ = _reflected(mul)
    Tensor.__truediv__ = _operator(DIV, div)
    Tensor.__rtruediv__ = _reflected(div)
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
