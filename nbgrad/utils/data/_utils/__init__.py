"""Helpers of ``nbgrad.utils.data``, as ``torch.utils.data._utils``: ``collate``, and the random
generator the samplers and ``random_split`` draw from."""
import numbers

import numpy as np

from .... import random
from . import collate  # noqa: F401  (``_utils.collate``, as in PyTorch)


def as_generator(generator):
    """A sampler's ``generator=`` argument as kept: None (draw from nbgrad's generator, the one
    ``nbgrad.manual_seed`` seeds, when iterating), an ``nbgrad.Generator``, a ``numpy.random.Generator``, or an int
    seed (made a NumPy generator once, so successive epochs differ but every run repeats them)."""
    if generator is None or isinstance(generator, (np.random.Generator, random.Generator)):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError("generator should be None, an nbgrad.Generator, an int seed or a numpy.random.Generator, "
                    f"but got {type(generator).__name__}")


def rng(generator):
    """The NumPy generator to draw from now for a kept ``generator``."""
    if generator is None or isinstance(generator, random.Generator):
        return random.rng(generator)
    return generator
