"""Edge cases: memory safety, threads, reentrancy, numerics and PyTorch's behaviour at the corners."""
import threading

import numpy as np
import pytest

import nbgrad as nb


def test_more_than_eight_dimensions_is_a_clear_error_not_a_crash():
    x = nb.ones(*([1] * 8 + [2]), requires_grad=True)
    with pytest.raises(RuntimeError, match="at most 8 dimensions"):
        x.transpose(0, 8)
    with pytest.raises(RuntimeError, match="at most 8 dimensions"):
        nb.ones(*([2] * 9), requires_grad=True).sum(dim=0)
    with pytest.raises(RuntimeError, match="at most 8 dimensions"):
        nb.ones(*([1] * 9)) + nb.ones(2)


def test_backward_called_from_a_hook_does_not_disturb_the_outer_one():
    x = nb.ones(4, requires_grad=True)
    y = x * 2
    inner = (y * 4).sum()
    c = y * 3
    for _ in range(3):
        c = c * 1.0
    c.register_hook(lambda g: inner.backward(retain_graph=True))
    c.sum().backward()
    assert x.grad.tolist() == [14.0] * 4  # 2 * 4 from the inner graph, 2 * 3 from the outer


def test_concurrent_backward_from_threads_loses_nothing():
    w = nb.ones(50_000, requires_grad=True)

    def worker():
        for _ in range(20):
            (w * 2.0).sum().backward()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert w.grad.numpy().min() == w.grad.numpy().max() == 160.0


def test_replacing_data_with_another_shape_then_backward_is_refused():
    x = nb.ones(8, requires_grad=True)
    y = x * 2
    y.data = nb.zeros(1)
    with pytest.raises(RuntimeError, match=r"invalid gradient at index 0 - got \[1\] but expected shape "
                                           r"compatible with \[8\]"):
        y.backward()


def test_a_leaf_given_data_of_another_dtype_gets_a_grad_buffer_of_that_dtype():
    w = nb.ones(1000, requires_grad=True)
    w.data = nb.ones(1000, dtype=nb.float64)  # a float32 .grad buffer here would be overrun by backward
    (w * 3).sum().backward()
    assert w.grad.dtype == nb.float64 and w.grad.tolist() == [3.0] * 1000


def test_grad_reset_never_recycles_memory_the_user_still_sees():
    x = nb.zeros(4, requires_grad=True)
    g = nb.ones(2, 2)
    x.grad = g.reshape(4)  # a view of g's storage
    x.grad = None
    (x * 3).sum().backward()
    assert g.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert x.grad.tolist() == [3.0] * 4
    kept = x.grad.numpy()
    x.grad = None
    (x * 5).sum().backward()
    assert kept.tolist() == [3.0] * 4 and x.grad.tolist() == [5.0] * 4


def test_division_by_zero_gives_inf_and_nan_as_pytorch():
    assert (nb.tensor([1.0]) / 0.0).tolist() == [np.inf]
    out = nb.tensor([1.0, 0.0]) / nb.tensor([0.0, 0.0])
    assert out.tolist()[0] == np.inf and np.isnan(out.tolist()[1])
    assert (1 / nb.tensor([0.0])).tolist() == [np.inf]
    x = nb.tensor([0.0, 1.0], requires_grad=True)
    nb.log(x).sum().backward()
    assert x.grad.tolist() == [np.inf, 1.0]


def test_float64_data_is_never_rounded_through_float32():
    assert nb.tensor(0.1, dtype=nb.float64).item() == 0.1
    assert nb.tensor([1e100], dtype=nb.float64).tolist() == [1e100]
    x = nb.from_numpy(np.array([0.1, 0.10000000001]))
    assert (x == 0.1).tolist() == [True, False]
    assert (x > 0.1).tolist() == [False, True]


def test_reductions_at_the_corners():
    assert all(np.isnan(nb.ones(0, 3).mean(0).tolist()))
    assert nb.ones(0, 3).sum(0).tolist() == [0.0, 0.0, 0.0]
    assert nb.tensor(2.0).sum(0).item() == 2.0 and nb.tensor(2.0).mean(-1).item() == 2.0
    with pytest.raises(RuntimeError, match="appears multiple times"):
        nb.ones(2, 2).sum((0, 0))


def test_detach_in_place_keeps_a_leafs_grad():
    x = nb.ones(2, requires_grad=True)
    (x * 2).sum().backward()
    x.detach_()
    assert not x.requires_grad and x.grad.tolist() == [2.0, 2.0]


def test_assigning_grad_to_a_non_leaf_does_not_make_backward_write_it():
    x = nb.ones(2, requires_grad=True)
    y = x * 2
    y.grad = nb.ones(2) * 10
    (y * 3).sum().backward()
    assert y.grad.tolist() == [10.0, 10.0]


def test_a_hook_may_not_change_the_gradients_dtype():
    x = nb.ones(2, requires_grad=True)
    y = x * 2
    y.register_hook(lambda g: g.double())
    with pytest.raises(RuntimeError, match="changed the type"):
        y.sum().backward()


def test_integer_corner_cases_raise_like_pytorch():
    with pytest.raises(RuntimeError, match="negative integer powers"):
        nb.tensor([2]) ** -1
    with pytest.raises(RuntimeError, match="negative integer powers"):
        2 ** nb.tensor([-1])
    with pytest.raises(RuntimeError, match="bool tensor"):
        -nb.tensor([True])
    with pytest.raises(RuntimeError, match="overflow"):
        nb.tensor([1]) + 2 ** 70


@pytest.mark.parametrize("values, text", [
    ([1e8, 1.0], "tensor([1.0000e+08, 1.0000e+00])"),
    ([float("nan"), 1.0], "tensor([nan, 1.])"),
    ([float("inf"), -float("inf")], "tensor([inf, -inf])"),
    ([-1.5, 2.0], "tensor([-1.5000,  2.0000])"),
    ([True, False], "tensor([ True, False])"),
])
def test_repr_matches_pytorch(values, text):
    assert repr(nb.tensor(values)) == text


def test_repr_puts_dtype_before_grad_fn():
    x = nb.ones(2, requires_grad=True).double()
    assert repr(x) == "tensor([1., 1.], dtype=nbgrad.float64, grad_fn=<ToCopyBackward0>)"
