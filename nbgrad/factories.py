"""Tensor factories: ``tensor``, ``zeros``, ``randn``, ... with ``dtype=`` and ``requires_grad=``."""
import builtins
import numbers
import warnings

import numpy as np

from . import dtypes
from ._tensor import Tensor, _check_can_require_grad, _contiguous, _int_sizes, _wrap
from .devices import check
from .random import rng


def generator():
    """The NumPy generator behind the default one (nn.init, dropout, shuffling draw from it)."""
    return rng()


def _finish(data, requires_grad, device=None, op="tensor"):
    check(device, op)
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
    return _finish(values, requires_grad, device)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but shares memory with a NumPy array or tensor of the same dtype."""
    check(device, "as_tensor")
    if isinstance(data, Tensor) and (dtype is None or dtypes.as_dtype(dtype) is data.dtype):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or dtypes.as_dtype(dtype).numpy == data.dtype):
        return from_numpy(data)
    return tensor(data, dtype=dtype)


def from_dlpack(external):
    """A tensor sharing memory with any DLPack exporter on the CPU (a PyTorch tensor, a NumPy array)."""
    return from_numpy(np.from_dlpack(external))


def from_numpy(array):
    """A tensor sharing memory with ``array`` (no copy), whatever its strides.

    An array with a negative stride (``a[::-1]``) or a stride that is not a whole number of
    elements (a field of a structured array) is copied: tensors have neither.
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
    if array.flags.c_contiguous or all(s >= 0 and s % array.itemsize == 0 for s in array.strides):
        return _wrap(array.view())
    return _wrap(_contiguous(array))


def _filled(fill, size, dtype, requires_grad, default=None, op="full", device=None):
    data = np.full(_shape(size, op), fill, dtype=_numpy_dtype(dtype, default))
    return _finish(data, requires_grad, device, op)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of zeros: ``zeros(2, 3)`` or ``zeros((2, 3))``."""
    return _filled(0, size, dtype, requires_grad, op="zeros", device=device)


def ones(*size, dtype=None, device=None, requires_grad=False):
    """A tensor of ones."""
    return _filled(1, size, dtype, requires_grad, op="ones", device=device)


def empty(*size, dtype=None, device=None, requires_grad=False):
    """An uninitialized tensor."""
    return _finish(np.empty(_shape(size, "empty"), dtype=_numpy_dtype(dtype)), requires_grad, device, "empty")


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor filled with ``fill_value`` (its dtype follows the value unless given)."""
    if dtype is None and isinstance(fill_value, builtins.bool):
        dtype = dtypes.bool_
    elif dtype is None and isinstance(fill_value, numbers.Integral):
        dtype = dtypes.int64
    return _filled(fill_value, (size,), dtype, requires_grad, device=device)


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
    return _finish(data.astype(_numpy_dtype(dtype, default)), requires_grad, device, "arange")


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    return _finish(np.linspace(start, end, int(steps)).astype(_numpy_dtype(dtype)), requires_grad, device, "linspace")


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """The identity matrix (n x m)."""
    return _finish(np.eye(n, m, dtype=_numpy_dtype(dtype)), requires_grad, device, "eye")


# --- random sampling (the generators are random.py's) ------------------------------------------
# Values are drawn in float64 and rounded to the dtype, so a seed gives the same values in both.

_KERNEL_DTYPE_NAMES = {dtypes.float32: "Float", dtypes.float64: "Double", dtypes.int64: "Long",
                       dtypes.int32: "Int", dtypes.bool_: "Bool"}


def _float_dtype(dtype, kernel):
    """The float dtype a float sampler fills, with PyTorch's error for another."""
    found = dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)
    if not found.is_floating_point:
        raise NotImplementedError(f'"{kernel}" not implemented for \'{_KERNEL_DTYPE_NAMES[found]}\'')
    return found.numpy


def _into(out, t):
    """``t``, or ``out`` given its values (``out=``)."""
    if out is None:
        return t
    if not isinstance(out, Tensor):
        raise TypeError(f"out must be a Tensor, got {type(out).__name__}")
    if out.shape != t.shape:  # resized, as PyTorch resizes an out= tensor
        out.data = t
        return out
    return out.copy_(t)


