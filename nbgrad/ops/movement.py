"""Dtype conversions, copies, views, concatenation, indexing and in-place writes: the ops whose
kernels are in ``kernels/movement.py`` (the casts and the view's backward are ``kernels/elementwise.py``'s).
"""
import builtins
import math

import numpy as np

from .. import devices, dtypes
from .._tensor import Tensor, _address, _int_sizes, _normalize_dim, _wrap
from ..autograd import versions
from ..autograd.node import AccumulateGrad, node_class
from ..autograd.registry import declare
from ..compiler import recording
from ..kernels import elementwise as ew
from ..kernels import movement
from ..kernels.tape import MAX_NDIM
from .core import (
    _apply,
    _apply_broadcast,
    _as_tensor,
    _broadcast_plan,
    _broadcast_shape,
    _check_ndim,
    _contiguous_data,
    _not_a_tensor,
    _record_view,
    _state,
    _strided_view,
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


def contiguous(input, memory_format=None):
    """The tensor itself when its elements lie in C order, else a contiguous copy (``CloneBackward0``)."""
    if not isinstance(input, Tensor):
        _not_a_tensor("contiguous", input)
    data = input._data
    if data.flags.c_contiguous:
        return input
    copy = _wrap(_contiguous_data(data))
    if _state.enabled and input._requires_grad:  # the gradient passes through unchanged
        copy._node = _record_view(VIEW, input, copy._data, _NO_GEOMETRY, _CLONE_NODE)
        copy._requires_grad = True
    if recording.active is not None:
        recording.active.view(input, copy._data, copy._node)
    return copy


# --- views: tensors over their input's storage ---------------------------------
#
# A view op returns a tensor over a NumPy view of its input's storage (no copy): writes through
# either reach the other, and both share one version counter (versions.py: one per storage).
# Its node reads the gradient back from the input's: VIEW (a reshape: the same elements in the
# same order) or STRIDED (the input's elements at an offset and strides, in the input's C order).
# The view knows its base, the first tensor of the storage (PyTorch's ``_base``), and the base
# knows its views: an in-place op on either rewrites the base's history (``_rebase``).

_NO_GEOMETRY = (0, np.zeros(0, np.int64), np.zeros(0, np.int64))
_CLONE_NODE = node_class("CloneBackward0")


def _geometry(data, out, make):
    """Offset, shape and strides of ``out = make(data)`` in elements of ``data``'s C order (what
    a STRIDED row reads the input's gradient with)."""
    if data.flags.c_contiguous:
        itemsize = data.itemsize
    else:  # the same view of a C-ordered stand-in of the shape (one byte an element, never read)
        data, out, itemsize = (stand_in := np.empty(data.shape, np.int8)), make(stand_in), 1
    offset = (_address(out) - _address(data)) // itemsize if out.size else 0
    return offset, np.array(out.shape, np.int64), np.array(out.strides, np.int64) // itemsize


def _view(input, make, node_name, op=None, geometry=None, multi=None):
    """A view of ``input``: a tensor over ``make(input._data)``, a NumPy view of its storage.

    ``op`` VIEW records a reshape; otherwise a STRIDED read at ``geometry`` (computed from
    ``make`` when not given). ``multi``: (name, index) of an output of unbind/split/chunk."""
    data = input._data
    out = make(data)
    if out.ndim > MAX_NDIM:
        _check_ndim(out.ndim, node_name.replace("Backward0", "").lower())
    t = _wrap(out)
    view_of = getattr(input, "_view_of", None)
    base = input if view_of is None else view_of[0]
    enabled = _state.enabled
    t._view_of = (base, multi, enabled)
    views = getattr(base, "_views", None)
    if views is None:
        views = base._views = []
    versions.append_weak(views, t)
    if enabled and input._requires_grad:
        if op is VIEW:
            geometry = _NO_GEOMETRY
        elif geometry is None:
            geometry = _geometry(data, out, make)
        t._node = _record_view(op or STRIDED, input, out, geometry, node_class(node_name))
        t._requires_grad = True
    if recording.active is not None:
        recording.active.view(input, out, t._node)
    return t


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


def _reshaped(data, shape):
    """``data`` in ``shape`` without a copy, or None where its strides do not allow it."""
    if data.flags.c_contiguous:
        return data.reshape(shape)
    try:
        return data.reshape(shape, copy=False)
    except ValueError:
        return None
    except TypeError:  # NumPy before 2.1: no copy=
        out = data.view()
        try:
            out.shape = shape
        except AttributeError:
            return None
        return out


def _reshape_view(input, shape, node_name):
    return _view(input, lambda data: _reshaped(data, shape), node_name, VIEW)


def reshape(input, *shape):
    """The same values in a new shape: a view when the strides allow it, else a copy."""
    if type(input) is not Tensor:
        _not_a_tensor("reshape", input)
    data = input._data
    shape = _infer_shape(shape, data.size, "reshape")
    if _reshaped(data, shape) is None:  # PyTorch's reshape of a view it cannot reshape: a copy
        copy = contiguous(input)
        return _view(copy, lambda data: data.reshape(shape), "UnsafeViewBackward0", VIEW)
    return _reshape_view(input, shape, "ViewBackward0" if data.flags.c_contiguous else "ReshapeAliasBackward0")


def view(input, *shape):
    """The same storage in a new shape (never a copy: the strides must allow it)."""
    if type(input) is not Tensor:
        _not_a_tensor("view", input)
    if len(shape) == 1 and isinstance(shape[0], dtypes.dtype):
        raise NotImplementedError("view(dtype) is not supported by nbgrad")
    shape = _infer_shape(shape, input._data.size, "view")
    if _reshaped(input._data, shape) is None:
        raise RuntimeError("view size is not compatible with input tensor's size and stride (at least one dimension "
                           "spans across two contiguous subspaces). Use .reshape(...) instead.")
    return _reshape_view(input, shape, "ViewBackward0")


def view_as(input, other):
    return view(input, other.shape)


def reshape_as(input, other):
    return reshape(input, other.shape)


def flatten(input, start_dim=0, end_dim=-1):
    if type(input) is not Tensor:
        _not_a_tensor("flatten", input)
    shape = input._data.shape
    if not shape:
        return reshape(input, 1)
    start = _normalize_dim(start_dim, len(shape), "flatten")
    end = _normalize_dim(end_dim, len(shape), "flatten")
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if start == end:
        return input
    return reshape(input, shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])


