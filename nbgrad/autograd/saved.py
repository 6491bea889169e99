"""PyTorch's ``grad_fn._saved_<name>`` attributes, read from what a node's tape row saved.

A compiled row keeps raw buffers (``tape.saved[row]``, in the order of its
op's ``saves``) and its number parameters in the row itself; ``SAVED`` says,
for each grad_fn name and PyTorch attribute, which of them PyTorch's
attribute is. ``node_class`` gives every node class the properties its name
has here, so that an attribute PyTorch does not have (or that nbgrad does not
keep) is a plain ``AttributeError``, as in PyTorch, at no cost to other lookups.

As in PyTorch, a saved tensor read after a backward without
``retain_graph`` freed it raises the "backward through the graph a second
time" error, and one changed in place since raises the in-place error; saved
numbers and sizes stay readable.
"""
import math

import numpy as np

from ..kernels import tape as layout
from . import tape

# (grad_fn name, PyTorch attribute) -> where nbgrad keeps it: one spec for every op recorded under that
# name, or {op name: spec} where ops differ (an op not listed keeps nothing for it). A spec is
#   "name"        the buffer the op saved as ``name`` (an input or array name; "out": the result), a tensor;
#   "name?input"  the same, but None unless ``input`` requires grad (PyTorch saves it only for that gradient);
#   "name.T"      its transpose; "name.2d": as a matrix, rows by its last dimension;
#   "#p"          the op's number parameter ``p`` as a 0-d float64 tensor (PyTorch's wrapped Python number);
#   "=p"          the parameter ``p`` as a number (None where infinite: a clamp bound not given);
#   "sizes"       the first input's shape, a tuple of ints; "numel": its element count;
#   None          None (PyTorch saves nothing there for nbgrad's op).
SAVED = {
    ("ExpBackward0", "_saved_result"): "out",
    ("SqrtBackward0", "_saved_result"): "out",
    ("TanhBackward0", "_saved_result"): "out",
    ("SigmoidBackward0", "_saved_result"): "out",
    ("ReluBackward0", "_saved_result"): "out",
    ("LogBackward0", "_saved_self"): "x",
    ("AbsBackward0", "_saved_self"): "x",
    ("SinBackward0", "_saved_self"): "x",
    ("CosBackward0", "_saved_self"): "x",
    ("ClampBackward1", "_saved_self"): "x",
    ("ClampBackward1", "_saved_min"): "=low",
    ("ClampBackward1", "_saved_max"): "=high",
    ("MulBackward0", "_saved_self"): {"mul": "a?b", "mul_scalar": None},
    ("MulBackward0", "_saved_other"): {"mul": "b?a", "mul_scalar": "#p"},
    ("DivBackward0", "_saved_self"): {"div": "a?b", "div_scalar": None},
    ("DivBackward0", "_saved_other"): {"div": "b", "div_scalar": "#p"},
    ("PowBackward0", "_saved_self"): "x",
    ("PowBackward0", "_saved_exponent"): "=p",
    ("PowBackward1", "_saved_self"): "a",
    ("PowBackward1", "_saved_exponent"): "b",
    ("PowBackward1", "_saved_result"): "out",
    ("PowBackward2", "_saved_self"): "=p",
    ("PowBackward2", "_saved_result"): "out",
    ("MaximumBackward0", "_saved_self"): "a",
    ("MaximumBackward0", "_saved_other"): "b",
    ("MinimumBackward0", "_saved_self"): "a",
    ("MinimumBackward0", "_saved_other"): "b",
    ("WhereBackward0", "_saved_condition"): "condition",
    ("MmBackward0", "_saved_self"): {"matmul": "a?b", "linear": "x.2d?w"},
    ("MmBackward0", "_saved_mat2"): {"matmul": "b?a", "linear": "w.T?x"},
    ("MvBackward0", "_saved_self"): "a?b",
    ("MvBackward0", "_saved_vec"): "b?a",
    ("DotBackward0", "_saved_self"): "a?b",
    ("DotBackward0", "_saved_tensor"): "b?a",
    ("BmmBackward0", "_saved_self"): "a?b",
    ("BmmBackward0", "_saved_mat2"): "b?a",
    ("AddmmBackward0", "_saved_mat1"): "x.2d?w",
    ("AddmmBackward0", "_saved_mat2"): "w.T?x",
    ("SoftmaxBackward0", "_saved_result"): "out",
    ("LogSoftmaxBackward0", "_saved_result"): "out",
    ("MseLossBackward0", "_saved_self"): "a",
    ("MseLossBackward0", "_saved_target"): "b",
    ("MseLossBackward0", "_saved_reduction"): "=reduction",
    ("NllLossBackward0", "_saved_target"): "caller_target",
    ("NllLossBackward0", "_saved_weight"): {"nll_loss": "weight", "cross_entropy": None},
    ("NllLossBackward0", "_saved_reduction"): "=reduction",
    ("MaxBackward0", "_saved_indices"): "caller_indices",
    ("MinBackward0", "_saved_indices"): "caller_indices",
    ("MaxBackward0", "_saved_self_sym_sizes"): "sizes",
    ("MinBackward0", "_saved_self_sym_sizes"): "sizes",
    ("SumBackward0", "_saved_self_sym_sizes"): {"sum": "sizes"},
    ("MeanBackward0", "_saved_self_sym_sizes"): {"sum": "sizes"},
    ("MeanBackward0", "_saved_self_sym_numel"): {"sum": "numel"},
    ("ViewBackward0", "_saved_self_sym_sizes"): {"view": "sizes"},
    ("ExpandBackward0", "_saved_self_sym_sizes"): {"strided": "sizes"},
}


