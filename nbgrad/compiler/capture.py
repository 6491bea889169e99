"""Capture and replay of a compiled function.

While a call is captured it runs eagerly, and the recorder (``recording.active``)
sees every kernel the op layer, the backward and the optimizer run:

- an op's forward (``ops.core._apply``): a step that calls its forward kernel, by
  address, on the same buffers (the outputs of the capture are the program's
  buffers, reused by every replay);
- ``.grad = None`` on a parameter (``zero_grad``): a step that marks its ``.grad``
  empty, as the eager setter does when it reuses the buffer;
- ``backward()``: the rows of the graph as they were when it started, restored by
  a step, then the executor;
- ``optimizer.step()``: its kernel, on the tables the optimizer hands at each replay
  (so learning rates, schedulers and Adam's step counts are read where Python keeps them);
- a loss's copy of its targets (checked at each replay) and dropout's mask, whose
  uniform sample is drawn from nbgrad's generator at each replay, as eagerly.

Anything else that touches tensors (a host read, an in-place op, a hook, a Python
Function, random numbers, an op not listed in ``CAPTURED_OPS``, an array the recorder
did not see made) makes the function eager for good, with one warning that says what
and where. Python code that touches no tensor runs only when a call is captured.
"""
import operator
import sys
import threading
import traceback
import warnings

import numpy as np

from .. import factories, ops
from .._tensor import Tensor, _wrap
from ..autograd import engine, grad_mode, tape
from ..autograd.node import AccumulateGrad
from ..autograd.registry import OPCODE_PYTHON
from ..kernels import replay as kernel
from ..kernels import tape as layout
from . import recording

MAX_PROGRAMS = 8  # captures per function; then it runs eagerly, with one warning

# The ops whose Python layer computes nothing the recorder does not see (views are no ops: they
# need no step, see ``Recorder.view``).
CAPTURED_OPS = frozenset(
    "neg exp log sqrt tanh erf log1p expm1 sigmoid relu abs sin cos clamp add_scalar mul_scalar div_scalar "
    "rsub_scalar rdiv_scalar pow_scalar rpow_scalar add sub mul div pow maximum minimum linear bias_add matmul "
    "clone softmax log_softmax nll_loss cross_entropy mse_loss sum sum_dims".split())
# Array parameters that a forward kernel writes: fresh buffers of the program.
OUTPUT_ARRAYS = {("cross_entropy", "prob")}
FLOATS = (np.dtype(np.float32), np.dtype(np.float64))

_capture_lock = threading.Lock()  # one capture at a time: ``recording.active`` is one slot


class CaptureError(RuntimeError):
    """What ``fullgraph=True`` raises where a call cannot be captured."""


def _bits(value):
    return int(np.float64(value).view(np.int64))


def _user_line():
    """``file:line`` of the innermost frame outside nbgrad (where the user's code did it)."""
    package = __file__.rsplit("/compiler/", 1)[0]
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(package):
            return f"{frame.filename}:{frame.lineno}"
    return "?"


_entries = {}  # name -> compiled C function (kept alive: programs hold its address)
_replay_module = None


def _entry(name):
    """The address of step entry ``name``: a function of kernels/replay.py or of the generated
    replay module (an op's forward), compiled as a C function on first use (cached on disk)."""
    global _replay_module
    found = _entries.get(name)
    if found is None:
        from ..kernels import jit

        if hasattr(kernel, name):
            function = getattr(kernel, name).py_func
        else:
            if _replay_module is None:
                from .. import ops
                from ..autograd import codegen, registry

                _replay_module = codegen.load_replay_module(list(registry.OPS.values()), ops.GENERATED)
            function = getattr(_replay_module, name)
        found = _entries[name] = jit.cfunc(kernel.STEP_SIGNATURE)(function)
    return found.address


