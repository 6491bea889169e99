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
from ._tensor import Tensor, _contiguous, _int_sizes, _normalize_dim, _wrap
from .autograd import grad_mode, tape, versions
from .autograd.node import AccumulateGrad, node_class
from .autograd.registry import Swapped, _same, build, declare
from .kernels import blas, jit, linalg, movement, nn, reduce
from .kernels import elementwise as ew
from .kernels import tape as layout
from .kernels.tape import MAX_NDIM

# --- declarations: one per op ----------------------------------------------

def elementwise(name, grad_fn, fwd, bwd, **fields):
    """An op whose kernels work element by element on arrays of the output's size."""
    return declare(name, grad_fn, fwd, bwd, elementwise=True, **fields)


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

TO = elementwise("to", "ToCopyBackward0", ew.cast, (ew.cast_add,), cross_dtype=True)
CLONE = elementwise("clone", "CloneBackward0", ew.cast, (ew.identity_bwd,))
VIEW = declare("view", "ViewBackward0", None, (ew.identity_bwd,), keeps_shapes=True)
# copy_/fill_/zero_: the destination's old values get no gradient; x is broadcast to its shape.
COPY = elementwise("copy", "CopyBackwards", ew.cast, (ew.zero_bwd, ew.identity_bwd), inputs=("dst", "x"))
# x[index] = v: ``index`` holds flat positions of x; v is broadcast to the indexed region.
PUT = declare("put", "CopySlices", movement.put_fwd, (movement.put_bwd_x, movement.put_bwd_v), inputs=("x", "v"),
              arrays=(("index", "int64"),), saves=("index",), keeps_shapes=True)
# Permutations, expansions and basic indexing: elements read at offset + index . strides.
STRIDED = declare("strided", "PermuteBackward0", movement.strided_fwd, (movement.strided_bwd,),
                  ints=("offset",), shapes=("shape", "strides"), keeps_shapes=True)
TAKE = declare("take", "IndexBackward0", movement.take_fwd, (movement.take_bwd,),
               arrays=(("index", "int64"),), ints=("inner",), saves=("index",), keeps_shapes=True)
# Their transposes, the backward of a strided read or of take as ops: what create_graph records.
STRIDED_SCATTER = declare("strided_scatter", "AsStridedScatterBackward0", movement.strided_bwd,
                          (movement.strided_take_add,), inputs=("g",), ints=("offset",), shapes=("shape", "strides"),
                          keeps_shapes=True)
INDEX_ADD = declare("index_add", "IndexPutBackward0", movement.take_bwd, (movement.take_add,), inputs=("g",),
                    arrays=(("index", "int64"),), ints=("inner",), saves=("index",), keeps_shapes=True)
# Concatenation: a row holds two inputs and the rest (a hidden cat row); the forward copies in Python's loop.
_CAT_NODES = {name: node_class(name, many_inputs=True) for name in ("CatBackward0", "StackBackward0")}
CAT = declare("cat", "CatBackward0", None, (movement.cat_bwd_a, movement.cat_bwd_b, movement.cat_bwd_rest),
              inputs=("a", "b", "rest"), ints=("outer", "size_a", "size_b", "size_rest"))

SUM = declare("sum", "SumBackward0", reduce.sum_all_fwd, (reduce.sum_all_bwd,), floats=("scale",), keeps_shapes=True)
SUM_DIMS = declare("sum_dims", "SumBackward1", movement.reduce_fwd, (movement.reduce_bwd,),
                   floats=("scale",), shapes=("shape", "strides"))
# The caller gets a copy of the indices (the backward indexes with the graph's own); the row also
# saves that copy, unread, so that an in-place change to it is refused as PyTorch refuses it.
SELECT = declare("select", "MaxBackward0", reduce.select_fwd, (reduce.select_bwd,),
                 arrays=(("indices", "int64"), ("caller_indices", "int64")), ints=("outer", "n", "inner", "largest"),
                 saves=("indices", "caller_indices"), keeps_shapes=True)
