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

from .. import _compile_ahead
from ..compiler import recording
from ..kernels import executor
from ..kernels import tape as layout
from ..kernels.executor import NEEDS
from . import codegen, function, grad_mode, tape

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


def _execute(chunks, root, seed, retain_graph, accumulate, resume, order, count, arena):
    """One call of the executor; first compile the op backwards that the graph needs, if any.
    Returns the executor's ``(status, order, count, arena)`` and the epoch that marked the plan."""
    global executor_calls, _generated
    if _generated is None:
        from .. import ops

        _generated = ops.GENERATED
    backwards = _generated.backwards
    if executor_calls == 0:  # the process's first backward: on a first run, compile while the helper does
        _compile_ahead.compile_graph_backwards(backwards, root)
    while True:
        epoch = next(_epochs) if resume < 0 else 0  # a fresh plan needs a fresh mark
        result = _generated.execute(chunks, root, seed, epoch, retain_graph, accumulate, resume, order, count,
                                    arena, backwards.table)
        if result[0] != NEEDS:
            executor_calls += 1
            return result + (epoch,)
        order, count, arena = result[1], result[2], result[3]
        needed = {}
        for r in order[:count].tolist():
            needed.update(dict.fromkeys(compiles_needed(tape.row(r))))
        _compile_ahead.compile_backwards(backwards, list(needed))


def compiles_needed(row):
    """What the backward of tape row ``row`` needs compiled, as ``(opcode, itemsize, numel)``: its op's
    backward, and the broadcast reducer (opcode codegen.REDUCER) of each broadcast input's dtype."""
    if row[layout.FLAGS] & layout.LEAF:
        return []
    needed = [(int(row[layout.OP]), int(row[layout.ITEMSIZE]), int(row[layout.NUMEL]))]
    for i in range(layout.BROADCAST_INPUTS):
        j = int(row[layout.IN + i])
        if j >= 0 and row[layout.BCAST + i * layout.BCAST_SIZE] > 0:
            needed.append((codegen.REDUCER, int(tape.row(j)[layout.ITEMSIZE]), 0))
    return needed


def _seed(tensor, gradient, i=0):
    """The flat float64 gradient to start from at ``tensor``, the ``i``-th output."""
    if not tensor._requires_grad:
        raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
    numel = int(tape.row(tensor._node._row)[layout.NUMEL])
    if numel != tensor._data.size:  # .data was given another shape since the node recorded it
        raise RuntimeError(
            f"backward: the tensor holds {tensor._data.size} elements but its grad_fn produced {numel}; "
            "its .data was replaced with a different shape"
        )
    if gradient is None:
        if tensor._data.size != 1:
            raise RuntimeError("grad can be implicitly created only for scalar outputs")
        return _ONE
    values = gradient._data if hasattr(gradient, "_data") else np.asarray(gradient)
    if values.shape != tensor._data.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(values.shape)} and "
            f"output[{i}] has a shape of {tuple(tensor._data.shape)}."
        )
    return np.ascontiguousarray(values, np.float64).reshape(-1)


def _seed_tensor(tensor, gradient, i=0):
    """The gradient to start from at ``tensor`` as a tensor, for create_graph (it may have a graph)."""
    from .._tensor import Tensor, _wrap

    seed = _seed(tensor, gradient, i)
    if isinstance(gradient, Tensor):
        return gradient if gradient._data.dtype == tensor._data.dtype else gradient.to(tensor.dtype)
    return _wrap(seed.astype(tensor._data.dtype).reshape(tensor._data.shape))


class _Callbacks(threading.local):
    queue = None  # the callbacks queued during this thread's running backward


_callbacks = _Callbacks()


def queue_callback(callback):
    """Call ``callback()`` once the running backward has finished, its post-accumulate hooks
    included (PyTorch's ``Variable._execution_engine.queue_callback``): a hook that sees one
    gradient at a time can act on all of them at the end (DistributedDataParallel does)."""
    queue = _callbacks.queue
    if queue is None:
        raise RuntimeError("queue_callback: no backward is running in this thread")
    queue.append(callback)


def backward(tensor, gradient=None, retain_graph=None, create_graph=False, inputs=None):
    outer, queue = _callbacks.queue, []
    _callbacks.queue = queue
    try:
        _backward(tensor, gradient, retain_graph, create_graph, inputs)
    finally:
        _callbacks.queue = outer
    for callback in queue:
        callback()


