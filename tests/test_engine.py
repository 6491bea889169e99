"""The compiled engine: one executor call per graph, deep graphs, threads, memory."""
import gc
import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import nbgrad
from nbgrad.autograd import engine, tape


def test_one_executor_call_per_backward_whatever_the_graph_size():
    x = nbgrad.ones(4, requires_grad=True)
    for n in (1, 10, 1000):
        y = x
        for _ in range(n):
            y = y * 1.0001 + 0.001
        before = engine.executor_calls
        y.sum().backward()
        assert engine.executor_calls - before == 1


def test_hooks_split_the_walk_into_compiled_segments():
    x = nbgrad.ones(2, requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: None)
    z = (y * 3).exp().sum()
    before = engine.executor_calls
    z.backward()
    assert engine.executor_calls - before == 2


def test_a_100000_op_chain():
    x = nbgrad.tensor([1.0], dtype=nbgrad.float64, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0 + 0.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]
    del y
    gc.collect()


def test_rows_are_reused_after_the_graph_dies():
    x = nbgrad.ones(2, requires_grad=True)
    for _ in range(5):
        loss = (x * 2).exp().sum()
        loss.backward()
    free_before = len(tape.free_rows)
    for _ in range(100):
        loss = (x * 2).exp().sum()
        loss.backward()
    del loss
    assert len(tape.free_rows) >= free_before


def test_saved_buffers_are_released_after_backward():
    x = nbgrad.ones(3, requires_grad=True)
    e = x.exp()
    loss = e.sum()
    row = e.grad_fn._row
    assert tape.saved[row] is not None
    loss.backward()
    assert tape.saved[row] is None
    loss2 = (x.exp()).sum()
    loss2.backward(retain_graph=True)
    assert tape.saved[loss2.grad_fn.next_functions[0][0]._row] is not None


def test_shared_subgraph_gets_all_its_gradient():
    x = nbgrad.tensor([2.0], requires_grad=True)
    y = x * x          # used twice below
    z = y * 3 + y.exp() + y
    z.sum().backward()
    expected = (3 + np.exp(4.0) + 1) * 2 * 2.0
    np.testing.assert_allclose(x.grad.numpy(), [expected], rtol=1e-6)


def test_backward_from_a_leaf_and_from_an_intermediate():
    x = nbgrad.ones(2, requires_grad=True)
    x.backward(nbgrad.tensor([1.0, 2.0]))
    assert x.grad.tolist() == [1.0, 2.0]
    y = x * 3
    z = y * 2  # noqa: F841 - a consumer that backward from y must not reach
    y.backward(nbgrad.ones(2))
    assert x.grad.tolist() == [4.0, 5.0]


