"""Datasets of tensors and a batch iterator, as ``torch.utils.data`` (for in-memory data)."""
import numpy as np

from .. import factories


class TensorDataset:
    """Rows of tensors that share their first dimension; ``dataset[i]`` is a tuple of rows."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = {len(t) for t in tensors}
        if len(sizes) != 1:
            raise ValueError(f"Size mismatch between tensors: first dimensions {[len(t) for t in tensors]}")
        self.tensors = tensors

    def __len__(self):
        return len(self.tensors[0])

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)


class DataLoader:
    """Batches of a TensorDataset, each tensor gathered with one index per batch.

    ``shuffle`` draws a new order each epoch from ``generator`` (an int seed or a NumPy
    Generator) or, when None, from nbgrad's generator (``nbgrad.manual_seed``).
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, generator=None):
        if int(batch_size) < 1:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(dataset, TensorDataset):
            raise TypeError(f"DataLoader batches a TensorDataset, got {type(dataset).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = np.random.default_rng(generator) if isinstance(generator, int) else generator

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            order = (self.generator or factories.generator()).permutation(n)
        else:
            order = np.arange(n)
        arrays = [t.detach().numpy() for t in self.dataset.tensors]
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order[start:start + self.batch_size]
            yield tuple(factories.from_numpy(a[index]) for a in arrays)
