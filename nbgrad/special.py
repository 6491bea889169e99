"""``nbgrad.special``: the special functions PyTorch's ``torch.special`` has that nbgrad implements."""
from .ops import erf, expm1, log1p

__all__ = ["erf", "expm1", "log1p"]
