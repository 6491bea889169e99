"""create_graph=True: gradients of gradients (second derivatives, HVPs, gradient penalties)."""
import numpy as np
import pytest
from numba import njit

import nbgrad as torch
import nbgrad.nn.functional as F
from nbgrad.autograd import gradgradcheck, higher
from nbgrad.autograd.registry import OPS


def leaf(values):
    return torch.tensor(np.asarray(values, np.float64), requires_grad=True)


POINTS = [0.3, 0.9, 1.7]

# f, f'' in NumPy
SECOND_DERIVATIVES = {
    "exp": (torch.exp, np.exp),
    "log": (torch.log, lambda x: -1 / x ** 2),
    "sqrt": (torch.sqrt, lambda x: -0.25 * x ** -1.5),
    "tanh": (torch.tanh, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "erf": (torch.erf, lambda x: -4 * x / np.sqrt(np.pi) * np.exp(-x * x)),
    "log1p": (torch.log1p, lambda x: -1 / (1 + x) ** 2),
    "expm1": (torch.expm1, np.exp),
    "sigmoid": (torch.sigmoid, lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s)),
    "sin": (torch.sin, lambda x: -np.sin(x)),
    "cos": (torch.cos, lambda x: -np.cos(x)),
    "relu": (torch.relu, lambda x: 0 * x),
    "abs": (torch.abs, lambda x: 0 * x),
    "pow_scalar": (lambda t: t ** 3.5, lambda x: 3.5 * 2.5 * x ** 1.5),
    "rpow_scalar": (lambda t: 2.0 ** t, lambda x: np.log(2) ** 2 * 2 ** x),
    "rdiv_scalar": (lambda t: 3.0 / t, lambda x: 6.0 / x ** 3),
    "neg": (torch.neg, lambda x: 0 * x),
    "mul_scalar": (lambda t: t * 3.0, lambda x: 0 * x),
}


@pytest.mark.parametrize("name", sorted(SECOND_DERIVATIVES))
def test_second_derivative_of_each_elementwise_op(name):
    f, second = SECOND_DERIVATIVES[name]
    x = leaf(POINTS)
    (g,) = torch.autograd.grad(f(x).sum(), x, create_graph=True)
    if not g.requires_grad:  # a gradient that does not depend on x (as in PyTorch: no graph)
        np.testing.assert_array_equal(second(np.array(POINTS)), 0)
        return
    (h,) = torch.autograd.grad(g.sum(), x, allow_unused=True, materialize_grads=True)
    np.testing.assert_allclose(h.numpy(), second(np.array(POINTS)), rtol=1e-10, atol=1e-12)


rng = np.random.default_rng(3)


def _value(*shape, low=-1.5, high=1.5):
    return torch.tensor(rng.uniform(low, high, shape), requires_grad=True)


TARGET = torch.tensor(np.array([2, 0, 1]))

