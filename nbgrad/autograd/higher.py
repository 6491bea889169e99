"""``create_graph=True``: the backward pass recorded as differentiable nbgrad ops.

The compiled executor computes gradients as numbers; to differentiate them
again, this walk runs each node's vector-Jacobian product as ordinary nbgrad
ops (``FORMULAS``, one per op), on tensors that stand for the node's saved
values and are connected to the nodes that made them. The result has a
graph of its own, which ``backward()`` or ``grad()`` then walk (compiled).
Without ``create_graph`` this module is never used.
"""
import numpy as np

from ..kernels import nn as nn_kernels
from ..kernels import tape as layout
from . import tape
from .grad_mode import enable_grad
from .node import AccumulateGrad
from .registry import BY_OPCODE


class Saved:
    """What a formula reads about its node: saved values as tensors, parameters, input shapes."""

    def __init__(self, node, op, g):
        from .._tensor import _wrap

        self.node, self.op, self.g = node, op, g
        self.row = row = tape.row(node._row)
        self.params = {name: float(layout.float_param(row, k)) for k, name in enumerate(op.floats)}
        self.params.update({name: int(row[layout.INTS + k]) for k, name in enumerate(op.ints)})
        self.params.update({name: tuple(int(d) for d in layout.shape_param(row, k))
                            for k, name in enumerate(op.shapes)})
        inputs = node._inputs
        values = tape.saved[node._row]
        if op.saves and values is None:
            from .engine import SECOND_BACKWARD

            raise RuntimeError(SECOND_BACKWARD)
        values = values if isinstance(values, tuple) else (values,)
        self.input_shapes = self._shapes(node, op, dict(zip(op.saves, values)), g)
        self.values = {}
        for name, value in zip(op.saves, values):
            if name == "out":
                self.values[name] = _wrap(value.reshape(g.shape) if value.size == g.numel() else value, node)
            elif name in op.inputs:
                i = op.inputs.index(name)
                self.values[name] = self._input_tensor(value, inputs[i], self.input_shapes[i], self._broadcast(i))
            else:
                self.values[name] = value  # an index or mask: a constant array

    @staticmethod
    def _shapes(node, op, saved, g):
        """Each input's shape: noted on the node (broadcast inputs, ``keeps_shapes`` ops), else a
        saved input's own, else the output's for an elementwise op; None where a formula knows it."""
        noted = getattr(node, "_shapes", None)
        if noted is not None:
            return [tuple(shape) for shape in noted]
        return [tuple(saved[name].shape) if name in saved else (tuple(g.shape) if op.elementwise else None)
                for name in op.inputs][:len(node._inputs)]

    def _broadcast(self, i):
        """The shape input ``i`` was broadcast to (None: it was not)."""
        if i >= layout.BROADCAST_INPUTS:
            return None
        block = layout.BCAST + i * layout.BCAST_SIZE
        ndim = int(self.row[block])
        return tuple(int(d) for d in self.row[block + 1:block + 1 + ndim]) if ndim else None

    @staticmethod
    def _input_tensor(value, node, shape, out_shape):
        """The input as a tensor connected to its node (a broadcast input is rebuilt from the
        expanded copy the forward saved, then expanded again, differentiably)."""
        from .. import ops
        from .._tensor import _wrap

        if out_shape is None:
            return _wrap(value.reshape(shape), node)
        full = value.reshape(out_shape)
        padded = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
        small = full[tuple(slice(0, 1) if n == 1 else slice(None) for n in padded)]
        return ops.expand(_wrap(np.ascontiguousarray(small).reshape(shape), node), out_shape)

    def __getitem__(self, name):
        return self.values[name] if name in self.values else self.params[name]


def _const(array, like):
    from .._tensor import _wrap

    return _wrap(np.ascontiguousarray(array, like._data.dtype))


def sum_to(g, shape):
    """``g`` summed over the dimensions it was broadcast along, to ``shape``."""
    shape = tuple(shape)
    if tuple(g.shape) == shape:
        return g
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if dims:
        g = g.sum(dim=dims, keepdim=True)
    return g.reshape(shape)


def _chosen(s, first, second):
    """maximum/minimum: the gradient goes to the input that was chosen, half to each on ties."""
    a, b, out = (v._data for v in (s[first], s[second], s["out"]))
    return s.g * _const(np.where(a == out, np.where(a == b, 0.5, 1.0), 0.0), s.g)


