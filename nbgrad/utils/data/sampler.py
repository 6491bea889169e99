"""Samplers, as ``torch.utils.data.sampler``: the orders (or batches) of indices a DataLoader reads.

The random ones draw from ``generator``: None for nbgrad's generator (the one ``nbgrad.manual_seed``
seeds), looked up as each pass starts; an ``nbgrad.Generator``; an int seed; or a
``numpy.random.Generator``.
"""
import itertools
from typing import Generic, TypeVar

import numpy as np

from ... import dtypes, factories
from ._utils import as_generator, rng

__all__ = [
    "BatchSampler",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "SubsetRandomSampler",
    "WeightedRandomSampler",
]

_T_co = TypeVar("_T_co", covariant=True)


class Sampler(Generic[_T_co]):
    """Base class of samplers: subclasses define ``__iter__`` (indices, or lists of indices for a
    batch sampler) and usually ``__len__`` (which ``len(loader)`` reads)."""

    def __iter__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``, always in that order."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """The indices of ``data_source`` in a random order (a new one each pass); with
    ``replacement=True``, ``num_samples`` indices drawn independently. Without replacement, a
    ``num_samples`` over the length gives whole permutations one after the other."""

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = as_generator(generator)
        if not isinstance(self.replacement, bool):
            raise TypeError(f"replacement should be a boolean value, but got replacement={self.replacement}")
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={self.num_samples}")

    @property
    def num_samples(self):
        if self._num_samples is None:
            return len(self.data_source)
        return self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        generator = rng(self.generator)
        if self.replacement:
            yield from generator.integers(0, n, size=self.num_samples).tolist()
        else:
            for _ in range(self.num_samples // n):
                yield from generator.permutation(n).tolist()
            if self.num_samples % n:
                yield from generator.permutation(n).tolist()[:self.num_samples % n]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given ``indices`` in a random order, a new one each pass."""

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = as_generator(generator)

    def __iter__(self):
        for i in rng(self.generator).permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices of ``[0, len(weights))``, each drawn with probability proportional
    to its weight (which need not sum to one); without replacement, an index is drawn once at most."""

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer value, but got num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError(f"replacement should be a boolean value, but got replacement={replacement}")
        weights_tensor = factories.tensor(np.asarray(weights, dtype=np.float64), dtype=dtypes.float64)
        if len(weights_tensor.shape) != 1:
            raise ValueError("weights should be a 1d sequence but given "
                             f"weights have shape {tuple(weights_tensor.shape)}")
        self.weights = weights_tensor
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = as_generator(generator)

    def __iter__(self):
        weights = self.weights.detach().numpy()
        # torch.multinomial's checks, in its words
        if not self.replacement and self.num_samples > len(weights):
            raise RuntimeError("cannot sample n_sample > prob_dist.size(-1) samples without replacement")
        if not np.isfinite(weights).all() or (weights < 0).any():
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        total = weights.sum()
        if total <= 0:
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        generator = rng(self.generator)
        if self.replacement:
            yield from generator.choice(len(weights), size=self.num_samples, p=weights / total).tolist()
            return
        # without replacement: the indices of positive weight first; as in PyTorch, those of weight 0
        # come after them (here in increasing order) when more are asked for
        positive = np.flatnonzero(weights)
        count = min(self.num_samples, len(positive))
        drawn = positive[generator.choice(len(positive), size=count, replace=False, p=weights[positive] / total)]
        yield from drawn.tolist()
        yield from np.flatnonzero(weights == 0)[:self.num_samples - count].tolist()

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Lists of ``batch_size`` indices from ``sampler`` (any iterable of indices); the last, shorter
    one is dropped with ``drop_last=True``.

    >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
    [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    """

    def __init__(self, sampler, batch_size, drop_last):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self):
        sampler_iter = iter(self.sampler)
        if self.drop_last:
            for batch in zip(*[sampler_iter] * self.batch_size):
                yield [*batch]
        else:
            batch = [*itertools.islice(sampler_iter, self.batch_size)]
            while batch:
                yield batch
                batch = [*itertools.islice(sampler_iter, self.batch_size)]

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
