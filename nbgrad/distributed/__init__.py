"""Collective communication across processes, as ``torch.distributed``, over MPI (mpi4py).

Start the processes with MPI (``mpiexec -n 2 python train.py``; a hostfile runs them on
several machines), then in each::

    import nbgrad.distributed as dist
    dist.init_process_group(backend="mpi")   # ranks from MPI.COMM_WORLD; world size 1 without mpiexec
    t = nbgrad.ones(3) * dist.get_rank()
    dist.all_reduce(t)                       # in place: the sum over ranks

The collectives hand MPI the tensor's own buffer (tensors are C-contiguous), never a copy.
``mpi4py`` is imported by ``init_process_group`` only: ``pip install -e ".[distributed]"``.

Failure is loud, not a hang. After ``init_process_group``, an uncaught exception in any rank
prints its traceback and aborts every rank (``MPI_Abort``), so that the others fail at once
instead of waiting forever in their next collective. A rank that exits otherwise (``sys.exit``)
waits for the others to reach their end too, at most ``timeout`` (PyTorch's default: 30
minutes), then aborts them all.
"""
import atexit
import datetime
import enum
import os
import sys
import time

__all__ = ["ReduceOp", "all_gather", "all_reduce", "barrier", "broadcast", "destroy_process_group", "get_rank",
           "get_world_size", "init_process_group", "is_available", "is_initialized", "is_mpi_available", "reduce"]

NOT_INITIALIZED = ("Default process group has not been initialized, please make sure to call "
                   "init_process_group.")

_comm = None       # MPI.COMM_WORLD once initialized
_MPI = None        # the mpi4py.MPI module once initialized
_previous_excepthook = None
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)  # PyTorch's default_pg_timeout
_timeout_seconds = DEFAULT_TIMEOUT.total_seconds()
ABORT_GRACE = 0.5  # seconds a failing rank waits, its message written, before it aborts the others


class ReduceOp(enum.Enum):
    """How ``all_reduce`` and ``reduce`` combine the ranks' tensors (AVG: the sum divided by the
    world size, floating tensors only; BAND, BOR, BXOR: integer and bool tensors)."""

    SUM = "SUM"
    AVG = "AVG"
    PRODUCT = "PRODUCT"
    MIN = "MIN"
    MAX = "MAX"
    BAND = "BAND"
    BOR = "BOR"
    BXOR = "BXOR"


def is_available():
    """True: the package is there (``is_mpi_available`` says whether its backend can run)."""
    return True


