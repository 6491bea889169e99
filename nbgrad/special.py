"""``nbgrad.special``: the special functions PyTorch's ``torch.special`` has that nbgrad implements
(the same functions as ``nbgrad.erf`` & co., out= included)."""
from .ops import WITH_OUT

erf, expm1, log1p = WITH_OUT["erf"], WITH_OUT["expm1"], WITH_OUT["log1p"]

__all__ = ["erf", "expm1", "log1p"]
