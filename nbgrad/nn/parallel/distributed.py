"""DistributedDataParallel: one copy of the model per rank, each rank on its share of the batch,
the gradients averaged across ranks after every backward, so that the copies stay equal.

When the gradients are reduced: nbgrad's backward is one compiled call, and the
post-accumulate-grad hooks run once it has returned, so no gradient is known to be final
while the executor runs. The wrapper therefore reduces right after the backward: a hook
queues one callback for the end of the backward, which packs the gradients into a few flat
buckets (reverse parameter order, the first of about 1 MiB, then ``bucket_cap_mb``), starts a
non-blocking allreduce per bucket as soon as it is packed (packing the next one meanwhile),
then waits, divides by the world size and copies the averages back into ``.grad``.
"""
import contextlib
import time
import weakref

import numpy as np

from ... import distributed as dist
from ..._tensor import _wrap
from ...autograd import engine, grad_mode
from ..modules import Module

FIRST_BUCKET_BYTES = 1 << 20  # as PyTorch: a small first bucket
DEFAULT_BUCKET_CAP_MB = 25


class _Bucket:
    """Some parameters of one dtype whose gradients travel in one flat buffer, in one allreduce."""

    def __init__(self, dtype):
        self.params = []
        self.slices = []
        self.dtype = dtype
        self.flat = None

    def add(self, p):
        start = self.slices[-1][1] if self.slices else 0
        self.params.append(p)
        self.slices.append((start, start + p._data.size))

    @property
    def nbytes(self):
        return (self.slices[-1][1] if self.slices else 0) * self.dtype.itemsize


def _buckets(params, cap_bytes):
    """Parameters in reverse order (the order backward finishes them), by dtype, in buckets
    closed once they reach the cap: FIRST_BUCKET_BYTES (or ``cap_bytes`` if less) for the first,
    ``cap_bytes`` after."""
    done, open_buckets = [], {}
    for p in reversed(params):
        dtype = p._data.dtype
        bucket = open_buckets.setdefault(dtype, _Bucket(dtype))
        bucket.add(p)
        if bucket.nbytes >= (min(FIRST_BUCKET_BYTES, cap_bytes) if not done else cap_bytes):
            done.append(open_buckets.pop(dtype))
    done += open_buckets.values()
    for bucket in done:
        bucket.flat = np.zeros(bucket.slices[-1][1], bucket.dtype)
    return done


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over ``nbgrad.distributed`` (as PyTorch's).

    At wrap, every rank checks that the models have the same parameters (names, shapes and
    dtypes) and takes rank 0's values. Each backward through ``ddp(x)`` then leaves in
    ``.grad`` the average over ranks of their gradients; inside ``no_sync()`` they accumulate
    locally, and the first backward after it averages the accumulated sums.

    >>> dist.init_process_group("mpi")
    >>> model = DistributedDataParallel(nn.Linear(4, 2))
    >>> model(x_share).sum().backward()     # .grad: the average over ranks
    >>> model.module.state_dict()           # the wrapped model's keys; model.state_dict() has 'module.'

    ``device_ids`` and ``output_device`` must be None (nbgrad computes on the CPU); only the
    default process group exists. Parameters a rank's backward did not reach count as zeros.
    """

    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=None, find_unused_parameters=False, check_reduction=False,
                 gradient_as_bucket_view=False, static_graph=False):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected an nbgrad.nn.Module, got {type(module).__name__}")
        if device_ids is not None or output_device is not None:
            raise ValueError("DistributedDataParallel: device_ids and output_device must be None for CPU modules, "
                             f"got device_ids {device_ids}, output_device {output_device}")
        if process_group is not None:
            raise ValueError("DistributedDataParallel: only the default process group (process_group=None) exists")
        cap_mb = DEFAULT_BUCKET_CAP_MB if bucket_cap_mb is None else bucket_cap_mb
        if not cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        comm = dist._world()  # the error PyTorch gives before init_process_group
        self.module = module
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.require_backward_grad_sync = True
        self._sync_pending = False  # a forward through the wrapper ran with sync on
        self._queued = False
        self._sync_seconds = 0.0    # time spent in gradient reduction (packing, allreduce, copying back)
        self._wait_seconds = 0.0    # the part of it spent waiting for the allreduces to complete
        self._reductions = 0
        _check_same_model(comm, module)
        with grad_mode.no_grad():
            for tensor in module.state_dict().values():  # parameters and whatever else the state holds
                comm.Bcast(tensor._data, root=0)
        params = [p for p in module.parameters() if p.requires_grad]
        self._buckets = _buckets(params, int(cap_mb * (1 << 20)))
        ddp = weakref.ref(self)
        self._hook_handles = [p.register_post_accumulate_grad_hook(lambda _, ddp=ddp: _grad_ready(ddp))
                              for p in params]

    def forward(self, *inputs, **kwargs):
        self._sync_pending = self.require_backward_grad_sync and grad_mode.is_grad_enabled()
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backwards of forwards run inside accumulate into ``.grad`` without communication."""
        previous = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def _reduce_gradients(self):
        """Average every parameter's gradient over the ranks, one allreduce per bucket."""
        self._queued = self._sync_pending = False
        start = time.perf_counter()
        comm, MPI = dist._comm, dist._MPI
        requests = []
        for bucket in self._buckets:
            flat = bucket.flat
            for p, (a, b) in zip(bucket.params, bucket.slices):
                grad = p.grad
                flat[a:b] = 0 if grad is None else grad._data.reshape(-1)
            requests.append(comm.Iallreduce(MPI.IN_PLACE, flat, MPI.SUM))
        waiting = time.perf_counter()
        MPI.Request.Waitall(requests)
        self._wait_seconds += time.perf_counter() - waiting
        scale = 1.0 / comm.Get_size()
        for bucket in self._buckets:
            flat = bucket.flat
            flat *= scale
            for p, (a, b) in zip(bucket.params, bucket.slices):
                grad, average = p.grad, flat[a:b].reshape(p._data.shape)
                if grad is not None:
                    grad._data[...] = average
                elif average.any():  # no rank-local gradient, but other ranks had one
                    p.grad = _wrap(average.copy())
        self._sync_seconds += time.perf_counter() - start
        self._reductions += 1


def _grad_ready(ddp_ref):
    """A parameter's gradient is accumulated: reduce them all once this backward ends."""
    ddp = ddp_ref()
    if ddp is not None and ddp._sync_pending and not ddp._queued:
        ddp._queued = True
        engine.queue_callback(ddp._reduce_gradients)


def _check_same_model(comm, module):
    """Every rank must wrap the same architecture: compare names, shapes and dtypes with rank 0's."""
    mine = [(name, tuple(t.shape), t._data.dtype.name) for name, t in module.state_dict().items()]
    everyone = comm.allgather(mine)
    reference = everyone[0]
    for rank, theirs in enumerate(everyone):
        if theirs == reference:
            continue
        if len(theirs) != len(reference):
            raise RuntimeError(f"DistributedDataParallel: rank {rank}'s model has {len(theirs)} parameters and "
                               f"rank 0's {len(reference)}: every rank must wrap the same model")
        for (name, shape, dtype), (name0, shape0, dtype0) in zip(theirs, reference):
            if (name, shape, dtype) != (name0, shape0, dtype0):
                raise RuntimeError(f"DistributedDataParallel: parameter {name!r} of rank {rank} has shape {shape} "
                                   f"and dtype {dtype}, but rank 0's {name0!r} has shape {shape0} and dtype "
                                   f"{dtype0}: every rank must wrap the same model")
