"""Autograd details PyTorch scripts rely on: what a Function's backward may return, ``grad_fn._saved_*``
and saved-tensor hooks. Each behaviour is checked with exact values, and against PyTorch when installed."""
import numpy as np
import pytest

import nbgrad


def leaf(T, values, dtype=None):
    return T.tensor(values, dtype=dtype or T.float64, requires_grad=True)


def numpy_of(t):
    return t.detach().numpy()


# --- Function.backward: how many gradients --------------------------------------------


def _scale_function(T, returned):
    """A Function of one tensor whose backward returns ``returned(grad)``."""

    class Scale(T.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def backward(ctx, g):
            return returned(g * 3)

    return Scale


def _extra_nones(T):
    x = leaf(T, [1.0, 2.0])
    _scale_function(T, lambda g: (g, None, None)).apply(x).sum().backward()
    return numpy_of(x.grad)


def test_backward_may_return_extra_trailing_nones():
    np.testing.assert_array_equal(_extra_nones(nbgrad), [3.0, 3.0])


def test_backward_extra_trailing_nones_as_pytorch():
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(_extra_nones(nbgrad), _extra_nones(torch))


def _wrong_count_message(T, returned):
    x = leaf(T, [1.0, 2.0])
    y = _scale_function(T, returned).apply(x).sum()
    with pytest.raises(RuntimeError) as info:
        y.backward()
    return str(info.value)


@pytest.mark.parametrize("returned, expected, got", [
    (lambda g: (g, g), 1, 2),       # a second gradient that is not None
    (lambda g: (g, None, g), 1, 3),  # only trailing Nones are dropped
    (lambda g: (None, g), 1, 2),
    (lambda g: (), 1, 0),
])
def test_backward_with_other_extra_gradients_is_refused(returned, expected, got):
    message = _wrong_count_message(nbgrad, returned)
    assert message == (f"function ScaleBackward returned an incorrect number of gradients "
                       f"(expected {expected}, got {got})")


@pytest.mark.parametrize("returned", [lambda g: (g, g), lambda g: (g, None, g), lambda g: ()])
def test_backward_wrong_count_message_as_pytorch(returned):
    torch = pytest.importorskip("torch")
    assert _wrong_count_message(nbgrad, returned) == _wrong_count_message(torch, returned)


class _TwoInputs(nbgrad.autograd.Function):
    @staticmethod
    def forward(ctx, a, k, b):
        ctx.save_for_backward(a, b)
        ctx.k = k
        return a * b * k

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return g * b * ctx.k, None, g * a * ctx.k, None


def test_extra_none_after_a_function_of_several_arguments():
    a, b = leaf(nbgrad, [1.0, 2.0]), leaf(nbgrad, [3.0, 5.0])
    _TwoInputs.apply(a, 2.0, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [6.0, 10.0])
    np.testing.assert_array_equal(b.grad.numpy(), [2.0, 4.0])


def test_create_graph_accepts_trailing_nones_and_refuses_extra_gradients():
    x = leaf(nbgrad, [1.0, 2.0])
    (g,) = nbgrad.autograd.grad(_scale_function(nbgrad, lambda g: (g, None)).apply(x).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.numpy(), [3.0, 3.0])
    y = _scale_function(nbgrad, lambda g: (g, g)).apply(x).sum()
    with pytest.raises(RuntimeError, match=r"returned an incorrect number of gradients \(expected 1, got 2\)"):
        nbgrad.autograd.grad(y, x, create_graph=True)


def _create_graph_through_second_argument(T):
    class Product(T.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            return g * b, g * a, None

    a = T.tensor([1.0, 2.0], dtype=T.float64)  # needs no gradient: b's is the Function's second
    b = leaf(T, [3.0, 4.0])
    (gb,) = T.autograd.grad((Product.apply(a, b) * b).sum(), b, create_graph=True)
    (ggb,) = T.autograd.grad(gb.sum(), b)
    return numpy_of(gb), numpy_of(ggb)


def test_create_graph_through_a_function_whose_first_tensor_needs_no_grad():
    gb, ggb = _create_graph_through_second_argument(nbgrad)
    np.testing.assert_array_equal(gb, [6.0, 16.0])  # d(a b^2)/db = 2 a b
    np.testing.assert_array_equal(ggb, [2.0, 4.0])


def test_create_graph_through_a_function_as_pytorch():
    torch = pytest.importorskip("torch")
    for ours, theirs in zip(_create_graph_through_second_argument(nbgrad),
                            _create_graph_through_second_argument(torch)):
        np.testing.assert_array_equal(ours, theirs)