def properties(grad_fn):
    """The ``_saved_*`` properties of node class ``grad_fn`` (a dict for its namespace)."""
    return {attribute: _property(attribute, spec) for (name, attribute), spec in SAVED.items() if name == grad_fn}


def _property(attribute, spec):
    def read(node):
        return _read(node, attribute, spec)

    read.__name__ = attribute
    return property(read, doc=f"PyTorch's {attribute}: what this node saved for its backward")


def _missing(node, attribute, op):
    return AttributeError(f"'{type(node).__name__}' object has no attribute '{attribute}' "
                          f"(nbgrad's {op.name if op else 'unknown'} op does not keep it)")


def _read(node, attribute, spec):
    from .registry import BY_OPCODE

    r = node._row
    row = tape.row(r)
    op = BY_OPCODE.get(int(row[layout.OP]))
    if isinstance(spec, dict):
        if op is None or op.name not in spec:
            raise _missing(node, attribute, op)
        spec = spec[op.name]
    if spec is None:
        return None
    if op is None:
        raise _missing(node, attribute, op)
    if spec in ("sizes", "numel"):
        shapes = getattr(node, "_shapes", None)
        if not shapes:
            raise _missing(node, attribute, op)
        return tuple(int(n) for n in shapes[0]) if spec == "sizes" else math.prod(shapes[0])
    if spec[0] in "#=":
        return _parameter(node, attribute, op, row, spec)
    name, _, condition = spec.partition("?")
    name, _, form = name.partition(".")
    if name not in op.saves:
        raise _missing(node, attribute, op)
    if condition and _input_node(node, op, condition) is None:
        return None  # PyTorch saves it only for the gradient of an input that needs none
    _check_not_freed(r, row)
    if tape.saved[r] is None:
        raise _missing(node, attribute, op)
    k = op.saves.index(name)
    if row[layout.FLAGS] & layout.MODIFIED and int(row[layout.STALE]) == k:
        from .engine import _modified_message

        raise RuntimeError(_modified_message(r))
    saved = tape.saved[r]
    array = saved[k] if isinstance(saved, tuple) else saved
    if name == "weight" and not array.size:
        return None  # nll_loss without class weights keeps an empty array
    if name == "condition" and array.ndim == 1 and getattr(node, "_shapes", None):
        array = _as_output_shape(array, node._shapes)  # a broadcast condition: a flat copy of the output's size
    tensor = _as_tensor(node, op, name, array)
    if form == "T":
        from .. import ops

        return ops.t(tensor)
    if form == "2d" and tensor.ndim != 2:
        return tensor.reshape(-1, tensor.shape[-1])
    return tensor


def _check_not_freed(r, row):
    from .engine import SECOND_BACKWARD

    if row[layout.FLAGS] & layout.RELEASED:
        raise RuntimeError(SECOND_BACKWARD)


def _parameter(node, attribute, op, row, spec):
    name = spec[1:]
    if name in op.floats:
        value = float(row[layout.FLOATS + op.floats.index(name):][:1].view(np.float64)[0])
    elif name in op.ints:
        value = int(row[layout.INTS + op.ints.index(name)])
    else:
        raise _missing(node, attribute, op)
    if spec[0] == "=":
        return None if math.isinf(value) and name in ("low", "high") else value
    _check_not_freed(node._row, row)  # a number PyTorch saves as a tensor is freed with the graph
    from .._tensor import _wrap

    return _wrap(np.array(value, np.float64))


def _input_node(node, op, name):
    i = op.inputs.index(name)
    return (node._in0, node._in1, node._in2)[i] if i < node._arity else None


def _as_tensor(node, op, name, array):
    """The saved ``array`` as a tensor: the leaf itself where it saved a leaf's data, else a tensor over
    it whose grad_fn is the node that made it (this node, for the result), as PyTorch unpacks one."""
    from .._tensor import _wrap
    from .node import AccumulateGrad

    if name == "out":
        return _wrap(array, node)
    producer = _input_node(node, op, name) if name in op.inputs else None
    shapes = getattr(node, "_shapes", None)
    if shapes and name in op.inputs:
        shape = tuple(shapes[op.inputs.index(name)])
        if array.shape != shape:  # broadcast: the row saved a flat copy of the output's size
            array = _unbroadcast(array, shape, shapes)
    if type(producer) is AccumulateGrad:
        leaf = producer.variable
        if leaf is not None and (leaf._data is array or (leaf._data.shape == array.shape
                                                         and leaf._data.dtype == array.dtype
                                                         and np.array_equal(leaf._data, array, equal_nan=True))):
            return leaf
    return _wrap(array, producer)


def _output_shape(shapes):
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        return None


def _as_output_shape(array, shapes):
    """``array``, flat, in the shape the inputs of ``shapes`` broadcast to (unchanged if it has another size)."""
    out_shape = _output_shape(shapes)
    return array.reshape(out_shape) if out_shape is not None and math.prod(out_shape) == array.size else array


def _unbroadcast(array, shape, shapes):
    """The values of an input of ``shape`` from ``array``, its flat copy broadcast to the output's shape."""
    out_shape = _output_shape(shapes)
    if out_shape is None or math.prod(out_shape) != array.size:
        return array
    lead = len(out_shape) - len(shape)
    index = (0,) * lead + tuple(slice(0, 1) if n == 1 and m != 1 else slice(None)
                                for n, m in zip(shape, out_shape[lead:]))
    return np.ascontiguousarray(array.reshape(out_shape)[index]).reshape(shape)