def rand(*size, generator=None, out=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples in [0, 1)."""
    data = rng(generator).random(_shape(size, "rand")).astype(_float_dtype(dtype, "check_uniform_bounds"))
    return _into(out, _finish(data, requires_grad, device, "rand"))


def randn(*size, generator=None, out=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples."""
    data = rng(generator).standard_normal(_shape(size, "randn")).astype(_float_dtype(dtype, "normal_kernel_cpu"))
    return _into(out, _finish(data, requires_grad, device, "randn"))


def randint(low, high=None, size=None, *, generator=None, out=None, dtype=None, device=None,
            requires_grad=False):
    """Integers in [low, high): ``randint(10, (3,))`` or ``randint(0, 10, (3,))``."""
    if size is None:
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint(): missing the size argument: randint(high, size) or randint(low, high, size)")
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    data = rng(generator).integers(low, high, _shape((size,), "randint"))
    return _into(out, _finish(data.astype(_numpy_dtype(dtype, dtypes.int64)), requires_grad, device, "randint"))


def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None, device=None, requires_grad=False):
    """Normal samples: ``normal(mean, std)`` with either a tensor (broadcast against each other),
    or ``normal(0.0, 1.0, size=(2, 3))`` with two numbers."""
    from . import ops

    tensors = [v for v in (mean, std) if isinstance(v, Tensor)]
    if not tensors:
        if size is None:
            raise TypeError("normal(): with a number for both mean and std, give size= "
                            "(e.g. normal(0.0, 1.0, size=(2, 3)))")
        if std < 0:
            raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
        values = rng(generator).normal(mean, std, _shape((size,), "normal"))
        numpy_dtype = _float_dtype(dtype, "normal_kernel_cpu")
    else:
        if size is not None:
            raise TypeError("normal(): size= only with a number for both mean and std")
        for t in tensors:
            if not t.dtype.is_floating_point:
                raise NotImplementedError(f'"normal_kernel_cpu" not implemented for \'{_KERNEL_DTYPE_NAMES[t.dtype]}\'')
        m, s = (v._data if isinstance(v, Tensor) else v for v in (mean, std))
        if np.any(np.asarray(s) < 0):
            raise RuntimeError("normal expects all elements of std >= 0.0")
        shape = ops._broadcast_shape(np.shape(m), np.shape(s), "normal")
        values = m + s * rng(generator).standard_normal(shape)
        numpy_dtype = tensors[0]._data.dtype if len(tensors) == 1 else np.result_type(*(t._data for t in tensors))
    return _into(out, _finish(np.asarray(values).astype(numpy_dtype), requires_grad, device, "normal"))