def _matmul(s):
    m, k, n = s["m"], s["k"], s["n"]
    if s["a_layout"] >> 1 != 1 or s["b_layout"] >> 1 != 1:  # batches: a shared matrix sums its batch's gradients
        sa, sb = s.input_shapes  # b has batch dimensions here; a may be a vector (m = 1)
        a = s["a"].reshape(sa if len(sa) > 1 else (1, k))
        b = s["b"]
        batch = tuple(s.g.shape[:s.g.ndim - (2 if len(sa) > 1 else 1)])
        g = s.g.reshape(batch + (m, n))
        ga = sum_to(g @ b.transpose(-1, -2), a.shape).reshape(sa)
        gb = sum_to(a.transpose(-1, -2) @ g, b.shape).reshape(sb)
        return ga, gb
    a, b = s["a"].reshape(m, k), s["b"].reshape(k, n)
    g = s.g.reshape(m, n)
    return (g @ b.t()).reshape(s.input_shapes[0]), (a.t() @ g).reshape(s.input_shapes[1])


def _linear(s):
    m, k, n = s["m"], s["k"], s["n"]
    g = s.g.reshape(m, n)
    x, w = s["x"].reshape(m, k), s["w"]
    return (g @ w).reshape(s.input_shapes[0]), g.t() @ x, g.sum(0)


def _bias_add(s):
    return s.g, sum_to(s.g, s.input_shapes[1])


def _softmax(s):
    shape = (s["outer"], s["n"], s["inner"])
    g, y = s.g.reshape(shape), s["out"].reshape(shape)
    if s["take_log"]:
        gx = g - y.exp() * g.sum(dim=1, keepdim=True)
    else:
        gx = y * (g - (g * y).sum(dim=1, keepdim=True))
    return (gx.reshape(s.g.shape),)  # softmax keeps its input's shape


def _nll_loss(s):
    """Linear in g with coefficients that do not depend on the input: g times the kernel's own
    gradient for g = 1 (per sample with reduction 'none')."""
    shape = s.input_shapes[0]
    target, weight = s["target"].reshape(-1), s["weight"].reshape(-1)
    dtype = s.g._data.dtype
    coefficients = np.zeros(int(np.prod(shape)), dtype)
    nn_kernels.nll_bwd(np.ones(max(target.size, 1), dtype), target, weight.astype(dtype), s["n"], s["inner"],
                       s["ignore_index"], s["reduction"], coefficients)
    if s["reduction"] != 0:
        return (s.g * _const(coefficients.reshape(shape), s.g),)
    n, inner = s["n"], s["inner"]
    outer = target.size // inner
    c = _const(coefficients.reshape(outer, n, inner), s.g)
    return ((s.g.reshape(outer, 1, inner) * c).reshape(shape),)


def _cross_entropy(s):
    """g (softmax(x) - onehot(target)) per row, 0 for ignored rows. softmax(x) is recorded as
    softmax(log p) over a tensor that stands for x: the two differ by a constant per row, which
    softmax ignores, so the value and its own gradient (which needs only p) are x's."""
    from .. import ops
    from .._tensor import _wrap

    prob, target = s["prob"], s["target"].reshape(-1)
    rows, n = prob.shape
    with np.errstate(divide="ignore"):  # a probability that underflowed to 0: log -inf, softmax 0 again
        logits = _wrap(np.log(prob), s.node._inputs[0])
    kept = target != s["ignore_index"]
    onehot = np.zeros((rows, n))
    onehot[np.nonzero(kept)[0], target[kept]] = 1.0
    if s["reduction"] == 0:
        g = s.g.reshape(rows, 1) * _const(kept.reshape(rows, 1), s.g)
    else:
        count = kept.sum()
        scale = (1.0 / count if count else 0.0) if s["reduction"] == 1 else 1.0
        g = s.g * _const(kept.reshape(rows, 1) * scale, s.g)
    return ((ops.softmax(logits, 1) - _const(onehot, s.g)) * g,)


def _mse(s):
    a, b = s["a"], s["b"]
    scale = {0: 2.0, 1: 2.0 / a.numel(), 2: 2.0}[s["reduction"]]
    ga = (a - b) * (s.g * scale)
    return ga, -ga


def _sum_dims(s):
    shape, strides = s["shape"], s["strides"]
    keep = tuple(1 if st == 0 else n for n, st in zip(shape, strides))
    return ((s.g.reshape(keep) * s["scale"]).expand(*shape),)


def _strided(s):
    """A strided read (permute, expand, slice): g added back where each element came from."""
    from .. import ops

    shape_in = s.input_shapes[0]
    flat = ops.strided_scatter(s.g, s["offset"], s["shape"], s["strides"], int(np.prod(shape_in)))
    return (flat.reshape(shape_in),)


def _strided_scatter(s):
    from .. import ops

    shape, strides = np.array(s["shape"], np.int64), np.array(s["strides"], np.int64)
    out = np.empty(int(np.prod(s["shape"])), s.g._data.dtype)
    read = ops._apply(ops.STRIDED, (s.g,), (s.g._data,), (s["offset"], shape, strides), out)
    return (read.reshape(s.input_shapes[0]),)


