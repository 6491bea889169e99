"""Checks that run in every rank of ``mpiexec -n 2 python tests/mpi_checks.py NAME...``
(tests/test_distributed.py launches them). A failed assertion is an uncaught exception, which
aborts all ranks: the launch then ends with a non-zero status and the traceback on stderr.
Each check prints ``ok NAME`` from rank 0 when every rank passed it."""
import sys

import numpy as np

import nbgrad as nb
import nbgrad.distributed as dist
from nbgrad import nn, optim
from nbgrad.nn.parallel import DistributedDataParallel as DDP

NP_DTYPES = {nb.float32: np.float32, nb.float64: np.float64, nb.int64: np.int64, nb.int32: np.int32,
             nb.bool: np.bool_}


def rank_values(rank, dtype):
    """A rank's distinct values of ``dtype`` (small integers, so that sums and products are exact)."""
    if dtype is nb.bool:
        return nb.tensor([rank == 0, True, False, rank == 1])
    return nb.tensor([rank + 1, 2 - rank, -3 * rank, 5], dtype=dtype)


def check_collectives():
    rank, world = dist.get_rank(), dist.get_world_size()
    Op = dist.ReduceOp
    expected = {Op.SUM: np.sum, Op.PRODUCT: np.prod, Op.MIN: np.min, Op.MAX: np.max, Op.AVG: np.mean,
                Op.BAND: np.bitwise_and.reduce, Op.BOR: np.bitwise_or.reduce, Op.BXOR: np.bitwise_xor.reduce}
    bool_expected = {Op.SUM: np.any, Op.MAX: np.any, Op.BOR: np.any, Op.PRODUCT: np.all, Op.MIN: np.all,
                     Op.BAND: np.all, Op.BXOR: np.logical_xor.reduce}
    for dtype in NP_DTYPES:
        everyone = np.stack([rank_values(r, dtype).numpy() for r in range(world)])
        for op in Op:
            t = rank_values(rank, dtype)
            floating = dtype in (nb.float32, nb.float64)
            if (op is Op.AVG and not floating) or (op in (Op.BAND, Op.BOR, Op.BXOR) and floating):
                try:
                    dist.all_reduce(t, op=op)
                except TypeError as e:
                    assert "all_reduce: ReduceOp." in str(e), e
                    continue
                raise AssertionError(f"all_reduce {op} on {dtype} should raise")
            address = t._data.ctypes.data
            dist.all_reduce(t, op=op)
            want = (bool_expected if dtype is nb.bool else expected)[op](everyone, axis=0)
            assert t.dtype == dtype and t._data.ctypes.data == address, (op, dtype)  # in place
            np.testing.assert_array_equal(t.numpy(), want.astype(NP_DTYPES[dtype]), err_msg=f"{op} {dtype}")
            # reduce: only dst's tensor changes
            t = rank_values(rank, dtype)
            dist.reduce(t, dst=1, op=op)
            mine = rank_values(rank, dtype).numpy()
            np.testing.assert_array_equal(t.numpy(), want if rank == 1 else mine, err_msg=f"reduce {op} {dtype}")
        t = rank_values(rank, dtype)
        dist.broadcast(t, src=1)
        np.testing.assert_array_equal(t.numpy(), everyone[1])
        gathered = [nb.zeros(4, dtype=dtype) for _ in range(world)]
        dist.all_gather(gathered, rank_values(rank, dtype))
        np.testing.assert_array_equal(np.stack([g.numpy() for g in gathered]), everyone)
    matrix = nb.arange(6, dtype=nb.float64).reshape(2, 3) * (rank + 1)  # any shape, 0-d too
    dist.all_reduce(matrix)
    np.testing.assert_array_equal(matrix.numpy(), np.arange(6.0).reshape(2, 3) * 3)
    scalar = nb.tensor(float(rank))
    dist.all_reduce(scalar, op=Op.MAX)
    assert scalar.item() == 1.0
    for call, says in ((lambda: dist.broadcast(nb.ones(2), src=2), "broadcast: rank 2 is not in the group of 2"),
                       (lambda: dist.all_gather([nb.ones(2)], nb.ones(2)), "list of 2 tensors"),
                       (lambda: dist.all_gather([nb.ones(2), nb.ones(3)], nb.ones(2)), "tensor_list[1] has shape"),
                       (lambda: dist.all_reduce(np.ones(2)), "expected a Tensor, got ndarray"),
                       (lambda: dist.all_reduce(nb.ones(2), op="sum"), "op must be a ReduceOp")):
        try:
            call()
        except (ValueError, TypeError) as e:
            assert says in str(e), e
        else:
            raise AssertionError(f"expected an error: {says}")
    assert dist.all_reduce(nb.ones(1), async_op=True).wait()
    dist.barrier()