def _backward(tensor, gradient, retain_graph, create_graph, inputs):
    if recording.active is not None and (create_graph or inputs is not None):
        recording.active.fail("backward(create_graph=True) or backward(inputs=...)")
    if inputs is not None:
        _backward_into(tensor, gradient, retain_graph, create_graph, inputs)
        return
    if create_graph:  # the backward pass recorded as ops: gradients of gradients
        from . import higher

        keep = True if retain_graph is None else bool(retain_graph)
        higher.backward([tensor], [_seed_tensor(tensor, gradient)], keep)
        return
    run(tensor._node, _seed(tensor, gradient), bool(retain_graph))


def _backward_into(tensor, gradient, retain_graph, create_graph, inputs):
    """``backward(inputs=...)``: only these tensors' ``.grad`` accumulate (leaves or not, as in
    PyTorch), from one ``grad()`` call; a tensor the graph does not reach keeps its ``.grad``."""
    import warnings

    from .._tensor import Tensor
    from .grad_mode import no_grad

    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if not inputs:
        raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
    found = grad([tensor], inputs, None if gradient is None else [gradient], retain_graph=retain_graph,
                 create_graph=create_graph, allow_unused=True)
    for t, g in zip(inputs, found):
        if g is None:
            continue
        with warnings.catch_warnings():  # a non-leaf's .grad warns unless retained: it is asked for here
            warnings.simplefilter("ignore")
            current = t.grad
        if current is None:
            t.grad = g
        elif create_graph:
            t.grad = current + g
        else:
            with no_grad():
                current.add_(g)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=None,
         is_grads_batched=False, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, returned, not accumulated in ``.grad``.

    ``grad_outputs`` weigh each output (they may be omitted for one-element
    outputs): the result is the vector-Jacobian product summed over outputs. An
    input the graph does not reach is an error unless ``allow_unused`` (then its
    gradient is None, or zeros with ``materialize_grads``). One executor call.
    """
    from .. import ops
    from .._tensor import Tensor, _wrap
    from .grad_mode import enable_grad

    if is_grads_batched:
        raise NotImplementedError("autograd.grad(is_grads_batched=True) is not supported")
    outputs = (outputs,) if isinstance(outputs, Tensor) else tuple(outputs)
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    if grad_outputs is None or isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = (grad_outputs,) * (1 if grad_outputs is not None else len(outputs))
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad requires one grad_output per output: got {len(grad_outputs)} grad_outputs "
                           f"for {len(outputs)} outputs")
    if not outputs or not inputs:
        raise RuntimeError("grad requires non-empty outputs and inputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: inputs[{i}] is a {type(t).__name__}, not a Tensor")
        if not t._requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    keep = create_graph if retain_graph is None else retain_graph
    if create_graph:
        from . import higher

        seeds = [_seed_tensor(t, g, i) for i, (t, g) in enumerate(zip(outputs, grad_outputs))]
        found = higher.backward(outputs, seeds, bool(keep), inputs)
        return _grad_results(inputs, found, allow_unused, materialize_grads, lambda g: g)
    seeds = [_seed(t, g, i) for i, (t, g) in enumerate(zip(outputs, grad_outputs))]
    if len(outputs) == 1:
        root, seed = outputs[0], seeds[0]
    else:  # one root for one executor call: sum over outputs of <output, its grad_output>
        with enable_grad():
            root = sum(ops.sum(t * _wrap(g.astype(t._data.dtype).reshape(t._data.shape)))
                       for t, g in zip(outputs, seeds))
        seed = _ONE
    wanted = [(t._node._row, t._data.shape, t._data.dtype) for t in inputs]
    found = run(root._node, seed, bool(keep), accumulate=False, inputs=wanted)
    return _grad_results(inputs, found, allow_unused, materialize_grads, _wrap)


def _grad_results(inputs, found, allow_unused, materialize_grads, as_tensor):
    from .._tensor import _wrap

    result = []
    for t, g in zip(inputs, found):
        if g is None:
            if not allow_unused and not materialize_grads:
                raise RuntimeError("One of the differentiated Tensors appears to not have been used in the "
                                   "graph. Set allow_unused=True if this is the desired behavior.")
            result.append(_wrap(np.zeros(t._data.shape, t._data.dtype)) if materialize_grads else None)
        else:
            result.append(as_tensor(g))
    return tuple(result)


class _ArenaCache(threading.local):
    """The last backward's gradient arena and row order, reused by this thread's next backward
    (the arena up to a size)."""

    arena = _NO_ARENA
    order = _NO_ORDER


_arena_cache = _ArenaCache()
ARENA_CACHE_BYTES = 256 << 20


# Compiled parts of backward passes run one at a time: they share leaves' .grad buffers and the
# scratch columns of shared rows (PyTorch locks AccumulateGrad likewise). The lock is not held
# while Python runs a row (hooks, Python Functions, post-accumulate hooks): that code may call
# backward itself or wait for another thread's; the executor checks each row as it comes up.
_lock = threading.RLock()
running = 0       # backward passes under way (counted under the lock)
graveyard = []    # buffers a running executor may still write (an old .grad): freed when none runs


def run(root, seed, retain_graph, accumulate=True, inputs=()):
    """Backpropagate ``seed`` (float64, flat) from node ``root`` through its graph; return copies
    of the gradients of ``inputs``, ``(row, shape, dtype)`` triples (None where not reached)."""
    global running
    recorder = recording.active
    if recorder is not None:
        recorder.backward(root, seed, retain_graph, accumulate, inputs)
    cache = _arena_cache
    cached, cached_order = cache.arena, cache.order
    cache.arena, cache.order = _NO_ARENA, _NO_ORDER  # a hook may reenter backward: it must not share them
    with _lock:
        running += 1
        try:
            found, arena, order, reusable, post_hooks = _run(root, seed, retain_graph, accumulate, inputs,
                                                             cached, cached_order)
        finally:
            running -= 1
            if not running and graveyard:
                graveyard.clear()
    if recorder is not None:
        recorder.backward_done(arena, order, reusable)
    if reusable and arena.nbytes <= ARENA_CACHE_BYTES:
        cache.arena, cache.order = arena, order
    if post_hooks:
        mode = grad_mode.state.enabled
        grad_mode.state.enabled = False
        try:
            for tensor, hooks in post_hooks:
                for hook in hooks:
                    hook(tensor)
        finally:
            grad_mode.state.enabled = mode
    tape.maybe_trim()
    return found


class _PythonInBackward:
    """Python code run by a backward (hooks, Python Functions): without the engine lock and, as in
    PyTorch's engine, with grad mode off; the caller's grad mode comes back whatever the code did."""

    def __enter__(self):
        self.mode = grad_mode.state.enabled
        grad_mode.state.enabled = False
        _lock.release()

    def __exit__(self, *exc):
        _lock.acquire()
        grad_mode.state.enabled = self.mode


def _run(root, seed, retain_graph, accumulate, inputs, cached, cached_order):
    """The backward under the engine lock (released while Python rows run)."""
    status, order, count, arena, epoch = _execute(
        tape.chunk_addresses, root._row, seed, retain_graph, accumulate, -1, cached_order, 0, cached
    )
    reusable = True
    while status >= 0:  # a PYTHON row: run its hooks, then resume there
        reusable = False  # hooks saw views of the arena: never hand it out again
        planned = executor.slots(tape.chunk_addresses, order, count)
        with _PythonInBackward():
            _run_python_row(order[status], arena)
        executor.restore_slots(tape.chunk_addresses, order, count, planned)
        status, order, count, arena, _ = _execute(
            tape.chunk_addresses, root._row, seed, retain_graph, accumulate, status, order, count, arena
        )
    if status < -1:
        raise RuntimeError(_refusal_message(-2 - status, order, count))
    found = [_arena_grad(r, shape, dtype, arena, epoch) for r, shape, dtype in inputs]
    if not retain_graph:
        saved = tape.saved
        for r in order[:count].tolist():
            saved[r] = None
    post_hooks = _post_hooked and accumulate and _reached_post_hooks(epoch)
    return found, arena, order, reusable, post_hooks


def _refusal_message(bad, order, count):
    """Why the executor refused row ``bad``."""
    from .registry import BY_OPCODE

    row = tape.row(bad)
    flags = row[layout.FLAGS]
    if flags & layout.REFUSED and row[layout.STALE] == executor.KERNEL_FAILED:
        op = BY_OPCODE.get(int(row[layout.OP]))
        return (f"NBGRAD_DEBUG: the backward of {op.grad_fn if op else 'a row'} ({op.name if op else '?'}) raised "
                "an error: an index out of bounds")
    if flags & layout.REFUSED and row[layout.STALE] == executor.REFUSED_BY_PYTHON:
        message = tape.refusals.get(bad, "backward: this graph cannot be backpropagated")
        if "{consumer}" in message:  # name the row that would have handed it the gradient
            consumer, index = "", 0  # the root: its gradient was given
            for r in order[:count].tolist():
                row = tape.row(r)
                inputs = row[layout.IN:layout.IN + layout.MAX_INPUTS].tolist()
                if bad in inputs:
                    op = BY_OPCODE.get(int(row[layout.OP]))
                    consumer = f"Function {op.grad_fn if op else 'a Function'} returned an "
                    index = inputs.index(bad)
                    break
            message = message.format(consumer=consumer, index=index)
        return message
    if flags & layout.MODIFIED:
        return _modified_message(bad)
    return SECOND_BACKWARD


def _arena_view(r, arena, shape, dtype):
    """Row ``r``'s gradient in the arena (a view: valid until the next backward)."""
    row = tape.row(r)
    start = int(row[layout.SLOT])
    nbytes = int(row[layout.NUMEL] * row[layout.ITEMSIZE])
    return arena.view(np.uint8)[start:start + nbytes].view(dtype).reshape(shape)