MATMUL = declare("matmul", "MmBackward0", linalg.matmul_fwd, (linalg.matmul_bwd_a, linalg.matmul_bwd_b),
                 inputs=("a", "b"), ints=("batch_a", "batch_b", "m", "k", "n", "gemm"), saves=("a", "b"))
# threads_from: jit.ELEMENTWISE_LIGHT_THREADS_FROM, when the bias passes go to threads (an argument, so
# that the compiled kernels do not depend on the BLAS the process chose).
LINEAR = declare("linear", "AddmmBackward0", linalg.linear_fwd,
                 (linalg.linear_bwd_x, linalg.linear_bwd_w, linalg.linear_bwd_b), inputs=("x", "w", "b"),
                 ints=("m", "k", "n", "gemm", "threads_from"), saves=("x", "w"))
# x + b where b matches x's trailing dimensions (``x @ w + b``): AddBackward0 as PyTorch, in one pass.
BIAS_ADD = declare("bias_add", "AddBackward0", linalg.bias_add_fwd, (ew.identity_bwd, linalg.linear_bwd_b),
                   inputs=("x", "b"), ints=("m", "n", "threads_from"), keeps_shapes=True)
SOFTMAX = declare("softmax", "SoftmaxBackward0", nn.softmax_fwd, (nn.softmax_bwd,),
                  ints=("outer", "n", "inner", "take_log"), saves=("out",))
LOG_SOFTMAX = declare("log_softmax", "LogSoftmaxBackward0", nn.softmax_fwd, (nn.softmax_bwd,),
                      ints=("outer", "n", "inner", "take_log"), saves=("out",))
# nll_loss and cross_entropy index with a copy of the caller's target; they also save the caller's
# own, unread, so that an in-place change to it is refused as PyTorch refuses it.
NLL_LOSS = declare("nll_loss", "NllLossBackward0", nn.nll_fwd, (nn.nll_bwd,),
                   arrays=(("target", "int64"), ("weight", None), ("caller_target", "int64")),
                   ints=("n", "inner", "ignore_index", "reduction"), saves=("target", "weight", "caller_target"),
                   keeps_shapes=True)
# log_softmax and nll_loss in one node for (N, C) logits and class indices (F.cross_entropy's
# common case): the softmax it saves is the gradient but for the target's 1, so its backward
# needs no exp. The node is named as PyTorch's last one. It saves no logits (they may change
# in place afterwards, as PyTorch allows): create_graph works from the softmax.
CROSS_ENTROPY = declare("cross_entropy", "NllLossBackward0", nn.cross_entropy_fwd, (nn.cross_entropy_bwd,),
                        arrays=(("target", "int64"), ("prob", None), ("caller_target", "int64")),
                        ints=("n", "ignore_index", "reduction"), saves=("target", "prob", "caller_target"))
MSE_LOSS = declare("mse_loss", "MseLossBackward0", nn.mse_fwd, (nn.mse_bwd, Swapped(nn.mse_bwd)), inputs=("a", "b"),
                   ints=("reduction",), saves=("a", "b"))

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
            forward = op.forward if out.size < op.parallel_from[0] else op.forward_parallel
            try:
                forward(*arrays, *params, out, _row_addresses[r], *rows[:len(arrays)])
            except BaseException:
                _give_back_row(node)
                raise
            pick = op.pick_saved
            if pick is not None:
                _saved[r] = pick(arrays) if pick is _same else pick(arrays + params + (out,))
            if op.keeps_shapes:  # for create_graph: what neither the output nor a saved input tells
                node._shapes = tuple([a.shape for a in arrays])
            return _wrap(out, node)
    forward = op.forward if out.size < op.parallel_from[0] else op.forward_parallel
    forward(*arrays, *params, out, 0, *_NO_ROWS[len(arrays)])
    return _wrap(out)


_NO_ROWS = (None, (-1,), (-1, -1), (-1, -1, -1))  # by number of inputs