def test_threads_training_at_once_do_not_disturb_each_other():
    errors = []

    def train(seed):
        try:
            nbgrad.manual_seed(seed)
            w = nbgrad.tensor(np.full((8, 8), 0.1), requires_grad=True)
            data = nbgrad.tensor(np.random.default_rng(seed).normal(size=(16, 8)))
            for _ in range(50):
                loss = ((data @ w).tanh() ** 2).mean()
                w.grad = None
                loss.backward()
                expected_shape = (8, 8)
                assert tuple(w.grad.shape) == expected_shape
                with nbgrad.no_grad():
                    assert not (w * 2).requires_grad
        except Exception as error:  # noqa: BLE001 - reported to the main thread
            errors.append(error)

    threads = [threading.Thread(target=train, args=(s,)) for s in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_thread_results_match_a_single_thread_run():
    def loss_grad(seed):
        rng = np.random.default_rng(seed)
        w = nbgrad.tensor(rng.normal(size=(6, 6)), requires_grad=True)
        x = nbgrad.tensor(rng.normal(size=(5, 6)))
        for _ in range(20):
            w.grad = None
            ((x @ w).sigmoid() * 2).sum().backward()
        return w.grad.numpy().copy()

    alone = [loss_grad(s) for s in range(2)]
    together = [None, None]
    threads = [threading.Thread(target=lambda s=s: together.__setitem__(s, loss_grad(s))) for s in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)


shapes = st.lists(st.integers(1, 3), min_size=0, max_size=4).map(tuple)


@st.composite
def broadcastable_pair(draw):
    out = draw(shapes)
    def shrink(shape):
        keep = draw(st.integers(0, len(shape)))
        tail = shape[len(shape) - keep:]
        return tuple(1 if draw(st.booleans()) else d for d in tail)
    return shrink(out), shrink(out)


@settings(max_examples=60, deadline=None)
@given(broadcastable_pair(), st.sampled_from(["add", "sub", "mul", "div"]))
def test_broadcast_gradients_sum_back_to_each_input(pair, op):
    shape_a, shape_b = pair
    rng = np.random.default_rng(0)
    va = rng.uniform(0.5, 2, shape_a)
    vb = rng.uniform(0.5, 2, shape_b)
    a = nbgrad.tensor(va, dtype=nbgrad.float64, requires_grad=True)
    b = nbgrad.tensor(vb, dtype=nbgrad.float64, requires_grad=True)
    fn = {"add": lambda p, q: p + q, "sub": lambda p, q: p - q, "mul": lambda p, q: p * q,
          "div": lambda p, q: p / q}[op]
    out = fn(a, b)
    out_shape = np.broadcast_shapes(shape_a, shape_b)
    assert tuple(out.shape) == out_shape
    weights = rng.uniform(-1, 1, out_shape)
    (out * nbgrad.tensor(weights, dtype=nbgrad.float64)).sum().backward()
    # Reference: the derivative with respect to each broadcast element, summed back to the input's shape.
    da = {"add": np.ones(out_shape), "sub": np.ones(out_shape), "mul": np.broadcast_to(vb, out_shape),
          "div": np.broadcast_to(1 / vb, out_shape)}[op] * weights
    db = {"add": np.ones(out_shape), "sub": -np.ones(out_shape), "mul": np.broadcast_to(va, out_shape),
          "div": np.broadcast_to(-va / vb ** 2, out_shape)}[op] * weights

    def sum_to(g, shape):
        g = g.sum(axis=tuple(range(g.ndim - len(shape)))) if g.ndim > len(shape) else g
        return g.sum(axis=tuple(i for i, n in enumerate(shape) if n == 1), keepdims=True).reshape(shape)

    np.testing.assert_allclose(a.grad.numpy(), sum_to(da, shape_a), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b.grad.numpy(), sum_to(db, shape_b), rtol=1e-10, atol=1e-12)


def _mixed_graph(x, w, b, m):
    """Gradients of a graph that reaches its rows by every route: products that overwrite
    (linear, a batched matmul summed into a shared operand), relu, a broadcast add, sub and
    neg, a tensor used twice, an intermediate that keeps its gradient."""
    h = nbgrad.nn.functional.linear(x, w, b).relu()
    h.retain_grad()
    y = (h @ m - (h + b[:3]) * x[:, :3] - (-h)).tanh()
    batched = (y.reshape(2, 2, 3) @ m).sum()
    loss = (y * y).mean() + batched + h.sum()
    loss.backward()
    return [t.grad.numpy().copy() for t in (x, w, b, m, h)]


def test_stale_gradients_never_leak_into_the_next_backward():
    # Nothing is zeroed up front: arena slots and reused .grad buffers hold the last backward's
    # bytes. A backward that made NaN everywhere must leave no trace in the next one.
    rng = np.random.default_rng(0)
    values = [rng.normal(size=s) for s in ((4, 3), (3, 3), (3,), (3, 3))]
    leaves = [nbgrad.tensor(v, dtype=nbgrad.float64, requires_grad=True) for v in values]
    first = _mixed_graph(*leaves)
    for leaf in leaves:  # the buffers are kept (no one else holds them), not zeroed
        leaf.grad = nbgrad.full(leaf.shape, float("nan"), dtype=nbgrad.float64)
        leaf.grad = None
    poisoned = [nbgrad.tensor(np.full_like(v, np.nan), requires_grad=True) for v in values]
    assert all(np.isnan(g).any() for g in _mixed_graph(*poisoned)[:4])
    again = _mixed_graph(*leaves)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert nbgrad.autograd.gradcheck(lambda *t: _mixed_loss(*t), leaves)


def _mixed_loss(x, w, b, m):
    h = nbgrad.nn.functional.linear(x, w, b).relu()
    y = (h @ m - (h + b[:3]) * x[:, :3] - (-h)).tanh()
    return (y * y).mean() + (y.reshape(2, 2, 3) @ m).sum() + h.sum()


def test_a_second_backward_adds_to_the_first():
    x = nbgrad.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    w = nbgrad.tensor([[0.5, 1.0], [-1.0, 2.0]], requires_grad=True)
    for _ in range(2):
        (nbgrad.nn.functional.linear(x, w).relu() - x).sum().backward()
    # relu's mask [[0, 0], [1, 1]] of x @ w^T = [[-1.5, -5], [5.5, 5]]
    assert w.grad.tolist() == [[6.0, 8.0], [6.0, 8.0]]
    assert x.grad.tolist() == [[-2.0, -2.0], [-3.0, 4.0]]


def test_parallel_thresholds_follow_the_cost_per_element():
    from nbgrad.kernels.jit import ELEMENTWISE_LIGHT_THREADS_FROM as LIGHT
    from nbgrad.kernels.jit import PARALLEL_MIN, PARALLEL_MIN_LIGHT

    from nbgrad import ops

    assert ops.EXP.parallel_from == (PARALLEL_MIN, LIGHT)  # exp's backward is a product
    assert ops.SIN.parallel_from == (PARALLEL_MIN, PARALLEL_MIN)
    assert ops.RELU.parallel_from == ops.MUL.parallel_from == (LIGHT, LIGHT)
    assert ops.SUM.parallel_from == (PARALLEL_MIN_LIGHT, PARALLEL_MIN_LIGHT)  # not elementwise
    x = nbgrad.randn(PARALLEL_MIN_LIGHT + 5, dtype=nbgrad.float64, requires_grad=True)
    ((x * 3).relu().sin() * x).sum().backward()  # every kernel on threads
    v = x.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), np.where(v > 0, 3 * np.cos(3 * v) * v + np.sin(3 * v), 0),
                               rtol=1e-10, atol=1e-15)