def _arena_grad(r, shape, dtype, arena, epoch):
    """A copy of row ``r``'s gradient after a backward without accumulation, or None if not reached."""
    if tape.row(r)[layout.MARK] != epoch:
        return None
    return _arena_view(r, arena, shape, dtype).copy()


_LEGACY_NAMES = {"float32": "FloatTensor", "float64": "DoubleTensor", "int64": "LongTensor", "int32": "IntTensor",
                 "bool": "BoolTensor", "uint8": "ByteTensor", "int8": "CharTensor", "int16": "ShortTensor"}


def _modified_message(r):
    """PyTorch's words for row ``r``, whose saved buffer an in-place op changed."""
    from .registry import BY_OPCODE
    from .versions import version

    row = tape.row(r)
    k, expected = int(row[layout.STALE]), int(row[layout.STALE + 1])
    op = BY_OPCODE[int(row[layout.OP])]
    saved = tape.saved[r]
    array = saved[k] if isinstance(saved, tuple) else saved
    name = op.saves[k]
    producer = None  # the op whose output was saved (none for a leaf or a tensor without grad)
    if name == "out":
        producer = op
    elif name in op.inputs:
        j = int(row[layout.IN + op.inputs.index(name)])
        if j >= 0 and tape.row(j)[layout.OP]:
            producer = BY_OPCODE.get(int(tape.row(j)[layout.OP]))
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


