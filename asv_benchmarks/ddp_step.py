"""Data-parallel training step of the medium MLP, over MPI.

    mpiexec -n 2 python -m asv_benchmarks.ddp_step     # 2 ranks, each on half of the batch
    python -m asv_benchmarks.ddp_step                   # 1 rank on the whole batch (no wrapper)
    ... [--steps 30] [--repeats 7]

Batch 512 (split over the ranks), 64 -> 512 -> 512 -> 10, float32, cross-entropy, SGD with
momentum. Rank 0 prints one JSON line: the time per step (best and median of the repeats, in
ms), and for more than one rank the time spent reducing gradients per step (packing, the
allreduces, copying back, waiting for the slower rank included), the part of it spent waiting
for the allreduces, its share of the step, and the time per step under ``no_sync()`` (no
communication at all).
"""
import argparse
import json
import statistics
import time

import numpy as np

BATCH, HIDDEN, LAYERS = 512, 512, 2
FEATURES, CLASSES = 64, 10


def build(nb, world, rank, wrap):
    from nbgrad import nn, optim

    nb.manual_seed(0)
    widths = [FEATURES] + [HIDDEN] * LAYERS
    modules = []
    for n_in, n_out in zip(widths, widths[1:]):
        modules += [nn.Linear(n_in, n_out), nn.ReLU()]
    model = nn.Sequential(*modules, nn.Linear(widths[-1], CLASSES))
    if wrap:
        from nbgrad.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model)
    rng = np.random.default_rng(0)
    share = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    x = nb.tensor(rng.standard_normal((BATCH, FEATURES)).astype(np.float32)[share])
    y = nb.tensor(rng.integers(0, CLASSES, BATCH)[share])
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()

    return model, step


def time_steps(step, barrier, steps, repeats):
    """Seconds per step over ``repeats`` runs of ``steps`` steps, the ranks starting each run together."""
    times = []
    for _ in range(repeats):
        barrier()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        barrier()
        times.append((time.perf_counter() - start) / steps)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m asv_benchmarks.ddp_step", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="steps per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    import nbgrad as nb
    import nbgrad.distributed as dist

    dist.init_process_group("mpi")  # before the first tensor: each rank gets its share of the cores
    world, rank = dist.get_world_size(), dist.get_rank()
    barrier = dist.barrier
    model, step = build(nb, world, rank, wrap=world > 1)
    for _ in range(5):  # warm-up: load the kernels, allocate optimizer state
        step()
    if world > 1:
        model._sync_seconds, model._wait_seconds, model._reductions = 0.0, 0.0, 0  # the timed steps only
    times = time_steps(step, barrier, args.steps, args.repeats)
    result = {"ranks": world, "batch_per_rank": BATCH // world, "threads_per_rank": nb.get_num_threads(),
              "step_ms_best": 1e3 * min(times), "step_ms_median": 1e3 * statistics.median(times)}
    if world > 1:
        result["sync_ms_per_step"] = 1e3 * model._sync_seconds / model._reductions
        result["allreduce_wait_ms_per_step"] = 1e3 * model._wait_seconds / model._reductions
        result["sync_share"] = result["sync_ms_per_step"] / result["step_ms_median"]
        with model.no_sync():
            local = time_steps(step, barrier, args.steps, args.repeats)
        result["no_sync_step_ms_median"] = 1e3 * statistics.median(local)
    if rank == 0:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}))


if __name__ == "__main__":
    main()
