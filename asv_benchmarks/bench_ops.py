"""Per-op dispatch overhead: one elementwise op on tiny tensors."""

from ._common import FRAMEWORKS, import_framework

N_OPS = 1000


class ElementwiseForward:
    """``x * y`` on shape-(4,) float32 tensors with ``requires_grad=True``.

    At this size the op is pure overhead (argument checks, kernel dispatch, output
    allocation, recording the graph node), which is what this suite tracks.
    """

    params = [FRAMEWORKS]
    param_names = ["framework"]

    def setup(self, framework):
        fw = import_framework(framework)
        self.x = fw.ones(4, dtype=fw.float32, requires_grad=True)
        self.y = fw.full((4,), 2.0, dtype=fw.float32, requires_grad=True)
        self.x * self.y  # warm-up: compile / load the cached kernels outside the timing

    def time_mul_1000_ops(self, framework):
        """Runs ``x * y`` 1000 times: the reported time is PER 1000 OPS.

        Divide by 1000 for the time of one op (e.g. 6 ms reported = 6 us/op). The loop
        is inside the timed function because asv times one call per sample when the
        class has a ``setup``; a single ~us op would be dominated by timer resolution.
        """
        x, y = self.x, self.y
        for _ in range(N_OPS):
            x * y