def mlp(seed, dtype=nb.float64):
    nb.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4)).to(dtype)


def batch(n=24, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return nb.tensor(rng.standard_normal((n, 6)).astype(dtype)), nb.tensor(rng.integers(0, 4, n))


def share(t, rank, world):
    n = len(t)
    return t[rank * n // world:(rank + 1) * n // world]


def gathered(tensor):
    world = dist.get_world_size()
    out = [nb.zeros_like(tensor) for _ in range(world)]
    dist.all_gather(out, tensor.detach().clone())
    return [o.numpy() for o in out]


def assert_same_on_every_rank(model):
    for name, p in model.named_parameters():
        first, *others = gathered(p)
        for other in others:
            np.testing.assert_array_equal(first, other, err_msg=name)


def check_ddp():
    rank, world = dist.get_rank(), dist.get_world_size()
    loss_fn = nn.CrossEntropyLoss()
    # Broadcast at wrap: each rank built its model from another seed; all hold rank 0's now.
    model = mlp(seed=100 + rank)
    ddp = DDP(model)
    assert ddp.module is model and list(ddp.parameters()) == list(model.parameters())
    assert list(ddp.state_dict())[0] == "module.0.weight" and list(model.state_dict())[0] == "0.weight"
    np.testing.assert_array_equal(model[0].weight.detach().numpy(), mlp(seed=100)[0].weight.detach().numpy())
    assert_same_on_every_rank(model)
    # Gradients after DDP on the two halves of a batch are one process's on the whole batch.
    x, y = batch()
    reference = mlp(seed=100)
    loss_fn(reference(x), y).backward()
    loss_fn(ddp(share(x, rank, world)), share(y, rank, world)).backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=1e-12, err_msg=name)
    assert ddp._reductions == 1 and len(ddp._buckets) == 1  # one allreduce for all 6 parameters
    # Several buckets (a tiny cap): the same gradients, one allreduce per bucket.
    small = DDP(mlp(seed=100), bucket_cap_mb=1e-4)
    assert len(small._buckets) == 5, len(small._buckets)  # [4.bias 4.weight] [2.bias] [2.weight] ...
    loss_fn(small(share(x, rank, world)), share(y, rank, world)).backward()
    for p, q in zip(small.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=1e-12)
    # no_sync: two micro-batches accumulate locally, the third's backward averages the sums.
    model.zero_grad()
    reference.zero_grad()
    batches = [batch(seed=s) for s in (1, 2, 3)]
    with ddp.no_sync():
        for xb, yb in batches[:2]:
            loss_fn(ddp(share(xb, rank, world)), share(yb, rank, world)).backward()
    assert ddp._reductions == 1
    local = gathered(model[0].weight.grad)
    assert not np.array_equal(local[0], local[1])  # not averaged inside no_sync
    xb, yb = batches[2]
    loss_fn(ddp(share(xb, rank, world)), share(yb, rank, world)).backward()
    assert ddp._reductions == 2
    for xb, yb in batches:
        loss_fn(reference(xb), yb).backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=0, atol=1e-12)
    # A backward of the module itself, not through the wrapper, is not synchronized (as PyTorch).
    model.zero_grad()
    loss_fn(model(share(x, rank, world)), share(y, rank, world)).backward()
    assert ddp._reductions == 2