def _give_back_row(node):
    """A forward failed: its row goes back to the free list now (the node, which a traceback may
    keep alive, no longer owns it)."""
    r = node._row
    del node._row
    _saved[r] = None
    tape.free_rows.append(r)


def _unrolled_binary(op):
    """``_apply`` unrolled for ``op`` on two like tensors, with the op's fields bound as locals:
    this path is a third faster than the general one, and it is what small models run."""
    serial = op.forward
    parallel = op.forward_parallel
    parallel_from = op.parallel_from[0]
    node_class = op.node_class
    pick = op.pick_saved
    new = object.__new__

    def run(a, b, da, db):
        out = np.empty_like(da)
        forward = serial if out.size < parallel_from else parallel
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
            try:
                forward(da, db, out, _row_addresses[r], na._row if ra else -1, nb._row if rb else -1)
            except BaseException:
                _give_back_row(node)
                raise
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


def _not_a_tensor(name, value):
    """The TypeError for a function of nbgrad called on something that is not a Tensor."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not {type(value).__name__}")


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

def _broadcast_shape(a, b, op):
    ndim = builtins.max(len(a), len(b))
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
    if op is ADD and node_class is None and 0 < db.ndim <= da.ndim <= MAX_NDIM and da.size and (
            da.shape[da.ndim - db.ndim:] == db.shape):  # a bias: no broadcast copy of b
        return _apply(BIAS_ADD, (a, b), (da, db), (da.size // db.size, db.size, _THREADS_FROM),
                      np.empty(da.shape, numpy_dtype))
    shape, plans = _binary_broadcast(da.shape, db.shape, op.name)
    return _apply_broadcast(op, (a, b), plans, (), np.empty(shape, numpy_dtype), node_class)


def _apply_broadcast(op, inputs, plans, params, out, node_class=None):
    """``_apply`` with each input broadcast by its plan (None: it has the output's shape)."""
    scratch = not op.saves
    arrays = [t._data for t in inputs]
    for i, plan in enumerate(plans):
        if plan is not None:
            arrays[i] = _broadcast_input(arrays[i], plan, i, scratch)
    result = _apply(op, inputs, tuple(arrays), params, out, node_class)
    node = result._node
    if node is not None:  # the executor sums these inputs' gradients back to their shapes
        node._shapes = tuple([t._data.shape for t in inputs])
        r = node._row
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
    if type(input) is not Tensor:
        _not_a_tensor("clone", input)
    data = input._data
    return _apply(CLONE, (input,), (data,), (), np.empty(data.shape, data.dtype))


def contiguous(input):
    """The tensor itself: nbgrad tensors are always C-contiguous."""
    if type(input) is not Tensor:
        _not_a_tensor("contiguous", input)
    return input


def _infer_shape(shape, numel, op):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = _int_sizes(shape, op, "shape")
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
    if type(input) is not Tensor:
        _not_a_tensor("reshape", input)
    data = input._data
    shape = _infer_shape(shape, data.size, "reshape")
    out = data.reshape(shape)
    versions.mark_viewed(data)
    return _apply(VIEW, (input,), (data,), (), out)


def view(input, *shape):
    """``reshape`` that never copies: the input must be contiguous."""
    return reshape(input, *shape)  # nbgrad tensors are always contiguous


def flatten(input, start_dim=0, end_dim=-1):
    if type(input) is not Tensor:
        _not_a_tensor("flatten", input)
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

    return _apply(STRIDED, (input,), (data,), (0, shape, strides), out, node_class(node_name))


def permute(input, *dims):
    """Dimensions reordered: ``x.permute(2, 0, 1)``."""
    if type(input) is not Tensor:
        _not_a_tensor("permute", input)
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    ndim = input._data.ndim
    dims = tuple(_normalize_dim(d, ndim, "permute") for d in dims)
    if sorted(dims) != list(range(ndim)):
        raise RuntimeError(f"permute: dims {dims} are not a permutation of the {ndim} dimensions")
    return _permute(input, dims, "PermuteBackward0")


def transpose(input, dim0, dim1):
    """Dimensions ``dim0`` and ``dim1`` swapped."""
    if type(input) is not Tensor:
        _not_a_tensor("transpose", input)
    ndim = input._data.ndim
    dims = list(range(ndim))
    d0, d1 = _normalize_dim(dim0, ndim, "transpose"), _normalize_dim(dim1, ndim, "transpose")
    if not ndim:
        return input
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _permute(input, tuple(dims), "TransposeBackward0")


def t(input):
    """Transpose of a matrix (tensors of up to 2 dimensions)."""
    if type(input) is not Tensor:
        _not_a_tensor("t", input)
    if input._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input._data.ndim}D")
    if input._data.ndim < 2:
        return input
    return _permute(input, (1, 0), "TBackward0")


