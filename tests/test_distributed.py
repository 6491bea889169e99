"""nbgrad.distributed, DistributedDataParallel and DistributedSampler.

The multi-process checks run as ``mpiexec -n 2 python tests/mpi_checks.py NAME...`` (several
checks per launch: each costs a second or two); they are skipped only where mpi4py or
mpiexec is missing (CI installs both: the ``distributed`` extra).
"""
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import nbgrad as nb
import nbgrad.distributed as dist
from nbgrad.utils.data import DistributedSampler

HERE = Path(__file__).resolve().parent
CHECKS = HERE / "mpi_checks.py"
MPIEXEC = next((str(p) for p in (Path(sys.executable).parent / "mpiexec",) if p.exists()), shutil.which("mpiexec"))
HAS_MPI = importlib.util.find_spec("mpi4py") is not None and MPIEXEC is not None
needs_mpi = pytest.mark.skipif(not HAS_MPI, reason="mpi4py or mpiexec missing: pip install -e '.[distributed]'")
LIMIT = 120  # seconds: a launch that takes longer hangs, and fails here


def launch(args, ranks=2, limit=LIMIT):
    """Run ``args`` (after ``python``) in ``ranks`` MPI processes, or in one without mpiexec
    (``ranks=None``); a hang is killed with its whole process group and fails the test."""
    command = ([MPIEXEC, "-n", str(ranks)] if ranks else []) + [sys.executable, *args]
    env = dict(os.environ, NBGRAD_QUIET="1", PYTHONPATH=os.pathsep.join(
        [str(HERE.parent)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    process = subprocess.Popen(command, cwd=HERE.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{' '.join(command)} did not end within {limit} s")
    return process.returncode, out, err


def run_checks(*names, ranks=2):
    code, out, err = launch([str(CHECKS), *names], ranks)
    assert code == 0, err[-4000:]
    assert out.split() == [word for name in names if "=" not in name for word in ("ok", name)], out
    return out


# --- across two ranks -------------------------------------------------------------

@needs_mpi
def test_collectives_with_each_op_and_dtype():
    """all_reduce (each ReduceOp on float32, float64, int64, int32, bool, in place), reduce,
    broadcast, all_gather into separate tensors, barrier, and their errors."""
    run_checks("collectives")


@needs_mpi
def test_ddp_gradients_equal_one_process_on_the_whole_batch():
    """float64, 1e-12: the whole-batch gradient from two halves (one bucket and five), the
    broadcast of rank 0's parameters at wrap from different seeds, no_sync accumulation, N SGD
    steps that keep the ranks identical and equal to one process's, a parameter only one rank
    reaches, and each rank's share of the cores."""
    run_checks("late_init_threads", "ddp", "training")


@needs_mpi
@pytest.mark.parametrize("check, says", [
    ("mismatch", "parameter '0.weight' of rank 1 has shape (4, 4)"),  # detected at wrap, in every rank
    ("raise", "rank 1 failed on purpose"),                            # while rank 0 waits in an allreduce
    ("exit", "not every rank reached its end within 2 s"),            # sys.exit(3) while rank 0 waits
])
def test_a_failing_rank_ends_every_rank(check, says):
    code, _, err = launch([str(CHECKS), check, "timeout=2"])
    assert code != 0
    assert says in err and "aborting all 2 ranks" in err, err[-3000:]


@needs_mpi
def test_example_on_two_ranks_trains_as_one_process():
    """Each rank on its share of every batch: the losses of one process (float64), printed once."""
    argv = ["-m", "nbgrad.examples.mlp", "--epochs", "2", "--dtype", "float64", "--seed", "3"]
    code, out, err = launch(argv + ["--distributed"])
    assert code == 0, err[-3000:]
    code1, out1, err1 = launch(argv, ranks=None)
    assert code1 == 0, err1[-3000:]
    assert out.count("epoch ") == 2 and out.count("test accuracy") == 1 and "2 ranks" in out  # rank 0 only
    losses = [float(line.split()[3]) for line in out.splitlines() if line.startswith("epoch")]
    losses1 = [float(line.split()[3]) for line in out1.splitlines() if line.startswith("epoch")]
    assert losses == losses1
    assert out.splitlines()[-1] == out1.splitlines()[-1]  # the test accuracy


# --- one process -------------------------------------------------------------------

@needs_mpi
def test_world_size_1_without_mpiexec():
    run_checks("world_size_1", ranks=None)


@needs_mpi
def test_ddp_step_benchmark_runs_on_one_rank():
    code, out, err = launch(["-m", "asv_benchmarks.ddp_step", "--steps", "2", "--repeats", "1"], ranks=None)
    assert code == 0, err[-3000:]
    result = json.loads(out.splitlines()[-1])
    assert result["ranks"] == 1 and result["batch_per_rank"] == 512 and result["step_ms_median"] > 0


def test_nothing_of_mpi_is_imported_until_used():
    code, out, err = launch(["-c", "import sys, nbgrad, nbgrad.nn, nbgrad.utils.data as data; "
                                   "nbgrad.nn.parallel.DistributedDataParallel; nbgrad.distributed.is_available(); "
                                   "print(sorted(m for m in sys.modules if m.startswith('mpi4py')))"], ranks=None)
    assert code == 0, err[-3000:]
    assert out.strip() == "[]"


def test_errors_before_init_process_group():
    from nbgrad import nn
    from nbgrad.nn.parallel import DistributedDataParallel

    assert not dist.is_initialized() and dist.is_available()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier, lambda: dist.all_reduce(nb.ones(2)),
                 lambda: DistributedDataParallel(nn.Linear(2, 2))):
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            call()
    with pytest.raises(ValueError, match="backend 'nccl' is not available; nbgrad has only 'mpi'"):
        dist.init_process_group(backend="nccl")
    with pytest.raises(TypeError, match="expected an nbgrad.nn.Module, got Tensor"):
        DistributedDataParallel(nb.ones(2))
    with pytest.raises(ValueError, match="device_ids and output_device must be None"):
        DistributedDataParallel(nn.Linear(2, 2), device_ids=[0])


def test_queue_callback_runs_once_after_the_backward_and_its_hooks():
    from nbgrad.autograd import engine

    calls = []
    w = nb.ones(3, requires_grad=True)
    b = nb.ones(3, requires_grad=True)

    def hook(tensor):
        calls.append("hook")
        if len(calls) == 1:
            engine.queue_callback(lambda: calls.append(("callback", w.grad.tolist(), b.grad.tolist())))

    w.register_post_accumulate_grad_hook(hook)
    b.register_post_accumulate_grad_hook(hook)
    (w * b * 2).sum().backward()
    assert calls == ["hook", "hook", ("callback", [2.0] * 3, [2.0] * 3)]
    with pytest.raises(RuntimeError, match="queue_callback: no backward is running"):
        engine.queue_callback(print)


# --- DistributedSampler ------------------------------------------------------------

@pytest.mark.parametrize("n, replicas, drop_last", [(10, 2, False), (10, 3, False), (10, 3, True), (11, 4, True),
                                                    (2, 5, False), (7, 1, False)])
def test_distributed_sampler_matches_pytorch_without_shuffle(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for rank in range(replicas):
        ours = DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last)
        theirs = torch_data.DistributedSampler(range(n), num_replicas=replicas, rank=rank, shuffle=False,
                                               drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)
        assert (ours.num_samples, ours.total_size) == (theirs.num_samples, theirs.total_size)


def test_distributed_sampler_shuffles_per_epoch_the_same_in_every_rank():
    def shares(epoch, drop_last=False, n=10):
        samplers = [DistributedSampler(range(n), num_replicas=3, rank=r, seed=5, drop_last=drop_last)
                    for r in range(3)]
        for s in samplers:
            s.set_epoch(epoch)
        return [list(s) for s in samplers]

    first = shares(0)
    assert [len(s) for s in first] == [4, 4, 4]
    everyone = sorted(sum(first, []))
    assert set(everyone) == set(range(10)) and len(everyone) == 12  # padded with two repeated indices
    assert shares(0) == first and shares(1) != first  # the same order until set_epoch
    dropped = shares(2, drop_last=True)
    assert [len(s) for s in dropped] == [3, 3, 3] and len(set(sum(dropped, []))) == 9
    with pytest.raises(ValueError, match=r"Invalid rank 3, rank should be in the interval \[0, 2\]"):
        DistributedSampler(range(4), num_replicas=3, rank=3)
    loader = nb.utils.data.DataLoader(list(range(10)), batch_size=2,
                                      sampler=DistributedSampler(range(10), num_replicas=2, rank=1, shuffle=False))
    assert [b.tolist() for b in loader] == [[1, 3], [5, 7], [9]]


def test_example_without_mpi4py_says_how_to_install(monkeypatch, capsys):
    import importlib.util as util

    from nbgrad.examples import mlp

    find_spec = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None if name == "mpi4py" else find_spec(name, *a))
    with pytest.raises(SystemExit):
        mlp.parse_args(["--distributed"])
    assert 'pip install -e ".[distributed]"' in capsys.readouterr().err