def check_training():
    """N SGD steps: the ranks' parameters stay identical and follow one process's training."""
    rank, world = dist.get_rank(), dist.get_world_size()
    loss_fn = nn.CrossEntropyLoss()
    ddp, reference = DDP(mlp(seed=rank)), mlp(seed=0)
    sgd = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    sgd_reference = optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for step in range(10):
        x, y = batch(seed=step)
        for opt, model, xs, ys in ((sgd, ddp, share(x, rank, world), share(y, rank, world)),
                                   (sgd_reference, reference, x, y)):
            opt.zero_grad()
            loss_fn(model(xs), ys).backward()
            opt.step()
    assert_same_on_every_rank(ddp.module)
    for p, q in zip(ddp.parameters(), reference.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=0, atol=1e-10)
    # float32, and a parameter that only rank 1's backward reaches (elsewhere it counts as zeros)
    nb.manual_seed(rank)
    model = OnlyRankOneUsesExtra(rank)
    ddp = DDP(model)
    sgd = optim.SGD(ddp.parameters(), lr=0.1)
    x, y = batch(dtype=np.float32)
    for _ in range(3):
        sgd.zero_grad()
        loss_fn(ddp(share(x, rank, world)), share(y, rank, world)).backward()
        sgd.step()
    assert model.extra.weight.grad is not None and model.extra.weight.grad.abs().sum().item() > 0
    assert_same_on_every_rank(model)


class OnlyRankOneUsesExtra(nn.Module):
    def __init__(self, rank):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4))
        self.extra = nn.Linear(3, 4)
        self.rank = rank

    def forward(self, x):
        out = self.body(x)
        return out + self.extra(nb.ones(1, 3)) if self.rank == 1 else out


def check_mismatch():
    """Ranks wrapping different models fail at wrap, all of them, naming the parameter."""
    rank = dist.get_rank()
    model = nn.Sequential(nn.Linear(4, 3 + rank))
    DDP(model)


def check_raise():
    """Rank 1 raises while rank 0 waits in an allreduce: every rank must end, not hang."""
    if dist.get_rank() == 1:
        raise RuntimeError("rank 1 failed on purpose")
    ddp = DDP(nn.Linear(3, 1))
    ddp(nb.ones(2, 3)).sum().backward()


def check_exit():
    """Rank 1 exits (sys.exit) while rank 0 waits in an allreduce."""
    if dist.get_rank() == 1:
        sys.exit(3)
    dist.all_reduce(nb.ones(3))


def check_world_size_1():
    """Without mpiexec: a world of one, where every collective leaves the tensor as it is."""
    assert dist.get_rank() == 0 and dist.get_world_size() == 1
    for op in (dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MAX):
        t = nb.tensor([1.5, -2.0])
        dist.all_reduce(t, op=op)
        assert t.tolist() == [1.5, -2.0]
    out = [nb.zeros(2)]
    dist.all_gather(out, nb.tensor([3.0, 4.0]))
    assert out[0].tolist() == [3.0, 4.0]
    dist.broadcast(t, src=0)
    dist.reduce(t, dst=0)
    dist.barrier()
    model = mlp(seed=0)
    ddp = DDP(model)
    reference = mlp(seed=0)
    x, y = batch()
    nn.CrossEntropyLoss()(ddp(x), y).backward()
    nn.CrossEntropyLoss()(reference(x), y).backward()
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    from nbgrad.utils.data import DistributedSampler

    assert list(DistributedSampler(range(5), shuffle=False)) == [0, 1, 2, 3, 4]


def check_late_init_threads():
    """Ranks get their share of the cores, Numba's count lowered too when init comes late."""
    import os

    share = max(1, os.cpu_count() // 2)
    assert nb.get_num_threads() == share and os.environ["OMP_NUM_THREADS"] == str(share)


def main(names):
    if "late_init_threads" in names:
        nb.ones(1) + 1  # loads Numba before the process group starts
    dist.init_process_group(backend="mpi", timeout=float(dict(a.split("=") for a in names if "=" in a)
                                                        .get("timeout", 60)))
    for name in names:
        if "=" in name:
            continue
        globals()[f"check_{name}"]()
        dist.barrier()
        if dist.get_rank() == 0:
            print(f"ok {name}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