class Recorder:
    """What one captured call did, as program steps; ``failure`` says why it cannot be replayed."""

    def __init__(self, fullgraph):
        self.thread = threading.get_ident()
        self.fullgraph = fullgraph
        self.failure = None
        self.steps = []          # (entry name, payload words, what the step is for)
        self.known = {}          # id(array) -> array: buffers the program owns or reads where they are
        self.recorded_rows = set()
        self.externals = {}      # id(tensor) -> (tensor, its array, its node, requires_grad): guarded
        self.modules = {}        # id(module) -> (module, training, ids of its parameters)
        self.nodes = []          # the graph's nodes: their rows stay the program's
        self.optimizers = []
        self.in_optimizer = False
        self.draws = []          # where random numbers were drawn (dropout claims its own)
        self.uniforms = []       # dropout's samples, drawn again at each replay
        self.pending = None      # the backward step waiting for its arena

    # --- what the hooks call --------------------------------------------------

    def _here(self):
        return threading.get_ident() == self.thread and self.failure is None

    def fail(self, reason):
        if not self._here():
            return
        self.failure = f"{reason} (at {_user_line()})"
        if self.fullgraph:
            raise CaptureError(f"nbgrad.compile(fullgraph=True): cannot capture {self.failure}")

    def host_read(self, what):
        self.fail(f"a tensor's value read on the host: {what}")

    def in_place(self):
        if not self.in_optimizer:
            self.fail("an in-place change of a tensor")

    def random_drawn(self):
        if self._here():
            self.draws.append(_user_line())

    def module_called(self, module):
        if self._here() and id(module) not in self.modules:
            parameters = tuple(module._parameters.values())  # kept: their ids stay theirs
            self.modules[id(module)] = (module, module.training, tuple(map(id, parameters)), parameters)

    def _array(self, array, tensor=None):
        """Whether the program may read ``array``: one it owns, or a tensor's it binds (guarded)."""
        if id(array) in self.known:
            return True
        if tensor is not None and tensor._data is array:
            self.externals[id(tensor)] = (tensor, array, tensor._node, tensor._requires_grad)
            self.known[id(array)] = array
            return True
        return array.size == 0

    def _own(self, array):
        self.known[id(array)] = array

    def forward(self, op, inputs, arrays, params, out, forward, row):
        if not self._here():
            return
        if op.name not in CAPTURED_OPS:
            return self.fail(f"the op {op.name!r}")
        dtype = out.dtype
        if dtype not in FLOATS or any(a.dtype != dtype for a in arrays):
            return self.fail(f"the op {op.name!r} on {[a.dtype.name for a in arrays]} arrays")
        for i, a in enumerate(arrays):
            if not self._array(a, inputs[i] if i < len(inputs) else None):
                return self.fail(f"an input of {op.name!r} made by something nbgrad.compile does not record")
        if row >= 0:
            self.recorded_rows.add(row)
        self._own(out)
        if op.fwd is None:  # a view: its output is its input's memory
            return
        words = []
        for a in arrays:
            words += [a.ctypes.data, a.size]
        array_params = params[:len(op.arrays)]
        for (name, declared), a in zip(op.arrays, array_params):
            if not isinstance(a, np.ndarray) or a.dtype != (np.dtype(declared) if declared else dtype):
                return self.fail(f"the op {op.name!r} with its {name!r} of another dtype")
            if (op.name, name) in OUTPUT_ARRAYS:
                self._own(a)
            elif not self._array(a):
                return self.fail(f"the {name!r} of {op.name!r}, made by something nbgrad.compile does not record")
            words += [a.ctypes.data, a.size]
        rest = params[len(op.arrays):]
        floats, ints, shapes = (rest[:len(op.floats)], rest[len(op.floats):len(op.floats) + len(op.ints)],
                                rest[len(op.floats) + len(op.ints):])
        words += [_bits(f) for f in floats] + [int(i) for i in ints]
        for s in shapes:
            if not isinstance(s, np.ndarray) or s.dtype != np.int64:
                return self.fail(f"the op {op.name!r} with a shape parameter of type {type(s).__name__}")
            self._own(s)
            words += [s.ctypes.data, s.size]
        words += [out.ctypes.data, out.size]
        parallel = "_parallel" if forward is op.forward_parallel and op.forward_parallel is not op.forward else ""
        self.steps.append((f"forward_step_{op.name}{parallel}_{dtype.name}", words, op.name))

    def view(self, input, out, node):
        """A view op: no step (the view is its input's memory), but the program may read it, and
        its node's row (the view's gradient read back) is the program's."""
        if not self._here():
            return
        if not self._array(input._data, input):
            return self.fail("a view of a tensor made by something nbgrad.compile does not record")
        self._own(out)
        if node is not None:
            self.recorded_rows.add(node._row)

    def copied(self, data, out, span, shape, strides):
        """A strided view copied to a contiguous buffer at an op's entry: a step that copies it."""
        if not self._here():
            return
        if id(data) not in self.known:
            return self.fail("a strided view nbgrad.compile did not see made")
        if data.dtype not in FLOATS:
            return self.fail(f"a copy of a strided {data.dtype.name} view")
        self._own(out)
        self._own(shape)
        self._own(strides)
        if span:
            self.steps.append((f"copy_strided_{data.dtype.name}", [data.ctypes.data, span, shape.ctypes.data,
                                                                   shape.size, strides.ctypes.data, out.ctypes.data,
                                                                   out.size], "copy"))

    def private_targets(self, target, values, classes, ignore_index, copy, op):
        if not self._here():
            return
        if not self._array(values, target):
            return self.fail(f"the targets of {op}, made by something nbgrad.compile does not record")
        self._own(copy)
        self.steps.append(("private_targets", [values.size, values.ctypes.data, classes, ignore_index,
                                               copy.ctypes.data, -1], (op, classes, copy)))

    def dropout(self, uniform, p, mask):
        if not self._here():
            return
        self.draws.pop()  # the sample dropout drew: the replay draws it again
        self._own(uniform)
        self._own(mask)
        self.uniforms.append(uniform)
        self.steps.append((f"dropout_mask_{mask.dtype.name}", [mask.size, uniform.ctypes.data, _bits(p),
                                                              mask.ctypes.data], "dropout"))

    def grad_assigned(self, tensor, value):
        if not self._here():
            return
        node = tensor._node
        if value is not None or type(node) is not AccumulateGrad or getattr(node, "_grad_buffer", None) is None:
            return self.fail("an assignment to .grad (other than zero_grad's None)")
        rows = np.array([node._row], np.int64)
        self._own(rows)
        self.steps.append(("clear_grads", [1, rows.ctypes.data], tensor))

    def backward(self, root, seed, retain_graph, accumulate, inputs):
        if not self._here():
            return
        if not accumulate or inputs:
            return self.fail("autograd.grad()")
        if self.optimizers:
            return self.fail("a backward after an optimizer step")
        rows, stack, seen = [], [root], {id(root)}
        while stack:
            node = stack.pop()
            self.nodes.append(node)
            r = node._row
            flags = int(tape.row(r)[layout.FLAGS])
            if tape.row(r)[layout.OP] == OPCODE_PYTHON and type(node) is not AccumulateGrad:
                return self.fail("a Python autograd.Function")
            if flags & layout.PYTHON:
                return self.fail("a tensor hook")
            if type(node) is AccumulateGrad:
                if r in engine._post_hooked:
                    return self.fail("a post-accumulate-grad hook")
                variable = node.variable
                if variable is None or id(variable) not in self.externals:
                    return self.fail("a backward into a tensor made inside the function")
                continue
            if r not in self.recorded_rows:
                return self.fail("a backward through a graph made outside the function")
            if flags & layout.RETAIN:
                return self.fail("retain_grad()")
            rows.append(r)
            for child in node._inputs:
                if child is not None and id(child) not in seen:
                    seen.add(id(child))
                    stack.append(child)
        rows = np.array(rows, np.int64)
        snapshot = np.array([tape.row(r) for r in rows.tolist()], np.int64).reshape(-1)
        seed = np.array(seed, np.float64)
        self._own(rows)
        self._own(snapshot)
        self._own(seed)
        self.steps.append(("restore_rows", [rows.size, rows.ctypes.data, snapshot.ctypes.data], "backward"))
        # order, arena: filled in by backward_done; the epoch: at each replay
        words = [root._row, seed.ctypes.data, seed.size, 0, int(bool(retain_graph)), 0, 0, 0, 0, 0, 0, -1]
        self.pending = words
        self.steps.append(("execute_step", words, "backward"))

    def backward_done(self, arena, order, reusable):
        if not self._here() or self.pending is None:
            return
        if not reusable:
            return self.fail("a backward that ran Python code")
        order, arena = np.zeros(order.size, np.int64), np.zeros(arena.size, np.float64)
        self._own(order)
        self._own(arena)
        table = ops.GENERATED.backwards.table
        self._own(table)
        self.pending[5:11] = [order.ctypes.data, order.size, arena.ctypes.data, arena.size, table.ctypes.data,
                              table.size]
        self.pending = None

    def optimizer_step(self, optimizer, table, hyper):
        if not self._here():
            return
        if any(o is optimizer for o, _ in self.optimizers):
            return self.fail("a second step of one optimizer")
        words = [optimizer.kind, table.shape[0], table.ctypes.data, hyper.ctypes.data, 0]
        self.optimizers.append((optimizer, len(self.steps)))
        self.steps.append(("optimizer_step", words, (table, hyper)))
        self.in_optimizer = True

    def optimizer_step_done(self):
        self.in_optimizer = False

    def finish(self):
        if self.failure is None and self.draws:
            self.failure = f"random numbers drawn inside the function, other than dropout's (at {self.draws[0]})"
        if self.failure is None and self.pending is not None:
            self.failure = "a backward that did not finish"


