"""backward(): one call of the compiled executor per graph.

The executor (generated in ``codegen`` from the op declarations) plans the
reachable rows, runs every backward kernel and accumulates into ``.grad``. It
returns to Python only at rows flagged PYTHON (tensor hooks), which split the
walk into compiled segments: Python runs the hooks on the gradient in the
executor's arena and calls it again from there. Each op's backward is compiled
for a dtype the first time a graph needs it: the executor says so before it
runs anything, Python compiles it, and the executor is called again.
"""
import itertools
import threading
import weakref

import numpy as np

from ..kernels import executor, jit
from ..kernels import tape as layout
from ..kernels.executor import NEEDS
from . import tape

# How many times the compiled executor ran a graph (for tests: one per graph without hooks).
executor_calls = 0
_epochs = itertools.count(1)
_ONE = np.ones(1, np.float64)
_NO_ORDER = np.zeros(0, np.int64)
_NO_ARENA = np.zeros(0, np.float64)
_generated = None

SECOND_BACKWARD = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


def _execute(chunks, root, seed, retain_graph, resume, order, count, arena):
    """One call of the executor; first compile the op backwards that the graph needs, if any."""
    global executor_calls, _generated
    if _generated is None:
        from .. import ops

        _generated = ops.GENERATED
    backwards = _generated.backwards
    while True:
        epoch = next(_epochs) if resume < 0 else 0  # a fresh plan needs a fresh mark
        result = _generated.execute(chunks, root, seed, epoch, retain_graph, resume, order, count, arena,
                                    backwards.table)
        if result[0] != NEEDS:
            executor_calls += 1
            return result
        order, count, arena = result[1], result[2], result[3]
        for r in order[:count].tolist():
            row = tape.row(r)
            if not row[layout.FLAGS] & layout.LEAF:
                backwards.compile(int(row[layout.OP]), int(row[layout.ITEMSIZE]),
                                  bool(row[layout.NUMEL] >= jit.PARALLEL_MIN))


def backward(tensor, gradient=None, retain_graph=None, create_graph=False):
    if create_graph:
        raise NotImplementedError("backward(create_graph=True) is not supported yet")
    if not tensor._requires_grad:
        raise RuntimeError("element 0 of tensors does not require grad and does not have a grad_fn")
    numel = int(tape.row(tensor._node._row)[layout.NUMEL])
    if numel != tensor._data.size:  # .data was given another shape since the node recorded it
        raise RuntimeError(
            f"backward: the tensor holds {tensor._data.size} elements but its grad_fn produced {numel}; "
            "its .data was replaced with a different shape"
        )
    if gradient is None:
        if tensor._data.size != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        seed = _ONE
    else:
        values = gradient._data if hasattr(gradient, "_data") else np.asarray(gradient)
        if values.shape != tensor._data.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {tuple(values.shape)} and "
                f"output[0] has a shape of {tuple(tensor._data.shape)}."
            )
        seed = np.ascontiguousarray(values, np.float64).reshape(-1)
    run(tensor._node, seed, bool(retain_graph))


class _ArenaCache(threading.local):
    """The last backward's gradient arena, reused by this thread's next backward (up to a size)."""

    arena = _NO_ARENA


_arena_cache = _ArenaCache()
ARENA_CACHE_BYTES = 256 << 20


# Backward passes run one at a time: they share leaves' .grad buffers and the rows of
# shared subgraphs (PyTorch locks AccumulateGrad likewise). Reentrant: a hook may call backward.
_lock = threading.RLock()


def run(root, seed, retain_graph):
    """Backpropagate ``seed`` (float64, flat) from node ``root`` through its graph."""
    with _lock:
        _run(root, seed, retain_graph)


