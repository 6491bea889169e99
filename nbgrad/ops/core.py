"""The recording core every op family shares: ``_apply`` (run an op's compiled forward and
record its node), its unrolled form for two like tensors, the checks and conversions of
arguments, and broadcasting. The families (elementwise, movement, reduce, linalg, nn, named
like their kernels' files) declare their ops and write their Python functions over it.
"""
import builtins
import math
import numbers
import threading

import numpy as np

from .. import dtypes
from .._tensor import Tensor, _address, _contiguous, _wrap
from ..autograd import grad_mode, tape, versions
from ..autograd.registry import _same, declare
from ..compiler import recording
from ..kernels import movement
from ..kernels import tape as layout
from ..kernels.tape import MAX_NDIM

# --- declarations: each family declares its ops; this helper is shared -----

def elementwise(name, grad_fn, fwd, bwd, **fields):
    """An op whose kernels work element by element on arrays of the output's size."""
    return declare(name, grad_fn, fwd, bwd, elementwise=True, **fields)


# --- the recording core -----------------------------------------------------
_state = grad_mode.state
_chunks = tape.chunks
_row_addresses = tape.row_addresses
_saved = tape.saved
_alloc_row = tape.alloc_row
_free_rows_pop = tape.free_rows.pop
_SHIFT = tape.CHUNK_SHIFT
_MASK = tape.CHUNK_MASK


def _contiguous_data(data):
    """``data`` as kernels read it: itself when C-contiguous, else a contiguous copy made by one
    compiled kernel (a strided view at an op's entry). The copy is the view's shadow: rows that
    save it are refused once the view's storage changes in place (``versions.shadow``)."""
    if data.flags.c_contiguous:
        return data
    out = np.empty(data.shape, data.dtype)
    shape = np.array(data.shape, np.int64)
    strides = np.array(data.strides, np.int64) // data.itemsize  # none negative (see from_numpy)
    span = 1 + int(((shape - 1) * strides).sum()) if data.size else 0
    if span:
        movement.copy_strided(_address(data), span, shape, strides, out)
    versions.shadow(out, data)
    if recording.active is not None:
        recording.active.copied(data, out, span, shape, strides)
    return out


def _strided_view(data, offset, shape, strides):
    """A NumPy view of ``data``'s memory: ``offset`` bytes from its first element, then ``strides``
    (bytes). Made over the storage's owner, so that NumPy checks the bounds and the version
    counter follows it."""
    root = versions._root(data)
    try:
        return np.ndarray(shape, data.dtype, buffer=root, offset=_address(data) - _address(root) + offset,
                          strides=strides)
    except (TypeError, ValueError, BufferError):  # an owner that is itself strided (from_numpy)
        interface = dict(data.__array_interface__, data=(_address(data) + offset, not data.flags.writeable),
                         shape=tuple(shape), strides=tuple(strides))
        return np.asarray(_Interface(interface, data))


class _Interface:
    """What np.asarray makes a view of (as np.lib.stride_tricks does); ``base`` keeps the memory."""

    def __init__(self, interface, base):
        self.__array_interface__ = interface
        self.base = base


def _dense_block(data):
    """The elements of ``data`` as a flat array in memory order, when they fill a block of memory
    exactly (a permutation of a C-contiguous array: a transpose); None when it has gaps or repeats.
    Whole reductions read it instead of a copy in C order."""
    expected = data.itemsize
    for stride, n in sorted((s, n) for s, n in zip(data.strides, data.shape) if n != 1):
        if stride != expected:
            return None
        expected *= n
    return _strided_view(data, 0, (data.size,), (data.itemsize,))


def _apply(op, inputs, arrays, params, out, node_class=None):
    """Run ``op`` on ``arrays``; record its node when grad mode is on and an input requires grad.

    ``inputs`` are the Tensors behind ``arrays`` (None for a Python scalar: it
    shows as ``(None, 0)`` in ``next_functions``); a strided view among ``arrays[:len(inputs)]``
    is copied to a contiguous buffer here (the kernels read flat buffers).
    Returns the result tensor over ``out``. This is every op's hot path: keep it lean.
    """
    count = len(inputs)
    if not (arrays[0].flags.c_contiguous and (count < 2 or inputs[1] is None or arrays[1].flags.c_contiguous)
            and (count < 3 or inputs[2] is None or arrays[2].flags.c_contiguous)):
        arrays = tuple(_contiguous_data(a) if k < count and inputs[k] is not None else a for k, a in enumerate(arrays))
    threads_from = op.parallel_from[0]  # threads for a big output or first input (a reduction's)
    forward = op.forward if out.size < threads_from and arrays[0].size < threads_from else op.forward_parallel
    if _state.enabled:
        n0 = n1 = n2 = None
        t = inputs[0]
        if t is not None and t._requires_grad:
            n0 = t._node
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
            if recording.active is not None:
                recording.active.forward(op, inputs, arrays, params, out, forward, r)
            return _wrap(out, node)
    forward(*arrays, *params, out, 0, *_NO_ROWS[len(arrays)])
    if recording.active is not None:
        recording.active.forward(op, inputs, arrays, params, out, forward, -1)
    return _wrap(out)


_NO_ROWS = (None, (-1,), (-1, -1), (-1, -1, -1))  # by number of inputs


def _record_view(op, input, out, geometry, node_class):
    """The node of ``out``, a view of ``input``'s storage whose values are already in place: a
    row of ``op`` (VIEW: the same elements in the same order; STRIDED: the input's elements at
    ``geometry`` = offset, shape, strides, in elements of the input's C order), no kernel run."""
    node = node_class()
    try:
        r = _free_rows_pop()
    except IndexError:
        r = _alloc_row()
    node._row = r
    node._arity = 1
    node._in0 = input._node
    node._in1 = node._in2 = None
    offset, shape, strides = geometry
    try:
        layout.record_view(_row_addresses[r], op.opcode, out.itemsize, out.size, input._node._row, offset, shape,
                           strides)
    except BaseException:
        _give_back_row(node)
        raise
    node._shapes = (input._data.shape,)
    return node


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
        if not (da.flags.c_contiguous and db.flags.c_contiguous):
            da, db = _contiguous_data(da), _contiguous_data(db)
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
            if recording.active is not None:
                recording.active.forward(op, (a, b), (da, db), (), out, forward, r)
            return t
        forward(da, db, out, 0, -1, -1)
        t._node = None
        t._requires_grad = False
        if recording.active is not None:
            recording.active.forward(op, (a, b), (da, db), (), out, forward, -1)
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


def _check_ndim(ndim, op):
    if ndim > MAX_NDIM:
        raise RuntimeError(f"{op}: nbgrad supports at most {MAX_NDIM} dimensions, got {ndim}")


# --- broadcasting -----------------------------------------------------------

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
    data = _contiguous_data(data)
    if plan is None:
        return data
    if recording.active is not None:
        recording.active.fail("a broadcast of a tensor to another shape")
    if scratch and plan[2] <= _SCRATCH_MAX:
        flat = _scratch(i, plan[2], data.dtype)
    else:
        flat = np.empty(plan[2], data.dtype)
    movement.gather(data.reshape(-1), plan[0], plan[1], flat)
    return flat


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
