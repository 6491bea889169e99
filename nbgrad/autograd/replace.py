"""``tensor.data = other``: a tensor's values replaced under its graph, as PyTorch defines it.

Tape rows hold the addresses and sizes of what they read, so a tensor whose
array changes under a recorded graph must leave every row consistent:

- rows that saved the tensor's old array as an *input* read the new values
  from now on (PyTorch saves an input as the tensor itself); rows that saved
  it as their *output* keep the old values (PyTorch saves a copy of the
  output's data). A new array of another shape makes those rows refuse to run.
- the tensor gets a node of the new shape and dtype, so the ops recorded from
  now on see sizes that match their input's row. Its gradient reaches the old
  node as PyTorch's engine would hand it on: cast to the old dtype, summed
  back to the old shape when that broadcasts to the new one, else an error
  ("invalid gradient") when a backward gets there.
- a leaf keeps accumulating into its ``.grad``: the old leaf row (which the
  graphs recorded before refer to) hands its gradient to the new one, cast to
  the new dtype; after a change of shape, a backward through the old graph
  is refused (its gradient has the old shape).
"""
import weakref

import numpy as np

from ..kernels import tape as layout
from . import tape, versions
from .node import AccumulateGrad
from .registry import BY_OPCODE, OPCODE_PYTHON

INVALID_GRADIENT = "{consumer}invalid gradient at index {index} - got %s but expected shape compatible with %s"


def replace_data(tensor, new):
    """Make ``new`` (an array; a strided view too) the values of ``tensor``."""
    from .engine import _lock

    old = tensor._data
    node = tensor._node
    owner = getattr(tensor, "_grad_of", None)
    owner = owner() if owner is not None else None
    if owner is not None and owner._grad_tensor is tensor:  # x.grad.data = ...: backward accumulates there now
        _replace_grad(owner, tensor, old, new)
        return
    if node is not None and tensor._requires_grad and new.dtype.kind != "f":
        raise RuntimeError("data set to a tensor that requires gradients must be floating point or complex dtype")
    with _lock:  # a compiled backward in another thread may be reading the rows changed here
        _follow_saved_inputs(old, new)
        tensor._data = new
        if node is None or (old.shape == new.shape and old.dtype == new.dtype):
            return
        if type(node) is AccumulateGrad:
            _replace_leaf(tensor, node, old, new)
        else:
            _bridge(tensor, node, old, new)


def _replace_grad(node, grad, old, new):
    from . import engine

    if new.shape != old.shape or new.dtype != old.dtype:
        raise RuntimeError(f"assigned grad has data of a different size or type: {list(new.shape)} {new.dtype} "
                           f"vs {list(old.shape)} {old.dtype}")
    if not new.flags.writeable:
        raise RuntimeError("assigned grad is read-only memory: backward writes into a .grad")
    if not new.flags.c_contiguous:
        raise RuntimeError("assigned grad is a strided view: backward writes into a .grad as a flat buffer; "
                           "assign a contiguous() tensor")
    with engine._lock:
        grad._data = new
        node._grad_buffer = new
        r = node._row
        row = tape.row(r)
        layout.set_grad_buffer(tape.chunks[r >> tape.CHUNK_SHIFT], r & tape.CHUNK_MASK, new.reshape(-1),
                               int(row[layout.FLAGS] & (layout.LEAF | layout.RETAIN)) | layout.GRAD_DEFINED)


def _follow_saved_inputs(old, new):
    """Rows that saved ``old`` as an input read ``new`` from now on (or refuse to run)."""
    if not old.size:
        return
    # Rows that saved this very array (not another tensor's over the same memory: a detached alias or a
    # view is a tensor of its own, as in PyTorch), and those reading a copy of it in their own dtype.
    found = [(r, k) for r, k in layout.find_saved(tape.chunk_addresses, tape.rows_in_use, old.ctypes.data,
                                                   old.size).tolist() if _saved_value(r, k) is old]
    entry = _casts.pop(id(old), None)
    if entry is not None and entry[0]() is old:
        found += [(r, k) for r, k, copy in entry[1] if _saved_value(r, k) is copy]
    for r, k in found:
        saved = tape.saved[r]
        op = BY_OPCODE.get(int(tape.row(r)[layout.OP]))
        if saved is None or op is None or op.opcode == OPCODE_PYTHON:
            continue  # a dead row, or a Function's (it saved the tensor itself: it reads .data when it runs)
        name = op.saves[k]
        if name not in op.inputs:
            continue  # the output, or an index array: what was saved stays
        values = list(saved) if isinstance(saved, tuple) else [saved]
        if new.shape != old.shape:
            tape.refuse(r, f"Function {op.grad_fn} cannot run: the tensor it saved as {name!r} was given .data of "
                           f"shape {list(new.shape)}, but had shape {list(old.shape)} in the forward: the size of "
                           f"tensor a ({old.size}) must match the size of tensor b ({new.size})")
            continue
        kept = values[k]
        if not kept.flags.c_contiguous:  # a product's transposed operand: the row reads it through a flag
            tape.refuse(r, f"Function {op.grad_fn} cannot run: the transposed view it saved as {name!r} was "
                           "given new .data; keep the view and change its base instead")
            continue
        replacement = new if new.dtype == kept.dtype and new.flags.c_contiguous else \
            np.array(new, kept.dtype, order="C")  # the row reads a flat buffer of its own dtype
        if replacement is not new:  # a copy: remember it, to follow the next replacement
            _remember_cast(new, r, k, replacement)
            versions.shadow(replacement, new)  # an in-place change of new refuses the row, as if it read new
        values[k] = replacement
        tape.saved[r] = tuple(values) if isinstance(saved, tuple) else replacement
        tape.row(r)[layout.SAVED + k] = replacement.ctypes.data