def _T(self):
    return _permute(self, tuple(range(self._data.ndim))[::-1], "PermuteBackward0") if self._data.ndim >= 2 else self


def _view_as(input, shape, node_name):
    """``input``'s storage in another shape (the same elements in the same order)."""
    data = input._data
    versions.mark_viewed(data)
    return _apply(VIEW, (input,), (data,), (), data.reshape(shape), node_class(node_name))


def unsqueeze(input, dim):
    """A new dimension of size 1 at ``dim``."""
    if type(input) is not Tensor:
        _not_a_tensor("unsqueeze", input)
    shape = input._data.shape
    d = _normalize_dim(dim, len(shape) + 1, "unsqueeze")
    return _view_as(input, shape[:d] + (1,) + shape[d:], "UnsqueezeBackward0")


def squeeze(input, dim=None):
    """Dimensions of size 1 removed: all of them, or those of ``dim`` (an int or a tuple)."""
    if type(input) is not Tensor:
        _not_a_tensor("squeeze", input)
    shape = input._data.shape
    if dim is None:
        return _view_as(input, tuple(n for n in shape if n != 1), "SqueezeBackward0")
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    dims = {_normalize_dim(d, len(shape), "squeeze") for d in dims} if shape else set()
    name = "SqueezeBackward1" if isinstance(dim, int) else "SqueezeBackward2"
    return _view_as(input, tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1)), name)


def _expand(input, shape, node_name="ExpandBackward0"):
    """``input`` broadcast to ``shape`` as a copy; the backward sums the gradient back."""
    data = input._data
    _check_ndim(len(shape), "expand")
    big, strides = _broadcast_plan(data.shape, shape)
    return _apply(STRIDED, (input,), (data,), (0, big, strides), np.empty(shape, data.dtype), node_class(node_name))


def expand(input, *sizes):
    """``input`` repeated along its size-1 dimensions (and new leading ones); -1 keeps a size."""
    if type(input) is not Tensor:
        _not_a_tensor("expand", input)
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    shape = input._data.shape
    if len(sizes) < len(shape):
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal to "
                           f"the number of dimensions in the tensor ({len(shape)})")
    aligned = (None,) * (len(sizes) - len(shape)) + shape
    target = []
    for i, (want, have) in enumerate(zip(sizes, aligned)):
        want = _int_sizes((want,), "expand")[0]
        if want == -1:
            if have is None:
                raise RuntimeError(f"expand: -1 is not allowed in a leading, non-existing dimension {i}")
            want = have
        elif have is not None and have != 1 and want != have:
            raise RuntimeError(f"The expanded size of the tensor ({want}) must match the existing size ({have}) at "
                               f"non-singleton dimension {i}.  Target sizes: {list(sizes)}.  "
                               f"Tensor sizes: {list(shape)}")
        target.append(want)
    return _expand(input, tuple(target))


def expand_as(input, other):
    return expand(input, other.shape)


_CAT_REST = node_class("CatBackward0Rest")  # the hidden rows of a cat with more than two inputs


