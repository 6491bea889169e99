"""``nbgrad.save`` / ``nbgrad.load``: tensors and (nested) state dicts in one ``.npz`` file.

Arrays are npz members; the structure around them (dicts, lists, numbers,
strings) is JSON in one more member. Nothing is pickled, so loading a file never
runs code from it.
"""
import io
import json
import zipfile
import zlib

import numpy as np

from ._tensor import Tensor
from .kernels.tape import MAX_NDIM

_STRUCTURE = "__nbgrad_structure__"
MAX_HEADER = 1 << 16  # bytes of an .npy header (NumPy writes a few hundred)


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


def _referenced(description, where="obj"):
    """The tensor members a structure refers to, checking its shape on the way (iteratively:
    a deep structure must not exhaust the stack)."""
    tensors = []
    stack = [(description, where)]
    while stack:
        item, where = stack.pop()
        if not isinstance(item, dict) or len(item) != 1:
            raise ValueError(f"a malformed entry at {where}")
        kind, content = next(iter(item.items()))
        if kind == "tensor":
            if not isinstance(content, int) or isinstance(content, bool) or content < 0:
                raise ValueError(f"a malformed tensor reference at {where}")
            tensors.append(content)
        elif kind in ("list", "tuple"):
            if not isinstance(content, list):
                raise ValueError(f"a malformed {kind} at {where}")
            stack += [(v, f"{where}[{i}]") for i, v in enumerate(content)]
        elif kind == "dict":
            if not isinstance(content, list) or not all(
                    isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], (str, int)) for pair in content):
                raise ValueError(f"a malformed dict at {where}")
            stack += [(value, f"{where}[{key!r}]") for key, value in content]
        elif kind != "value" or not (content is None or isinstance(content, (bool, int, float, str))):
            raise ValueError(f"an entry of unknown kind {kind!r} at {where}")
    if len(set(tensors)) != len(tensors):
        raise ValueError("a tensor member referenced twice")
    return tensors


def _decode(description, arrays):
    """The object ``description`` stands for (already checked by ``_referenced``)."""
    from .factories import from_numpy

    built = {}  # id of a container's description -> the object made from it
    order = []  # descriptions in the order the containers must be made: children first
    stack = [description]
    while stack:
        item = stack.pop()
        order.append(item)
        kind, content = next(iter(item.items()))
        if kind in ("list", "tuple"):
            stack += content
        elif kind == "dict":
            stack += [value for _, value in content]
    for item in reversed(order):
        kind, content = next(iter(item.items()))
        if kind == "tensor":
            value = from_numpy(arrays[content])
        elif kind == "value":
            value = content
        elif kind == "dict":
            value = {key: built[id(v)] for key, v in content}
        else:
            items = [built[id(v)] for v in content]
            value = items if kind == "list" else tuple(items)
        built[id(item)] = value
    return built[id(description)]


def _read_member(archive, name, budget):
    """The array in member ``name`` (an .npy file), refusing one whose header promises more
    elements than its bytes hold or more bytes than ``budget`` leaves."""
    info = archive.getinfo(name)
    if budget is not None and info.file_size > budget:
        raise ValueError(f"member {name!r} holds {info.file_size} bytes, more than the {budget} bytes this "
                         "file may hold in all (see max_bytes)")
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"member {name!r} has an unknown .npy version {version}")
        length_bytes = f.read(2 if version == (1, 0) else 4)  # the header's length, checked before it is read
        length = int.from_bytes(length_bytes, "little")
        if length > MAX_HEADER:
            raise ValueError(f"member {name!r} declares a header of {length} bytes")
        header = io.BytesIO(np.lib.format.magic(*version) + length_bytes + f.read(length))
        header.seek(6 + 2)  # past the magic string and the version
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(header)
        if dtype.hasobject or dtype.kind not in "biuf":
            raise ValueError(f"member {name!r} holds {dtype} values, which nbgrad does not store")
        if len(shape) > MAX_NDIM:
            raise ValueError(f"member {name!r} has {len(shape)} dimensions; nbgrad tensors have at most {MAX_NDIM}")
        count = int(np.prod(shape, dtype=object))
        if count * dtype.itemsize > info.file_size:
            raise ValueError(f"member {name!r} declares shape {shape} but holds fewer bytes")
        data = f.read(count * dtype.itemsize)
    if len(data) != count * dtype.itemsize:
        raise ValueError(f"member {name!r} is truncated")
    array = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")
    return np.ascontiguousarray(array) if fortran_order else array.copy()


def save(obj, path):
    """Write ``obj`` (a tensor, or dicts/lists of tensors and plain values) to ``path`` exactly."""
    arrays = []
    structure = json.dumps(_encode(obj, arrays, "obj"))
    members = {f"t{i}": a for i, a in enumerate(arrays)}
    members[_STRUCTURE] = np.frombuffer(structure.encode(), np.uint8)
    with open(path, "wb") as f:  # a file object: NumPy does not append ".npz" to the name
        np.savez_compressed(f, **members)


MAX_RATIO = 200        # decompressed bytes per byte of file that load accepts by default
MIN_BUDGET = 256 << 20  # ... and at least this many: small files of zeros compress very well


def load(path, map_location=None, weights_only=None, *, max_bytes="auto"):
    """Read what ``save`` wrote (tensors come back with their dtype, not requiring grad).

    Only the members the structure refers to are read. A file is untrusted
    input: anything malformed is a ValueError naming it, and by default it may
    not decompress to more than ``max(256 MiB, 200 x its size)`` (a compressed
    "zip bomb"); give ``max_bytes`` (a number of bytes, or None for no limit)
    to load more. ``map_location`` may only name the CPU; ``weights_only`` is
    accepted for PyTorch's sake (nothing here runs code from the file anyway).
    """
    import os

    if map_location not in (None, "cpu") and str(map_location).split(":")[0] != "cpu":
        raise RuntimeError(f"load: nbgrad tensors live on the CPU; got map_location={map_location!r}")
    try:
        if hasattr(path, "read"):  # a file object
            start = path.tell()
            size = path.seek(0, os.SEEK_END) - start
            path.seek(start)
        else:
            size = os.path.getsize(path)
        budget = max(MIN_BUDGET, MAX_RATIO * size) if max_bytes == "auto" else max_bytes
        with zipfile.ZipFile(path) as archive:
            members = {f"{info.filename[:-4]}": info.filename for info in archive.infolist()
                       if info.filename.endswith(".npy")}
            if _STRUCTURE not in members:
                raise ValueError("it has no nbgrad structure record")
            record = _read_member(archive, members[_STRUCTURE], budget)
            if budget is not None:
                budget -= record.nbytes
            description = json.loads(record.tobytes().decode())
            arrays = {}
            for index in _referenced(description):
                name = members.get(f"t{index}")
                if name is None:
                    raise ValueError(f"the structure refers to a tensor member t{index} that is not there")
                arrays[index] = _read_member(archive, name, budget)
                if budget is not None:
                    budget -= arrays[index].nbytes
            return _decode(description, arrays)
    except FileNotFoundError:
        raise FileNotFoundError(f"load: no such file: {path}") from None
    except (PermissionError, IsADirectoryError):
        raise
    except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError,
            RecursionError, MemoryError, NotImplementedError, TypeError, AttributeError, StopIteration,
            RuntimeError) as exc:  # RuntimeError: an encrypted member
        raise ValueError(f"load: {path} is not a file written by nbgrad.save ({type(exc).__name__}: {exc})") from None