def _permute(input, dims, node_name):
    _check_ndim(input._data.ndim, node_name.replace("Backward0", "").lower())
    return _view(input, lambda data: data.transpose(dims), node_name)


def permute(input, *dims):
    """Dimensions reordered: ``x.permute(2, 0, 1)`` (a view)."""
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
    """Dimensions ``dim0`` and ``dim1`` swapped (a view)."""
    if type(input) is not Tensor:
        _not_a_tensor("transpose", input)
    ndim = input._data.ndim
    dims = list(range(ndim))
    d0, d1 = _normalize_dim(dim0, ndim, "transpose"), _normalize_dim(dim1, ndim, "transpose")
    if not ndim:
        return _reshape_view(input, (), "TransposeBackward0")
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return _permute(input, tuple(dims), "TransposeBackward0")


swapaxes = swapdims = transpose


def t(input):
    """Transpose of a matrix (tensors of up to 2 dimensions; a view)."""
    if type(input) is not Tensor:
        _not_a_tensor("t", input)
    if input._data.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input._data.ndim}D")
    if input._data.ndim < 2:
        return _reshape_view(input, input._data.shape, "TBackward0")
    return _permute(input, (1, 0), "TBackward0")


def _T(self):
    return _permute(self, tuple(range(self._data.ndim))[::-1], "PermuteBackward0") if self._data.ndim >= 2 else self


def _mT(self):
    if self._data.ndim < 2:
        raise RuntimeError(f"tensor.mT is only supported on matrices or batches of matrices. Got "
                           f"{self._data.ndim}-D tensor.")
    return transpose(self, -2, -1)


def unsqueeze(input, dim):
    """A new dimension of size 1 at ``dim`` (a view)."""
    if type(input) is not Tensor:
        _not_a_tensor("unsqueeze", input)
    shape = input._data.shape
    d = _normalize_dim(dim, len(shape) + 1, "unsqueeze")
    return _reshape_view(input, shape[:d] + (1,) + shape[d:], "UnsqueezeBackward0")


