"""Autograd details PyTorch scripts rely on: what a Function's backward may return, ``grad_fn._saved_*``
and saved-tensor hooks. Each behaviour is checked with exact values, and against PyTorch when installed."""
import numpy as np
import pytest

import nbgrad
from nbgrad.autograd import graph

SECOND_TIME = "Trying to backward through the graph a second time"


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


# --- grad_fn._saved_* -----------------------------------------------------------------


def _inputs(T):
    x = T.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], requires_grad=True)
    y = T.tensor([[2.0, 0.5, -1.0], [0.75, 1.25, 3.0]], requires_grad=True)
    w = T.tensor([[1.0, 0.0, -1.0], [0.5, 2.0, 1.0], [-0.5, 1.0, 0.25], [2.0, -1.0, 0.5]], requires_grad=True)
    b = T.tensor([0.5, -0.5, 1.0, 2.0], requires_grad=True)
    c = T.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # needs no gradient
    return x, y, w, b, c


# name: (how to make it from (T, x, y, w, b, c), the attributes compared with PyTorch)
CASES = {
    "exp": (lambda T, x, y, w, b, c: (x * 1).exp(), ["_saved_result"]),
    "sqrt": (lambda T, x, y, w, b, c: x.abs().sqrt(), ["_saved_result"]),
    "tanh": (lambda T, x, y, w, b, c: x.tanh(), ["_saved_result"]),
    "sigmoid": (lambda T, x, y, w, b, c: x.sigmoid(), ["_saved_result"]),
    "relu": (lambda T, x, y, w, b, c: x.relu(), ["_saved_result"]),
    "log": (lambda T, x, y, w, b, c: x.abs().log(), ["_saved_self"]),
    "abs": (lambda T, x, y, w, b, c: x.abs(), ["_saved_self"]),
    "sin": (lambda T, x, y, w, b, c: x.sin(), ["_saved_self"]),
    "cos": (lambda T, x, y, w, b, c: x.cos(), ["_saved_self"]),
    "clamp": (lambda T, x, y, w, b, c: x.clamp(-0.5, 0.5), ["_saved_self", "_saved_min", "_saved_max"]),
    "clamp_max": (lambda T, x, y, w, b, c: x.clamp(None, 0.5), ["_saved_self", "_saved_min", "_saved_max"]),
    "mul": (lambda T, x, y, w, b, c: x * y, ["_saved_self", "_saved_other"]),
    "mul_no_grad_other": (lambda T, x, y, w, b, c: x * c, ["_saved_self", "_saved_other"]),
    "mul_no_grad_self": (lambda T, x, y, w, b, c: c * x, ["_saved_self", "_saved_other"]),
    "mul_broadcast": (lambda T, x, y, w, b, c: x * b[:3], ["_saved_self", "_saved_other"]),
    "mul_broadcast_column": (lambda T, x, y, w, b, c: x[:, :1] * y, ["_saved_self", "_saved_other"]),
    "mul_scalar": (lambda T, x, y, w, b, c: x * 2.5, ["_saved_self", "_saved_other"]),
    "div": (lambda T, x, y, w, b, c: x / y, ["_saved_self", "_saved_other"]),
    "div_no_grad_other": (lambda T, x, y, w, b, c: x / c, ["_saved_self", "_saved_other"]),
    "div_broadcast": (lambda T, x, y, w, b, c: x / b[:3], ["_saved_self", "_saved_other"]),
    "div_scalar": (lambda T, x, y, w, b, c: x / 4.0, ["_saved_self", "_saved_other"]),
    "pow_scalar": (lambda T, x, y, w, b, c: x ** 2.5, ["_saved_self", "_saved_exponent"]),
    "pow": (lambda T, x, y, w, b, c: x.abs() ** y, ["_saved_self", "_saved_exponent", "_saved_result"]),
    "rpow": (lambda T, x, y, w, b, c: 2.0 ** x, ["_saved_self", "_saved_result"]),
    "maximum": (lambda T, x, y, w, b, c: T.maximum(x, y), ["_saved_self", "_saved_other"]),
    "minimum": (lambda T, x, y, w, b, c: T.minimum(x, c), ["_saved_self", "_saved_other"]),
    "where": (lambda T, x, y, w, b, c: T.where(x > 0, x, y), ["_saved_condition"]),
    "sum": (lambda T, x, y, w, b, c: x.sum(), ["_saved_self_sym_sizes"]),
    "mean": (lambda T, x, y, w, b, c: x.mean(), ["_saved_self_sym_sizes", "_saved_self_sym_numel"]),
    "view": (lambda T, x, y, w, b, c: (x * 1).view(6), ["_saved_self_sym_sizes"]),
    "expand": (lambda T, x, y, w, b, c: x[:, :1].expand(2, 3), ["_saved_self_sym_sizes"]),
    "max_dim": (lambda T, x, y, w, b, c: x.max(1).values, ["_saved_indices", "_saved_self_sym_sizes"]),
    "min_keepdim": (lambda T, x, y, w, b, c: x.min(0, keepdim=True).values, ["_saved_indices",
                                                                              "_saved_self_sym_sizes"]),
    "mm": (lambda T, x, y, w, b, c: x @ w.t(), ["_saved_self", "_saved_mat2"]),
    "mm_no_grad_self": (lambda T, x, y, w, b, c: c @ w.t(), ["_saved_self", "_saved_mat2"]),
    "mv": (lambda T, x, y, w, b, c: w @ x[0], ["_saved_self", "_saved_vec"]),
    "dot": (lambda T, x, y, w, b, c: x[0] @ y[1], ["_saved_self", "_saved_tensor"]),
    "linear": (lambda T, x, y, w, b, c: T.nn.functional.linear(x, w, b), ["_saved_mat1", "_saved_mat2"]),
    "linear_no_grad_input": (lambda T, x, y, w, b, c: T.nn.functional.linear(c, w, b),
                             ["_saved_mat1", "_saved_mat2"]),
    "linear_no_bias": (lambda T, x, y, w, b, c: T.nn.functional.linear(x, w), ["_saved_self", "_saved_mat2"]),
    "softmax": (lambda T, x, y, w, b, c: x.softmax(1), ["_saved_result"]),
    "log_softmax": (lambda T, x, y, w, b, c: x.log_softmax(1), ["_saved_result"]),
    "mse_loss": (lambda T, x, y, w, b, c: T.nn.functional.mse_loss(x, c, reduction="sum"),
                 ["_saved_self", "_saved_target", "_saved_reduction"]),
    "nll_loss": (lambda T, x, y, w, b, c: T.nn.functional.nll_loss(x.log_softmax(1), T.tensor([2, 0])),
                 ["_saved_target", "_saved_weight", "_saved_reduction"]),
    "nll_loss_weight": (lambda T, x, y, w, b, c: T.nn.functional.nll_loss(
        x.log_softmax(1), T.tensor([2, 0]), weight=T.tensor([1.0, 2.0, 0.5]), reduction="none"),
        ["_saved_target", "_saved_weight", "_saved_reduction"]),
    "cross_entropy": (lambda T, x, y, w, b, c: T.nn.functional.cross_entropy(x, T.tensor([1, 2])),
                      ["_saved_target", "_saved_weight", "_saved_reduction"]),
}