# gradgradcheck cases over the op table: (op names covered, function, inputs)
CASES = [
    ("add", lambda a, b: a + b * b, [(2, 3), (2, 1)]),
    ("bias_add", lambda a, b: (a * a + b) * (a + b * b), [(2, 3), (3,)]),
    ("sub", lambda a, b: (a - b) ** 2, [(2, 3), (2, 1)]),
    ("mul", lambda a, b: a * b * a, [(2, 3), (3,)]),
    ("div", lambda a, b: a / (b * b + 1), [(2, 3), (2, 3)]),
    ("pow", lambda a, b: (a * a + 0.5) ** b, [(2, 3), (2, 3)]),
    ("maximum", lambda a, b: torch.maximum(a, b) * a, [(4,), (4,)]),
    ("minimum", lambda a, b: torch.minimum(a, b) * b, [(4,), (4,)]),
    ("where", lambda a, b: torch.where(a > 0, a * b, b * b), [(2, 3), (2, 3)]),
    ("clamp", lambda a: a.clamp(-0.5, 0.5) * a, [(5,)]),
    ("add_scalar div_scalar rsub_scalar", lambda a: (1 - (a + 2) / 3) * a, [(3,)]),
    ("matmul", lambda a, b: (a @ b).tanh(), [(2, 3), (3, 4)]),
    ("matmul (vector)", lambda a, b: (a @ b) * (a @ b), [(3,), (3, 2)]),
    ("linear", lambda x, w, b: F.linear(x, w, b).sigmoid(), [(2, 3), (4, 3), (4,)]),
    ("sum", lambda a: a.sum() * a, [(2, 3)]),
    ("sum_dims", lambda a: a.sum(dim=1, keepdim=True) * a + a.mean(0), [(2, 3)]),
    ("softmax", lambda a: F.softmax(a, dim=1) * a, [(2, 3)]),
    ("log_softmax", lambda a: F.log_softmax(a, dim=0) * a, [(3, 2)]),
    ("nll_loss", lambda a: F.nll_loss(F.log_softmax(a * a, 1), TARGET), [(3, 4)]),
    ("nll_loss (none)", lambda a: F.nll_loss(F.log_softmax(a * a, 1), TARGET, reduction="none") * 2, [(3, 4)]),
    ("cross_entropy", lambda a: F.cross_entropy(a * a, TARGET) * a.sum(), [(3, 4)]),
    ("cross_entropy (none, ignored)", lambda a: F.cross_entropy(a * a, TARGET, reduction="none", ignore_index=0) * 2,
     [(3, 4)]),
    ("cross_entropy (sum)", lambda a: F.cross_entropy(a.tanh(), TARGET, reduction="sum") ** 2, [(3, 4)]),
    ("mse_loss", lambda a, b: F.mse_loss(a * a, b), [(2, 3), (3,)]),
    ("view", lambda a: (a * a).reshape(3, 2) @ a, [(2, 3)]),
    ("strided", lambda a: (a * a).t() * a.T + (a * a).permute(1, 0), [(2, 3)]),
    ("strided (expand)", lambda a: (a * a).expand(2, 3) * a, [(1, 3)]),
    ("clone", lambda a: (a * a).clone() * a, [(3,)]),
    ("copy", lambda a, b: (a * 1).copy_(b * b) * b, [(3,), (3,)]),
    ("matmul (batched)", lambda a, b: (a @ b) * (a @ b), [(2, 3), (2, 3, 2)]),
    ("matmul (vector, batched)", lambda a, b: (a @ b) ** 2, [(3,), (2, 3, 2)]),
    ("strided (slice)", lambda a: (a * a)[1:, ::2] * a[:1, ::2], [(3, 4)]),
    ("take", lambda a: (a * a)[[2, 0, 2]] * a[[1, 1, 0]], [(3, 2)]),
    ("put", lambda a, b: _put(a * a, (slice(1, None), [0, 2]), b * b) * a, [(3, 4), (2,)]),
    ("cat", lambda a, b: torch.cat([a * a, b, a * b], dim=1) ** 2, [(2, 3), (2, 3)]),
    ("select", lambda a: (a * a).max(dim=1)[0] * a.min(dim=1)[0] + (a * a).max(), [(3, 4)]),
    ("strided_scatter index_add", lambda a: torch.autograd.grad((a[1:] ** 3).sum() + (a[[0, 0]] ** 3).sum(), a,
                                                                 create_graph=True)[0] ** 2, [(3, 2)]),
]


def _put(x, index, v):
    y = x * 1
    y[index] = v
    return y


@pytest.mark.parametrize("names, f, shapes", CASES, ids=[c[0] for c in CASES])
def test_gradgradcheck_over_the_op_table(names, f, shapes):
    inputs = [_value(*s) for s in shapes]
    assert gradgradcheck(f, inputs, atol=1e-4, rtol=1e-4)


def test_every_op_has_a_double_backward():
    assert {name for name, op in OPS.items() if any(op.bwd)} - set(higher.FORMULAS) == set()
    tested = set(SECOND_DERIVATIVES) | {"to"}
    for names, _, _ in CASES:
        tested |= set(names.split())
    assert set(higher.FORMULAS) - tested == set()


def test_double_backward_through_a_dtype_conversion():
    x = leaf(POINTS)
    (g,) = torch.autograd.grad((x.float() ** 3).sum(), x, create_graph=True)
    assert g.dtype == torch.float64
    (h,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * np.array(POINTS), rtol=1e-6)
    assert "to" in higher.FORMULAS


@njit(cache=True)
def twice_fwd(x, out):
    for i in range(out.size):
        out[i] = 2.0 * x[i]


@njit(cache=True)
def twice_bwd(g, gx):
    for i in range(g.size):
        gx[i] += 2.0 * g[i]


