"""Automatic differentiation: grad modes, the backward engine, ``Variable``."""
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .node import AccumulateGrad, Node


def Variable(data, requires_grad=False):
    """Old API (Variable is merged into Tensor): a tensor sharing ``data``'s storage."""
    from .._tensor import _wrap

    result = _wrap(data._data.view())
    if requires_grad:
        result.requires_grad_(True)
    return result


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """``tensors[i].backward(grad_tensors[i])`` for each output (into ``inputs`` only, if given)."""
    from .._tensor import Tensor

    if isinstance(tensors, Tensor):
        tensors, grad_tensors = [tensors], [grad_tensors]
    grad_tensors = grad_tensors or [None] * len(tensors)
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        keep = retain_graph if retain_graph is not None else i < len(tensors) - 1
        t.backward(g, retain_graph=keep, create_graph=create_graph, inputs=inputs)


__all__ = ["AccumulateGrad", "Node", "Variable", "backward", "enable_grad", "is_grad_enabled",
           "no_grad", "set_grad_enabled"]

from . import function, graph  # noqa: E402
from .custom import register_op  # noqa: E402
from .engine import grad  # noqa: E402
from .function import Function, FunctionCtx, once_differentiable  # noqa: E402
from .gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402

__all__ += ["Function", "FunctionCtx", "GradcheckError", "function", "grad", "graph", "gradcheck", "gradgradcheck",
            "once_differentiable", "register_op"]