def _run(root, seed, retain_graph):
    chunks = tape.chunk_addresses
    cached = _arena_cache.arena
    _arena_cache.arena = _NO_ARENA  # a hook may reenter backward: it must not share this arena
    status, order, count, arena = _execute(chunks, root._row, seed, retain_graph, -1, _NO_ORDER, 0, cached)
    reusable = True
    while status >= 0:  # a PYTHON row: run its hooks, then resume there
        reusable = False  # hooks saw views of the arena: never hand it out again
        planned = executor.slots(chunks, order, count)
        _run_hooks(order[status], arena)
        executor.restore_slots(tape.chunk_addresses, order, count, planned)
        status, order, count, arena = _execute(
            tape.chunk_addresses, root._row, seed, retain_graph, status, order, count, arena
        )
    if reusable and arena.nbytes <= ARENA_CACHE_BYTES:
        _arena_cache.arena = arena
    if status < -1:
        bad = -2 - status
        if tape.row(bad)[layout.FLAGS] & layout.MODIFIED:
            raise RuntimeError(_modified_message(bad))
        raise RuntimeError(SECOND_BACKWARD)
    if not retain_graph:
        saved = tape.saved
        for r in order[:count].tolist():
            saved[r] = None


_LEGACY_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor", "int32": "IntTensor",
                 "bool": "BoolTensor", "uint8": "ByteTensor", "int8": "CharTensor", "int16": "ShortTensor"}


def _modified_message(r):
    """PyTorch's words for row ``r``, whose saved buffer an in-place op changed."""
    from .registry import OPS
    from .versions import version

    ops = {op.opcode: op for op in OPS.values()}
    row = tape.row(r)
    k, expected = int(row[layout.STALE]), int(row[layout.STALE + 1])
    op = ops[int(row[layout.OP])]
    saved = tape.saved[r]
    array = saved[k] if isinstance(saved, tuple) else saved
    name = op.saves[k]
    producer = None  # the op whose output was saved (none for a leaf or a tensor without grad)
    if name == "out":
        producer = op
    elif name in op.inputs:
        j = int(row[layout.IN + op.inputs.index(name)])
        if j >= 0 and tape.row(j)[layout.OP]:
            producer = ops.get(int(tape.row(j)[layout.OP]))
    what = f"[nbgrad.{_LEGACY_NAMES.get(array.dtype.name, array.dtype.name)} {list(array.shape)}]"
    if producer is not None:
        what += f", which is output 0 of {producer.grad_fn.split('Backward')[0]},"
    return (
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        f"{what} is at version {version(array)}; expected version {expected} instead. Hint: the operation "
        "that changed it ran after the forward that saved it; clone() the tensor before changing it in place."
    )


# --- hooks ----------------------------------------------------------------

_hooked = {}  # row -> (weak node, shape, NumPy dtype) of nodes with tensor hooks


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    def __init__(self, node, hook):
        self._node = weakref.ref(node)
        self._hook = hook

    def remove(self):
        node = self._node()
        hooks = getattr(node, "_hooks", None)
        if hooks and self._hook in hooks:
            hooks.remove(self._hook)
            if not hooks:
                tape.row(node._row)[layout.FLAGS] &= ~layout.PYTHON
                _hooked.pop(node._row, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def register_hook(node, shape, dtype, hook):
    hooks = getattr(node, "_hooks", None)
    if hooks is None:
        hooks = node._hooks = []
    hooks.append(hook)
    _hooked[node._row] = (weakref.ref(node), shape, dtype)
    tape.row(node._row)[layout.FLAGS] |= layout.PYTHON
    return RemovableHandle(node, hook)


def _run_hooks(r, arena):
    """Call the hooks of row ``r`` on its gradient, which lies in the executor's arena."""
    from ..tensor import _wrap

    node_ref, shape, dtype = _hooked[r]
    row = tape.row(r)
    start = int(row[layout.SLOT])
    nbytes = int(row[layout.NUMEL] * row[layout.ITEMSIZE])
    grad = arena.view(np.uint8)[start:start + nbytes].view(dtype).reshape(shape)
    current = _wrap(grad)
    for hook in list(node_ref()._hooks):
        result = hook(current)
        if result is not None:
            if result._data.dtype != grad.dtype:
                raise RuntimeError(
                    f"hook {hook!r} has changed the type of value (was {current.dtype!r}, got {result.dtype!r})"
                )
            if tuple(result.shape) != tuple(shape):
                raise RuntimeError(
                    f"hook returned a gradient of shape {tuple(result.shape)}; expected {tuple(shape)}"
                )
            grad[...] = result._data
            current = _wrap(grad)