def squeeze(input, dim=None):
    """Dimensions of size 1 removed: all of them, or those of ``dim`` (an int or a tuple; a view)."""
    if type(input) is not Tensor:
        _not_a_tensor("squeeze", input)
    shape = input._data.shape
    if dim is None:
        return _reshape_view(input, tuple(n for n in shape if n != 1), "SqueezeBackward0")
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    dims = {_normalize_dim(d, len(shape), "squeeze") for d in dims} if shape else set()
    name = "SqueezeBackward1" if isinstance(dim, int) else "SqueezeBackward2"
    return _reshape_view(input, tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1)), name)


def _expand(input, shape, node_name="ExpandBackward0"):
    """``input`` broadcast to ``shape``: a view whose new and size-1 dimensions step 0."""
    data = input._data
    _check_ndim(len(shape), "expand")
    lead = len(shape) - data.ndim
    strides = [0] * lead + [0 if n != m else s for n, m, s in zip(data.shape, shape[lead:], data.strides)]
    big, logical = _broadcast_plan(data.shape, shape)
    return _view(input, lambda data: _strided_view(data, 0, shape, strides), node_name, geometry=(0, big, logical))


def expand(input, *sizes):
    """``input`` repeated along its size-1 dimensions (and new leading ones), as a view: the
    repeated elements are one in memory. -1 keeps a size."""
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


def _along(input, d, part, node_name, multi=None):
    """The view ``input[..., part, ...]`` with ``part`` (an index or a slice) at dimension ``d``."""
    key = (slice(None),) * d + (part, Ellipsis)
    return _view(input, lambda data: data[key], node_name, multi=multi)


def narrow(input, dim, start, length):
    """Elements ``start`` to ``start + length`` of dimension ``dim`` (a view)."""
    if not isinstance(input, Tensor):
        _not_a_tensor("narrow", input)
    shape = input._data.shape
    if not shape:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = _normalize_dim(dim, len(shape), "narrow")
    start, length = int(start), int(length)
    if start < 0:
        start += shape[d]
    if not 0 <= start <= shape[d] or length < 0 or start + length > shape[d]:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({shape[d]}).")
    return _along(input, d, slice(start, start + length), "SliceBackward0")


def select(input, dim, index):
    """Index ``index`` of dimension ``dim``, which goes away (a view)."""
    if not isinstance(input, Tensor):
        _not_a_tensor("select", input)
    shape = input._data.shape
    if not shape:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = _normalize_dim(dim, len(shape), "select")
    i = int(index)
    if not -shape[d] <= i < shape[d]:
        raise IndexError(f"select(): index {i} out of range for tensor of size {list(shape)} at dimension {d}")
    return _along(input, d, i % shape[d], "SelectBackward0")


def unbind(input, dim=0):
    """The slices along ``dim``, each a view."""
    if not isinstance(input, Tensor):
        _not_a_tensor("unbind", input)
    shape = input._data.shape
    if not shape:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = _normalize_dim(dim, len(shape), "unbind")
    return tuple(_along(input, d, i, "UnbindBackward0", ("Unbind", i)) for i in range(shape[d]))


def _split_at(input, sizes, d, node_name, name):
    views, start = [], 0
    for i, n in enumerate(sizes):
        views.append(_along(input, d, slice(start, start + n), node_name, (name, i)))
        start += n
    return tuple(views)


