"""Dtype conversions, copies, views, concatenation, indexing and in-place writes: the ops whose
kernels are in ``kernels/movement.py`` (the casts and the view's backward are ``kernels/elementwise.py``'s).
"""
import builtins
import math

import numpy as np

from .. import devices, dtypes
from .._tensor import Tensor, _int_sizes, _normalize_dim, _wrap
from ..autograd import versions
from ..autograd.node import AccumulateGrad, node_class
from ..autograd.registry import declare
from ..kernels import elementwise as ew
from ..kernels import movement
from .core import (
    _apply,
    _apply_broadcast,
    _as_tensor,
    _broadcast_plan,
    _broadcast_shape,
    _check_ndim,
    _not_a_tensor,
    _state,
    elementwise,
)

# --- declarations -----------------------------------------------------------

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


# --- dtype, copies, views ---------------------------------------------------

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


def _to(self, *args, dtype=None, device=None, copy=False, non_blocking=False, memory_format=None):
    """``x.to(dtype)``, ``x.to(device)``, ``x.to(device, dtype)``, ``x.to(other)`` (its dtype): the
    tensor itself when nothing changes (unless ``copy``); a device other than the CPU is refused."""
    for a in args:
        if isinstance(a, Tensor):
            dtype = a.dtype
        elif isinstance(a, (str, devices.device)):
            device = a
        else:
            dtype = a
    devices.check(device, "to()")
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