def strided_scatter(g, offset, shape, strides, size):
    """A flat tensor of ``size`` zeros with ``g`` added at ``offset`` + index . ``strides``:
    the gradient of a strided read (permute, expand, slice), itself differentiable."""
    shape, strides = np.asarray(shape, np.int64), np.asarray(strides, np.int64)
    return _apply(STRIDED_SCATTER, (g,), (g._data,), (offset, shape, strides), np.zeros(size, g._data.dtype))


def index_add(g, index, inner, size):
    """A flat tensor of ``size`` zeros with block i of ``g`` (``inner`` elements) added at block
    ``index[i]``: the gradient of take (integer-array indexing), itself differentiable."""
    return _apply(INDEX_ADD, (g,), (g._data,), (np.ascontiguousarray(index, np.int64).reshape(-1), inner),
                  np.zeros(size, g._data.dtype))


def _concatenate(tensors, outer, blocks, shape, node_name):
    """Each tensor's rows of ``blocks[i]`` elements placed side by side in ``outer`` rows."""
    dtype = tensors[0]._data.dtype
    out = np.empty(shape, dtype)
    flat = out.reshape(-1)
    total = builtins.sum(blocks)
    offset = 0
    for t, size in zip(tensors, blocks):
        movement.copy_block(t._data.reshape(-1), outer, offset, total, flat)
        offset += size
    if not (_state.enabled and builtins.any(t._requires_grad for t in tensors)):
        return _wrap(out)
    # Rows from the last pair to the first, each taking the rows after it as its third input.
    empty = np.empty(0, dtype)
    rest, rest_size = None, 0
    for i in range(len(tensors) - 1 - (len(tensors) - 1) % 2, -1, -2):
        a, b = tensors[i], (tensors[i + 1] if i + 1 < len(tensors) else None)
        size_a, size_b = blocks[i], (blocks[i + 1] if b is not None else 0)
        arrays = (empty, empty, empty)
        target = out if i == 0 else np.empty(outer * (size_a + size_b + rest_size), dtype)
        rest = _apply(CAT, (a, b, rest), arrays, (outer, size_a, size_b, rest_size), target,
                      _CAT_NODES[node_name] if i == 0 else _CAT_REST)
        rest_size += size_a + size_b
    if rest._node is not None:
        rest._node._parts = tuple(t._node if t._requires_grad else None for t in tensors)
        rest._node._shapes = tuple(t._data.shape for t in tensors)
    return rest


def _same_dtype(tensors, op):
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError(f"{op}(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}(): expected a sequence of Tensors, but element {i} is {type(t).__name__}")
    dtype = dtypes.result_type(*tensors)
    return [_to_dtype(t, dtype) for t in tensors]


def cat(tensors, dim=0):
    """Tensors joined along an existing dimension ``dim``; all other sizes must match."""
    tensors = _same_dtype(tensors, "cat")
    first = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if not t._data.ndim:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    d = _normalize_dim(dim, len(first), "cat")
    for i, t in enumerate(tensors):
        shape = t._data.shape
        if len(shape) != len(first):
            raise RuntimeError(f"cat: tensors must have the same number of dimensions: got {len(first)} and "
                               f"{len(shape)} (tensor number {i} in the list)")
        for k, (want, have) in enumerate(zip(first, shape)):
            if k != d and want != have:
                raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}. Expected size "
                                   f"{want} but got size {have} for tensor number {i} in the list.")
    shape = first[:d] + (builtins.sum(t._data.shape[d] for t in tensors),) + first[d + 1:]
    blocks = [math.prod(t._data.shape[d:]) for t in tensors]
    return _concatenate(tensors, math.prod(first[:d]), blocks, shape, "CatBackward0")


concat = concatenate = cat


