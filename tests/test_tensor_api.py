"""The everyday Tensor API scripts use: in-place unary forms, the product functions, out=, .to()
with devices; against PyTorch where installed, exact values otherwise."""
import numpy as np
import pytest

import nbgrad as nb
from nbgrad.autograd import gradcheck

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
UNARY = ["neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "abs", "sin", "cos"]


@pytest.mark.parametrize("name", UNARY + ["pow"])
def test_in_place_unary_forms_give_the_values_and_gradients_of_the_plain_ones(name):
    args = (2.0,) if name == "pow" else ()
    values = np.array([0.3, 1.7, 2.5, 0.9])
    x = nb.tensor(values, dtype=nb.float64, requires_grad=True)
    y = x * 1
    version = y._version
    assert getattr(y, name + "_")(*args) is y and y._version > version
    expected = getattr(x, name)(*args)
    np.testing.assert_allclose(y.detach().numpy(), expected.detach().numpy())
    (y * y).sum().backward()
    grad = x.grad.numpy().copy()
    x.grad = None
    (expected * expected).sum().backward()
    np.testing.assert_allclose(grad, x.grad.numpy())
    assert gradcheck(lambda t: getattr(t * 1, name + "_")(*args), (nb.tensor(values, dtype=nb.float64,
                                                                             requires_grad=True),))
    plain = nb.tensor(values)
    getattr(plain, name + "_")(*args)  # no graph: straight in place
    np.testing.assert_allclose(plain.numpy(), getattr(nb.tensor(values), name)(*args).numpy(), rtol=1e-6)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        getattr(nb.ones(2, requires_grad=True), name + "_")(*args)


def test_in_place_form_refused_on_a_tensor_saved_for_the_backward():
    x = nb.tensor([0.5, 1.0], requires_grad=True)
    y = x * 1
    z = y.exp()  # saves its result
    w = y.sin()  # saves y
    y.cos_()
    z.sum().backward()  # exp's saved result is its own
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        w.sum().backward()


def _pair(*shapes, dtype=np.float64):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def test_product_functions_match_numpy_and_have_gradients():
    a, b, m, v, c1, c2, bias = _pair((3,), (3,), (2, 3), (3,), (2, 4, 3), (2, 3, 5), (2,))
    cases = [(nb.dot, (a, b), a @ b), (nb.mv, (m, v), m @ v), (nb.bmm, (c1, c2), c1 @ c2),
             (nb.outer, (a, b), np.outer(a, b)), (nb.ger, (a, b), np.outer(a, b)),
             (lambda i, x, y: nb.addmm(i, x, y, beta=0.5, alpha=2), (bias, m, m.T), 0.5 * bias + 2 * m @ m.T),
             (nb.addmm, (bias, m, m.T), bias + m @ m.T)]
    for function, arrays, expected in cases:
        tensors = [nb.tensor(x, requires_grad=True) for x in arrays]
        np.testing.assert_allclose(function(*tensors).detach().numpy(), expected, rtol=1e-12)
        assert gradcheck(function, tuple(tensors))
    assert nb.tensor(a).dot(nb.tensor(b)).shape == () and nb.tensor(m).mv(nb.tensor(v)).shape == (2,)
    assert nb.tensor(c1).bmm(nb.tensor(c2)).shape == (2, 4, 5) and nb.tensor(a).outer(nb.tensor(b)).shape == (3, 3)
    ignored = nb.addmm(nb.tensor(np.full(2, np.nan)), nb.tensor(m), nb.tensor(m.T), beta=0)  # input not read
    assert np.isfinite(ignored.numpy()).all()


@pytest.mark.parametrize("call", [
    lambda m: m.dot(m.ones(3), m.ones(4)), lambda m: m.dot(m.ones(2, 3), m.ones(3)),
    lambda m: m.dot(m.ones(3), m.ones(3, dtype=m.float64)), lambda m: m.mv(m.ones(2, 3), m.ones(2)),
    lambda m: m.mv(m.ones(3), m.ones(3)), lambda m: m.bmm(m.ones(2, 3), m.ones(3, 2)),
    lambda m: m.bmm(m.ones(2, 2, 3), m.ones(3, 3, 4)), lambda m: m.bmm(m.ones(2, 2, 3), m.ones(2, 4, 4)),
    lambda m: m.outer(m.ones(2, 3), m.ones(3)), lambda m: m.mm(m.ones(2, 2), m.ones(2, 2, dtype=m.float64)),
    lambda m: m.ones(2, 3) @ m.ones(3, 2, dtype=m.float64),
    lambda m: m.matmul(m.ones(3), m.ones(3, dtype=m.float64))])
def test_product_errors_as_pytorch(call):
    with pytest.raises(RuntimeError) as found:
        call(nb)
    if torch is not None:
        with pytest.raises(RuntimeError) as expected:
            call(torch)
        assert str(expected.value).split(" Target")[0] in str(found.value)


def test_out_arguments():
    a, b = nb.tensor([1.0, 2.0]), nb.tensor([3.0, 4.0])
    out = nb.empty(2)
    assert nb.add(a, b, out=out) is out and out.tolist() == [4.0, 6.0]
    assert nb.mul(a, 2, out=out).tolist() == [2.0, 4.0] and nb.exp(nb.zeros(2), out=out).tolist() == [1.0, 1.0]
    product = nb.empty(2, 2)
    assert nb.mm(nb.ones(2, 3), nb.ones(3, 2), out=product).tolist() == [[3.0, 3.0], [3.0, 3.0]]
    assert nb.matmul(nb.ones(2, 3), nb.ones(3, 2), out=product) is product
    as_float = nb.empty(2, dtype=nb.float64)
    assert nb.add(nb.tensor([1, 2]), 1, out=as_float).tolist() == [2.0, 3.0] and as_float.dtype is nb.float64
    grown = nb.empty(0)
    assert nb.add(a, b, out=grown).shape == (2,)
    with pytest.warns(UserWarning, match="was resized"):
        assert nb.exp(a, out=nb.empty(3)).shape == (2,)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
        nb.add(a, b, out=nb.empty(2, dtype=nb.int64))
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        nb.add(nb.ones(2, requires_grad=True), b, out=out)
    with nb.no_grad():
        nb.add(nb.ones(2, requires_grad=True), b, out=out)
    version = out._version
    nb.sub(a, b, out=out)
    assert out._version > version and out.tolist() == [-2.0, -2.0]


def test_to_with_devices_and_dtypes():
    x = nb.ones(2)
    assert x.to("cpu") is x and x.to(nb.device("cpu")) is x and x.to(device="cpu") is x
    assert x.to("cpu", nb.float64).dtype is nb.float64 and x.to(device="cpu", dtype=nb.float64).dtype is nb.float64
    assert x.to("cpu", non_blocking=True) is x and x.to(nb.ones(1, dtype=nb.int64)).dtype is nb.int64
    assert x.to(copy=True) is not x
    for bad in (lambda: x.to("cuda"), lambda: x.to(device="cuda:0"), lambda: x.to(nb.device("cuda"), nb.float64)):
        with pytest.raises(RuntimeError, match="CPU only"):
            bad()
    with pytest.raises(TypeError):
        x.to(foo=1)
    model = nb.nn.Linear(2, 2)
    assert model.cpu() is model and model.to("cpu") is model
    with pytest.raises(RuntimeError, match="CPU only"):
        model.cuda()


def test_sizes_and_formats():
    x = nb.ones(2, 3)
    assert x.numel() == 6 and x.dim() == 2 and x.size(1) == 3 and x.size(-1) == 3 and x.size() == (2, 3)
    assert f"{nb.tensor(1.23456):.3f}" == "1.235" and f"{nb.tensor(1.5)}" == "1.5"


@needs_torch
def test_the_functions_against_pytorch():
    a, b, m = _pair((3,), (3,), (3, 3), dtype=np.float32)
    for name, arrays in (("dot", (a, b)), ("mv", (m, a)), ("outer", (a, b)), ("addmm", (a, m, m))):
        found = getattr(nb, name)(*[nb.tensor(x) for x in arrays]).numpy()
        expected = getattr(torch, name)(*[torch.tensor(x) for x in arrays]).numpy()
        np.testing.assert_allclose(found, expected, rtol=1e-5, atol=1e-6)
    for name in UNARY:
        x = np.abs(a) + 0.1
        found, expected = getattr(nb.tensor(x), name + "_")(), getattr(torch.tensor(x), name + "_")()
        np.testing.assert_allclose(found.numpy(), expected.numpy(), rtol=1e-6)