class Program:
    """A captured call: the steps as one int64 array, what they read, and the guards."""

    def __init__(self, recorder, slots, outputs):
        self.slots = slots
        self.outputs = outputs
        self.replays = 0
        self.externals = list(recorder.externals.values())
        self.modules = list(recorder.modules.values())
        self.module_objects = [module for module, _, _, _ in self.modules]
        self.trainings = [training for _, training, _, _ in self.modules]
        self.module_parameters = [(module._parameters, ids) for module, _, ids, _ in self.modules if ids]
        self.keep = (recorder.known, recorder.nodes)  # every buffer a step reads, every row's node
        self.uniforms = recorder.uniforms
        self.table = ops.GENERATED.backwards.table
        words, positions = [], []
        for name, payload, _ in recorder.steps:
            positions.append(len(words))
            words += [2 + len(payload), _entry(name)] + payload
        self.words = np.array(words, np.int64)
        self.positions = {p: step for p, step in zip(positions, recorder.steps)}
        steps = list(zip(positions, recorder.steps))
        self.epochs = [p + 2 + 3 for p, (name, _, _) in steps if name == "execute_step"]
        self.cleared = [(p, what) for p, (name, _, what) in steps if name == "clear_grads"]
        self.optimizers = [(optimizer, positions[k]) + recorder.steps[k][2] for optimizer, k in recorder.optimizers]
        self.tables = {}  # position -> the table (-position - 1: the hyper table) the program points at
        for _, position, table, hyper in self.optimizers:
            self.tables[position], self.tables[-position - 1] = table, hyper

    def guards_hold(self):
        """Whether the program still reads what the function would: the same tensors with the same
        buffers and nodes, modules in the same mode with the same parameters."""
        for tensor, array, node, requires_grad in self.externals:
            if tensor._data is not array or tensor._node is not node or tensor._requires_grad is not requires_grad:
                return False
        if list(map(_training, self.module_objects)) != self.trainings:
            return False
        for parameters, ids in self.module_parameters:
            if tuple(map(id, parameters.values())) != ids:
                return False
        return ops.GENERATED.backwards.table is self.table

    def grads_reusable(self):
        """Whether eager ``zero_grad`` would reuse each ``.grad`` buffer (else it makes a fresh one:
        someone holds the old one, so the replay must not write it)."""
        for _, tensor in self.cleared:
            node = tensor._node
            node._grad_tensor = None
            buffer = node._grad_buffer
            if buffer.base is not None or sys.getrefcount(buffer) > 3:
                return False
        return True

    def replay(self, tensors):
        """Run the program on these arguments (the engine's lock held: a backward in another
        thread, or another replay of this program, waits)."""
        with engine._lock:
            self.replays += 1
            for slot, t in zip(self.slots, tensors):
                np.copyto(slot, t._data)
            words = self.words
            if self.uniforms:
                generator = factories.generator()
                for uniform in self.uniforms:  # in the capture's order: the eager stream of numbers
                    generator.random(out=uniform, dtype=uniform.dtype)
            tables = []
            for optimizer, position, _, _ in self.optimizers:
                table, hyper = optimizer._prepare_step()  # this call's learning rates, step counts
                if table is not self.tables.get(position):
                    words[position + 3] = table.shape[0]
                    words[position + 4] = table.ctypes.data
                    self.tables[position] = table
                if hyper is not self.tables.get(-position - 1):
                    words[position + 5] = hyper.ctypes.data
                    self.tables[-position - 1] = hyper
                words[position + 6] = 0  # updated: stays 0 if the program stops before the step
                tables.append(table)
            for position in self.epochs:
                words[position] = next(engine._epochs)
            engine.running += 1
            try:
                stopped = kernel.run(words, tape.chunk_addresses)
            finally:
                engine.running -= 1
                if not engine.running and engine.graveyard:
                    engine.graveyard.clear()
            for (optimizer, position, _, _), table in zip(self.optimizers, tables):
                optimizer._finish_step(table, int(words[position + 6]))
            if stopped >= 0:
                self._raise(stopped)
            return _outputs(self.outputs)

    def _raise(self, position):
        name, _, what = self.positions[position]
        if name == "private_targets":
            op, classes, copy = what
            bad = int(self.words[position + 7])
            raise IndexError(f"Target {copy[bad]} is out of bounds ({op} over {classes} classes).")
        raise RuntimeError(f"nbgrad.compile: the replayed {what} failed (status {int(self.words[position + 13])})")


