"""Compiled custom ops (register_op): user kernels running inside the fused executor."""
import math

import numpy as np
import pytest
from numba import njit

import nbgrad as torch
from nbgrad.autograd import engine, gradcheck, register_op


@njit(cache=True)
def swish_fwd(x, out):
    for i in range(out.size):
        out[i] = x[i] / (1.0 + math.exp(-x[i]))


@njit(cache=True)
def swish_bwd(g, x, gx):
    for i in range(g.size):
        s = 1.0 / (1.0 + math.exp(-x[i]))
        gx[i] += g[i] * (s + x[i] * s * (1.0 - s))


@njit(cache=True)
def smooth_l1_fwd(a, b, beta, out):
    for i in range(out.size):
        d = abs(a[i] - b[i])
        out[i] = 0.5 * d * d / beta if d < beta else d - 0.5 * beta


@njit(cache=True)
def smooth_l1_bwd(g, a, b, beta, ga):
    """d/da; the gradient for b is the same kernel with a and b swapped, negated below."""
    for i in range(g.size):
        d = a[i] - b[i]
        ga[i] += g[i] * (d / beta if abs(d) < beta else (1.0 if d > 0 else -1.0))


@njit(cache=True)
def smooth_l1_bwd_b(g, a, b, beta, gb):
    for i in range(g.size):
        d = a[i] - b[i]
        gb[i] -= g[i] * (d / beta if abs(d) < beta else (1.0 if d > 0 else -1.0))


@njit(cache=True)
def row_sq_fwd(x, out):
    n = x.size // out.size
    for r in range(out.size):
        total = 0.0
        for j in range(n):
            total += x[r * n + j] ** 2
        out[r] = total


@njit(cache=True)
def row_sq_bwd(g, x, gx):
    n = x.size // g.size
    for r in range(g.size):
        for j in range(n):
            gx[r * n + j] += 2.0 * g[r] * x[r * n + j]


@njit(cache=True)
def bad_fwd(x, out):
    for i in range(out.size):
        out[i] = x[i].no_such_attribute


def swish_reference(x):
    return x / (1 + np.exp(-x))


swish = register_op("swish", swish_fwd, swish_bwd)
smooth_l1 = register_op("smooth_l1", smooth_l1_fwd, (smooth_l1_bwd, smooth_l1_bwd_b), inputs=("a", "b"),
                        floats=("beta",), defaults={"beta": 1.0})
row_sq = register_op("row_sq", row_sq_fwd, (row_sq_bwd,), shape=lambda s: s[:-1], grad_fn="RowSqBackward")


def test_a_registered_op_computes_and_names_its_node():
    x = torch.tensor([-2.0, 0.0, 1.5], requires_grad=True)
    y = swish(x)
    np.testing.assert_allclose(y.detach().numpy(), swish_reference(np.array([-2.0, 0.0, 1.5])), rtol=1e-6)
    assert type(y.grad_fn).__name__ == "SwishBackward0" and y.dtype == torch.float32
    assert type(row_sq(x.view(1, 3)).grad_fn).__name__ == "RowSqBackward"


@pytest.mark.parametrize("op, shapes, params", [
    (swish, [(3, 4)], {}),
    (swish, [()], {}),
    (smooth_l1, [(2, 3), (2, 3)], {"beta": 0.7}),
    (smooth_l1, [(2, 3), (3,)], {}),
    (smooth_l1, [(4, 1), (1, 5)], {"beta": 2.0}),
    (row_sq, [(3, 5)], {}),
])
def test_registered_ops_pass_gradcheck(op, shapes, params):
    rng = np.random.default_rng(1)
    inputs = [torch.tensor(rng.uniform(-2, 2, s), dtype=torch.float64, requires_grad=True) for s in shapes]
    assert gradcheck(lambda *t: op(*t, **params), inputs)


