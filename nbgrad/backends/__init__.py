"""``nbgrad.backends``: the flags scripts set for PyTorch's GPU back ends (``cudnn.benchmark = True``)
are accepted and change nothing; every back end reports that it is not available."""
from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