def is_mpi_available():
    """Whether mpi4py (and an MPI library for it) can be imported."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None


def is_initialized():
    return _comm is not None


def _world():
    if _comm is None:
        raise ValueError(NOT_INITIALIZED)
    return _comm


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                       group_name="", pg_options=None, device_id=None):
    """Join the processes MPI started: rank and world size come from ``MPI.COMM_WORLD``.

    Only ``backend="mpi"`` exists (``None`` means it). ``world_size`` and ``rank``, when given,
    must be what MPI says. Run without ``mpiexec``, the world is this one process. ``timeout``
    (a ``datetime.timedelta`` or seconds) bounds how long an exiting rank waits for the others.
    """
    global _comm, _MPI, _previous_excepthook, _timeout_seconds
    if backend is not None and str(backend).lower() != "mpi":
        raise ValueError(f"init_process_group: backend {backend!r} is not available; nbgrad has only 'mpi'")
    if _comm is not None:
        raise ValueError("trying to initialize the default process group twice!")
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RuntimeError('init_process_group: the mpi backend needs mpi4py and an MPI library: '
                           'pip install -e ".[distributed]" (or pip install mpi4py mpich)') from exc
    comm = MPI.COMM_WORLD
    for name, given, actual in (("world_size", world_size, comm.Get_size()), ("rank", rank, comm.Get_rank())):
        if given is not None and given != -1 and given != actual:
            raise ValueError(f"init_process_group: {name}={given}, but MPI started this process with {name} {actual}")
    seconds = DEFAULT_TIMEOUT if timeout is None else timeout
    seconds = seconds.total_seconds() if isinstance(seconds, datetime.timedelta) else float(seconds)
    if not seconds > 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout!r}")
    _comm, _MPI, _timeout_seconds = comm, MPI, seconds
    if comm.Get_size() > 1:
        _limit_threads(comm, MPI)
        _previous_excepthook, sys.excepthook = sys.excepthook, _abort_on_uncaught
        atexit.register(_wait_for_the_others, comm)  # runs before mpi4py's MPI_Finalize (registered earlier)


def destroy_process_group(group=None):
    """Leave the process group (MPI itself stays initialized until the process exits)."""
    global _comm, _previous_excepthook
    _world()
    if _previous_excepthook is not None:
        sys.excepthook, _previous_excepthook = _previous_excepthook, None
    _comm = None


def get_rank(group=None):
    return _world().Get_rank()


def get_world_size(group=None):
    return _world().Get_size()


def _abort_on_uncaught(kind, value, traceback):
    """sys.excepthook while the group is up: show the error, then end every rank with MPI_Abort
    (the others would otherwise block in their next collective)."""
    import traceback as tb

    rank, size = _comm.Get_rank(), _comm.Get_size()
    if _previous_excepthook not in (None, sys.__excepthook__):
        _previous_excepthook(kind, value, traceback)
        text = ""
    else:  # one write: a rank that aborts first must not cut this one's message in half
        text = "".join(tb.format_exception(kind, value, traceback))
    text += f"nbgrad.distributed: rank {rank} raised {kind.__name__}: {value}; aborting all {size} ranks\n"
    sys.stderr.write(text)
    sys.stderr.flush()
    time.sleep(ABORT_GRACE)  # let mpiexec forward the message before MPI_Abort ends every rank
    _comm.Abort(1)


def _wait_for_the_others(comm):
    """At exit: MPI_Finalize would wait forever for a rank that never gets there (one stuck in a
    collective this rank left early): wait for them all at most the timeout, then abort."""
    if _MPI.Is_finalized():
        return
    arrived = comm.Ibarrier()
    deadline = time.monotonic() + _timeout_seconds
    while not arrived.Test():
        if time.monotonic() > deadline:
            sys.stderr.write(f"nbgrad.distributed: rank {comm.Get_rank()} is exiting, but not every rank reached "
                             f"its end within {_timeout_seconds:g} s (the timeout of init_process_group); "
                             f"aborting all {comm.Get_size()} ranks\n")
            sys.stderr.flush()
            time.sleep(ABORT_GRACE)  # as in _abort_on_uncaught: else the message may be lost (seen in CI)
            comm.Abort(1)
        time.sleep(0.001)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _limit_threads(comm, MPI):
    """Ranks sharing a machine share its cores: unless the user set one of THREAD_VARIABLES, each
    rank runs Numba and the BLAS on its share of the cores (ranks that each start a thread per
    core are much slower: README, Data-parallel training). The variables are read as OpenMP and
    the BLAS load, at nbgrad's first product or parallel kernel (NumPy's OpenBLAS loads with NumPy)."""
    if any(name in os.environ for name in THREAD_VARIABLES):
        return
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    share = max(1, (os.cpu_count() or 1) // local.Get_size())
    local.Free()
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(share)
    if "numba" in sys.modules:  # Numba refuses a new NUMBA_NUM_THREADS once imported: lower its count
        import numba

        numba.set_num_threads(min(share, numba.get_num_threads()))
    else:
        os.environ["NUMBA_NUM_THREADS"] = str(share)


# --- the collectives ----------------------------------------------------------

def _buffer(op_name, tensor):
    """The tensor's own array, which MPI reads and writes by address."""
    from .._tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise TypeError(f"{op_name}: expected a Tensor, got {type(tensor).__name__}")
    data = tensor._data
    if not data.flags.c_contiguous or not data.flags.writeable:
        raise ValueError(f"{op_name}: the tensor's storage is not a writable C-contiguous buffer")
    return data


