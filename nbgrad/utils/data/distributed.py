"""``DistributedSampler``, as ``torch.utils.data.distributed``: each rank's share of a dataset."""
import math

import numpy as np

from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler):
    """The indices of rank ``rank`` of ``num_replicas``: every ``num_replicas``-th index of one
    order of the dataset, starting at ``rank``, so that the ranks' shares are disjoint.

    With ``shuffle``, the order is a permutation drawn from ``seed + epoch``: the same on every
    rank, another each epoch after ``set_epoch(epoch)``. Unless ``drop_last``, the order is
    padded with its own first indices to a multiple of ``num_replicas`` (every rank gets
    ``ceil(len / num_replicas)``); with it, the tail that does not divide evenly is dropped.
    ``num_replicas`` and ``rank`` default to ``nbgrad.distributed``'s world size and rank.
    (The permutations come from NumPy's generator: they differ from PyTorch's.)
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        if num_replicas is None or rank is None:
            from ... import distributed as dist

            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        if self.drop_last and len(self.dataset) % self.num_replicas != 0:
            self.num_samples = math.ceil((len(self.dataset) - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(len(self.dataset) / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:  # repeat the order's start until every rank has num_samples
            padding = self.total_size - len(indices)
            indices += (indices * math.ceil(padding / len(indices)))[:padding] if padding > len(indices) \
                else indices[:padding]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Draw the order of ``epoch`` next (with ``shuffle``); call it before each epoch."""
        self.epoch = epoch