def _f64(values, grad=True):
    return nbgrad.tensor(values, dtype=nbgrad.float64, requires_grad=grad)


def test_pass_through_gradients_are_exact_when_slots_are_shared():
    # x * 2 -> + 1 -> view -> + bias: each input has one consumer that passes its gradient through,
    # so the executor gives them one gradient buffer; every retained gradient must still be right.
    x, b = _f64([1.0, -2.0, 3.0, 0.5]), _f64([0.25, 0.5])
    y = x * 2
    a = y + 1
    v = a.view(2, 2)
    out = v + b
    for t in (y, a, v, out):
        t.retain_grad()
    (out * out).sum().backward()
    expected = 2 * (2 * x.detach().numpy() + 1 + np.tile(b.detach().numpy(), 2))
    for t in (out, v, a, y):
        np.testing.assert_array_equal(t.grad.numpy().reshape(-1), expected)
    np.testing.assert_array_equal(x.grad.numpy(), 2 * expected)
    np.testing.assert_array_equal(b.grad.numpy(), expected.reshape(2, 2).sum(0))
    y = x * 2
    a = y + 1
    gy, ga = nbgrad.autograd.grad((a.view(4) ** 2).sum(), [y, a])
    np.testing.assert_array_equal(gy.numpy(), 2 * (2 * x.detach().numpy() + 1))
    np.testing.assert_array_equal(ga.numpy(), gy.numpy())


def test_a_hook_run_before_a_shared_slot_is_read_keeps_its_gradient():
    # a gets its gradient from two consumers; a Python hook runs between them; y shares a's buffer.
    x = _f64([1.0, 2.0])
    y = x * 3
    a = y + 1
    first, second = a * 2, a * 5
    seen = []
    second.register_hook(lambda g: seen.append(g.numpy().copy()))
    (first + second).sum().backward()
    assert seen and np.array_equal(seen[0], [1.0, 1.0])
    np.testing.assert_array_equal(x.grad.numpy(), [21.0, 21.0])


def test_a_hook_that_changes_a_pass_through_gradient_reaches_the_input():
    x = _f64([1.0, 2.0])
    y = x * 3
    a = y + 1
    a.register_hook(lambda g: g * 10)
    y.register_hook(lambda g: g + 1)
    a.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [33.0, 33.0])


def test_an_input_used_twice_by_one_add_gets_both_gradients():
    x = _f64([1.0, 2.0])
    y = x * 1
    (y + y).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    z = x * 1
    w = z.view(2) + z.view(2)
    w.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])
