"""dtypes and PyTorch's type promotion."""
import builtins

import numpy as np


class dtype:
    """A tensor element type: ``nbgrad.float32``, ``nbgrad.int64``, ..."""

    __slots__ = ("name", "numpy", "is_floating_point", "itemsize", "_category")

    def __init__(self, name, numpy_dtype, category):
        self.name = name
        self.numpy = np.dtype(numpy_dtype)
        self.is_floating_point = category == 2
        self.itemsize = self.numpy.itemsize
        self._category = category  # 0 bool, 1 integer, 2 floating

    def __repr__(self):
        return f"nbgrad.{self.name}"

    def __reduce__(self):
        return (from_numpy_dtype, (self.numpy.str,))


bool_ = dtype("bool", np.bool_, 0)
int32 = dtype("int32", np.int32, 1)
int64 = dtype("int64", np.int64, 1)
float32 = dtype("float32", np.float32, 2)
float64 = dtype("float64", np.float64, 2)

ALL = (bool_, int32, int64, float32, float64)
_by_numpy = {d.numpy: d for d in ALL}
_default_float = float32


def from_numpy_dtype(numpy_dtype):
    """The nbgrad dtype of a NumPy dtype; TypeError for types nbgrad does not hold."""
    found = _by_numpy.get(np.dtype(numpy_dtype))
    if found is None:
        kind = np.dtype(numpy_dtype).kind
        if kind == "f":
            return float64 if np.dtype(numpy_dtype).itemsize > 4 else float32
        if kind in "iu":
            return int64
        raise TypeError(f"nbgrad has no dtype for NumPy's {np.dtype(numpy_dtype)}")
    return found


def as_dtype(value):
    """Accept an nbgrad dtype, a NumPy dtype or a Python type (``float``, ``int``, ``bool``)."""
    if isinstance(value, dtype):
        return value
    if value is builtins.float:
        return _default_float
    if value is builtins.int:
        return int64
    if value is builtins.bool:
        return bool_
    try:
        return from_numpy_dtype(value)
    except TypeError:
        raise TypeError(f"not a dtype: {value!r}") from None


def get_default_dtype():
    return _default_float


def set_default_dtype(d):
    """The dtype of Python floats and of factories without ``dtype=``: float32 or float64."""
    global _default_float
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError("only floating-point types are supported as the default type")
    _default_float = d


def promote(a, b):
    """The smallest dtype holding both (PyTorch's promote_types for nbgrad's dtypes)."""
    if a is b:
        return a
    if a._category != b._category:
        return a if a._category > b._category else b
    return a if a.itemsize >= b.itemsize else b


def _scalar_dtype(value):
    if isinstance(value, builtins.bool):
        return bool_
    if isinstance(value, builtins.int):
        return int64
    return _default_float


def _combine(higher, lower):
    """PyTorch's combine_categories: a lower-priority group only raises the category."""
    if higher is None:
        return lower
    if lower is None or higher.is_floating_point:
        return higher
    if higher is bool_ or lower.is_floating_point:
        return promote(higher, lower)
    return higher


def result_type(*operands):
    """The dtype of an op over tensors and Python scalars, by PyTorch's rules:
    dimensioned tensors outrank 0-d tensors, which outrank Python scalars, except
    that a lower-ranked operand of a higher category (float over int) promotes."""
    dims = zeros = scalars = None
    for x in operands:
        if isinstance(x, (builtins.int, builtins.float, builtins.bool)):
            d = _scalar_dtype(x)
            scalars = d if scalars is None else promote(scalars, d)
        elif x.ndim:
            dims = x.dtype if dims is None else promote(dims, x.dtype)
        else:
            zeros = x.dtype if zeros is None else promote(zeros, x.dtype)
    return _combine(dims, _combine(zeros, scalars))
