"""Compiled custom ops: your own ``@njit`` kernels as an op that runs inside the fused executor.

``register_op`` declares the op exactly as nbgrad declares its own (kernels
take their arguments by name; see ``registry.Op``), writes its compiled glue to
a module of its own (named by a hash of the declaration and of the kernels'
sources, so an edit recompiles) and adds its backward to the executor's
dispatch table. A graph using it still runs backward in one compiled call.
"""
import inspect
import re
import sys

import numpy as np

from .. import dtypes
from .registry import BY_OPCODE, OPS, Op


def _kernel_parameters(kernel, what, name):
    if not hasattr(kernel, "py_func"):
        raise TypeError(f"register_op({name!r}): the {what} kernel must be a Numba @njit function, "
                        f"got {type(kernel).__name__}")
    module = sys.modules.get(kernel.py_func.__module__)
    if getattr(module, kernel.py_func.__name__, None) is not kernel:  # the glue imports it by name
        raise ValueError(f"register_op({name!r}): the {what} kernel {kernel.py_func.__name__!r} must be defined "
                         "at the top level of a module")
    return list(inspect.signature(kernel.py_func).parameters)


def _grad_fn_name(name):
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) + "Backward0"


def register_op(name, forward, backward, *, inputs=("x",), floats=(), ints=(), defaults=None, saves=None,
                shape=None, grad_fn=None):
    """Declare a differentiable op from your own ``@njit`` kernels; returns the function that applies it.

    - ``forward(<inputs and parameters by name>, out)`` writes the result into
      ``out``; every array is flat (1-D, C order) and ``out`` has the output's size.
    - ``backward`` has one kernel per input (None: no gradient for it), each
      ``(g, <what it reads by name>, grad)``: ``g`` is the output's gradient and the
      kernel ADDS the input's gradient into ``grad`` (flat, the input's size).
      Besides inputs and parameters it may read ``out``, the forward's result,
      and ``fresh``: True when ``grad`` holds no gradient yet (stale bytes), and
      then the kernel must overwrite all of it instead of adding (it saves
      nbgrad zeroing it first; ``NBGRAD_DEBUG=1`` fills it with NaN to show
      what such a kernel fails to write).
    - ``floats`` and ``ints`` name scalar parameters, passed by keyword
      (``defaults`` gives their default values).
    - ``shape``: None for an elementwise op (inputs broadcast as in NumPy, the
      gradient is summed back to each input's shape); otherwise a function of the
      inputs' shapes (and the parameters, by keyword) giving the output's shape.

    The op runs in float32 and float64 (integer inputs become the default
    float dtype); its node is ``grad_fn`` (default: ``smooth_l1`` ->
    ``SmoothL1Backward0``).
    """
    from ..autograd import codegen
    from ..ops import GENERATED

    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in OPS:
        raise ValueError(f"register_op: {name!r} is not a valid op name or is one of nbgrad's own ops")
    inputs, floats, ints = tuple(inputs), tuple(floats), tuple(ints)
    backward = tuple(backward) if isinstance(backward, (tuple, list)) else (backward,)
    if not inputs or len(inputs) > 3:
        raise ValueError(f"register_op({name!r}): an op takes 1 to 3 tensor inputs, got {len(inputs)}")
    if len(backward) != len(inputs):
        raise ValueError(f"register_op({name!r}): one backward kernel per input (None for none): "
                         f"{len(inputs)} inputs, {len(backward)} kernels")
    if shape is None and len(inputs) > 2:
        raise ValueError(f"register_op({name!r}): an elementwise op broadcasts at most 2 inputs; give shape=")
    params = floats + ints
    known = set(inputs + params)
    for kernel, what in ((forward, "forward"), *((k, f"backward[{i}]") for i, k in enumerate(backward) if k)):
        names = _kernel_parameters(kernel, what, name)
        allowed = known | ({"g", "out", "fresh"} if what != "forward" else set())
        unknown = [p for p in names[:-1] if p not in allowed]
        if len(names) < 2 or unknown:
            raise ValueError(f"register_op({name!r}): the {what} kernel's parameters {names} must be names "
                             f"from {sorted(allowed)} followed by the array it writes")
    if saves is None:  # what the backward kernels read
        read = {p for k in backward if k for p in _kernel_parameters(k, "backward", name)[:-1]}
        saves = tuple(n for n in inputs + ("out",) if n in read)
    defaults = dict(defaults or {})
    opcode = 1 + max(BY_OPCODE)
    op = Op(name, grad_fn or _grad_fn_name(name), forward, backward, inputs=inputs, floats=floats, ints=ints,
            saves=tuple(saves), elementwise=shape is None, opcode=opcode)
    sources = "".join(inspect.getsource(k.py_func) for k in (forward, *backward) if k is not None)
    module = codegen.load_module([op], f"nbgrad._generated_{name}_{opcode}", f"custom-{name}", sources)
    op.forward = getattr(module, f"forward_{name}")
    op.forward_parallel = getattr(module, f"forward_{name}_parallel", op.forward)
    GENERATED.backwards.add(op, module)
    BY_OPCODE[opcode] = op
    return _applier(op, shape, defaults)


