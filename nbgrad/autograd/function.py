"""Custom ops written in Python: ``autograd.Function``.

A Function's node is a tape row flagged PYTHON whose inputs are the rows of
its tensor arguments (a chain of link rows when there are more than a row
holds). The executor runs every compiled row before it, returns to Python
there, and Python calls ``backward`` on the gradient in the executor's arena and
adds what it returns into the inputs' gradients; then the executor goes on. So
a graph with custom Functions still runs every built-in op compiled, in
segments between them. A Function with several outputs gives each its own row
(an input of the Function's row) where Python collects that output's gradient.
"""
import weakref

import numpy as np

from ..kernels import executor
from ..kernels import tape as layout
from . import tape
from .grad_mode import is_grad_enabled, no_grad
from .node import ManyInputsNode, Node
from .registry import OPCODE_PYTHON

RUNNING = {}  # row -> (weak node, gradient shape, dtype) of every live Function row Python runs


class FunctionCtx:
    """The ``ctx`` that ``forward`` and ``backward`` share: save tensors and any attributes on it."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._row = None
        self._to_save = ()
        self._non_differentiable = ()
        self._output_grads = None  # the outputs' gradients, collected for a Function with several

    def save_for_backward(self, *tensors):
        """Keep ``tensors`` (or None) for ``backward``, which reads them as ``ctx.saved_tensors``."""
        from .._tensor import Tensor

        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(f"save_for_backward can only save tensors, but argument {i} "
                                f"is of type {type(t).__name__}")
        self._to_save = tensors

    @property
    def saved_tensors(self):
        from .engine import SECOND_BACKWARD
        from .versions import version

        if self._row is None:  # forward has not returned yet, or nothing was recorded
            return tuple(self._to_save)
        saved = tape.saved[self._row]
        if saved is None:
            raise RuntimeError(SECOND_BACKWARD)
        for t, expected in saved:
            if t is not None and version(t._data) != expected:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: a tensor of shape {list(t.shape)} saved by save_for_backward is at version "
                    f"{version(t._data)}; expected version {expected} instead."
                )
        return tuple(t for t, _ in saved)

    def mark_non_differentiable(self, *tensors):
        """Outputs that get no gradient (indices, masks): they do not require grad."""
        self._non_differentiable = tensors

    def set_materialize_grads(self, value):
        """With False, ``backward`` sees None (not zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        raise NotImplementedError("Function: ctx.mark_dirty (in-place custom Functions) is not supported")


class FunctionNode(ManyInputsNode):
    """The grad_fn of a Function's outputs (``<Name>Backward``). For a Function with several
    outputs each output has its own node, whose ``_function`` is the node that runs backward."""

    __slots__ = ("_ctx", "_function", "_index", "_links")

    def __del__(self):
        entry = RUNNING.get(getattr(self, "_row", -1))
        if entry is not None and entry[0]() in (self, None):  # None: weak references die first in a GC
            del RUNNING[self._row]
        Node.__del__(self)


class Function:
    """Subclass with ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)`` (static methods),
    then call ``MyFunction.apply(*args)``.

    ``backward`` returns one gradient per argument of ``forward`` (None for
    arguments that are not tensors or need none); it runs with grad mode off.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define backward(ctx, ...)")

    def __init__(self, *args, **kwargs):
        raise RuntimeError(f"{type(self).__name__}: call Function subclasses through .apply(...), "
                           "without making an instance")

    @classmethod
    def apply(cls, *args, **kwargs):
        from .._tensor import Tensor, _wrap

        needs = tuple(isinstance(a, Tensor) and a._requires_grad for a in args)
        ctx = FunctionCtx(needs)
        with no_grad():
            result = cls.forward(ctx, *args, **kwargs)
        outputs = result if isinstance(result, tuple) else (result,)
        inputs = [a for a in args if isinstance(a, Tensor)]
        # Outputs are new tensors: one returned unchanged from the inputs must not take on their node.
        outputs = tuple(_wrap(o._data) if isinstance(o, Tensor) else o for o in outputs)
        if is_grad_enabled() and any(needs):
            _record(cls, ctx, args, outputs, inputs)
        return outputs if isinstance(result, tuple) else outputs[0]


def once_differentiable(backward):
    """As in PyTorch: marks a backward that is not itself differentiable (every backward here)."""
    return backward


def _new_row(node, itemsize, numel, inputs, flags):
    """Give ``node`` a fresh row of the Python opcode over input rows ``inputs`` (at most 3)."""
    r = tape.alloc_row()
    row = tape.row(r)
    row[:] = 0
    row[layout.OP] = OPCODE_PYTHON
    row[layout.FLAGS] = flags
    row[layout.ITEMSIZE] = itemsize
    row[layout.NUMEL] = numel
    row[layout.IN:layout.IN + layout.MAX_INPUTS] = -1
    row[layout.IN:layout.IN + len(inputs)] = inputs
    node._row = r
    node._arity = 0
    node._in0 = node._in1 = node._in2 = None
    return r


def _linked(rows, itemsize, links):
    """At most 3 rows that reach all of ``rows``: the last is a link row over the rest if needed."""
    if len(rows) <= layout.MAX_INPUTS:
        return rows
    link = Node()
    links.append(link)
    _new_row(link, itemsize, 0, _linked(rows[2:], itemsize, links), 0)
    return rows[:2] + [link._row]


def _record(cls, ctx, args, outputs, inputs):
    from .._tensor import Tensor

    node_class = cls.__dict__.get("_node_class")  # kept on the class itself: they die together
    if node_class is None:
        node_class = type(f"{cls.__name__}Backward", (FunctionNode,), {"__slots__": (), "function": cls})
        cls._node_class = node_class
    differentiable = [
        k for k, o in enumerate(outputs)
        if isinstance(o, Tensor) and o._data.dtype.kind == "f" and o._data.dtype.itemsize in (4, 8)
        and not any(o._data is t._data for t in ctx._non_differentiable if isinstance(t, Tensor))
    ]
    if not differentiable:
        return
    input_rows = [a._node._row for a in inputs if a._requires_grad]
    itemsize = outputs[differentiable[0]]._data.itemsize
    node = node_class()
    node._links = []
    rows = _linked(input_rows, itemsize, node._links)
    single = len(outputs) == 1
    numel = outputs[0]._data.size if single else 0
    flags = layout.PYTHON | (layout.NEEDS_SAVED if ctx._to_save else 0)
    r = _new_row(node, itemsize, numel, rows, flags)
    node._parts = tuple(a._node if a._requires_grad else None for a in inputs)
    node._ctx = ctx
    node._function = node
    node._index = 0
    ctx._row = r
    ctx._inputs = [(a._node._row, a._data.shape, a._data.dtype) if need else None
                   for a, need in zip(args, ctx.needs_input_grad)]
    ctx._tensor_positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))  # node._parts' order
    ctx._output_meta = [(o._data.shape, o._data.dtype) if k in differentiable else None
                        for k, o in enumerate(outputs)]
    tape.saved[r] = tuple((t, _version(t)) for t in ctx._to_save)
    if single:
        RUNNING[r] = (weakref.ref(node), outputs[0]._data.shape, outputs[0]._data.dtype)
        outputs[0]._node = node
        outputs[0]._requires_grad = True
        return
    for k in differentiable:
        out = outputs[k]
        output_node = node_class()
        output_node._links = []
        s = _new_row(output_node, out._data.itemsize, out._data.size, [r], layout.PYTHON)
        output_node._parts = node._parts
        output_node._function = node
        output_node._index = k
        output_node._ctx = None
        RUNNING[s] = (weakref.ref(output_node), out._data.shape, out._data.dtype)
        out._node = output_node
        out._requires_grad = True
    RUNNING[r] = (weakref.ref(node), (0,), outputs[differentiable[0]]._data.dtype)


def _version(t):
    from .versions import version

    return None if t is None else version(t._data)


def run_backward(r, grad, arena):
    """At Function row ``r`` during a backward: ``grad`` is its gradient in the arena (a view)."""
    node = RUNNING[r][0]()
    if node._function is not node:  # one output of several: keep its gradient for the Function
        ctx = node._function._ctx
        if ctx._output_grads is None:
            ctx._output_grads = [None] * len(ctx._output_meta)
        ctx._output_grads[node._index] = grad.copy()
        return
    ctx = node._ctx
    if len(ctx._output_meta) == 1:
        grads = [grad.copy()]
    else:
        grads = ctx._output_grads or [None] * len(ctx._output_meta)
        ctx._output_grads = None
    _call_backward(type(node), ctx, grads, arena)


def gradients_returned(name, result, expected):
    """What ``backward`` returned as a tuple of ``expected`` gradients, one per argument of ``forward``.

    As in PyTorch, a single value counts as a 1-tuple and extra trailing ``None``s are dropped; any other
    count is an error.
    """
    result = result if isinstance(result, tuple) else (result,)
    if len(result) > expected and all(g is None for g in result[expected:]):
        result = result[:expected]
    if len(result) != expected:
        raise RuntimeError(f"function {name} returned an incorrect number of gradients "
                           f"(expected {expected}, got {len(result)})")
    return result


def _call_backward(node_class, ctx, grads, arena):
    from .._tensor import Tensor, _wrap

    if ctx.materialize_grads:
        grads = [np.zeros(*meta) if g is None and meta is not None else g
                 for g, meta in zip(grads, ctx._output_meta)]
    # Where each input's gradient lies, read now: a backward inside the Function's plans again and
    # gives shared rows other slots (they are restored only after this row)
    slots = [None if target is None else int(tape.row(target[0])[layout.SLOT]) for target in ctx._inputs]
    with no_grad():
        result = node_class.function.backward(ctx, *[None if g is None else _wrap(g) for g in grads])
    result = gradients_returned(node_class.__name__, result, len(ctx.needs_input_grad))
    name = node_class.__name__
    for index, (target, g, slot) in enumerate(zip(ctx._inputs, result, slots)):
        if target is None or g is None:
            continue
        if not isinstance(g, Tensor):
            raise TypeError(f"function {name} returned a {type(g).__name__} as the gradient at index {index}; "
                            "expected a Tensor or None")
        row, shape, dtype = target
        if g._data.shape != shape:
            raise RuntimeError(f"Function {name} returned an invalid gradient at index {index} - got "
                               f"{list(g._data.shape)} but expected shape compatible with {list(shape)}")
        values = np.ascontiguousarray(g._data, dtype).reshape(-1)
        executor.add_into(tape.row(row), slot, arena.ctypes.data, values)
