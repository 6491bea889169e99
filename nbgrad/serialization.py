"""``nbgrad.save`` / ``nbgrad.load``: tensors and (nested) state dicts in one ``.npz`` file.

Arrays are npz members; the structure around them (dicts, lists, numbers,
strings) is JSON in one more member. Nothing is pickled, so loading a file never
runs code from it.
"""
import json
import zipfile

import numpy as np

from ._tensor import Tensor

_STRUCTURE = "__nbgrad_structure__"


def _encode(obj, arrays, where):
    """A JSON-able description of ``obj``; its tensors are appended to ``arrays``."""
    if isinstance(obj, Tensor):
        arrays.append(obj.detach().numpy())
        return {"tensor": len(arrays) - 1}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, (list, tuple)):
        return {"tuple" if isinstance(obj, tuple) else "list":
                [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"save: dict keys must be str or int, got {type(key).__name__} at {where}")
            items.append([key, _encode(value, arrays, f"{where}[{key!r}]")])
        return {"dict": items}
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} (at {where}); "
                    "tensors, dicts, lists, tuples, numbers, strings and None can be saved")


def _decode(description, arrays):
    from .factories import from_numpy

    kind, content = next(iter(description.items()))
    if kind == "tensor":
        return from_numpy(arrays[f"t{content}"])
    if kind == "value":
        return content
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays) for v in content]
        return items if kind == "list" else tuple(items)
    return {key: _decode(value, arrays) for key, value in content}


def save(obj, path):
    """Write ``obj`` (a tensor, or dicts/lists of tensors and plain values) to ``path`` exactly."""
    arrays = []
    structure = json.dumps(_encode(obj, arrays, "obj"))
    members = {f"t{i}": a for i, a in enumerate(arrays)}
    members[_STRUCTURE] = np.frombuffer(structure.encode(), np.uint8)
    with open(path, "wb") as f:  # a file object: NumPy does not append ".npz" to the name
        np.savez_compressed(f, **members)


def load(path):
    """Read what ``save`` wrote (tensors come back with their dtype, not requiring grad)."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if _STRUCTURE not in arrays.files:
                raise ValueError("it has no nbgrad structure record")
            description = json.loads(arrays[_STRUCTURE].tobytes().decode())
            members = {name: np.array(arrays[name]) for name in arrays.files if name != _STRUCTURE}
            return _decode(description, members)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file: {path}") from None
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError, StopIteration,
            AttributeError, TypeError) as exc:
        raise ValueError(f"load: {path} is not a file written by nbgrad.save ({exc})") from None
