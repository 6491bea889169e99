"""Graph nodes: what ``tensor.grad_fn`` returns.

A node owns one tape row and holds its input nodes, which keeps their rows
(and the rows they need) alive as long as it lives. Node classes are named
like PyTorch's (``MulBackward0``) and made once per name, with PyTorch's
``_saved_*`` attributes for what their rows save (see ``saved``).
"""
from . import saved, tape


class Node:
    """A recorded op. ``next_functions`` is a tuple of ``(node, 0)`` pairs, one per input,
    ``(None, 0)`` for an input that needs no gradient."""

    # _grad_buffer/_grad_tensor: .grad of a retain_grad() result; _hooks: register_hook's
    # _shapes: the inputs' shapes where the output's does not tell them (create_graph reads them);
    # _in0.._in2: the input nodes (None: no gradient); _arity: how many. Slots, not a tuple:
    # one object fewer per op for the allocator and the cyclic GC.
    __slots__ = ("_row", "_arity", "_in0", "_in1", "_in2", "_grad_buffer", "_grad_tensor", "_hooks", "_shapes",
                 "__weakref__")

    def __del__(self, _saved=tape.saved, _free=tape.free_rows.append):
        try:
            r = self._row
        except AttributeError:  # never recorded
            return
        _saved[r] = None
        _free(r)

    @property
    def _inputs(self):
        return (self._in0, self._in1, self._in2)[:self._arity]

    @property
    def next_functions(self):
        return tuple((node, 0) for node in self._inputs)

    def name(self):
        return type(self).__name__

    def __repr__(self):
        return f"<{type(self).__name__} object at {id(self):#x}>"


class AccumulateGrad(Node):
    """The node of a leaf that requires grad: gradients reaching it accumulate in ``.grad``."""

    __slots__ = ("variable_ref", "_post_hooks")

    @property
    def variable(self):
        """The leaf tensor (held weakly: the leaf owns this node, not the other way)."""
        return self.variable_ref()

    @property
    def next_functions(self):
        return ()


class ManyInputsNode(Node):
    """A node with more inputs than a tape row holds (cat, stack): its row's third input is a
    hidden row over the rest; ``_parts`` are all the input nodes, for ``next_functions``."""

    __slots__ = ("_parts",)

    @property
    def _inputs(self):
        return self._parts


_classes = {"AccumulateGrad": AccumulateGrad}


def node_class(name, many_inputs=False):
    """The node class called ``name`` (made on first use)."""
    cls = _classes.get(name)
    if cls is None:
        base = ManyInputsNode if many_inputs else Node
        cls = _classes[name] = type(name, (base,), {"__slots__": (), **saved.properties(name)})
    return cls
