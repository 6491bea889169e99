"""pytest-benchmark micro-benchmarks that are also real tests.

Each benchmark asserts on its result, so ``pytest tests/benchmarks --benchmark-disable``
(each target runs once, untimed) is a correctness check for CI, and
``pytest tests/benchmarks --benchmark-only`` produces the timings. The torch cases
skip when torch is not importable. The asv suites in ``asv_benchmarks/`` are the
tracked, longer-running counterparts.
"""

import importlib

import numpy as np
import pytest

FRAMEWORKS = ["nbgrad", "torch"]
CHAIN_ITERS = 1000


def _fw(name):
    return pytest.importorskip(name) if name == "torch" else importlib.import_module(name)


def _numpy(t):
    return t.detach().numpy().astype(np.float64)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_elementwise_mul_forward(benchmark, framework):
    fw = _fw(framework)
    x = fw.tensor([1.0, 2.0, 3.0, 4.0], dtype=fw.float32, requires_grad=True)
    y = fw.tensor([0.5, -1.0, 2.0, 0.0], dtype=fw.float32, requires_grad=True)
    x * y  # warm-up (kernel compile / cache load)

    z = benchmark(lambda: x * y)

    assert z.dtype == fw.float32
    assert z.requires_grad
    np.testing.assert_array_equal(_numpy(z), [0.5, -2.0, 6.0, 0.0])


def _chain(x):
    y = x
    for _ in range(CHAIN_ITERS):
        y = y * 1.0001 + 0.001
    return y.sum()


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_chain_backward(benchmark, framework):
    """backward() alone through a 2000-node chain; a fresh graph per round (pedantic setup)."""
    fw = _fw(framework)
    _chain(fw.ones(4, requires_grad=True)).backward()  # warm-up

    def setup():
        x = fw.ones(4, dtype=fw.float32, requires_grad=True)
        return (x, _chain(x)), {}

    def run(x, out):
        out.backward()
        return x.grad

    grad = benchmark.pedantic(run, setup=setup, rounds=20, iterations=1, warmup_rounds=1)

    # d out / d x_i = 1.0001 ** 1000 for every element
    np.testing.assert_allclose(_numpy(grad), np.full(4, 1.0001**CHAIN_ITERS), rtol=1e-4)


def _mlp_reference(x, w1, b1, w2, b2):
    """float64 numpy forward and hand-written backward of the MLP loss."""
    pre = x @ w1 + b1
    h = np.maximum(pre, 0.0)
    o = h @ w2 + b2
    loss = (o**2).mean()
    d_o = 2.0 * o / o.size
    d_pre = (d_o @ w2.T) * (pre > 0)
    return loss, (x.T @ d_pre, d_pre.sum(0), h.T @ d_o, d_o.sum(0))


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_mlp_step_small(benchmark, framework):
    """Forward + backward of relu MLP, batch 32, hidden 32, 10 outputs, float32."""
    fw = _fw(framework)
    rng = np.random.default_rng(0)
    batch, hidden, n_out = 32, 32, 10
    arrays = [
        rng.standard_normal((batch, hidden)),
        rng.standard_normal((hidden, hidden)) * hidden**-0.5,
        rng.standard_normal(hidden) * 0.1,
        rng.standard_normal((hidden, n_out)) * hidden**-0.5,
        rng.standard_normal(n_out) * 0.1,
    ]
    arrays = [a.astype(np.float32) for a in arrays]
    x = fw.tensor(arrays[0], dtype=fw.float32)
    weights = [fw.tensor(a, dtype=fw.float32, requires_grad=True) for a in arrays[1:]]
    w1, b1, w2, b2 = weights

    def step():
        for w in weights:
            w.grad = None
        loss = ((fw.relu(x @ w1 + b1) @ w2 + b2) ** 2).mean()
        loss.backward()
        return loss

    step()  # warm-up
    loss = benchmark(step)

    ref_loss, ref_grads = _mlp_reference(*[a.astype(np.float64) for a in arrays])
    assert loss.dtype == fw.float32
    np.testing.assert_allclose(float(loss.item()), ref_loss, rtol=1e-4)
    for w, ref in zip(weights, ref_grads):
        assert w.grad.shape == w.shape
        np.testing.assert_allclose(_numpy(w.grad), ref, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_mlp_train_step(benchmark, framework):
    from asv_benchmarks.bench_mlp import build_train_step

    fw = _fw(framework)
    step = build_train_step(fw, "small")
    first = step().item()
    benchmark(step)
    assert step().item() < first  # the steps learn the fixed batch
