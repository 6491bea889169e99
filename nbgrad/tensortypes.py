"""The legacy tensor types: ``FloatTensor([1, 2])``, ``LongTensor(3)``, ``isinstance(x,
nbgrad.FloatTensor)``, ``x.type(nbgrad.DoubleTensor)``. Each is a constructor of tensors of one
dtype and a type that matches them; their names are PyTorch's (``x.type()`` gives
``'torch.FloatTensor'``, what scripts compare)."""
import numbers

import numpy as np

from . import dtypes
from ._tensor import Tensor
from .devices import check

_NAMES = {dtypes.float32: "FloatTensor", dtypes.float64: "DoubleTensor", dtypes.int64: "LongTensor",
          dtypes.int32: "IntTensor", dtypes.bool_: "BoolTensor"}


class tensortype(type):
    """The type of the legacy types: ``isinstance`` matches tensors of the type's dtype."""

    def __instancecheck__(cls, value):
        return isinstance(value, Tensor) and value.dtype is cls.dtype

    def __repr__(cls):
        return f"<class 'nbgrad.{cls.__name__}'>"


def _construct(cls, *args, device=None):
    """``()``: empty; sizes: uninitialized; a sequence or array: its values in the type's dtype;
    a tensor of the type's dtype: itself."""
    from .factories import empty, tensor

    check(device, cls.__name__)
    if len(args) == 1 and isinstance(args[0], Tensor):
        if args[0].dtype is not cls.dtype:
            raise TypeError(f"{cls.__name__}(): expected a tensor of dtype {cls.dtype}, got {args[0].dtype} "
                            f"(use .to({cls.dtype}))")
        return args[0]
    if all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in args):
        return empty(*args, dtype=cls.dtype) if args else empty(0, dtype=cls.dtype)
    if len(args) == 1 and isinstance(args[0], (list, tuple, np.ndarray, range)):
        return tensor(np.asarray(args[0]).astype(cls.dtype.numpy) if len(args[0]) else [], dtype=cls.dtype)
    raise TypeError(f"{cls.__name__}(): data must be a sequence or sizes (got "
                    f"{', '.join(type(a).__name__ for a in args)})")


def _legacy(dtype):
    name = _NAMES[dtype]
    return tensortype(name, (), {"__new__": _construct, "dtype": dtype, "__module__": "nbgrad",
                                 "__doc__": f"Tensors of dtype {dtype}: a constructor and a type."})


FloatTensor, DoubleTensor, LongTensor, IntTensor, BoolTensor = (_legacy(d) for d in _NAMES)
_BY_NAME = {name: dtype for dtype, name in _NAMES.items()}


def type_name(dtype):
    return f"torch.{_NAMES[dtype]}"


def dtype_of(target):
    """The dtype ``Tensor.type(target)`` converts to: a dtype, a legacy type or its name."""
    if isinstance(target, tensortype):
        return target.dtype
    if isinstance(target, str):
        module, _, name = target.rpartition(".")
        if module.endswith(".cuda"):
            check("cuda", "type()")
        if module in ("torch", "nbgrad") and name in _BY_NAME:
            return _BY_NAME[name]
        raise ValueError(f"invalid type: {target!r}")
    return dtypes.as_dtype(target)
