"""Tensor factories: ``tensor``, ``zeros``, ``randn``, ... with ``dtype=`` and ``requires_grad=``."""
import builtins
import numbers
import warnings

import numpy as np

from . import dtypes
from ._tensor import Tensor, _check_can_require_grad, _contiguous, _int_sizes, _wrap

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed the generator behind ``rand``, ``randn``, ``randint`` and dropout."""
    global _generator
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator():
    return _generator


def _finish(data, requires_grad):
    t = _wrap(_contiguous(data))
    if requires_grad:
        _check_can_require_grad(t.dtype)
        t.requires_grad_(True)
    return t


def _shape(size, op="empty"):
    if len(size) == 1 and isinstance(size[0], (tuple, list, Tensor)) or (
        len(size) == 1 and hasattr(size[0], "__iter__")
    ):
        size = tuple(size[0])
    shape = _int_sizes(size, op)
    if builtins.any(d < 0 for d in shape):
        raise RuntimeError(f"Trying to create tensor with negative dimension: {list(shape)}")
    return shape


def _numpy_dtype(dtype, default=None):
    if dtype is None:
        return (default or dtypes.get_default_dtype()).numpy
    return dtypes.as_dtype(dtype).numpy


def _infer(data, dtype=None):
    """NumPy values of Python data with PyTorch's dtype inference (floats -> float32
    unless ``dtype`` says otherwise: then Python floats are never rounded through float32)."""
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, np.ndarray):
        array = data
    elif isinstance(data, (list, tuple)) and builtins.any(isinstance(x, Tensor) for x in _flatten(data)):
        array = np.array([_infer(x) for x in data])
    else:
        array = np.array(data)
    if array.dtype == np.float64 and not isinstance(data, np.ndarray) and dtype is None:
        return array.astype(dtypes.get_default_dtype().numpy)
    if array.dtype.kind in "iu" and array.dtype != np.int32:
        return array.astype(np.int64) if not isinstance(data, np.ndarray) or array.dtype.kind == "u" else array
    if array.dtype.kind not in "biuf":
        raise TypeError(f"tensor(): can't convert data of NumPy type {array.dtype} to a tensor")
    return array


def _flatten(data):
    for x in data:
        if isinstance(x, (list, tuple)):
            yield from _flatten(x)
        else:
            yield x


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (number, nested list, NumPy array or tensor).

    >>> nbgrad.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    """
    values = _infer(data, dtype)
    values = np.array(values, dtype=_numpy_dtype(dtype, dtypes.from_numpy_dtype(values.dtype)), copy=True, order="C")
    return _finish(values, requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but shares memory with a NumPy array or tensor of the same dtype."""
    if isinstance(data, Tensor) and (dtype is None or dtypes.as_dtype(dtype) is data.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or dtypes.as_dtype(dtype).numpy == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype)


def from_dlpack(external):
    """A tensor sharing memory with any DLPack exporter on the CPU (a PyTorch tensor, a NumPy array)."""
    return from_numpy(np.from_dlpack(external))


def from_numpy(array):
    """A tensor sharing memory with ``array`` (no copy).

    nbgrad tensors are C-contiguous, so an array of another layout (a transposed
    or strided view) is copied: make it contiguous first to share memory.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    dtypes.from_numpy_dtype(array.dtype)
    if array.dtype not in [d.numpy for d in dtypes.ALL]:
        raise TypeError(f"from_numpy: NumPy dtype {array.dtype} is not supported; convert it first")
    if not array.flags.writeable:
        warnings.warn("The given NumPy array is not writable: nbgrad shares its memory, and in-place ops or an "
                      "optimizer step on the tensor raise an error. Copy the array (or make it writable) first "
                      "to change the tensor.", UserWarning, stacklevel=2)
    # a view: the tensor's own array over the memory (its .data may be replaced, another's stays)
    return _wrap(array.view() if array.flags.c_contiguous else _contiguous(array))


def _filled(fill, size, dtype, requires_grad, default=None, op="full"):
    data = np.full(_shape(size, op), fill, dtype=_numpy_dtype(dtype, default))
    return _finish(data, requires_grad)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _filled(0, size, dtype, requires_grad, op="zeros")


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones."""
    return _filled(1, size, dtype, requires_grad, op="ones")


def empty(*size, dtype=None, device=None, requires_grad=False):
    """An uninitialized tensor."""
    return _finish(np.empty(_shape(size, "empty"), dtype=_numpy_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor filled with ``fill_value`` (its dtype follows the value unless given)."""
    if dtype is None and isinstance(fill_value, builtins.bool):
        dtype = dtypes.bool_
    elif dtype is None and isinstance(fill_value, numbers.Integral):
        dtype = dtypes.int64
    return _filled(fill_value, (size,), dtype, requires_grad)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Values from ``start`` to ``end`` (excluded) by ``step``; integers unless a bound is a float."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError(f"arange: upper bound and larger bound inconsistent with step sign "
                           f"(start {start}, end {end}, step {step})")
    integral = builtins.all(isinstance(v, numbers.Integral) for v in (start, end, step))
    default = dtypes.int64 if integral else None
    data = np.arange(start, end, step, dtype=np.float64 if not integral else np.int64)
    return _finish(data.astype(_numpy_dtype(dtype, default)), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    return _finish(np.linspace(start, end, int(steps)).astype(_numpy_dtype(dtype)), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The identity matrix (n x m)."""
    return _finish(np.eye(n, m, dtype=_numpy_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1)."""
    data = _generator.random(_shape(size, "rand")).astype(_numpy_dtype(dtype))
    return _finish(data, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    data = _generator.standard_normal(_shape(size, "randn")).astype(_numpy_dtype(dtype))
    return _finish(data, requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None, requires_grad=False):
    """Integers in [low, high): ``randint(10, (3,))`` or ``randint(0, 10, (3,))``."""
    if size is None:
        low, high, size = 0, low, high
    data = _generator.integers(low, high, _shape((size,), "randint"))
    return _finish(data.astype(_numpy_dtype(dtype, dtypes.int64)), requires_grad)


def _like(factory):
    def like(input, dtype=None, device=None, requires_grad=False, **kwargs):
        return factory(*input.shape, dtype=dtype or input.dtype, requires_grad=requires_grad, **kwargs)

    like.__name__ = factory.__name__ + "_like"
    like.__doc__ = f"``{factory.__name__}`` with the shape (and by default the dtype) of ``input``."
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(tuple(input.shape), fill_value, dtype=dtype or input.dtype, requires_grad=requires_grad)


def randint_like(input, low, high=None, dtype=None, device=None, requires_grad=False):
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype)


def _tensor_constructor(*args, **kwargs):
    """``nbgrad.Tensor(2, 3)`` (uninitialized float32) or ``nbgrad.Tensor([1, 2])`` (float32 values)."""
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        return tensor(args[0], dtype=dtypes.float32)
    return empty(*args)
