"""Softmax, log-softmax and the losses: the ops whose kernels are in ``kernels/nn.py``. The losses'
Python functions are ``nbgrad.nn.functional``'s.
"""
import numpy as np

from .._tensor import Tensor, _normalize_dim
from ..autograd.registry import Swapped, declare
from ..kernels import nn
from .core import _apply, _not_a_tensor
from .movement import _float_input, _to
from .reduce import _middle

# --- declarations -----------------------------------------------------------

SOFTMAX = declare("softmax", "SoftmaxBackward0", nn.softmax_fwd, (nn.softmax_bwd,),
                  ints=("outer", "n", "inner", "take_log"), saves=("out",), heavy=("forward", "backward"))
LOG_SOFTMAX = declare("log_softmax", "LogSoftmaxBackward0", nn.softmax_fwd, (nn.softmax_bwd,),
                      ints=("outer", "n", "inner", "take_log"), saves=("out",), heavy=("forward", "backward"))
# nll_loss and cross_entropy index with a copy of the caller's target; they also save the caller's
# own, unread, so that an in-place change to it is refused as PyTorch refuses it.
NLL_LOSS = declare("nll_loss", "NllLossBackward0", nn.nll_fwd, (nn.nll_bwd,),
                   arrays=(("target", "int64"), ("weight", None), ("caller_target", "int64")),
                   ints=("n", "inner", "ignore_index", "reduction"), saves=("target", "weight", "caller_target"),
                   keeps_shapes=True)
# log_softmax and nll_loss in one node for (N, C) logits and class indices (F.cross_entropy's
# common case): the softmax it saves is the gradient but for the target's 1, so its backward
# needs no exp. The node is named as PyTorch's last one. It saves no logits (they may change
# in place afterwards, as PyTorch allows): create_graph works from the softmax.
CROSS_ENTROPY = declare("cross_entropy", "NllLossBackward0", nn.cross_entropy_fwd, (nn.cross_entropy_bwd,),
                        arrays=(("target", "int64"), ("prob", None), ("caller_target", "int64")),
                        ints=("n", "ignore_index", "reduction"), saves=("target", "prob", "caller_target"),
                        heavy=("forward",))
MSE_LOSS = declare("mse_loss", "MseLossBackward0", nn.mse_fwd, (nn.mse_bwd, Swapped(nn.mse_bwd)), inputs=("a", "b"),
                   ints=("reduction",), saves=("a", "b"))


# --- softmax ----------------------------------------------------------------

def _softmax_like(op, input, dim, dtype, name):
    take_log = int(op is LOG_SOFTMAX)
    if dim is None:  # PyTorch's implicit choice (it warns): the first dim of 0-, 1- and 3-d inputs, else the second
        dim = 0 if input.ndim in (0, 1, 3) else 1
    x = _float_input(input if dtype is None else _to(input, dtype))
    data = x._data
    shape = data.shape or (1,)
    outer, n, inner = _middle(shape, _normalize_dim(dim, len(shape), name))
    return _apply(op, (x,), (data,), (outer, n, inner, take_log), np.empty(data.shape, data.dtype))


def softmax(input, dim=None, dtype=None):
    """exp(x) / sum(exp(x)) along ``dim``, exact for logits of any size."""
    if type(input) is not Tensor:
        _not_a_tensor("softmax", input)
    return _softmax_like(SOFTMAX, input, dim, dtype, "softmax")


def log_softmax(input, dim=None, dtype=None):
    """log(softmax(x)) along ``dim``, computed without forming softmax (no -inf for tiny probabilities)."""
    if type(input) is not Tensor:
        _not_a_tensor("log_softmax", input)
    return _softmax_like(LOG_SOFTMAX, input, dim, dtype, "log_softmax")
