"""Op declarations: each differentiable op is declared once, as data.

A declaration names the op's kernels, what its backward reads, and its
grad_fn name. From the declarations ``codegen`` writes the compiled glue: a
forward entry per op that runs the kernel and records the node's tape row, and
the executor's dispatch from opcode to backward kernels. The Python op layer
(``nbgrad.ops``) calls ``op.forward``; nodes are made from ``op.node_class``.
"""
import operator
from dataclasses import dataclass, field

from ..kernels import jit
from .node import node_class

OPCODE_PYTHON = 1  # rows of Python Functions: the executor hands them back to Python


@dataclass(eq=False)  # ops compare and hash by identity
class Op:
    """One op: a forward kernel and, per input, a backward kernel (None: no gradient).

    Kernels take their arguments by name: the forward kernel any of the
    ``inputs`` and parameters (``floats``, ``ints``, ``shapes``), the backward
    ones ``g`` (the output's gradient), any saved buffer and parameter; the
    last parameter of each is where it writes (the output, or the input's
    gradient to accumulate into).

    ``arrays`` are ``(name, numpy dtype name)`` pairs of arguments that are
    arrays but not differentiable inputs (a condition, indices); the Python op
    passes them first among the parameters. ``saves`` names what the backward
    reads (input or array names, or ``"out"``);
    ``fwd=None`` declares a view, whose forward is metadata only;
    ``cross_dtype`` marks a dtype conversion, whose input gradient has the
    input's dtype, not the output's; ``elementwise`` kernels may run on aligned
    slices of all their arrays (in parallel, for big outputs: from
    ``jit.PARALLEL_MIN`` elements for the directions named in ``heavy``,
    ``"forward"`` and ``"backward"``, whose kernels compute a transcendental function
    per element, else from ``jit.ELEMENTWISE_LIGHT_THREADS_FROM``); other kernels with a
    threaded twin (``jit.njit(threads=True)``) run it from those sizes of their first input or
    output (``heavy``, else ``light_from`` or ``jit.PARALLEL_MIN_LIGHT``), sizes at or below those where the
    twin's loops go parallel; ``keeps_shapes``
    ops note their inputs' shapes on the node, where neither the output's shape
    nor a saved input tells them (``create_graph`` reads them); a ``saves_number``
    op's row counts as saving something, so that a second backward through it
    is refused as in PyTorch (which saves ``x * 2``'s 2 as a tensor).
    """

    name: str
    grad_fn: str
    fwd: object
    bwd: tuple
    inputs: tuple = ("x",)
    arrays: tuple = ()
    floats: tuple = ()
    ints: tuple = ()
    shapes: tuple = ()
    saves: tuple = ()
    cross_dtype: bool = False
    elementwise: bool = False
    heavy: tuple = ()
    light_from: int = 0  # when set, the size from which the directions not heavy run threads
    keeps_shapes: bool = False  # record the inputs' shapes on the node (create_graph needs them)
    saves_number: bool = False  # PyTorch saves its number operand: released by a backward like a saved tensor
    opcode: int = 0
    forward: object = field(default=None, repr=False)  # the compiled entry, set by build()
    forward_parallel: object = field(default=None, repr=False)  # the same in threads, for big outputs
    same_shape: object = field(default=None, repr=False)  # a fast path the op layer may attach
    node_class: type = field(init=False, repr=False)
    parallel_from: tuple = field(init=False, repr=False)
    threaded: tuple = field(init=False, repr=False)  # (forward, backward): whether each has a threaded variant
    pick_saved: object = field(init=False, repr=False)  # (*inputs, *params, out) -> what the row saved

    def __post_init__(self):
        self.node_class = node_class(self.grad_fn)
        # elements from which the forward and the backward run in threads
        light = self.light_from or (jit.ELEMENTWISE_LIGHT_THREADS_FROM if self.elementwise else jit.PARALLEL_MIN_LIGHT)
        self.parallel_from = tuple(jit.PARALLEL_MIN if way in self.heavy else light for way in ("forward", "backward"))
        self.threaded = (self.elementwise or hasattr(self.fwd, "threads"),
                         self.elementwise or any(hasattr(getattr(k, "kernel", k), "threads") for k in self.bwd))
        # positions in (*inputs, *params, out), params starting with the arrays
        arrays = self.inputs + tuple(name for name, _ in self.arrays)
        positions = [-1 if name == "out" else arrays.index(name) for name in self.saves]
        if self.saves == self.inputs:  # keep the inputs tuple itself: no work per call
            self.pick_saved = _same
        else:
            self.pick_saved = operator.itemgetter(*positions) if positions else None


class Swapped:
    """A backward kernel called with its ``a`` and ``b`` arguments swapped: the gradient of one
    input of a symmetric op (max, a product, a squared difference) from the kernel of the other."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.py_func = kernel.py_func  # what codegen reads: the name, module and parameters

    def argument(self, name):
        return {"a": "b", "b": "a"}.get(name, name)


OPS = {}
BY_OPCODE = {}  # opcode -> Op: the declared ops and those added with autograd.register_op


def _same(arrays):
    return arrays


def declare(name, grad_fn, fwd, bwd=(), **fields):
    """Declare an op; returns it (its compiled ``forward`` is attached by ``build``)."""
    if name in OPS:
        raise ValueError(f"op {name!r} is declared twice")
    op = Op(name, grad_fn, fwd, tuple(bwd), opcode=OPCODE_PYTHON + 1 + len(OPS), **fields)
    if len(op.bwd) != len(op.inputs):
        raise ValueError(f"op {name!r}: one backward kernel per input (None for none)")
    OPS[name] = op
    BY_OPCODE[op.opcode] = op
    return op


def build():
    """Write (or reuse) the compiled glue for every declared op and attach ``op.forward``."""
    from .codegen import Backwards, load_module

    module = load_module(list(OPS.values()))
    for op in OPS.values():
        op.forward = getattr(module, "forward_" + op.name)
        op.forward_parallel = getattr(module, f"forward_{op.name}_parallel", op.forward)
    module.backwards = Backwards(module, OPS.values())
    return module
