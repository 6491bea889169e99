"""One training step (forward + backward) of a two-layer MLP.

loss = ((relu(x @ w1 + b1) @ w2 + b2) ** 2).mean() with x: (batch, hidden), w1:
(hidden, hidden), w2: (hidden, 10); float32, weights require grad, x does not.
The same numpy-generated data is used for both frameworks.
"""

import numpy as np

from ._common import FRAMEWORKS, import_framework

N_OUT = 10


class MLPStep:
    params = [FRAMEWORKS, [(32, 32), (512, 512)]]
    param_names = ["framework", "batch_hidden"]

    def setup(self, framework, batch_hidden):
        fw = import_framework(framework)
        batch, hidden = batch_hidden
        rng = np.random.default_rng(0)

        def param(*shape, scale=1.0):
            data = (rng.standard_normal(shape) * scale).astype(np.float32)
            return fw.tensor(data, dtype=fw.float32, requires_grad=True)

        self.x = fw.tensor(rng.standard_normal((batch, hidden)).astype(np.float32), dtype=fw.float32)
        self.w1 = param(hidden, hidden, scale=hidden**-0.5)
        self.b1 = param(hidden, scale=0.1)
        self.w2 = param(hidden, N_OUT, scale=hidden**-0.5)
        self.b2 = param(N_OUT, scale=0.1)
        self.weights = (self.w1, self.b1, self.w2, self.b2)
        self.fw = fw
        self.time_forward_backward(framework, batch_hidden)  # warm-up (compile / load kernels)

    def time_forward_backward(self, framework, batch_hidden):
        fw = self.fw
        for w in self.weights:
            w.grad = None
        loss = ((fw.relu(self.x @ self.w1 + self.b1) @ self.w2 + self.b2) ** 2).mean()
        loss.backward()