_training = operator.attrgetter("training")


def _outputs(template):
    """The function's result from ``template`` (see ``_template``): new tensors over copies of the
    program's buffers (the next replay writes them again)."""
    kind = template[0]
    if kind == "buffer":
        return _wrap(template[1].copy())
    if kind == "same":
        return template[1]
    return template[1](_outputs(t) for t in template[2])


class CompiledFunction:
    """What ``nbgrad.compile(fn)`` returns: call 1 eager, then capture, then replays."""

    def __init__(self, fn, fullgraph):
        self.fn = fn
        self.fullgraph = fullgraph
        self.programs = {}   # guard key -> Program
        self.captures = 0
        self.calls = 0
        self.eager = None    # why the function runs eagerly for good (None: it does not)
        self.__wrapped__ = fn
        self.__name__ = getattr(fn, "__name__", "compiled")
        self.__doc__ = getattr(fn, "__doc__", None)

    def __get__(self, instance, owner):  # a decorated method
        return self if instance is None else _BoundCompiled(self, instance)

    def _key(self, args, kwargs):
        """The arguments' guard key: tensors by shape and dtype, anything else by value (or identity)."""
        key = [grad_mode.state.enabled]
        for a in args:
            if type(a) is Tensor:
                if a._requires_grad:
                    return None
                key.append((a._data.shape, a._data.dtype))
            else:
                try:
                    hash(a)
                    key.append((type(a), a))
                except TypeError:
                    key.append((type(a), id(a)))
        if kwargs:
            return None
        return tuple(key)

    def __call__(self, *args, **kwargs):
        if self.eager is not None:
            return self.fn(*args, **kwargs)
        self.calls += 1
        key = self._key(args, kwargs)
        if key is None:
            return self._give_up("arguments that require grad, or keyword arguments", args, kwargs)
        program = self.programs.get(key)
        if program is not None and program.guards_hold():
            if not program.grads_reusable():
                return self.fn(*args, **kwargs)
            return program.replay([a for a in args if type(a) is Tensor])
        if self.calls == 1:
            return self.fn(*args, **kwargs)
        if self.captures >= MAX_PROGRAMS:
            return self._give_up(f"its guards failed {MAX_PROGRAMS} times", args, kwargs)
        return self._capture(key, args)

    def _give_up(self, reason, args, kwargs):
        self.eager = reason
        warnings.warn(f"nbgrad.compile: {self.__name__} runs eagerly from now on: {reason}", UserWarning,
                      stacklevel=3)
        return self.fn(*args, **kwargs)

    def _capture(self, key, args):
        self.captures += 1
        slots, call_args = [], []
        for a in args:  # the program's input slots: each replay copies its arguments there
            if type(a) is Tensor:
                slots.append(a._data.copy())
                call_args.append(_wrap(slots[-1]))
            else:
                call_args.append(a)
        recorder = Recorder(self.fullgraph)
        for s in slots:
            recorder._own(s)
        with _capture_lock:
            recording.active = recorder
            try:
                result = self.fn(*call_args)
            finally:
                recording.active = None
        recorder.finish()
        template = _template(result, recorder) if recorder.failure is None else None
        if recorder.failure is not None:
            self.eager = recorder.failure
            warnings.warn(f"nbgrad.compile: {self.__name__} runs eagerly: cannot capture {recorder.failure}",
                          UserWarning, stacklevel=3)
            return result
        self.programs[key] = Program(recorder, slots, template)
        return _outputs(template)


class _BoundCompiled:
    def __init__(self, compiled, instance):
        self.compiled, self.instance = compiled, instance

    def __call__(self, *args, **kwargs):
        return self.compiled(self.instance, *args, **kwargs)


def _template(result, recorder):
    """How to rebuild ``result`` at a replay: tensors over program buffers are copied, others kept."""
    if isinstance(result, Tensor):
        if id(result._data) in recorder.known and id(result) not in recorder.externals:
            if result._requires_grad and not tape.row(result._node._row)[layout.FLAGS] & layout.RELEASED:
                recorder.failure = "a result that requires grad (its graph would be needed)"
            return ("buffer", result._data)
        return ("same", result)
    if isinstance(result, (tuple, list)):
        return ("sequence", type(result), [_template(r, recorder) for r in result])
    return ("same", result)