def _take(s):
    from .. import ops

    shape_in = s.input_shapes[0]
    return (ops.index_add(s.g, s["index"], s["inner"], int(np.prod(shape_in))).reshape(shape_in),)


def _gather(g, index, inner):
    """Blocks ``index[i]`` (of ``inner`` elements) of ``g``, flat: take, differentiably."""
    from .. import ops

    out = np.empty(index.size * inner, g._data.dtype)
    return ops._apply(ops.TAKE, (g,), (g._data,), (index.reshape(-1), inner), out)


def _put(s):
    """x[index] = v: x's gradient where it was not overwritten; v's, read at the index."""
    from ..kernels import movement

    index = s["index"].reshape(-1)
    kept = np.zeros(int(np.prod(s.input_shapes[0])), s.g._data.dtype)
    movement.put_bwd_x(np.ones_like(kept), index, kept)
    gx = s.g * _const(kept.reshape(s.g.shape), s.g)
    region = s._broadcast(1) or s.input_shapes[1]
    return gx, _gather(s.g, index, 1).reshape(region)


def _cat(s):
    """Each part's columns of g seen as (outer, total)."""
    outer = s["outer"]
    shapes = s.input_shapes
    blocks = [int(np.prod(shape)) // outer if outer else 0 for shape in shapes]
    g = s.g.reshape(outer, sum(blocks))
    grads, start = [], 0
    for shape, block in zip(shapes, blocks):
        grads.append(g[:, start:start + block].reshape(shape))
        start += block
    return grads


def _select(s):
    """max/min over a dimension: g at the chosen elements (the kernel's own gradient for g = 1)."""
    from ..kernels import reduce

    outer, n, inner = s["outer"], s["n"], s["inner"]
    chosen = np.zeros(outer * n * inner, s.g._data.dtype)
    reduce.select_bwd(np.ones(outer * inner, chosen.dtype), s["indices"].reshape(-1), outer, n, inner, chosen)
    g = s.g.reshape(outer, 1, inner) * _const(chosen.reshape(outer, n, inner), s.g)
    return (g.reshape(s.input_shapes[0]),)


def _pow_scalar(s):
    p = s["p"]
    if p == 0:
        return (s.g * 0.0,)
    return (s.g * p * s["x"] ** (p - 1),)


def _to(s):
    from .. import dtypes

    dtype = dtypes.float32 if tape.row(s.node._in0._row)[layout.ITEMSIZE] == 4 else dtypes.float64
    return (s.g.to(dtype),)


def _mask(s, condition):
    return (s.g * _const(condition, s.g),)


# The vector-Jacobian product of each op, as nbgrad ops: input gradients, in the inputs' order.
FORMULAS = {
    "neg": lambda s: (-s.g,),
    "exp": lambda s: (s.g * s["out"],),
    "log": lambda s: (s.g / s["x"],),
    "sqrt": lambda s: (s.g * 0.5 / s["out"],),
    "tanh": lambda s: (s.g * (1 - s["out"] * s["out"]),),
    "erf": lambda s: (s.g * (2 / np.sqrt(np.pi)) * (-(s["x"] * s["x"])).exp(),),
    "log1p": lambda s: (s.g / (s["x"] + 1),),
    "expm1": lambda s: (s.g * s["x"].exp(),),
    "sigmoid": lambda s: (s.g * s["out"] * (1 - s["out"]),),
    "relu": lambda s: _mask(s, s["out"]._data > 0),
    "abs": lambda s: _mask(s, np.sign(s["x"]._data)),
    "sin": lambda s: (s.g * s["x"].cos(),),
    "cos": lambda s: (-s.g * s["x"].sin(),),
    "clamp": lambda s: _mask(s, (s["x"]._data >= s["low"]) & (s["x"]._data <= s["high"])),
    "add_scalar": lambda s: (s.g,),
    "mul_scalar": lambda s: (s.g * s["p"],),
    "div_scalar": lambda s: (s.g / s["p"],),
    "rsub_scalar": lambda s: (-s.g,),
    "rdiv_scalar": lambda s: (-s.g * s["p"] / (s["x"] * s["x"]),),
    "pow_scalar": _pow_scalar,
    "rpow_scalar": lambda s: (s.g * s["out"] * float(np.log(s["p"])),),
    "add": lambda s: (s.g, s.g),
    "sub": lambda s: (s.g, -s.g),
    "mul": lambda s: (s.g * s["b"], s.g * s["a"]),
    "div": lambda s: (s.g / s["b"], -s.g * s["a"] / (s["b"] * s["b"])),
    "pow": lambda s: (s.g * s["b"] * s["a"] ** (s["b"] - 1), s.g * s["out"] * s["a"].log()),
    "maximum": lambda s: (_chosen(s, "a", "b"), _chosen(s, "b", "a")),
    "minimum": lambda s: (_chosen(s, "a", "b"), _chosen(s, "b", "a")),
    "where": lambda s: (s.g * _const(s["condition"].reshape(s.g.shape), s.g),
                        s.g * _const(~s["condition"].reshape(s.g.shape), s.g)),
    "to": _to,
    "clone": lambda s: (s.g,),
    "view": lambda s: (s.g.reshape(s.input_shapes[0]),),
    "copy": lambda s: (None, s.g),
    "sum": lambda s: ((s.g * s["scale"]).expand(*s.input_shapes[0]) if s.input_shapes[0] else s.g * s["scale"],),
    "sum_dims": _sum_dims,
    "matmul": _matmul,
    "strided": _strided,
    "strided_scatter": _strided_scatter,
    "take": _take,
    "index_add": lambda s: (_gather(s.g, s["index"], s["inner"]).reshape(s.input_shapes[0]),),
    "put": _put,
    "cat": _cat,
    "select": _select,
    "linear": _linear,
    "bias_add": _bias_add,
    "softmax": _softmax,
    "log_softmax": _softmax,
    "nll_loss": _nll_loss,
    "cross_entropy": _cross_entropy,
    "mse_loss": _mse,
}


def _order(roots):
    """The nodes reachable from ``roots``, each after all its consumers (iterative: graphs can be deep)."""
    seen, post = set(), []
    for root in roots:
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                post.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for child in node._inputs:
                if child is not None and id(child) not in seen:
                    stack.append((child, False))
    return post[::-1]


def _input_grads(node, g):
    """The gradients of ``node``'s inputs from its output's gradient ``g``, as graph tensors."""
    from .function import FunctionNode, gradients_returned

    row = tape.row(node._row)
    if row[layout.FLAGS] & (layout.MODIFIED | layout.REFUSED):
        from .engine import _refusal_message

        raise RuntimeError(_refusal_message(node._row, np.array([], np.int64), 0))
    if isinstance(node, FunctionNode):
        ctx = node._ctx
        if node._function is not node or len(ctx._output_meta) != 1:
            raise NotImplementedError("create_graph: Functions with several outputs are not supported yet")
        result = gradients_returned(type(node).__name__, type(node).function.backward(ctx, g),
                                    len(ctx.needs_input_grad))
        return [result[i] for i in ctx._tensor_positions]  # one per tensor argument, as node._inputs
    op = BY_OPCODE.get(int(row[layout.OP]))
    formula = FORMULAS.get(op.name) if op is not None else None
    if formula is None:
        raise NotImplementedError(f"create_graph: the double backward of {type(node).__name__} "
                                  f"({op.name if op else 'unknown op'}) is not supported yet")
    saved = Saved(node, op, g)
    grads = formula(saved)
    return [None if gi is None or child is None else (gi if shape is None else sum_to(gi, shape))
            for child, gi, shape in zip(node._inputs, grads, saved.input_shapes)]


def backward(roots, seeds, retain_graph, inputs=None):
    """Backpropagate ``seeds`` (tensors) from ``roots`` (tensors) recording every step.

    With ``inputs`` (tensors), return their gradients (None where not reached);
    otherwise accumulate into the leaves' ``.grad`` (graph tensors).
    """
    from .._tensor import Tensor
    from .engine import _hook_result

    wanted = {id(t._node): k for k, t in enumerate(inputs)} if inputs is not None else {}
    found = [None] * len(wanted)
    grads = {}
    for root, seed in zip(roots, seeds):
        key = id(root._node)
        grads[key] = seed if key not in grads else grads[key] + seed
    order = _order([root._node for root in roots])
    with enable_grad():
        for node in order:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            for hook in list(getattr(node, "_hooks", None) or ()):
                replaced = _hook_result(hook, hook(g))
                if replaced is not None:
                    g = replaced
            if id(node) in wanted:
                found[wanted[id(node)]] = g
            if type(node) is AccumulateGrad:
                if inputs is None:
                    leaf = node.variable
                    leaf.grad = g if leaf.grad is None else leaf.grad + g
                    for hook in list(getattr(node, "_post_hooks", None) or ()):
                        hook(leaf)
                continue
            for child, gi in zip(node._inputs, _input_grads(node, g)):
                if child is None or gi is None:
                    continue
                if not isinstance(gi, Tensor):
                    raise TypeError(f"{type(node).__name__} returned a {type(gi).__name__} as a gradient")
                key = id(child)
                grads[key] = gi if key not in grads else grads[key] + gi
    if not retain_graph:
        from .engine import _lock

        with _lock:  # a compiled backward in another thread may be reading these buffers
            for node in order:
                row = tape.row(node._row)
                if row[layout.FLAGS] & layout.NEEDS_SAVED:
                    row[layout.FLAGS] |= layout.RELEASED
                    tape.saved[node._row] = None
    return found