def randperm(n, *, generator=None, out=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of 0 ... n - 1."""
    if isinstance(n, builtins.bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"randperm(): argument 'n' must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError(f"n must be non-negative, got{n}")
    data = rng(generator).permutation(int(n)).astype(_numpy_dtype(dtype, dtypes.int64))
    return _into(out, _finish(data, requires_grad, device, "randperm"))


def _probabilities(p, op):
    values = p._data if isinstance(p, Tensor) else np.asarray(p, np.float64)
    if values.size and not (np.all(values >= 0) and np.all(values <= 1)):  # NaN fails too
        raise RuntimeError(f"{op}: expected all probabilities p to be in [0, 1] "
                           f"(Expected p_in >= 0 && p_in <= 1 to be true, but got false.)")
    return values


def bernoulli(input, p=None, *, generator=None, out=None):
    """0 or 1 for each element, 1 with probability ``input`` (or the number ``p``), in input's dtype."""
    if not isinstance(input, Tensor):
        raise TypeError(f"bernoulli(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    probabilities = _probabilities(input if p is None else p, "bernoulli")
    drawn = rng(generator).random(input.shape) < probabilities
    return _into(out, _finish(drawn.astype(input._data.dtype), False))


def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    """``num_samples`` category indices per row of ``input`` (1-D or 2-D, non-negative weights)."""
    if not isinstance(input, Tensor):
        raise TypeError(f"multinomial(): argument 'input' (position 1) must be Tensor, not {type(input).__name__}")
    if input.ndim not in (1, 2):
        raise RuntimeError("prob_dist must be 1 or 2 dim")
    if not input.dtype.is_floating_point:
        raise RuntimeError("multinomial only supports floating-point dtypes for input")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    rows = input._data.reshape(-1, input.shape[-1]).astype(np.float64)
    categories = rows.shape[1]
    if not replacement and num_samples > categories:
        raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
    if not np.all(np.isfinite(rows)) or np.any(rows < 0):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = rows.sum(1)
    if np.any(totals <= 0):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    if not replacement and np.any((rows > 0).sum(1) < num_samples):
        raise RuntimeError("invalid multinomial distribution (with replacement=False, not enough non-negative "
                           "category to sample)")
    generate = rng(generator)
    drawn = np.stack([generate.choice(categories, num_samples, replace=replacement, p=row / total)
                      for row, total in zip(rows, totals)])
    return _into(out, _finish(drawn.reshape(input.shape[:-1] + (num_samples,)).astype(np.int64), False))


def _like(factory):
    def like(input, dtype=None, device=None, requires_grad=False, **kwargs):
        return factory(*input.shape, dtype=dtype or input.dtype, device=device, requires_grad=requires_grad,
                       **kwargs)

    like.__name__ = factory.__name__ + "_like"
    like.__doc__ = f"``{factory.__name__}`` with the shape (and by default the dtype) of ``input``."
    return like


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    return full(tuple(input.shape), fill_value, dtype=dtype or input.dtype, device=device,
                requires_grad=requires_grad)


def randint_like(input, low, high=None, dtype=None, device=None, requires_grad=False):
    if high is None:
        low, high = 0, low
    return randint(low, high, tuple(input.shape), dtype=dtype or input.dtype, device=device,
                   requires_grad=requires_grad)


# --- sampling into a tensor: x.uniform_(), x.normal_(), ... ---------------------------------------
# Each draws the values, then copies them in with copy_ (a version bump, the in-place rules of
# autograd, read-only memory refused), as nn.init does.

def _range(args, kwargs, defaults, op):
    """Positional or keyword (``from``, ``to``: Python keywords) bounds."""
    names = tuple(defaults)
    if len(args) > len(names):
        raise TypeError(f"{op}() takes at most {len(names)} arguments ({len(args)} given)")
    values = dict(defaults, **dict(zip(names, args)))
    for name, value in kwargs.items():
        key = name.rstrip("_")
        if key not in values or key == "generator":
            raise TypeError(f"{op}() got an unexpected keyword argument '{name}'")
        values[key] = value
    return values


def _fill_sampled(t, values, op):
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(t).__name__}")
    return t.copy_(_wrap(np.asarray(values).astype(t._data.dtype)))


def uniform_(self, *args, generator=None, **kwargs):
    """Uniform values in [from, to) (0 and 1 by default)."""
    bounds = _range(args, kwargs, {"from": 0.0, "to": 1.0}, "uniform_")
    low, high = bounds["from"], bounds["to"]
    _float_dtype(self.dtype, "check_uniform_bounds")
    if low > high:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found from={low} > to={high}")
    return _fill_sampled(self, rng(generator).uniform(low, high, self.shape), "uniform_")


def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Normal values (mean 0 and std 1 by default)."""
    _float_dtype(self.dtype, "normal_kernel_cpu")
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    return _fill_sampled(self, rng(generator).normal(mean, std, self.shape), "normal_")


def bernoulli_(self, p=0.5, *, generator=None):
    """1 with probability ``p`` (a number or a tensor broadcast to self), else 0."""
    probabilities = _probabilities(p, "bernoulli_")
    return _fill_sampled(self, rng(generator).random(self.shape) < probabilities, "bernoulli_")


_RANDOM_TOP = {dtypes.float32: 2**24 + 1, dtypes.float64: 2**53 + 1, dtypes.int64: 2**63 - 1,
               dtypes.int32: 2**31 - 1, dtypes.bool_: 2}


def random_(self, *args, generator=None, **kwargs):
    """Integers in [from, to): ``random_(to)``, ``random_(from, to)``, or ``random_()`` from 0 to
    the largest integer the dtype holds exactly."""
    bounds = _range(args, kwargs, {"from": None, "to": None}, "random_")
    low, high = bounds["from"], bounds["to"]
    if low is not None and high is None and len(args) == 1:
        low, high = 0, low
    low = 0 if low is None else low
    high = _RANDOM_TOP[self.dtype] if high is None else high
    if low >= high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    return _fill_sampled(self, rng(generator).integers(low, high, self.shape), "random_")


def exponential_(self, lambd=1.0, *, generator=None):
    """Exponential values of rate ``lambd``."""
    _float_dtype(self.dtype, "exponential_cpu")
    if not lambd > 0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    return _fill_sampled(self, rng(generator).exponential(1.0 / lambd, self.shape), "exponential_")


for _method in (uniform_, normal_, bernoulli_, random_, exponential_):
    setattr(Tensor, _method.__name__, _method)
Tensor.bernoulli = lambda self, p=None, *, generator=None: bernoulli(self, p, generator=generator)
Tensor.multinomial = lambda self, num_samples, replacement=False, *, generator=None: multinomial(
    self, num_samples, replacement, generator=generator)


def _tensor_constructor(*args, **kwargs):
    """``nbgrad.Tensor(2, 3)`` (uninitialized float32) or ``nbgrad.Tensor([1, 2])`` (float32 values)."""
    if len(args) == 1 and not isinstance(args[0], numbers.Integral):
        return tensor(args[0], dtype=dtypes.float32)
    return empty(*args)
