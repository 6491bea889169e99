"""The Tensor: a NumPy array plus its place in the autograd graph.

``_data`` holds the values, a NumPy array: C-contiguous, except for a view (``x.t()``,
``x[:, 0]``, ``x.expand(...)``), which is a strided NumPy view of its base's storage; ops
hand kernels flat buffers, copying a strided view at their entry. ``_node`` is the tensor's
``grad_fn`` for a result, its ``AccumulateGrad`` node for a leaf that requires grad, None otherwise.
Op methods (``x.exp()``, ``x @ y``, ...) are attached by ``nbgrad.ops``.
"""
import operator
import sys
import warnings
import weakref

import numpy as np

from . import dtypes
from ._formatting import tensor_format, tensor_repr
from .autograd import engine, tape
from .autograd.node import AccumulateGrad
from .compiler import recording
from .devices import CPU
from .kernels import tape as layout


class Size(tuple):
    """A tensor's shape: a tuple that prints as ``nbgrad.Size([2, 3])``."""

    def __repr__(self):
        return f"nbgrad.Size({list(self)})"

    def numel(self):
        n = 1
        for d in self:
            n *= d
        return n


def _contiguous(array):
    """``array`` if C-contiguous, else a C-ordered copy (unlike np.ascontiguousarray, keeps 0-d)."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def _wrap(data, node=None):
    """A tensor over ``data`` (not copied); ``node`` is its grad_fn."""
    t = object.__new__(Tensor)
    t._data = data
    t._node = node
    t._requires_grad = node is not None
    return t


def _check_can_require_grad(dtype):
    if not dtype.is_floating_point:
        raise RuntimeError(
            "Only Tensors of floating point and complex dtype can require gradients "
            f"(got {dtype!r})"
        )


def _leaf_node(tensor):
    """The AccumulateGrad node of a leaf (one tape row; its .grad buffer is allocated here)."""
    node = AccumulateGrad()
    buffer = np.zeros(tensor._data.shape, tensor._data.dtype)  # before the row: a failure here leaks none
    r = tape.alloc_row()
    node._row = r
    node._arity = 0
    node._in0 = node._in1 = node._in2 = None
    node.variable_ref = weakref.ref(tensor)
    node._grad_buffer = buffer
    node._grad_tensor = None
    layout.record_leaf(tape.chunks[r >> tape.CHUNK_SHIFT], r & tape.CHUNK_MASK, node._grad_buffer.reshape(-1))
    return node


class Tensor:
    """An n-dimensional array that records the operations applied to it.

    >>> x = nbgrad.ones(2, 2, requires_grad=True)
    >>> y = (x * 3).sum()
    >>> y.backward()
    >>> x.grad
    tensor([[3., 3.],
            [3., 3.]])
    """

    # _grad_of: for a tensor that is some node's .grad, a weak reference to that node (its .data
    # replaced means the backward accumulates into the new array); unset for the others.
    # _view_of: for a view, (its base, (the multi-view function's name, output index) or None,
    # whether grad mode was on when it was made); _views: for a base, weak references to its
    # views (see ops/movement.py). Both unset for the others.
    __slots__ = ("_data", "_node", "_requires_grad", "_grad_of", "_view_of", "_views", "__weakref__")
    __array_priority__ = 1000  # NumPy defers to our reflected operators

    def __new__(cls, *args, **kwargs):
        from .factories import _tensor_constructor

        return _tensor_constructor(*args, **kwargs)

    # --- attributes -------------------------------------------------------

    @property
    def shape(self):
        return Size(self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_normalize_dim(dim, self._data.ndim, "size")]

    @property
    def ndim(self):
        return self._data.ndim

    def dim(self):
        return self._data.ndim

    def numel(self):
        return self._data.size

    # --- layout -----------------------------------------------------------

    @property
    def _base(self):
        """The tensor whose storage this view shares (None for a tensor that is no view)."""
        view_of = getattr(self, "_view_of", None)
        return None if view_of is None else view_of[0]

    def _is_view(self):
        return getattr(self, "_view_of", None) is not None

    def is_contiguous(self, memory_format=None):
        """Whether the elements lie in memory in C order, without gaps (views may not)."""
        return self._data.flags.c_contiguous

    def stride(self, dim=None):
        """Steps in memory, in elements, from one index to the next along each dimension."""
        shape, itemsize = self._data.shape, self._data.itemsize
        strides = [s // itemsize for s in self._data.strides]
        for d in range(len(shape) - 1, -1, -1):  # a new size-1 dimension steps as PyTorch's (never read)
            if shape[d] == 1 and strides[d] == 0:
                strides[d] = shape[d + 1] * strides[d + 1] if d + 1 < len(shape) else 1
        return tuple(strides) if dim is None else strides[_normalize_dim(dim, self._data.ndim, "stride")]

    def storage_offset(self):
        """Where the first element lies in the base's storage, in elements (0 for no view)."""
        base = self._base
        if base is None:
            return 0
        return (_address(self._data) - _address(base._data)) // self._data.itemsize

    def element_size(self):
        return self._data.itemsize

    def data_ptr(self):
        """The address of the first element."""
        return _address(self._data)

    def __iter__(self):
        if not self._data.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __len__(self):
        if not self._data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    @property
    def dtype(self):
        return dtypes.from_numpy_dtype(self._data.dtype)

    @property
    def device(self):
        return CPU

    is_cuda = False
    is_cpu = True
    is_meta = False

    def cpu(self, memory_format=None):
        """The tensor itself: nbgrad tensors are on the CPU."""
        return self

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        from .devices import check

        check(device if device is not None else "cuda", "cuda()")

    def get_device(self):
        return -1  # PyTorch's answer for a CPU tensor

    def is_pinned(self, device=None):
        return False

    def type(self, dtype=None, non_blocking=False, **kwargs):
        """``x.type()``: PyTorch's name of the tensor type (``'torch.FloatTensor'``, the name scripts
        compare); ``x.type(nbgrad.float64)``, ``x.type(nbgrad.DoubleTensor)`` or
        ``x.type('torch.DoubleTensor')``: the tensor in that dtype (itself when it has it)."""
        from . import tensortypes

        if dtype is None:
            return tensortypes.type_name(self.dtype)
        return self.to(tensortypes.dtype_of(dtype))

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        from .factories import tensor

        if isinstance(data, Tensor):
            warnings.warn("To copy construct from a tensor, it is recommended to use sourceTensor.detach().clone() "
                          "or sourceTensor.detach().clone().requires_grad_(True), rather than "
                          "tensor.new_tensor(sourceTensor).", UserWarning, stacklevel=2)
            data = data.detach()
        return tensor(data, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        from .factories import empty

        return empty(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        from .factories import zeros

        return zeros(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        from .factories import ones

        return ones(*size, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        from .factories import full

        return full(size, fill_value, dtype=dtype or self.dtype, device=device, requires_grad=requires_grad)

    @property
    def is_leaf(self):
        return not self._requires_grad or type(self._node) is AccumulateGrad

    @property
    def grad_fn(self):
        node = self._node
        return None if node is None or type(node) is AccumulateGrad else node

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, requires_grad=True):
        """Set whether autograd records operations on this leaf; returns self."""
        if not self.is_leaf:
            if requires_grad:
                return self
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if requires_grad:
            _check_can_require_grad(self.dtype)
            if self._node is None:
                self._node = _leaf_node(self)
        self._requires_grad = bool(requires_grad)
        return self

    @property
    def data(self):
        """The same storage, detached from the graph (a tensor of its own: its ``.data`` may be
        replaced without touching this one's)."""
        return _wrap(self._data.view())

    @data.setter
    def data(self, value):
        """Replace the values (sharing ``value``'s storage): rows of the graph that saved this
        tensor as an input read the new values, as in PyTorch (see ``autograd/replace.py``)."""
        if not isinstance(value, Tensor):
            raise TypeError(f"Variable data has to be a tensor, but got {type(value).__name__}")
        if value._data is not self._data:
            from .autograd.replace import replace_data

            replace_data(self, value._data)
            if getattr(self, "_view_of", None) is not None:  # its values are another storage's now
                del self._view_of

    @property
    def grad(self):
        """The accumulated gradient of a leaf (or a ``retain_grad()`` result); None before the first backward."""
        node = self._node
        if node is None:
            return None
        buffer = getattr(node, "_grad_buffer", None)
        if buffer is None:
            if self._requires_grad:
                warnings.warn(
                    "The .grad attribute of a Tensor that is not a leaf Tensor is being accessed. Its "
                    ".grad attribute won't be populated during autograd.backward(). If you indeed want "
                    "the .grad field to be populated for a non-leaf Tensor, use .retain_grad() on the "
                    "non-leaf Tensor.",
                    UserWarning,
                    stacklevel=2,
                )
            return None
        if not tape.row(node._row)[layout.FLAGS] & layout.GRAD_DEFINED:
            return None
        if node._grad_tensor is None:
            grad = node._grad_tensor = _wrap(buffer)
            grad._grad_of = weakref.ref(node)
        return node._grad_tensor

    @grad.setter
    def grad(self, value):
        if value is not None and not isinstance(value, Tensor):
            raise TypeError("assigned grad expected to be a Tensor or None but got grad of type "
                            f"{type(value).__name__}")
        if recording.active is not None:
            recording.active.grad_assigned(self, value)
        node = self._node
        if engine.running and getattr(node, "_grad_buffer", None) is not None:
            engine.graveyard.append(node._grad_buffer)  # a backward in another thread may be writing it
        if node is None or getattr(node, "_grad_buffer", None) is None:
            if value is None:
                return
            if not self._requires_grad and not self.dtype.is_floating_point:
                _check_can_require_grad(self.dtype)
            if node is None:
                node = self._node = _leaf_node(self)
                self._requires_grad = False
            else:  # a buffer to hold what is assigned; backward writes it only after retain_grad()
                _attach_grad_buffer(node, self._data, 0)
        flags = layout.LEAF if type(node) is AccumulateGrad else int(tape.row(node._row)[layout.FLAGS] & layout.RETAIN)
        r = node._row
        rows, local = tape.chunks[r >> tape.CHUNK_SHIFT], r & tape.CHUNK_MASK
        if value is None:
            node._grad_tensor = None
            buffer = node._grad_buffer
            # Reuse it when only the node can see it (not a view, no other reference): the next
            # backward overwrites it. getrefcount counts the node, `buffer` and its own argument.
            if buffer.base is None and sys.getrefcount(buffer) <= 3:
                rows[local, layout.FLAGS] &= ~layout.GRAD_DEFINED
            else:  # a tensor or view the user kept must not change: a fresh buffer
                node._grad_buffer = np.zeros(self._data.shape, self._data.dtype)
                layout.set_grad_buffer(rows, local, node._grad_buffer.reshape(-1), flags)
            return
        if value is self:
            raise RuntimeError("can't assign Variable as its own grad")
        if value._data.shape != self._data.shape:
            raise RuntimeError(
                f"assigned grad has data of a different size: {tuple(value.shape)} "
                f"vs the tensor's {tuple(self.shape)}"
            )
        if value._data.dtype != self._data.dtype:
            raise RuntimeError(f"assigned grad has dtype {value.dtype!r}; the tensor's is {self.dtype!r}")
        if not value._data.flags.c_contiguous or not value._data.flags.writeable:  # backward writes into it
            value = _wrap(value._data.copy(order="C"))
        node._grad_buffer = value._data
        node._grad_tensor = value
        value._grad_of = weakref.ref(node)
        layout.set_grad_buffer(rows, local, value._data.reshape(-1), flags | layout.GRAD_DEFINED)

    def retain_grad(self):
        """Keep this non-leaf tensor's gradient in ``.grad`` after backward."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        node = self._node
        if type(node) is AccumulateGrad or getattr(node, "_grad_buffer", None) is not None:
            return
        _attach_grad_buffer(node, self._data, layout.RETAIN)

    @property
    def retains_grad(self):
        return self.grad_fn is not None and getattr(self._node, "_grad_buffer", None) is not None

    def register_hook(self, hook):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned
        tensor replaces the gradient. Returns a handle whose ``remove()`` undoes it."""
        from .autograd.engine import register_hook

        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook: the hook must be callable, got {type(hook).__name__}")
        return register_hook(self._node, self._data.shape, self._data.dtype, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` on this leaf after a backward has accumulated into its ``.grad``.
        Returns a handle whose ``remove()`` undoes it."""
        from .autograd.engine import register_post_accumulate_grad_hook

        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if type(self._node) is not AccumulateGrad:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf tensors")
        if not callable(hook):
            raise TypeError(f"register_post_accumulate_grad_hook: the hook must be callable, got {type(hook).__name__}")
        return register_post_accumulate_grad_hook(self._node, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``, in one compiled call.

        ``gradient`` (same shape as self) gives the vector of the vector-Jacobian
        product; it may be omitted for a one-element tensor. With ``inputs`` only
        those tensors' ``.grad`` accumulate.
        """
        engine.backward(self, gradient, retain_graph, create_graph, inputs)

    def detach(self):
        """A tensor sharing this storage, with no history."""
        return _wrap(self._data.view())

    def detach_(self):
        """Detach in place: this tensor becomes a leaf that does not require grad (a leaf keeps its .grad)."""
        if self._is_view():
            raise RuntimeError(
                "Can't detach views in-place. Use detach() instead. If you are using DistributedDataParallel (DDP) "
                "for training, and gradient_as_bucket_view is set as True, gradients are views of DDP buckets, and "
                "hence detach_() cannot be called on these gradients. To fix this error, please refer to the "
                "Optimizer.zero_grad() function in torch/optim/optimizer.py as the solution.")
        if type(self._node) is not AccumulateGrad:
            self._node = None
        self._requires_grad = False
        return self

    # --- conversions ------------------------------------------------------

    def numpy(self):
        """The values as a NumPy array sharing memory."""
        if self._requires_grad:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        if recording.active is not None:
            recording.active.host_read("numpy()")
        return self._data

    def __dlpack__(self, stream=None, **kwargs):
        """DLPack export (``torch.from_dlpack(t)`` shares this tensor's memory)."""
        return self._data.__dlpack__(stream=stream, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        if recording.active is not None:
            recording.active.host_read("a conversion to a NumPy array")
        if dtype is not None:
            return self._data.astype(dtype, copy=bool(copy))
        return self._data.copy() if copy else self._data

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        if recording.active is not None:
            recording.active.host_read("item() (or a Python number or bool made of a tensor)")
        return self._data.reshape(-1)[0].item()

    def tolist(self):
        if recording.active is not None:
            recording.active.host_read("tolist()")
        return self._data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous (it has {self._data.size})"
            )
        return bool(self.item())

    def __index__(self):
        if self.dtype.is_floating_point or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __repr__(self):
        if recording.active is not None:
            recording.active.host_read("printing a tensor")
        return tensor_repr(self)

    def __format__(self, format_spec):
        if recording.active is not None:
            recording.active.host_read("formatting a tensor")
        return tensor_format(self, format_spec)

    def __hash__(self):
        return id(self)

    def __reduce__(self):
        from .factories import tensor

        return (tensor, (self._data.copy(), self.dtype, None, self._requires_grad))


def _address(array):
    return array.__array_interface__["data"][0]


def _attach_grad_buffer(node, like, flags):
    node._grad_buffer = np.zeros(like.shape, like.dtype)
    node._grad_tensor = None
    r = node._row
    layout.set_grad_buffer(
        tape.chunks[r >> tape.CHUNK_SHIFT], r & tape.CHUNK_MASK, node._grad_buffer.reshape(-1), flags
    )


def _int_sizes(sizes, op, argument="size"):
    """``sizes`` as Python ints; a float or anything else that is not an integer is a TypeError
    (as PyTorch's), never truncated."""
    result = []
    for i, d in enumerate(sizes):
        try:
            result.append(operator.index(d))
        except TypeError:
            raise TypeError(f"{op}(): argument '{argument}' must be tuple of ints, but found element of type "
                            f"{type(d).__name__} at pos {i}") from None
    return tuple(result)


def _normalize_dim(dim, ndim, op):
    """``dim`` in ``[0, ndim)``; IndexError naming the op otherwise (0-d tensors accept -1 and 0)."""
    bound = max(ndim, 1)
    if not -bound <= dim < bound:
        raise IndexError(
            f"{op}: Dimension out of range (expected to be in range of [{-bound}, {bound - 1}], but got {dim})"
        )
    return dim % bound