def _attributes(T, case):
    make, names = CASES[case]
    out = make(T, *_inputs(T))
    return type(out.grad_fn).__name__, {name: getattr(out.grad_fn, name) for name in names}


@pytest.mark.parametrize("case", list(CASES))
def test_saved_attributes_as_pytorch(case):
    torch = pytest.importorskip("torch")
    ours_name, ours = _attributes(nbgrad, case)
    theirs_name, theirs = _attributes(torch, case)
    assert ours_name == theirs_name
    for name, expected in theirs.items():
        value = ours[name]
        if isinstance(expected, torch.Tensor):
            assert isinstance(value, nbgrad.Tensor), name
            assert tuple(value.shape) == tuple(expected.shape), name
            np.testing.assert_allclose(numpy_of(value), expected.detach().numpy(), rtol=1e-6, err_msg=name)
            assert value.requires_grad == expected.requires_grad, name
            assert (type(value.grad_fn).__name__ if value.grad_fn else None) == \
                (type(expected.grad_fn).__name__ if expected.grad_fn else None), name
        else:
            assert value == expected, name


def test_saved_inputs_are_the_tensors_themselves():
    x, y, w, b, c = _inputs(nbgrad)
    h = x * 1.5
    z = h * y
    assert z.grad_fn._saved_other is y  # a leaf: the very tensor
    saved = z.grad_fn._saved_self  # a non-leaf: over the same memory, with the same grad_fn
    assert saved.grad_fn is h.grad_fn and saved.requires_grad
    np.testing.assert_array_equal(numpy_of(saved), numpy_of(h))
    assert nbgrad.nn.functional.linear(x, w, b).grad_fn._saved_mat1 is x


def test_saved_inputs_identity_as_pytorch():
    torch = pytest.importorskip("torch")
    for T in (nbgrad, torch):
        x, y, *_ = _inputs(T)
        h = x * 1.5
        z = h * y
        assert z.grad_fn._saved_other is y
        assert z.grad_fn._saved_self.grad_fn is h.grad_fn
        e = h.exp()
        assert e.grad_fn._saved_result is not e and e.grad_fn._saved_result.grad_fn is e.grad_fn


