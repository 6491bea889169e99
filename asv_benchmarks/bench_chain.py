"""A long chain of tiny ops: per-node cost of building the graph and of backward().

``y = y * 1.0001 + 0.001`` repeated 1000 times on a shape-(4,) tensor records 2000
graph nodes (1000 mul + 1000 add; the final ``.sum()`` node is not counted), so
times here are dominated by per-node overhead, not arithmetic.

asv setup semantics (checked against asv 0.6 / asv_runner): ``setup`` runs before
each *sample*, and a sample calls the benchmark ``number`` times in a row. A graph
can be backpropagated only once, so ``time_backward`` pins ``number = 1`` (one call
per sample, a fresh graph from ``setup`` before each) and ``warmup_time = 0`` (asv's
warm-up loop may call the function again without re-running ``setup``).
"""

import time

from ._common import FRAMEWORKS, import_framework

N_ITERS = 1000
N_NODES = 2 * N_ITERS
N_TRACK_RUNS = 7


def build_chain(fw, x):
    y = x
    for _ in range(N_ITERS):
        y = y * 1.0001 + 0.001
    return y.sum()


class Chain:
    params = [FRAMEWORKS]
    param_names = ["framework"]
    number = 1
    warmup_time = 0

    def setup(self, framework):
        fw = import_framework(framework)
        self.fw = fw
        # Warm-up: compile / load every kernel (forward and backward) outside the timing.
        x = fw.ones(4, dtype=fw.float32, requires_grad=True)
        build_chain(fw, x).backward()
        # A fresh, not yet backpropagated graph for time_backward.
        self.x = fw.ones(4, dtype=fw.float32, requires_grad=True)
        self.out = build_chain(fw, self.x)

    def time_forward(self, framework):
        """Build the 2000-node graph (forward only) and sum it."""
        build_chain(self.fw, self.x)

    def time_backward(self, framework):
        """backward() through the 2000-node graph built in setup (one graph per sample)."""
        self.out.backward()

    def track_forward_ns_per_node(self, framework):
        """Min over runs of the forward time (perf_counter_ns) divided by the node count."""
        fw = self.fw
        best = None
        for _ in range(N_TRACK_RUNS):
            x = fw.ones(4, dtype=fw.float32, requires_grad=True)
            t0 = time.perf_counter_ns()
            build_chain(fw, x)
            dt = time.perf_counter_ns() - t0
            best = dt if best is None else min(best, dt)
        return best / N_NODES

    track_forward_ns_per_node.unit = "ns"

    def track_backward_ns_per_node(self, framework):
        """Min over runs of backward() alone (graph built untimed) divided by the node count."""
        fw = self.fw
        best = None
        for _ in range(N_TRACK_RUNS):
            x = fw.ones(4, dtype=fw.float32, requires_grad=True)
            out = build_chain(fw, x)
            t0 = time.perf_counter_ns()
            out.backward()
            dt = time.perf_counter_ns() - t0
            best = dt if best is None else min(best, dt)
        return best / N_NODES

    track_backward_ns_per_node.unit = "ns"