def split(input, split_size_or_sections, dim=0):
    """Pieces along ``dim`` (views): of ``split_size`` each (the last may be smaller), or of the
    sizes listed."""
    if not isinstance(input, Tensor):
        _not_a_tensor("split", input)
    shape = input._data.shape
    if not shape:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    d = _normalize_dim(dim, len(shape), "split")
    n = shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = _int_sizes(split_size_or_sections, "split_with_sizes", "split_sizes")
        if builtins.sum(sizes) != n or builtins.any(s < 0 for s in sizes):
            raise RuntimeError(f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size at "
                               f"dimension {d}), but got split_sizes={list(sizes)}")
        return _split_at(input, sizes, d, "SplitWithSizesBackward0", "SplitWithSizes")
    size = _int_sizes((split_size_or_sections,), "split", "split_size")[0]
    if size < 0 or (size == 0 and n):
        raise RuntimeError(f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}")
    sizes = [size] * (n // size) + ([n % size] if n % size else []) if size else [0]
    return _split_at(input, sizes, d, "SplitBackward0", "Split")


def chunk(input, chunks, dim=0):
    """``chunks`` pieces along ``dim`` or fewer (views), each of ceil(size / chunks) but the last."""
    if not isinstance(input, Tensor):
        _not_a_tensor("chunk", input)
    chunks = _int_sizes((chunks,), "chunk", "chunks")[0]
    if chunks <= 0:
        raise RuntimeError("chunk expects `chunks` to be greater than 0, got: " + str(chunks))
    shape = input._data.shape
    if not shape:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    d = _normalize_dim(dim, len(shape), "chunk")
    if not shape[d]:  # PyTorch: as many empty pieces as asked for
        return split(input, [0] * chunks, d)
    return split(input, -(-shape[d] // chunks), d)


def _diagonal_geometry(shape, strides, offset, d1, d2):
    """Start, shape and strides (in the units of ``strides``) of the diagonal ``offset`` of dims d1, d2."""
    start = offset * strides[d2] if offset >= 0 else -offset * strides[d1]
    length = max(0, min(shape[d1] - max(-offset, 0), shape[d2] - max(offset, 0)))
    keep = [i for i in range(len(shape)) if i not in (d1, d2)]
    return (start if length else 0, tuple(shape[i] for i in keep) + (length,),
            tuple(strides[i] for i in keep) + (strides[d1] + strides[d2],))


def diagonal(input, offset=0, dim1=0, dim2=1):
    """The diagonal ``offset`` of dimensions ``dim1`` and ``dim2``, as a last dimension (a view)."""
    if not isinstance(input, Tensor):
        _not_a_tensor("diagonal", input)
    shape = input._data.shape
    if len(shape) < 2:
        raise RuntimeError(f"diagonal(): expected a tensor of at least 2 dimensions, got {len(shape)}")
    d1, d2 = _normalize_dim(dim1, len(shape), "diagonal"), _normalize_dim(dim2, len(shape), "diagonal")
    if d1 == d2:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    offset = int(offset)
    start, new_shape, logical = _diagonal_geometry(shape, _contiguous_strides(shape), offset, d1, d2)

    def make(data):
        byte_start, _, strides = _diagonal_geometry(shape, data.strides, offset, d1, d2)
        return _strided_view(data, byte_start, new_shape, strides)

    return _view(input, make, "DiagonalBackward0",
                 geometry=(start, np.array(new_shape, np.int64), np.array(logical, np.int64)))


def unfold(input, dimension, size, step):
    """Every slice of ``size`` elements along ``dimension``, ``step`` apart, as a new last
    dimension (a view: overlapping slices share memory)."""
    if not isinstance(input, Tensor):
        _not_a_tensor("unfold", input)
    shape = input._data.shape
    d = _normalize_dim(dimension, len(shape), "unfold")
    n = shape[d] if shape else 1
    size, step = int(size), int(step)
    if size > n:
        raise RuntimeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if step <= 0:
        raise RuntimeError(f"step is {step} but must be > 0")

    def geometry(strides):
        if not shape:
            return (size,), (1,)
        stride = strides[d]
        new_shape = shape[:d] + ((n - size) // step + 1,) + shape[d + 1:] + (size,)
        return new_shape, tuple(strides[:d]) + (stride * step,) + tuple(strides[d + 1:]) + (stride,)

    new_shape, logical = geometry(_contiguous_strides(shape))
    return _view(input, lambda data: _strided_view(data, 0, new_shape, geometry(data.strides)[1]), "UnfoldBackward0",
                 geometry=(0, np.array(new_shape, np.int64), np.array(logical, np.int64)))


def _contiguous_strides(shape):
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


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
    """``x[index]``: ints, slices, None and Ellipsis give a view; integer and boolean arrays
    gather a copy (their backward scatter-adds, so repeated indices accumulate)."""
    parts = tuple(_index_part(p) for p in (index if isinstance(index, tuple) else (index,)))
    data = self._data
    advanced = builtins.any(isinstance(p, (np.ndarray, builtins.bool)) for p in parts)
    if not advanced:
        key = parts if builtins.any(p is Ellipsis for p in parts) else parts + (Ellipsis,)  # ints: a 0-d view
        try:
            picked = data[key]
        except IndexError as exc:
            raise IndexError(f"index {index!r} on a tensor of shape {tuple(data.shape)}: {exc}") from None
        _check_ndim(picked.ndim, "index")
        kinds = {type(p) for p in parts}
        name = ("SelectBackward0" if kinds - {slice, type(None), type(Ellipsis)} else
                "SliceBackward0" if slice in kinds else "UnsqueezeBackward0" if type(None) in kinds else
                "AliasBackward0")
        return _view(self, lambda data: data[key], name)
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
VIEW_OF_LEAF_IN_PLACE = "a view of a leaf Variable that requires grad is being used in an in-place operation."
OVERLAPPING_IN_PLACE = ("unsupported operation: more than one element of the written-to tensor refers to a single "
                        "memory location. Please clone() the tensor before performing the operation.")
NO_GRAD_VIEW_IN_PLACE = (
    "A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that this use "
    "case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both the view and the "
    "inplace either both inside the no_grad block (if you don't want the inplace to be tracked) or both outside (if "
    "you want the inplace to be tracked).")
MULTI_VIEW_IN_PLACE = (
    "Output {} of {} is a view and is being modified inplace. This view is the output of a function that returns "
    "multiple views. Such functions do not allow the output views to be modified inplace. You should replace the "
    "inplace operation by an out-of-place one.")
_KIND_RANK = {"b": 0, "u": 1, "i": 1, "f": 2}
_AS_STRIDED_NODE = node_class("AsStridedBackward0")


def _private_copy(t):
    """``t`` over a copy of its values, in the same place of the graph."""
    copy = _wrap(t._data.copy(), t._node)
    copy._requires_grad = t._requires_grad
    return copy


def _check_writable(self, name, repeats=False):
    """Whether ``name`` may write ``self``'s memory: not read-only, and not an expanded tensor (one
    location for several elements) unless ``repeats`` (fill_ and zero_ write one value)."""
    data = self._data
    if not data.flags.writeable:
        raise RuntimeError(f"{name}(): the tensor's memory is read-only (from_numpy of a non-writable array); "
                           "clone() it first")
    if not repeats and 0 in data.strides and builtins.any(n > 1 and s == 0 for n, s in zip(data.shape, data.strides)):
        raise RuntimeError(OVERLAPPING_IN_PLACE)


def _check_view_write(view_of):
    """PyTorch's refusals of an in-place change of a view while gradients are recorded."""
    base, multi, made_with_grad = view_of
    if base._requires_grad and not made_with_grad:
        raise RuntimeError(NO_GRAD_VIEW_IN_PLACE)
    if base._requires_grad and type(base._node) is AccumulateGrad:
        raise RuntimeError(VIEW_OF_LEAF_IN_PLACE)
    if multi is not None:
        raise RuntimeError(MULTI_VIEW_IN_PLACE.format(multi[1], multi[0]))


def _in_place(self, name, compute, *operands, repeats=False, leaf_error=LEAF_IN_PLACE):
    """``self`` becomes ``compute(self, *operands)``, computed out of place by the op's kernels and
    written into self's storage (its base, views and NumPy arrays over it see the change); returns self.

    When the result is recorded, the new node reads private copies of the operands that live in
    self's storage (its backward may need the old values); rows saved earlier from that storage
    are flagged by the version bump, so backward through them raises instead of using new values.
    On a view, the base's history is rewritten as PyTorch's: the base becomes the old base with
    the view's elements replaced (``CopySlices``), and each view of it a read of that. ``repeats``:
    the op writes one value (fill_, zero_), so an expanded tensor may take it.
    """
    if not isinstance(self, Tensor):
        raise TypeError(f"{name}(): expected a Tensor, got {type(self).__name__}")
    _check_writable(self, name, repeats)
    data = self._data
    view_of = getattr(self, "_view_of", None)
    base = view_of and view_of[0]
    recording = _state.enabled and (
        self._requires_grad or builtins.any(isinstance(t, Tensor) and t._requires_grad for t in operands)
        or (base is not None and base._requires_grad))
    if recording:
        if self._requires_grad and type(self._node) is AccumulateGrad:
            raise RuntimeError(leaf_error)
        if base is not None:
            _check_view_write(view_of)
            positions = _positions_in(base._data, data)
            if not repeats and np.unique(positions).size < positions.size:  # a gradient would count them twice
                raise RuntimeError(OVERLAPPING_IN_PLACE)
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
        if base is None:
            _set_node(self, result._node)
            _rebase(self, None)
        else:  # the base's elements under the view now come from the result
            _set_node(base, _apply(PUT, (base, result), (base._data, result._data), (positions.reshape(-1),),
                                   np.empty(base._data.shape, base._data.dtype))._node)
            _rebase(base, self)
    return self


def _set_node(tensor, node):
    """``tensor``'s history is now ``node``'s (retain_grad() belongs to the tensor, as in PyTorch)."""
    retained = type(tensor._node) is not AccumulateGrad and getattr(tensor._node, "_grad_buffer", None) is not None
    tensor._node = node
    tensor._requires_grad = True
    if retained:
        tensor.retain_grad()


def _rebase(base, changed):
    """After an in-place change of ``base``'s storage under a graph: each view of it made with
    grad mode on (and the ``changed`` one) reads its elements from the base's new history
    (``AsStridedBackward0``)."""
    for ref in getattr(base, "_views", ()):
        view = ref()
        if view is None or not (view._view_of[2] or view is changed):
            continue
        positions = _positions_in(base._data, view._data)
        read = _apply(TAKE, (base,), (base._data, ), (positions.reshape(-1), 1), np.empty(positions.shape,
                      base._data.dtype), _AS_STRIDED_NODE)
        _set_node(view, read._node)


def _address_grid(array):
    """The address of each element of ``array``, in its shape."""
    grid = np.full(array.shape, _address(array), np.int64)
    for d, (n, stride) in enumerate(zip(array.shape, array.strides)):
        grid += (np.arange(n, dtype=np.int64) * stride).reshape((n,) + (1,) * (array.ndim - d - 1))
    return grid


def _positions_in(base, view):
    """Where each element of ``view`` (an array over ``base``'s storage) lies in ``base``'s C order."""
    addresses = _address_grid(view)
    if base.flags.c_contiguous:
        return (addresses - _address(base)) // base.itemsize
    order = _address_grid(base).reshape(-1)  # a strided base (from_numpy): look the addresses up
    ranks = np.argsort(order, kind="stable")
    return ranks[np.searchsorted(order[ranks], addresses)]


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
    return _in_place(self, "fill_", lambda x, y: _copy_into(x, y, "fill_", "FillBackward2"), value, repeats=True)


def zero_(self):
    return _in_place(self, "zero_", lambda x: _copy_into(x, 0, "zero_", "ZeroBackward0"), repeats=True)


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
    basic = not builtins.any(isinstance(p, np.ndarray) for p in parts)  # PyTorch's x[i].copy_(v): a view's rules
    target, flat = self, positions.reshape(-1)
    view_of = getattr(self, "_view_of", None)
    if view_of is not None:  # the region written straight into the base: the view's other elements stay
        _check_writable(self, "index_put_")  # (which matters where they overlap: unfold)
        if _state.enabled and (view_of[0]._requires_grad or value._requires_grad):
            _check_view_write(view_of)
        target = view_of[0]
        flat = _positions_in(target._data, self._data).reshape(-1)[flat]
    flat = np.ascontiguousarray(flat, np.int64)

    def put(x, v):
        v = _to_dtype(v, dtypes.from_numpy_dtype(x._data.dtype))
        return _apply_broadcast(PUT, (x, v), (None, plan), (flat,), np.empty(x._data.shape, x._data.dtype))

    _in_place(target, "index_put_", put, value, leaf_error=VIEW_OF_LEAF_IN_PLACE if basic else LEAF_IN_PLACE)