def test_saved_values_exactly():
    x, y, w, b, c = _inputs(nbgrad)
    e = x.exp()
    result = e.grad_fn._saved_result
    np.testing.assert_array_equal(result.numpy() if not result.requires_grad else result.detach().numpy(),
                                  e.detach().numpy())
    assert result.grad_fn is e.grad_fn
    m = x * 2.5
    assert m.grad_fn._saved_self is None
    other = m.grad_fn._saved_other
    assert other.shape == () and other.dtype == nbgrad.float64 and other.item() == 2.5 and not other.requires_grad
    p = x ** 3
    assert p.grad_fn._saved_exponent == 3.0 and p.grad_fn._saved_self is x
    mm = x @ w.t()
    np.testing.assert_array_equal(mm.grad_fn._saved_mat2.detach().numpy(), w.detach().numpy().T)
    assert type(mm.grad_fn._saved_mat2.grad_fn).__name__ == "TBackward0"
    addmm = nbgrad.nn.functional.linear(x, w, b).grad_fn
    np.testing.assert_array_equal(addmm._saved_mat2.detach().numpy(), w.detach().numpy().T)
    broadcast = (x * b[:3]).grad_fn._saved_other
    np.testing.assert_array_equal(broadcast.detach().numpy(), [0.5, -0.5, 1.0])
    mean = x.mean().grad_fn
    assert mean._saved_self_sym_sizes == (2, 3) and mean._saved_self_sym_numel == 6
    clamp = x.clamp(min=0.0).grad_fn
    assert clamp._saved_min == 0.0 and clamp._saved_max is None
    assert (x * c).grad_fn._saved_self is None  # PyTorch saves x only for c's gradient, which c does not need
    target = nbgrad.tensor([2, 0])
    nll = nbgrad.nn.functional.nll_loss(x.log_softmax(1), target).grad_fn
    np.testing.assert_array_equal(nll._saved_target.numpy(), [2, 0])
    assert nll._saved_weight is None and nll._saved_reduction == 1


def _freed(T):
    """What reading saved values gives after a backward freed the graph (an exception's words)."""
    x, y, *_ = _inputs(T)
    outcomes = {}
    z, e, m, s = x * y, x.exp(), x * 2.5, x.mean()
    (z.sum() + e.sum() + m.sum() + s).backward()
    for label, node, name in (("x * y", z.grad_fn, "_saved_self"), ("x * y", z.grad_fn, "_saved_other"),
                              ("exp", e.grad_fn, "_saved_result"), ("x * 2.5", m.grad_fn, "_saved_other"),
                              ("x * 2.5", m.grad_fn, "_saved_self"), ("mean", s.grad_fn, "_saved_self_sym_sizes")):
        try:
            value = getattr(node, name)
            outcomes[label, name] = value if value is None or isinstance(value, tuple) else "tensor"
        except RuntimeError as error:
            outcomes[label, name] = str(error)
    return outcomes


def test_saved_tensors_are_freed_by_a_backward():
    outcomes = _freed(nbgrad)
    freed = [key for key, value in outcomes.items() if isinstance(value, str) and value.startswith(SECOND_TIME)]
    assert sorted(freed) == [("exp", "_saved_result"), ("x * 2.5", "_saved_other"), ("x * y", "_saved_other"),
                             ("x * y", "_saved_self")]
    assert outcomes["x * y", "_saved_self"].endswith(
        "Specify retain_graph=True if you need to backward through the graph a second time or if you need to "
        "access saved tensors after calling backward.")
    assert outcomes["x * 2.5", "_saved_self"] is None  # None stays None
    assert outcomes["mean", "_saved_self_sym_sizes"] == (2, 3)  # sizes stay readable


def test_saved_tensors_freed_as_pytorch():
    torch = pytest.importorskip("torch")
    assert _freed(nbgrad) == _freed(torch)


def test_saved_tensors_kept_with_retain_graph_and_freed_by_autograd_grad():
    x = leaf(nbgrad, [1.0, 2.0])
    e = x.exp()
    e.sum().backward(retain_graph=True)
    np.testing.assert_array_equal(e.grad_fn._saved_result.detach().numpy(), np.exp([1.0, 2.0]))
    e.sum().backward()
    with pytest.raises(RuntimeError, match=SECOND_TIME):
        _ = e.grad_fn._saved_result
    e = x.exp()
    nbgrad.autograd.grad(e.sum(), x, create_graph=True)  # retain_graph defaults to create_graph
    assert e.grad_fn._saved_result.shape == (2,)
    nbgrad.autograd.grad(e.sum(), x)
    with pytest.raises(RuntimeError, match=SECOND_TIME):
        _ = e.grad_fn._saved_result