def _mpi_op(op_name, op, data):
    """The MPI operation for ``op`` on an array like ``data`` (None for AVG: a SUM, then a division)."""
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{op_name}: op must be a ReduceOp, got {op!r}")
    kind = data.dtype.kind
    if op is ReduceOp.AVG:
        if kind != "f":
            raise TypeError(f"{op_name}: ReduceOp.AVG needs a floating tensor, got dtype {data.dtype.name}")
        return _MPI.SUM
    if op in (ReduceOp.BAND, ReduceOp.BOR, ReduceOp.BXOR) and kind == "f":
        raise TypeError(f"{op_name}: ReduceOp.{op.name} needs an integer or bool tensor, got dtype {data.dtype.name}")
    if kind == "b":  # MPI's arithmetic is not defined on C bool: PyTorch's results, as logical operations
        return {ReduceOp.SUM: _MPI.LOR, ReduceOp.MAX: _MPI.LOR, ReduceOp.BOR: _MPI.LOR, ReduceOp.PRODUCT: _MPI.LAND,
                ReduceOp.MIN: _MPI.LAND, ReduceOp.BAND: _MPI.LAND, ReduceOp.BXOR: _MPI.LXOR}[op]
    return {ReduceOp.SUM: _MPI.SUM, ReduceOp.PRODUCT: _MPI.PROD, ReduceOp.MIN: _MPI.MIN, ReduceOp.MAX: _MPI.MAX,
            ReduceOp.BAND: _MPI.BAND, ReduceOp.BOR: _MPI.BOR, ReduceOp.BXOR: _MPI.BXOR}[op]


def _check_group(op_name, group):
    if group is not None:
        raise ValueError(f"{op_name}: only the default group (group=None) exists")


def _check_root(op_name, root, comm):
    if not isinstance(root, int) or not 0 <= root < comm.Get_size():
        raise ValueError(f"{op_name}: rank {root!r} is not in the group of {comm.Get_size()} ranks")


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine ``tensor`` over all ranks, in place: every rank ends with the same result."""
    comm = _world()
    _check_group("all_reduce", group)
    data = _buffer("all_reduce", tensor)
    comm.Allreduce(_MPI.IN_PLACE, data, _mpi_op("all_reduce", op, data))
    if op is ReduceOp.AVG:
        data /= comm.Get_size()
    return _done(async_op)


def reduce(tensor, dst=0, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine ``tensor`` over all ranks into rank ``dst``'s tensor; the others' are unchanged."""
    comm = _world()
    _check_group("reduce", group)
    _check_root("reduce", dst, comm)
    data = _buffer("reduce", tensor)
    mpi_op = _mpi_op("reduce", op, data)
    if comm.Get_rank() == dst:
        comm.Reduce(_MPI.IN_PLACE, data, mpi_op, root=dst)
        if op is ReduceOp.AVG:
            data /= comm.Get_size()
    else:
        comm.Reduce(data, None, mpi_op, root=dst)
    return _done(async_op)


def broadcast(tensor, src=0, group=None, async_op=False):
    """Copy rank ``src``'s ``tensor`` into every rank's ``tensor`` (same shape and dtype everywhere)."""
    comm = _world()
    _check_group("broadcast", group)
    _check_root("broadcast", src, comm)
    comm.Bcast(_buffer("broadcast", tensor), root=src)
    return _done(async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill ``tensor_list[r]`` with rank ``r``'s ``tensor``, on every rank.

    MPI writes straight into the list's tensors: one collective whose receive types are the
    tensors' addresses."""
    comm = _world()
    _check_group("all_gather", group)
    data = _buffer("all_gather", tensor)
    size = comm.Get_size()
    if not isinstance(tensor_list, list) or len(tensor_list) != size:
        raise ValueError(f"all_gather: tensor_list must be a list of {size} tensors (the world size), got "
                         f"{len(tensor_list) if isinstance(tensor_list, list) else type(tensor_list).__name__}")
    outputs = [_buffer("all_gather", t) for t in tensor_list]
    for r, out in enumerate(outputs):
        if out.shape != data.shape or out.dtype != data.dtype:
            raise ValueError(f"all_gather: tensor_list[{r}] has shape {tuple(out.shape)} and dtype {out.dtype.name}; "
                             f"the tensor has shape {tuple(data.shape)} and dtype {data.dtype.name}")
    MPI = _MPI
    types = [MPI.BYTE.Create_hindexed([out.nbytes], [MPI.Get_address(out)]).Commit() for out in outputs]
    try:
        comm.Alltoallw([data, [data.nbytes] * size, [0] * size, [MPI.BYTE] * size],
                       [MPI.BOTTOM, [1] * size, [0] * size, types])
    finally:
        for t in types:
            t.Free()
    return _done(async_op)


def barrier(group=None, async_op=False, device_ids=None):
    """Wait until every rank has called ``barrier``."""
    _world().Barrier()
    return _done(async_op)


class _Work:
    """What ``async_op=True`` returns: the operation has already completed (MPI ran it blocking)."""

    def wait(self, timeout=None):
        return True

    def is_completed(self):
        return True


def _done(async_op):
    return _Work() if async_op else None
