"""Merging samples into batches, as ``torch.utils.data._utils.collate``.

``default_collate`` stacks tensors (with nbgrad's ``stack``, so a batch of tensors that require grad
is differentiable), turns NumPy arrays and numbers into tensors (Python floats to float64, ints to
int64, bools to bool), keeps strings as lists and recurses into dicts, namedtuples, tuples and lists.
``default_convert`` (the loader's collate for ``batch_size=None``) only turns NumPy values into tensors.
"""
import collections.abc
import copy
import re

import numpy as np

from .... import dtypes, factories
from ...._tensor import Tensor

np_str_obj_array_pattern = re.compile(r"[SaUO]")

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, "
    "dicts or lists; found {}"
)

_HELD = frozenset(d.numpy for d in dtypes.ALL)


def _numpy_tensor(value):
    """``torch.as_tensor`` of a NumPy array or scalar: the same dtype, sharing an array's memory.

    A dtype nbgrad has no tensors of (uint8, int16, float16, ...) is widened as ``nbgrad.tensor``
    widens it (integers to int64, floats to float32 or float64), in a copy.
    """
    array = value if isinstance(value, np.ndarray) else np.array(value)
    if array.dtype in _HELD:
        return factories.as_tensor(array)
    return factories.tensor(array)


def default_convert(data):
    """Each NumPy array or scalar in ``data`` (recursing into mappings, namedtuples and sequences)
    made a tensor; anything else is returned unchanged.

    >>> default_convert(np.array([0, 1]))
    tensor([0, 1])
    >>> default_convert((np.array(0), 1))  # tuples become lists, as in PyTorch
    [tensor(0), 1]
    """
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    elif elem_type.__module__ == "numpy" and elem_type.__name__ not in ("str_", "string_", "bytes_"):
        # arrays of strings and objects stay as they are
        if elem_type.__name__ == "ndarray" and np_str_obj_array_pattern.search(data.dtype.str) is not None:
            return data
        return _numpy_tensor(data)
    elif isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                # the mapping type may have extra attributes: update a copy rather than build a new one
                clone = copy.copy(data)
                clone.update({key: default_convert(data[key]) for key in data})
                return clone
            return elem_type({key: default_convert(data[key]) for key in data})
        except TypeError:  # the type supports neither copy/update nor construction from a dict
            return {key: default_convert(data[key]) for key in data}
    elif isinstance(data, tuple) and hasattr(data, "_fields"):  # namedtuple
        return elem_type(*(default_convert(d) for d in data))
    elif isinstance(data, tuple):
        return [default_convert(d) for d in data]  # a list, for backward compatibility (as PyTorch)
    elif isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    else:
        return data


def collate(batch, *, collate_fn_map=None):
    """The batch of samples ``batch`` merged, element type by element type.

    ``collate_fn_map`` maps an element type (or a tuple of types) to the function that merges a list
    of such elements, called as ``fn(batch, collate_fn_map=collate_fn_map)``; a type not in it is
    looked up as a subclass of its keys, in their order. Mappings, namedtuples and sequences are
    collated field by field; anything else raises a TypeError.
    """
    elem = batch[0]
    elem_type = type(elem)

    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for collate_type in collate_fn_map:
            if isinstance(elem, collate_type):
                return collate_fn_map[collate_type](batch, collate_fn_map=collate_fn_map)

    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem})
                return clone
            return elem_type({key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem})
        except TypeError:
            return {key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem}
    elif isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(collate(samples, collate_fn_map=collate_fn_map) for samples in zip(*batch)))
    elif isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        elem_size = len(next(it))
        if not all(len(elem) == elem_size for elem in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))  # read twice below
        if isinstance(elem, tuple):
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]  # as PyTorch
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, samples in enumerate(transposed):
                    clone[i] = collate(samples, collate_fn_map=collate_fn_map)
                return clone
            return elem_type([collate(samples, collate_fn_map=collate_fn_map) for samples in transposed])
        except TypeError:
            return [collate(samples, collate_fn_map=collate_fn_map) for samples in transposed]

    raise TypeError(default_collate_err_msg_format.format(elem_type))


def collate_tensor_fn(batch, *, collate_fn_map=None):
    from .... import ops

    return ops.stack(batch, 0)


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    elem = batch[0]
    if np_str_obj_array_pattern.search(elem.dtype.str) is not None:  # arrays of strings and objects
        raise TypeError(default_collate_err_msg_format.format(elem.dtype))
    return collate([_numpy_tensor(b) for b in batch], collate_fn_map=collate_fn_map)


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None):
    return _numpy_tensor(np.array(batch))


def collate_float_fn(batch, *, collate_fn_map=None):
    return factories.tensor(batch, dtype=dtypes.float64)


def collate_int_fn(batch, *, collate_fn_map=None):
    return factories.tensor(batch)  # int64, or bool for a batch of bools


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,  # and np.memmap, a subclass
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,  # NumPy scalars but strings
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def default_collate(batch):
    """A list of samples merged into a batch with an outer dimension of ``len(batch)``, as PyTorch.

    * tensors -> one tensor (``stack``: their shapes must be equal)
    * NumPy arrays -> a tensor of their dtype; NumPy scalars -> a 1-D tensor
    * ``float`` -> float64 tensor, ``int`` -> int64 tensor (``bool`` -> bool tensor)
    * ``str``, ``bytes`` -> the list, unchanged
    * ``Mapping[K, V_i]`` -> ``Mapping[K, default_collate([V_1, V_2, ...])]``
    * namedtuple -> the namedtuple of each field collated; other sequences -> a list (a tuple) or the
      sequence's type of each position collated (all samples must have the same length)

    >>> default_collate([0, 1, 2, 3])
    tensor([0, 1, 2, 3])
    >>> default_collate([(0, 1), (2, 3)])
    [tensor([0, 2]), tensor([1, 3])]
    >>> default_collate([{"A": 0, "B": 1}, {"A": 100, "B": 100}])
    {'A': tensor([  0, 100]), 'B': tensor([  1, 100])}

    Extend it by adding a type to ``default_collate_fn_map`` or by calling it from your own collate_fn.
    """
    return collate(batch, collate_fn_map=default_collate_fn_map)
