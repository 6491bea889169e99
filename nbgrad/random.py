"""Random numbers: ``Generator`` and the default one behind every sampler (``rand``, ``randn``,
``normal``, ``randperm``, dropout, ``nn.init``, shuffling). NumPy's PCG64 underneath:
``manual_seed`` makes runs repeatable, but the numbers differ from PyTorch's."""
import numpy as np

from .compiler import recording
from .devices import check


class Generator:
    """``nbgrad.Generator().manual_seed(42)``: a generator of its own, for the ``generator=``
    arguments."""

    def __init__(self, device="cpu"):
        self.device = check(device, "Generator")
        self.seed()

    def manual_seed(self, seed):
        seed = int(seed)
        self._seed = seed
        self._rng = np.random.default_rng(seed & (2**64 - 1))
        return self

    def seed(self):
        """A fresh, non-deterministic seed (returned)."""
        seed = int(np.random.SeedSequence().entropy) & (2**63 - 1)
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The generator's state, a uint8 tensor (``set_state`` takes it back)."""
        from .factories import tensor

        state = repr(self._rng.bit_generator.state).encode()
        return tensor(np.frombuffer(state, np.uint8).astype(np.int64))

    def set_state(self, state):
        import ast

        values = state.numpy() if hasattr(state, "numpy") else np.asarray(state)
        self._rng.bit_generator.state = ast.literal_eval(bytes(values.astype(np.uint8)).decode())
        return self


default_generator = Generator()


def rng(generator=None):
    """The NumPy generator behind ``generator`` (the default one when None)."""
    if recording.active is not None:
        recording.active.random_drawn()
    if generator is None:
        return default_generator._rng
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be an nbgrad.Generator, got {type(generator).__name__}")
    return generator._rng


def manual_seed(seed):
    """Seed the default generator (returned)."""
    return default_generator.manual_seed(seed)


def seed():
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)