_casts = {}  # id(array) -> (weak reference to it, [(row, k, copy)]): rows reading a copy of it in another dtype


def _remember_cast(source, r, k, copy):
    if len(_casts) > 1024:
        for key in [key for key, (ref, _) in _casts.items() if ref() is None]:
            del _casts[key]
    entry = _casts.get(id(source))
    if entry is None or entry[0]() is not source:
        entry = _casts[id(source)] = (weakref.ref(source), [])
    entry[1].append((r, k, copy))


def _saved_value(r, k):
    saved = tape.saved[r]
    if saved is None:
        return None
    return saved[k] if isinstance(saved, tuple) else (saved if k == 0 else None)


def _replace_leaf(tensor, node, old, new):
    from .._tensor import _leaf_node
    from .engine import running

    leaf = _leaf_node(tensor)
    tensor._node = leaf
    _move_hooks(node, leaf, new)
    r = node._row
    row = tape.row(r)
    if old.shape != new.shape:
        tape.refuse(r, INVALID_GRADIENT % (list(old.shape), list(new.shape)))
        return
    if running:  # a backward paused in a hook may still write into the old .grad: keep it, refuse the row
        tape.refuse(r, "a leaf's .data was given another dtype while a backward through it was running")
        return
    from .. import ops

    if row[layout.FLAGS] & layout.GRAD_DEFINED:  # the .grad so far, in the new dtype
        leaf._grad_buffer[...] = node._grad_buffer
        tape.row(leaf._row)[layout.FLAGS] |= layout.GRAD_DEFINED
    # The old row becomes a cast into the new leaf: graphs recorded before accumulate there.
    row[layout.OP] = ops.TO.opcode
    row[layout.FLAGS] = 0
    row[layout.IN:layout.IN + layout.MAX_INPUTS] = (leaf._row, -1, -1)
    row[layout.GRAD_BUF] = 0
    row[layout.BCAST] = row[layout.BCAST + layout.BCAST_SIZE] = 0
    node._in0 = leaf  # keeps the new leaf's row alive as long as the old graph can reach it
    node._grad_buffer = None


def _move_hooks(node, leaf, new):
    """A leaf's hooks belong to the tensor, as in PyTorch: they move to its new node (the same
    lists, so that the handles register_hook returned still remove them)."""
    from . import engine

    hooks = getattr(node, "_hooks", None)
    if hooks:
        engine._hooked.pop(node._row, None)
        tape.row(node._row)[layout.FLAGS] &= ~layout.PYTHON
        leaf._hooks = hooks
        engine._hooked[leaf._row] = (weakref.ref(leaf), new.shape, new.dtype)
        tape.row(leaf._row)[layout.FLAGS] |= layout.PYTHON
    post_hooks = getattr(node, "_post_hooks", None)
    if post_hooks:
        engine._post_hooked.pop(node._row, None)
        leaf._post_hooks = post_hooks
        engine._post_hooked[leaf._row] = weakref.ref(leaf)


def _bridge(tensor, node, old, new):
    """Give a non-leaf ``tensor`` a node of its new shape and dtype over its old ``node``."""
    from .. import dtypes, ops
    from .._tensor import _wrap
    from .grad_mode import enable_grad

    bridged = _wrap(old, node)
    with enable_grad():
        if old.shape != new.shape:
            if _broadcasts(old.shape, new.shape):
                bridged = ops._expand(bridged, new.shape)
            else:
                bridged = ops._apply(ops.VIEW, (bridged,), (old,), (), np.empty(new.shape, old.dtype))
                tape.refuse(bridged._node._row, INVALID_GRADIENT % (list(new.shape), list(old.shape)))
        if old.dtype != new.dtype:
            bridged = ops._to_dtype(bridged, dtypes.from_numpy_dtype(new.dtype))
    tensor._node = bridged._node


def _broadcasts(shape, target):
    """Whether ``shape`` broadcasts to ``target`` (PyTorch's ``is_expandable_to``)."""
    if len(shape) > len(target):
        return False
    return all(n == 1 or n == m for n, m in zip(reversed(shape), reversed(target)))
