"""softmax / cross_entropy, a reduction and an indexing op, forward and forward + backward,
at a small size (Python overhead dominates) and a large one (the kernels dominate).

Each timed function runs its op ``CALLS[size]`` times, so a small op is well above the
timer's resolution: divide the reported time by that count for one call.
"""

from ._common import FRAMEWORKS, import_framework

SIZES = ["small", "large"]
CALLS = {"small": 100, "large": 1}


class _Suite:
    params = [FRAMEWORKS, SIZES]
    param_names = ["framework", "size"]
    shapes = {}

    def setup(self, framework, size):
        fw = self.fw = import_framework(framework)
        self.calls = CALLS[size]
        rows, cols = self.shapes[size]
        fw.manual_seed(0)
        self.x = fw.randn(rows, cols, requires_grad=True)
        self.prepare(fw, rows, cols)
        self.forward()  # warm-up: load the cached kernels outside the timing
        self.backward()

    def prepare(self, fw, rows, cols):
        pass

    def time_forward(self, framework, size):
        with self.fw.no_grad():
            for _ in range(self.calls):
                self.forward()

    def time_forward_backward(self, framework, size):
        for _ in range(self.calls):
            self.backward()

    def backward(self):
        self.forward().backward()


class CrossEntropy(_Suite):
    """``F.cross_entropy(logits, target)`` on (batch, classes) logits."""

    shapes = {"small": (16, 10), "large": (512, 1000)}

    def prepare(self, fw, rows, cols):
        self.target = fw.tensor([i % cols for i in range(rows)])
        self.cross_entropy = fw.nn.functional.cross_entropy

    def forward(self):
        return self.cross_entropy(self.x, self.target)


class Softmax(_Suite):
    """``softmax(x, dim=1)``, its backward seeded by a weighted sum."""

    shapes = {"small": (16, 10), "large": (512, 1000)}

    def prepare(self, fw, rows, cols):
        self.weight = fw.ones(rows, cols) * 0.5

    def forward(self):
        return self.fw.softmax(self.x, dim=1)

    def backward(self):
        (self.forward() * self.weight).sum().backward()


class MaxReduction(_Suite):
    """``x.max(dim=1).values`` (the backward routes to the selected elements)."""

    shapes = {"small": (16, 16), "large": (1024, 1024)}

    def forward(self):
        return self.x.max(dim=1).values

    def backward(self):
        self.forward().sum().backward()


class IndexRows(_Suite):
    """``x[index]``: rows gathered, some repeated (the backward scatter-adds)."""

    shapes = {"small": (32, 8), "large": (20000, 128)}

    def prepare(self, fw, rows, cols):
        self.index = fw.tensor([i * 7 % rows for i in range(rows // 2)])

    def forward(self):
        return self.x[self.index]

    def backward(self):
        self.forward().sum().backward()