_post_hooked = {}  # row -> weak AccumulateGrad node of leaves with post-accumulate hooks


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook (from whichever node holds
    the hook list now: a leaf's hooks move with it when its ``.data`` changes dtype or shape)."""

    def __init__(self, node, hooks, hook, post=False):
        self._node = weakref.ref(node)
        self._hooks = hooks
        self._hook = hook
        self._post = post

    def remove(self):
        if self._hook not in self._hooks:
            return
        self._hooks.remove(self._hook)
        node = self._node()
        if self._hooks or node is None or getattr(node, "_post_hooks" if self._post else "_hooks", None) \
                is not self._hooks:
            return  # hooks remain, or the list lives on another node now: its row stays flagged, harmlessly
        if self._post:
            _post_hooked.pop(node._row, None)
        else:
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
    return RemovableHandle(node, hooks, hook)


def register_post_accumulate_grad_hook(node, hook):
    hooks = getattr(node, "_post_hooks", None)
    if hooks is None:
        hooks = node._post_hooks = []
    hooks.append(hook)
    _post_hooked[node._row] = weakref.ref(node)
    return RemovableHandle(node, hooks, hook, post=True)


def _reached_post_hooks(epoch):
    """After a backward: the leaves it reached that have post-accumulate hooks, with their hooks
    (called once the engine lock is released)."""
    reached = []
    for r, node_ref in list(_post_hooked.items()):
        node = node_ref()
        if node is None or node._row != r:
            del _post_hooked[r]
        elif tape.row(r)[layout.MARK] == epoch:
            reached.append((node.variable, list(node._post_hooks)))
    return reached


def _run_python_row(r, arena):
    """Run what Python does at row ``r``: its tensor hooks, then a Python Function's backward."""
    entry = _hooked.get(r)
    if entry is not None:
        node = entry[0]()
        if node is None or node._row != r:  # the hooked node died; its row serves another now
            del _hooked[r]
        elif node._hooks:
            _run_hooks(node, r, arena)
    if r in function.RUNNING:
        function.run_backward(r, _arena_view(r, arena, *function.RUNNING[r][1:]), arena)


def _hook_result(hook, result):
    from .._tensor import Tensor

    if result is not None and not isinstance(result, Tensor):
        raise TypeError(f"hook {hook!r} returned a {type(result).__name__}: expected a Tensor or None")
    return result


def _run_hooks(node, r, arena):
    """Call the hooks of ``node`` (row ``r``) on its gradient, which lies in the executor's arena."""
    from .._tensor import _wrap

    _, shape, dtype = _hooked[r]
    grad = _arena_view(r, arena, shape, dtype)
    current = _wrap(grad)
    for hook in list(node._hooks):
        result = _hook_result(hook, hook(current))
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
