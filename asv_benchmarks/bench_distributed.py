"""Data-parallel training of the medium MLP over MPI: 2 ranks each on half of batch 512 against
1 rank on the whole batch (the script ``ddp_step.py`` beside this file, run under ``mpiexec``).

The ``track_`` benchmarks report what one pair of runs measured (``setup_cache`` runs them once).
Skipped (NotImplementedError in ``setup``) when mpi4py or mpiexec is missing:
``pip install -e ".[distributed]"``. On a machine with few cores, the ranks share them; the
speed-up is bounded by the cores, not by the communication.
"""
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("ddp_step.py")


def _mpiexec():
    beside = Path(sys.executable).parent / "mpiexec"  # where the mpich wheel puts it
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _run(command):
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(done.stdout.splitlines()[-1])


class DDPStep:
    timeout = 900

    def setup_cache(self):
        mpiexec = _mpiexec()
        if importlib.util.find_spec("mpi4py") is None or mpiexec is None:
            return None
        return {"one": _run([sys.executable, str(SCRIPT)]),
                "two": _run([mpiexec, "-n", "2", sys.executable, str(SCRIPT)])}

    def setup(self, results):
        if results is None:
            raise NotImplementedError("mpi4py or mpiexec is missing: pip install -e '.[distributed]'")

    def track_step_1_rank_whole_batch(self, results):
        return results["one"]["step_ms_median"]

    def track_step_2_ranks_half_batch(self, results):
        return results["two"]["step_ms_median"]

    def track_speedup_2_ranks(self, results):
        return results["one"]["step_ms_median"] / results["two"]["step_ms_median"]

    def track_gradient_sync_share(self, results):
        return results["two"]["sync_share"]

    def track_allreduce_wait_per_step(self, results):
        return results["two"]["allreduce_wait_ms_per_step"]

    track_step_1_rank_whole_batch.unit = track_step_2_ranks_half_batch.unit = "ms"
    track_allreduce_wait_per_step.unit = "ms"
    track_speedup_2_ranks.unit = track_gradient_sync_share.unit = "ratio"