def stack(tensors, dim=0):
    """Tensors of one shape joined along a new dimension ``dim``."""
    tensors = _same_dtype(tensors, "stack")
    first = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != first:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {list(first)} at entry 0 "
                               f"and {list(t._data.shape)} at entry {i}")
    d = _normalize_dim(dim, len(first) + 1, "stack")
    shape = first[:d] + (len(tensors),) + first[d:]
    return _concatenate(tensors, math.prod(first[:d]), [math.prod(first[d:])] * len(tensors), shape,
                        "StackBackward0")


# --- indexing -----------------------------------------------------------------

def _index_part(part):
    """One entry of an index as NumPy reads it: tensors and lists become arrays."""
    if isinstance(part, Tensor):
        data = part._data
        if data.dtype.kind not in "biu":
            raise IndexError(f"tensors used as indices must be long, int or bool tensors, not {part.dtype!r}")
        return data
    if isinstance(part, (list, np.ndarray)):
        array = np.asarray(part)
        if array.dtype.kind not in "biu" and array.size:
            raise IndexError(f"arrays used as indices must be of integer or boolean type, not {array.dtype}")
        return array.astype(np.int64) if array.dtype.kind != "b" else array
    if isinstance(part, slice) and part.step is not None and part.step <= 0:
        raise ValueError("step must be greater than zero")
    return part


def _positions(data, parts, index):
    """The flat positions of ``data`` that ``data[parts]`` reads, in the result's shape."""
    try:
        return np.arange(data.size, dtype=np.int64).reshape(data.shape)[parts]
    except IndexError as exc:
        raise IndexError(f"index {index!r} on a tensor of shape {tuple(data.shape)}: {exc}") from None


def _getitem(self, index):
    """``x[index]``: ints, slices, None and Ellipsis read a strided copy; integer and boolean
    arrays gather (their backward scatter-adds, so repeated indices accumulate)."""
    parts = tuple(_index_part(p) for p in (index if isinstance(index, tuple) else (index,)))
    data = self._data
    advanced = builtins.any(isinstance(p, (np.ndarray, builtins.bool)) for p in parts)
    if not advanced:
        try:  # a trailing Ellipsis makes an all-int index give a 0-d view, not a NumPy scalar copy
            picked = data[parts if builtins.any(p is Ellipsis for p in parts) else parts + (Ellipsis,)]
        except IndexError as exc:
            raise IndexError(f"index {index!r} on a tensor of shape {tuple(data.shape)}: {exc}") from None
        _check_ndim(picked.ndim, "index")
        offset = 0
        if picked.size:
            offset = (picked.__array_interface__["data"][0] - data.__array_interface__["data"][0]) // data.itemsize
        strides = np.array(picked.strides, np.int64) // data.itemsize
        kinds = {type(p) for p in parts}
        name = ("SelectBackward0" if kinds - {slice, type(None), type(Ellipsis)} else
                "SliceBackward0" if slice in kinds else "UnsqueezeBackward0" if type(None) in kinds else
                "AliasBackward0")
        return _apply(STRIDED, (self,), (data,), (offset, np.array(picked.shape, np.int64), strides),
                      np.empty(picked.shape, data.dtype), node_class(name))
    first = parts[0]
    if (isinstance(first, np.ndarray) and first.dtype.kind != "b" and data.ndim
            and builtins.all(isinstance(p, slice) and p == slice(None) for p in parts[1:])):
        n = data.shape[0]  # the common x[indices]: whole rows gathered
        index = np.where(first < 0, first + n, first).reshape(-1)  # the graph's own copy, checked
        if index.size and (index.min() < 0 or index.max() >= n):
            bad = first.reshape(-1)[(index < 0) | (index >= n)][0]
            raise IndexError(f"index {bad} is out of bounds for dimension 0 with size {n}")
        inner = math.prod(data.shape[1:])
        shape = first.shape + data.shape[1:]
    else:
        positions = _positions(data, parts, index)
        index, inner, shape = positions.reshape(-1), 1, positions.shape
    _check_ndim(len(shape), "index")
    return _apply(TAKE, (self,), (data,), (np.ascontiguousarray(index, np.int64), inner),
                  np.empty(shape, data.dtype))


