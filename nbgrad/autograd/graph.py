"""``autograd.graph``: saved-tensor hooks (as far as nbgrad has them) and a picture of the backward
graph: Graphviz DOT text, and SVG/PNG files through ``graphviz``.

>>> x = nbgrad.ones(2, requires_grad=True)
>>> print(to_dot((x * 2).sum()))        # doctest: +SKIP
"""
import contextlib
import shutil
import threading

import numpy as np

from . import tape
from .node import AccumulateGrad

# --- saved-tensor hooks ---------------------------------------------------------

_hooks_state = threading.local()  # .disabled: the message of the innermost disable_saved_tensors_hooks (per thread)

SAVED_TENSORS_HOOKS_UNSUPPORTED = (
    "torch.autograd.graph.saved_tensors_hooks is not supported by nbgrad: its compiled ops keep the buffers "
    "their backward reads as raw memory addresses in the tape row the forward kernel writes, and the fused "
    "backward reads them there, so there is no point at which pack_hook could run on a saved tensor or "
    "unpack_hook give back the one a backward uses. Use save_on_cpu (a no-op: every tensor is on the CPU), "
    "or recompute in a custom autograd.Function instead."
)


def _check_hooks_allowed():
    message = getattr(_hooks_state, "disabled", None)
    if message is not None:
        raise RuntimeError(message)


class saved_tensors_hooks:
    """PyTorch's context manager setting ``pack_hook``/``unpack_hook`` for the tensors the graph saves.

    nbgrad cannot run them (see ``SAVED_TENSORS_HOOKS_UNSUPPORTED``): entering one raises
    ``NotImplementedError`` rather than silently never calling the hooks.
    """

    def __init__(self, pack_hook, unpack_hook):
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        _check_hooks_allowed()
        raise NotImplementedError(SAVED_TENSORS_HOOKS_UNSUPPORTED)

    def __exit__(self, *exc_info):
        return None


class save_on_cpu(saved_tensors_hooks):
    """PyTorch's ``save_on_cpu``: saved tensors kept in CPU memory. Every nbgrad tensor is there already,
    so it changes nothing (as in PyTorch, it raises inside ``disable_saved_tensors_hooks``)."""

    def __init__(self, pin_memory=False, device_type="cuda"):
        self.pin_memory = pin_memory
        self.device_type = device_type
        super().__init__(lambda tensor: tensor, lambda tensor: tensor)

    def __enter__(self):
        _check_hooks_allowed()
        return None


@contextlib.contextmanager
def disable_saved_tensors_hooks(error_message):
    """Within it, entering ``saved_tensors_hooks`` (or ``save_on_cpu``) raises ``RuntimeError(error_message)``,
    as in PyTorch (per thread; nested ones restore the outer message on exit)."""
    previous = getattr(_hooks_state, "disabled", None)
    _hooks_state.disabled = error_message
    try:
        yield
    finally:
        _hooks_state.disabled = previous


# --- a picture of the graph -------------------------------------------------------

def _shape(shape):
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


def _saved_shapes(node):
    """Shapes of the buffers the node's backward reads (none once a backward freed them)."""
    saved = tape.saved[node._row] if getattr(node, "_row", None) is not None else None
    items = saved if isinstance(saved, tuple) else (saved,)
    shapes = []
    for item in items:
        if isinstance(item, tuple):  # a Python Function's (tensor, version) pairs
            item = item[0]
        data = getattr(item, "_data", item)
        if isinstance(data, np.ndarray):
            shapes.append(_shape(data.shape))
    return shapes


def to_dot(tensor, show_saved=True):
    """The backward graph of ``tensor`` as Graphviz DOT text.

    One box per node, labelled with its grad_fn name (and the shapes of the
    buffers it saved), ``AccumulateGrad`` boxes with their leaf's shape, and
    the tensor itself at the bottom; edges run from each node's inputs to it.
    """
    lines = ["digraph backward {", '    node [shape=box, fontname="Helvetica", fontsize=11];']
    root = tensor.grad_fn
    lines.append(f'    output [label="tensor {_shape(tensor.shape)}", style=filled, fillcolor="#c7e9c0"];')
    if root is None:
        lines.append("}")
        return "\n".join(lines) + "\n"
    ids = {}

    def name_of(node):
        if id(node) not in ids:
            ids[id(node)] = f"n{len(ids)}"
        return ids[id(node)]

    lines.append(f"    {name_of(root)} -> output;")
    seen, stack = set(), [root]
    while stack:  # iterative: graphs can be deep
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        label = type(node).__name__
        if type(node) is AccumulateGrad:
            variable = node.variable
            shape = _shape(variable.shape) if variable is not None else "(freed)"
            lines.append(f'    {name_of(node)} [label="{label}\\nleaf {shape}", style=filled, fillcolor="#deebf7"];')
            continue
        saved = _saved_shapes(node) if show_saved else []
        if saved:
            label += "\\nsaved " + ", ".join(saved)
        lines.append(f'    {name_of(node)} [label="{label}"];')
        for child, _ in node.next_functions:
            if child is not None:
                lines.append(f"    {name_of(child)} -> {name_of(node)};")
                stack.append(child)
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(tensor, path, format=None):
    """Write the backward graph of ``tensor`` to ``path`` (SVG or PNG, from the suffix or ``format``);
    needs the ``graphviz`` package (``pip install "nbgrad[graph]"``) and Graphviz's ``dot``."""
    try:
        import graphviz
    except ImportError:
        raise ImportError('render() needs the graphviz package: pip install -e ".[graph]" from a clone (or pip '
                          "install graphviz), and Graphviz's dot program; to_dot() gives the DOT text without "
                          "them") from None
    if shutil.which("dot") is None:
        raise RuntimeError("render() needs Graphviz's dot program on the PATH (e.g. apt install graphviz, brew "
                           "install graphviz or conda install graphviz); to_dot() gives the DOT text without it")
    path = str(path)
    stem, _, suffix = path.rpartition(".")
    format = format or (suffix if stem and suffix in ("svg", "png", "pdf") else "svg")
    if not (stem and suffix == format):
        stem = path
    return graphviz.Source(to_dot(tensor)).render(outfile=f"{stem}.{format}", format=format, cleanup=True)