def test_a_compiled_custom_op_without_a_formula_says_so():
    twice = torch.autograd.register_op("twice", twice_fwd, twice_bwd)
    x = leaf([1.0, 2.0, 3.0])
    with pytest.raises(NotImplementedError, match="double backward of TwiceBackward0"):
        torch.autograd.grad(twice(x).sum(), x, create_graph=True)


def test_hessian_vector_product_of_an_mlp_loss_matches_finite_differences():
    data = np.random.default_rng(0)
    x = torch.tensor(data.standard_normal((5, 3)))
    y = torch.tensor(data.integers(0, 2, 5))
    w1 = torch.tensor(data.standard_normal((4, 3)), requires_grad=True)
    w2 = torch.tensor(data.standard_normal((2, 4)), requires_grad=True)
    v = [data.standard_normal(w.shape) for w in (w1, w2)]

    def gradients():
        loss = F.cross_entropy(F.linear(F.linear(x, w1).tanh(), w2), y)
        return torch.autograd.grad(loss, [w1, w2], create_graph=True)

    g1, g2 = gradients()
    dot = (g1 * torch.tensor(v[0])).sum() + (g2 * torch.tensor(v[1])).sum()
    hv = torch.autograd.grad(dot, [w1, w2])
    eps = 1e-6
    for w, direction in zip((w1, w2), v):
        w.data.numpy()[...] += eps * direction
    plus = [g.detach().numpy().copy() for g in gradients()]
    for w, direction in zip((w1, w2), v):
        w.data.numpy()[...] -= 2 * eps * direction
    minus = [g.detach().numpy().copy() for g in gradients()]
    for h, p, m in zip(hv, plus, minus):
        np.testing.assert_allclose(h.numpy(), (p - m) / (2 * eps), rtol=1e-5, atol=1e-8)


def test_gradient_penalty_backpropagates_into_the_weights():
    data = np.random.default_rng(1)
    w = torch.tensor(data.standard_normal((3, 4)), requires_grad=True)
    x0 = data.standard_normal((2, 4))

    def penalty(weights):
        x = torch.tensor(x0, requires_grad=True)
        out = (F.linear(x, weights).sigmoid() ** 2).sum()
        (gx,) = torch.autograd.grad(out, x, create_graph=True)
        return (gx ** 2).sum()

    penalty(w).backward()
    numerical = np.zeros(w.shape)
    flat = w.data.numpy().reshape(-1)
    for k in range(flat.size):
        flat[k] += 1e-6
        plus = penalty(w.detach()).item()
        flat[k] -= 2e-6
        minus = penalty(w.detach()).item()
        flat[k] += 1e-6
        numerical.reshape(-1)[k] = (plus - minus) / 2e-6
    np.testing.assert_allclose(w.grad.numpy(), numerical, rtol=1e-5, atol=1e-8)


def test_backward_with_create_graph_gives_grad_a_graph():
    x = leaf([1.0, 2.0])
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.grad_fn is not None
    np.testing.assert_allclose(x.grad.detach().numpy(), [3.0, 12.0])
    (second,) = torch.autograd.grad(x.grad.sum(), x)
    np.testing.assert_allclose(second.numpy(), [6.0, 12.0])


def test_create_graph_runs_python_functions_and_hooks():
    class Cube(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            ctx.save_for_backward(t)
            return t ** 3

        @staticmethod
        def backward(ctx, g):
            (t,) = ctx.saved_tensors
            return g * 3 * t ** 2

    x = leaf([1.0, 2.0])
    h = x * 1
    seen = []
    h.register_hook(lambda g: seen.append(g.requires_grad))
    (g,) = torch.autograd.grad(Cube.apply(h).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(second.numpy(), [6.0, 12.0])
    assert seen == [True, False]  # the first gradient of h has a graph; the second backward's has none


def test_create_graph_matches_torch_when_installed():
    ref = pytest.importorskip("torch")
    values = np.random.default_rng(4).standard_normal((3, 4))
    w_values = np.random.default_rng(5).standard_normal((2, 4))
    results = []
    for fw in (torch, ref):
        x = fw.tensor(values, requires_grad=True)
        w = fw.tensor(w_values, requires_grad=True)
        loss = fw.nn.functional.log_softmax(fw.nn.functional.linear(x, w).tanh(), dim=1).sum()
        (gx,) = fw.autograd.grad(loss, x, create_graph=True)
        (gx.pow(2).sum() + gx.sum()).backward()
        results.append((w.grad.detach().numpy(), x.grad.detach().numpy()))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