def test_saved_tensor_changed_in_place_is_refused():
    x = leaf(nbgrad, [1.0, 2.0, 3.0])
    a = x * 1
    s = a.sin()
    c = a.cos()
    a.add_(1)
    for node in (s.grad_fn, c.grad_fn):
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            _ = node._saved_self
    y = leaf(nbgrad, [1.0, 2.0, 3.0])
    z = a * y  # saves a (version 1) and y
    y.data.mul_(1)  # .data: no version change, as in PyTorch
    np.testing.assert_array_equal(z.grad_fn._saved_self.detach().numpy(), [2.0, 3.0, 4.0])


def test_saved_in_place_as_pytorch():
    torch = pytest.importorskip("torch")
    for T in (nbgrad, torch):
        a = leaf(T, [1.0, 2.0, 3.0]) * 1
        s = a.sin()
        a.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            _ = s.grad_fn._saved_self


def _missing(T):
    x, *_ = _inputs(T)
    messages = []
    for node, name in (((x * x).grad_fn, "_saved_foo"), (x.sum().grad_fn, "_saved_self"),
                       ((-x).grad_fn, "_saved_self"), ((x + x).grad_fn, "_saved_other")):
        assert not hasattr(node, name)
        with pytest.raises(AttributeError) as info:
            getattr(node, name)
        messages.append(str(info.value))
    return messages


def test_unknown_saved_attributes_raise_attribute_error():
    assert _missing(nbgrad) == ["'MulBackward0' object has no attribute '_saved_foo'",
                                "'SumBackward0' object has no attribute '_saved_self'",
                                "'NegBackward0' object has no attribute '_saved_self'",
                                "'AddBackward0' object has no attribute '_saved_other'"]


def test_unknown_saved_attributes_as_pytorch():
    torch = pytest.importorskip("torch")
    assert _missing(nbgrad) == _missing(torch)


def test_saved_attributes_nbgrad_does_not_keep_are_attribute_errors():
    x, *_ = _inputs(nbgrad)
    node = nbgrad.nn.functional.nll_loss(x.log_softmax(1), nbgrad.tensor([2, 0])).grad_fn
    assert not hasattr(node, "_saved_self")  # PyTorch keeps the log-probabilities; nbgrad's backward needs none
    assert not hasattr(x.var().grad_fn, "_saved_self")  # a composite op's last node, named as PyTorch's


# --- saved-tensor hooks -------------------------------------------------------------


def test_saved_tensors_hooks_is_refused_on_entering():
    calls = []
    hooks = nbgrad.autograd.graph.saved_tensors_hooks(lambda t: calls.append("pack") or t,
                                                      lambda t: calls.append("unpack") or t)
    with pytest.raises(NotImplementedError, match="saved_tensors_hooks is not supported"):
        with hooks:
            pass
    assert calls == []


def test_save_on_cpu_changes_nothing():
    x = leaf(nbgrad, [1.0, 2.0])
    with nbgrad.autograd.graph.save_on_cpu(pin_memory=True):
        y = (x.exp() * x).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0]) * [2.0, 3.0])


def _disabled(T):
    g = T.autograd.graph
    outcomes = []
    with g.disable_saved_tensors_hooks("outer"):
        for hooks in (lambda: g.save_on_cpu(), lambda: g.saved_tensors_hooks(lambda t: t, lambda t: t)):
            with pytest.raises(RuntimeError) as info:
                with hooks():
                    pass
            outcomes.append(str(info.value))
        with g.disable_saved_tensors_hooks("inner"):
            with pytest.raises(RuntimeError) as info:
                with g.save_on_cpu():
                    pass
            outcomes.append(str(info.value))
        with pytest.raises(RuntimeError) as info:  # the outer message again
            with g.save_on_cpu():
                pass
        outcomes.append(str(info.value))
    with g.save_on_cpu():  # enabled again
        outcomes.append("enabled")
    return outcomes


def test_disable_saved_tensors_hooks():
    assert _disabled(nbgrad) == ["outer", "outer", "inner", "outer", "enabled"]
    assert graph.disable_saved_tensors_hooks is nbgrad.autograd.graph.disable_saved_tensors_hooks


def test_disable_saved_tensors_hooks_as_pytorch():
    torch = pytest.importorskip("torch")
    assert _disabled(nbgrad) == _disabled(torch)