def _applier(op, shape_rule, defaults):
    from .. import ops
    from .._tensor import Tensor

    name = op.name

    def apply(*args, **params):
        if len(args) != len(op.inputs):
            raise TypeError(f"{name}() takes {len(op.inputs)} tensor arguments ({', '.join(op.inputs)}), "
                            f"got {len(args)}")
        unknown = set(params) - set(op.floats + op.ints)
        if unknown:
            raise TypeError(f"{name}() got unexpected keyword arguments {sorted(unknown)}")
        values = []
        for p in op.floats + op.ints:
            if p not in params and p not in defaults:
                raise TypeError(f"{name}() missing the keyword argument {p!r}")
            value = params.get(p, defaults.get(p))
            values.append(float(value) if p in op.floats else int(value))
        if not any(isinstance(a, Tensor) for a in args):
            raise TypeError(f"{name}(): expected at least one Tensor, got {[type(a).__name__ for a in args]}")
        tensors = [ops._as_tensor(a, name) for a in args]
        dtype = dtypes.result_type(*tensors)
        if not dtype.is_floating_point:
            dtype = dtypes.get_default_dtype()
        tensors = [ops._to_dtype(t, dtype) for t in tensors]
        shapes = [t._data.shape for t in tensors]
        if shape_rule is not None:
            out = np.empty(tuple(shape_rule(*shapes, **dict(zip(op.floats + op.ints, values)))), dtype.numpy)
            return _run(op, tensors, tuple(t._data for t in tensors), values, out)
        out_shape = shapes[0]
        for s in shapes[1:]:
            out_shape = ops._broadcast_shape(out_shape, s, name)
        numel = int(np.prod(out_shape))
        plans = [None if s == out_shape else ops._broadcast_plan(s, out_shape) + (numel,) for s in shapes]
        return _run(op, tensors, plans, values, np.empty(out_shape, dtype.numpy), broadcast=True)

    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = f"The custom op {name!r} (registered with nbgrad.autograd.register_op)."
    apply.op = op
    return apply


def _run(op, tensors, arrays_or_plans, params, out, broadcast=False):
    """Apply the op; a kernel that does not compile is reported as the user's op's error."""
    from numba.core.errors import NumbaError

    from .. import ops

    try:
        if broadcast:
            return ops._apply_broadcast(op, tuple(tensors), arrays_or_plans, tuple(params), out)
        return ops._apply(op, tuple(tensors), arrays_or_plans, tuple(params), out)
    except NumbaError as error:
        first = str(error).strip().splitlines()[0]
        raise TypeError(f"custom op {op.name!r}: its kernels did not compile for {out.dtype} arrays: {first}") \
            from None
