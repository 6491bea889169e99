"""Random small expressions over the op set, their gradients checked against finite differences."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbgrad as nb
import nbgrad.nn.functional as F
from nbgrad.autograd import gradcheck

# Each step maps x (2, 3) and the other inputs y (2, 3), b (3,) to a new (2, 3) tensor;
# a step with a kink (abs, relu, max) is fine: random points are almost never on it. No step may
# put values exactly on a kink either (x - x.max() makes exact zeros, where relu and std are not
# differentiable), so max_dim subtracts only half the maximum.
STEPS = {
    "exp": lambda x, y, b: (x * 0.5).exp(),
    "log": lambda x, y, b: (x * x + 1).log(),
    "sqrt": lambda x, y, b: (x * x + 0.5).sqrt(),
    "tanh": lambda x, y, b: x.tanh(),
    "sigmoid": lambda x, y, b: nb.sigmoid(x),
    "relu": lambda x, y, b: x.relu() + x * 0.1,
    "abs": lambda x, y, b: x.abs(),
    "sin_cos": lambda x, y, b: x.sin() + x.cos(),
    "clamp": lambda x, y, b: x.clamp(-1.0, 1.0) + x * 0.1,
    "scalars": lambda x, y, b: 2 - x / 3 + x ** 2,
    "add_broadcast": lambda x, y, b: x + b,
    "sub": lambda x, y, b: x - y,
    "mul": lambda x, y, b: x * y,
    "div": lambda x, y, b: x / (b * b + 1),
    "pow": lambda x, y, b: (x * x + 1) ** (y * 0.5),
    "maximum": lambda x, y, b: nb.maximum(x, y),
    "where": lambda x, y, b: nb.where(y.detach() > 0, x, x * y),
    "softmax": lambda x, y, b: x.softmax(1),
    "log_softmax": lambda x, y, b: F.log_softmax(x, 0),
    "transpose": lambda x, y, b: x.T.reshape(3, 2).T.contiguous(),
    "flatten_view": lambda x, y, b: x.flatten().view(2, 3),
    "permute_unsqueeze": lambda x, y, b: x.unsqueeze(0).permute(0, 2, 1).squeeze(0).t(),
    "expand": lambda x, y, b: x.sum(0, keepdim=True).expand(2, 3) - x,
    "cat": lambda x, y, b: nb.cat([x, y], 0)[1:3],
    "stack": lambda x, y, b: nb.stack([x, y, x]).mean(0),
    "index": lambda x, y, b: x[[1, 0]] + x[:, [2, 0, 1]],
    "mask": lambda x, y, b: x * 1 + nb.where(x.detach() > 0, x, nb.zeros(2, 3, dtype=nb.float64)),
    "slices": lambda x, y, b: nb.cat([x[:, ::2], x[:, 1:2]], 1),
    "mean_dim": lambda x, y, b: x - x.mean(1, keepdim=True),
    "max_dim": lambda x, y, b: x - x.max(1, keepdim=True).values * 0.5,
    "min_all": lambda x, y, b: x + x.min(),
    "var_std": lambda x, y, b: x * x.var(1, keepdim=True) + x.std(0),
    "norm": lambda x, y, b: x / (x.norm() + 1),
    "matmul": lambda x, y, b: x @ y.T @ x * 0.3,
    "linear": lambda x, y, b: F.linear(x, y.T @ y * 0.3, b),
    "setitem": lambda x, y, b: put(x, b),
    "mse": lambda x, y, b: x + F.mse_loss(x, y),
    "cross_entropy": lambda x, y, b: x * F.cross_entropy(x, nb.tensor([2, 0])),
}


def put(x, b):
    z = x * 1
    z[0] = b * x[1]
    return z


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=4), seed=st.integers(0, 2 ** 16))
def test_random_expression_gradients(steps, seed):
    rng = np.random.default_rng(seed)
    inputs = [nb.tensor(rng.uniform(-1.5, 1.5, shape), requires_grad=True) for shape in ((2, 3), (2, 3), (3,))]

    def expression(x, y, b):
        for name in steps:
            x = STEPS[name](x, y, b)
        return x

    assert gradcheck(expression, inputs, atol=1e-5, rtol=1e-3), steps