# --- in-place ops -------------------------------------------------------------

LEAF_IN_PLACE = "a leaf Variable that requires grad is being used in an in-place operation."
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}


def _private_copy(t):
    """``t`` over a copy of its values, in the same place of the graph."""
    copy = _wrap(t._data.copy(), t._node)
    copy._requires_grad = t._requires_grad
    return copy


def _in_place(self, name, compute, *operands):
    """``self`` becomes ``compute(self, *operands)``, computed out of place by the op's kernels and
    written into self's storage (views and NumPy arrays over it see the change); returns self.

    When the result is recorded, the new node reads private copies of the operands that live in
    self's storage (its backward may need the old values); rows saved earlier from that storage
    are flagged by the version bump, so backward through them raises instead of using new values.
    """
    if not isinstance(self, Tensor):
        raise TypeError(f"{name}(): expected a Tensor, got {type(self).__name__}")
    data = self._data
    if not data.flags.writeable:
        raise RuntimeError(f"{name}(): the tensor's memory is read-only (from_numpy of a non-writable array); "
                           "clone() it first")
    recording = _state.enabled and (
        self._requires_grad or builtins.any(isinstance(t, Tensor) and t._requires_grad for t in operands))
    if recording:
        if self._requires_grad and type(self._node) is AccumulateGrad:
            raise RuntimeError(LEAF_IN_PLACE)
        if versions.viewed(data):
            raise RuntimeError(
                f"{name}: in-place change of a tensor whose storage is shared with a view (view, reshape, "
                "flatten, squeeze, unsqueeze) while gradients are recorded is not supported: the view's "
                "gradient would be wrong; clone() the tensor first or use the out-of-place op")
        self_ = _private_copy(self)
        operands = tuple(_private_copy(t) if isinstance(t, Tensor) and versions.shares_storage(t._data, data) else t
                         for t in operands)
    else:
        self_ = self
    result = compute(self_, *operands)
    values = result._data
    if values.shape != data.shape:
        raise RuntimeError(f"{name}: output with shape {list(data.shape)} doesn't match the broadcast shape "
                           f"{list(values.shape)}")
    if _KIND_RANK[values.dtype.kind] > _KIND_RANK[data.dtype.kind]:
        raise RuntimeError(f"{name}: result type {result.dtype} can't be cast to the desired output type {self.dtype}")
    if values.dtype != data.dtype:
        result = _to_dtype(result, self.dtype)
    versions.bump(data)
    np.copyto(data, result._data)
    if recording:
        retained = type(self._node) is not AccumulateGrad and getattr(self._node, "_grad_buffer", None) is not None
        self._node = result._node
        self._requires_grad = True
        if retained:  # retain_grad() belongs to the tensor, as in PyTorch: its new node keeps it
            self.retain_grad()
    return self


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


def _copy_into(dst, source, name, node_name):
    """A tensor of ``dst``'s shape and dtype holding ``source`` broadcast (the out-of-place copy_)."""
    source = _as_tensor(source, name)
    shape = dst._data.shape
    if source._data.shape != shape and _broadcast_shape(source._data.shape, shape, name) != shape:
        raise RuntimeError(f"{name}: the source of shape {list(source.shape)} cannot be broadcast to the "
                           f"destination's shape {list(shape)}")
    source = _to_dtype(source, dtypes.from_numpy_dtype(dst._data.dtype))
    plan = None if source._data.shape == shape else _broadcast_plan(source._data.shape, shape) + (dst._data.size,)
    return _apply_broadcast(COPY, (dst, source), (None, plan), (), np.empty(shape, dst._data.dtype),
                            node_class(node_name))


def copy_(self, src):
    """Copy ``src``'s values (broadcast, converted to self's dtype) into self; differentiable to src."""
    return _in_place(self, "copy_", lambda x, y: _copy_into(x, y, "copy_", "CopyBackwards"), src)


