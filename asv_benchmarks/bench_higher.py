"""Gradients of gradients: a Hessian-vector product of an MLP loss.

loss = cross_entropy(linear(tanh(linear(x, w1)), w2), y); the HVP is
grad(<grad(loss, w, create_graph=True), v>, w) for the weights w = (w1, w2) and a
fixed direction v. float32, the same numpy-generated data for both frameworks.
"""
import numpy as np

from ._common import FRAMEWORKS, import_framework

CLASSES = 10


class HessianVectorProduct:
    params = [FRAMEWORKS, [(32, 32), (256, 256)]]
    param_names = ["framework", "batch_hidden"]

    def setup(self, framework, batch_hidden):
        fw = import_framework(framework)
        batch, hidden = batch_hidden
        rng = np.random.default_rng(0)

        def tensor(*shape, scale=1.0, grad=False):
            data = (rng.standard_normal(shape) * scale).astype(np.float32)
            return fw.tensor(data, requires_grad=grad)

        self.x = tensor(batch, hidden)
        self.y = fw.tensor(rng.integers(0, CLASSES, batch))
        self.w = (tensor(hidden, hidden, scale=hidden**-0.5, grad=True),
                  tensor(CLASSES, hidden, scale=hidden**-0.5, grad=True))
        self.v = (tensor(hidden, hidden), tensor(CLASSES, hidden))
        self.fw = fw
        self.time_hvp(framework, batch_hidden)  # warm-up (compile / load kernels)

    def time_hvp(self, framework, batch_hidden):
        fw = self.fw
        F = fw.nn.functional
        w1, w2 = self.w
        loss = F.cross_entropy(F.linear(F.linear(self.x, w1).tanh(), w2), self.y)
        g1, g2 = fw.autograd.grad(loss, self.w, create_graph=True)
        dot = (g1 * self.v[0]).sum() + (g2 * self.v[1]).sum()
        fw.autograd.grad(dot, self.w)