def test_a_registered_op_runs_inside_the_one_executor_call():
    x = torch.full((4,), 0.5, dtype=torch.float64, requires_grad=True)
    y = x
    for _ in range(500):  # 1,000 nodes: 500 swish, 500 add
        y = swish(y) + 0.01
    calls = engine.executor_calls
    y.sum().backward()
    assert engine.executor_calls == calls + 1
    # the same chain in NumPy, differentiated by hand
    value, grad = np.full(4, 0.5), np.ones(4)
    values = []
    for _ in range(500):
        values.append(value)
        value = swish_reference(value) + 0.01
    for v in reversed(values):
        s = 1 / (1 + np.exp(-v))
        grad = grad * (s + v * s * (1 - s))
    np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-9)


def test_a_registered_op_in_float32_big_enough_for_threads():
    rng = np.random.default_rng(2)
    data = rng.standard_normal(1 << 16).astype(np.float32)
    x = torch.tensor(data, requires_grad=True)
    swish(x).sum().backward()
    s = 1 / (1 + np.exp(-data.astype(np.float64)))
    np.testing.assert_allclose(x.grad.numpy(), s + data * s * (1 - s), rtol=1e-5, atol=1e-6)


def test_a_registered_op_with_integer_and_scalar_arguments():
    a = torch.tensor([0, 3])  # int64: computed in the default float dtype
    out = smooth_l1(a, 1.0)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), [0.5, 1.5])


def test_register_op_errors_are_clear():
    with pytest.raises(ValueError, match="one backward kernel per input"):
        register_op("two", smooth_l1_fwd, (smooth_l1_bwd,), inputs=("a", "b"), floats=("beta",))
    with pytest.raises(ValueError, match="must be names from"):
        register_op("unknown_param", smooth_l1_fwd, (smooth_l1_bwd, None), inputs=("a", "b"))
    with pytest.raises(TypeError, match="must be a Numba @njit function"):
        register_op("plain", swish_fwd.py_func, swish_bwd)
    with pytest.raises(ValueError, match="one of nbgrad's own ops"):
        register_op("exp", swish_fwd, swish_bwd)

    @njit
    def local_fwd(x, out):
        out[0] = x[0]

    with pytest.raises(ValueError, match="top level of a module"):
        register_op("local", local_fwd, (None,))
    with pytest.raises(TypeError, match=r"swish\(\) takes 1 tensor arguments"):
        swish(torch.ones(2), torch.ones(2))
    with pytest.raises(TypeError, match="unexpected keyword"):
        smooth_l1(torch.ones(2), torch.ones(2), alpha=1.0)
    with pytest.raises(RuntimeError, match="must match the size"):
        smooth_l1(torch.ones(2), torch.ones(3))
    bad = register_op("bad", bad_fwd, (None,))
    with pytest.raises(TypeError, match="custom op 'bad': its kernels did not compile for float32"):
        bad(torch.ones(2))


@njit(cache=True)
def scaled_fwd(x, fresh, out):
    for i in range(out.size):
        out[i] = x[i] * fresh


@njit(cache=True)
def scaled_bwd(g, fresh, gx):
    for i in range(g.size):
        gx[i] += g[i] * fresh


def test_a_parameter_may_be_named_like_the_executors_own_words():
    # "fresh" tells nbgrad's own kernels that a gradient buffer holds stale bytes; a registered
    # op's parameter of that name is the op's, and its kernel adds into a zeroed buffer
    scaled = register_op("scaled_by_fresh", scaled_fwd, scaled_bwd, floats=("fresh",), defaults={"fresh": 2.0})
    x = torch.ones(5, requires_grad=True)
    for _ in range(2):  # the second backward reuses the first one's arena
        x.grad = None
        scaled(x * 1.0, fresh=3.0).sum().backward()
        assert x.grad.tolist() == [3.0] * 5
    (g,) = torch.autograd.grad(scaled(x * 1.0, fresh=3.0).sum(), [x])
    assert g.tolist() == [3.0] * 5