def fill_(self, value):
    """Every element set to ``value`` (a number or a one-element tensor)."""
    if isinstance(value, Tensor) and value._data.ndim:
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor with "
                           f"{value._data.ndim} dimensions.")
    return _in_place(self, "fill_", lambda x, y: _copy_into(x, y, "fill_", "FillBackward2"), value)


def zero_(self):
    return _in_place(self, "zero_", lambda x: _copy_into(x, 0, "zero_", "ZeroBackward0"))


def _setitem(self, index, value):
    """``x[index] = value``: ``value`` broadcast to the indexed region; differentiable to both."""
    parts = tuple(_index_part(p) for p in (index if isinstance(index, tuple) else (index,)))
    positions = _positions(self._data, parts, index)
    value = _as_tensor(value, "index_put_")
    region = positions.shape
    shape = value._data.shape
    while len(shape) > len(region) and shape[0] == 1:  # NumPy drops leading ones of the value
        shape = shape[1:]
    fits = len(shape) <= len(region) and builtins.all(
        n in (1, m) for n, m in zip(reversed(shape), reversed(region)))
    if not fits:
        raise RuntimeError(f"shape mismatch: value tensor of shape {list(value.shape)} cannot be broadcast to "
                           f"indexing result of shape {list(region)}")
    plan = None if shape == region else _broadcast_plan(shape, region) + (positions.size,)
    flat = np.ascontiguousarray(positions.reshape(-1), np.int64)

    def put(x, v):
        v = _to_dtype(v, dtypes.from_numpy_dtype(x._data.dtype))
        return _apply_broadcast(PUT, (x, v), (None, plan), (flat,), np.empty(x._data.shape, x._data.dtype))

    _in_place(self, "index_put_", put, value)


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
    if type(input) is not Tensor:
        _not_a_tensor("sum", input)
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
    if type(input) is not Tensor:
        _not_a_tensor("mean", input)
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
        SELECT.forward(data.reshape(-1), *params, out, 0, -1)
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


def _softmax_like(op, input, dim, dtype, name):
    take_log = int(op is LOG_SOFTMAX)
    if dim is None:  # PyTorch's implicit choice (it warns): the first dim of 0-, 1- and 3-d inputs, else the second
        dim = 0 if input.ndim in (0, 1, 3) else 1
    x = _float_input(input if dtype is None else _to(input, dtype))
    data = x._data
    shape = data.shape or (1,)
    outer, n, inner = _middle(shape, _normalize_dim(dim, len(shape), name))
    return _apply(op, (x,), (data,), (outer, n, inner, take_log), np.empty(data.shape, data.dtype))


def softmax(input, dim=None, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim``, exact for logits of any size."""
    if type(input) is not Tensor:
        _not_a_tensor("softmax", input)
    return _softmax_like(SOFTMAX, input, dim, dtype, "softmax")


def log_softmax(input, dim=None, dtype=None):
    """log(softmax(x)) along ``dim``, computed without forming softmax (no -inf for tiny probabilities)."""
    if type(input) is not Tensor:
        _not_a_tensor("log_softmax", input)
    return _softmax_like(LOG_SOFTMAX, input, dim, dtype, "log_softmax")


# --- matrix products ----------------------------------------------------------

def _matmul_error(op, sa, sb):
    return RuntimeError(f"{op}: shapes {tuple(sa)} and {tuple(sb)} cannot be multiplied")


BLAS = blas.find_blas()  # chosen once, at the first use of nbgrad (NBGRAD_BLAS decides when set)
_THREADS_FROM = jit.ELEMENTWISE_LIGHT_THREADS_FROM
_GEMM = {dtype: BLAS.table(dtype) for dtype in (np.dtype(np.float32), np.dtype(np.float64))}


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


def mm(input, mat2):
    """Product of two matrices (2-D only)."""
    if type(input) is not Tensor:
        _not_a_tensor("mm", input)
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
                 "permute", "transpose", "t", "sum", "mean", "norm", "matmul", "mm", "eq", "ne", "lt",
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
