"""One table of op cases: forward against NumPy, gradients against finite differences (float64)."""
import math
from dataclasses import dataclass

import numpy as np
import pytest

import nbgrad
import nbgrad.nn.functional as F
from nbgrad.autograd import gradcheck
from nbgrad.autograd.registry import OPS

BINARY_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 2)), ((4,), ()), ((2, 1, 3), (4, 1)),
                 ((2, 0), (1, 0)), ((0,), ())]
UNARY_SHAPES = [(), (3,), (2, 3), (2, 1, 2), (0,), (2, 0)]


@dataclass
class Case:
    name: str
    ops: tuple           # the declared ops this case exercises
    fn: object           # nbgrad function of the inputs
    reference: object    # NumPy function of the inputs' values
    shapes: list         # one tuple of input shapes per run
    low: float = -2.0    # inputs are drawn from [low, high], away from kinks at 0 when positive_gap
    high: float = 2.0
    away_from_zero: bool = False

    def __repr__(self):
        return self.name


def unary(name, op, fn, reference, **kw):
    return Case(name, (op,), fn, reference, [(s,) for s in UNARY_SHAPES], **kw)


def binary(name, op, fn, reference, **kw):
    return Case(name, (op,), fn, reference, BINARY_SHAPES, **kw)


def sigmoid_np(x):
    return 1 / (1 + np.exp(-x))


def softmax_np(x, dim):
    e = np.exp(x - x.max(dim, keepdims=True))
    return e / e.sum(dim, keepdims=True)


TARGET_NP = np.array([3, 0, 1])
TARGET = nbgrad.tensor(TARGET_NP)


def put(x, index, v):
    y = x * 1
    y[index] = v
    return y


def put_np(x, v, mask=False):
    y = x.copy()
    y[(y > 0) if mask else (slice(1, None), [0, 2])] = v
    return y


def strided_scatter_np(g):
    """Zeros of 12 with g (2, 2) added at 1 + i * 4 + j * 2."""
    out = np.zeros(12)
    for i in range(2):
        for j in range(2):
            out[1 + 4 * i + 2 * j] += g[i, j]
    return out


def index_add_np(g):
    """Zeros of (4, 2) with rows of g added at rows 2, 0, 2, flat."""
    out = np.zeros((4, 2))
    np.add.at(out, [2, 0, 2], g)
    return out.reshape(-1)


CASES = [
    unary("neg", "neg", lambda x: -x, lambda x: -x),
    unary("exp", "exp", nbgrad.exp, np.exp),
    unary("log", "log", nbgrad.log, np.log, low=0.2),
    unary("sqrt", "sqrt", lambda x: x.sqrt(), np.sqrt, low=0.2),
    unary("tanh", "tanh", nbgrad.tanh, np.tanh),
    unary("erf", "erf", nbgrad.erf, np.vectorize(math.erf, otypes=[float])),
    unary("log1p", "log1p", lambda x: x.log1p(), np.log1p, low=-0.8),
    unary("expm1", "expm1", nbgrad.expm1, np.expm1),
    unary("sigmoid", "sigmoid", lambda x: x.sigmoid(), sigmoid_np),
    unary("relu", "relu", nbgrad.relu, lambda x: np.maximum(x, 0), away_from_zero=True),
    unary("add_scalar", "add_scalar", lambda x: x + 2.5, lambda x: x + 2.5),
    unary("radd_scalar", "add_scalar", lambda x: 2.5 + x, lambda x: 2.5 + x),
    unary("sub_scalar", "add_scalar", lambda x: x - 1.5, lambda x: x - 1.5),
    unary("mul_scalar", "mul_scalar", lambda x: x * 3, lambda x: x * 3),
    unary("rmul_scalar", "mul_scalar", lambda x: 3 * x, lambda x: 3 * x),
    unary("div_scalar", "div_scalar", lambda x: x / 4, lambda x: x / 4),
    unary("rsub_scalar", "rsub_scalar", lambda x: 1 - x, lambda x: 1 - x),
    unary("rdiv_scalar", "rdiv_scalar", lambda x: 2 / x, lambda x: 2 / x, low=0.5),
    unary("pow_scalar", "pow_scalar", lambda x: x ** 3, lambda x: x ** 3),
    unary("pow_half", "pow_scalar", lambda x: x ** 0.5, lambda x: x ** 0.5, low=0.2),
    unary("rpow_scalar", "rpow_scalar", lambda x: 2 ** x, lambda x: 2.0 ** x),
    unary("clone", "clone", nbgrad.clone, lambda x: x.copy()),
    unary("abs", "abs", nbgrad.abs, np.abs, away_from_zero=True),
    unary("sin", "sin", nbgrad.sin, np.sin),
    unary("cos", "cos", lambda x: x.cos(), np.cos),
    unary("clamp", "clamp", lambda x: x.clamp(-1, 1.5), lambda x: np.clip(x, -1, 1.5)),
    unary("clamp_min", "clamp", lambda x: nbgrad.clamp(x, min=0.5), lambda x: np.maximum(x, 0.5)),
    binary("maximum", "maximum", nbgrad.maximum, np.maximum),
    binary("minimum", "minimum", lambda a, b: a.minimum(b), np.minimum),
    binary("where", "where", lambda a, b: nbgrad.where(a.detach() > b.detach(), a, b), np.maximum),
    binary("add", "add", lambda a, b: a + b, np.add),
    Case("bias_add", ("bias_add",), lambda x, b: x + b, np.add, [((3, 4), (4,)), ((2, 3, 4), (3, 4)), ((2, 1), (1,))]),
    binary("sub", "sub", lambda a, b: a - b, np.subtract),
    binary("mul", "mul", lambda a, b: a * b, np.multiply),
    binary("div", "div", lambda a, b: a / b, np.divide, low=0.5),
    binary("pow", "pow", lambda a, b: a ** b, np.power, low=0.5),
    Case("reshape", ("view",), lambda x: x.reshape(3, -1), lambda x: x.reshape(3, -1), [((6,),), ((2, 3),)]),
    Case("view", ("view",), lambda x: x.view(-1), lambda x: x.reshape(-1), [((2, 3),), ((),)]),
    Case("transpose", ("strided",), lambda x: x.transpose(0, 1), lambda x: x.swapaxes(0, 1), [((2, 3),), ((2, 3, 4),)]),
    Case("T", ("strided",), lambda x: x.T, lambda x: x.T, [((2, 3),), ((2, 3, 4),)]),
    Case("permute", ("strided",), lambda x: x.permute(2, 0, 1), lambda x: x.transpose(2, 0, 1), [((2, 3, 4),)]),
    Case("sum", ("sum",), lambda x: x.sum(), np.sum, [(s,) for s in UNARY_SHAPES]),
    Case("mean", ("sum",), nbgrad.mean, np.mean, [(s,) for s in UNARY_SHAPES]),
    Case("sum_dim", ("sum_dims",), lambda x: x.sum(1), lambda x: x.sum(1), [((2, 3),), ((2, 3, 4),)]),
    Case("sum_dims_keepdim", ("sum_dims",), lambda x: x.sum((0, 2), keepdim=True),
         lambda x: x.sum((0, 2), keepdims=True), [((2, 3, 4),)]),
    Case("mean_dim", ("sum_dims",), lambda x: x.mean(-1), lambda x: x.mean(-1), [((2, 3),), ((4,),)]),
    Case("matmul", ("matmul",), lambda a, b: a @ b, np.matmul,
         [((2, 3), (3, 4)), ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 2)), ((2, 2, 3), (3, 4)),
          ((2, 2, 3), (2, 3, 4)), ((1, 2, 3), (2, 3, 1)), ((2, 1, 2, 3), (3, 3, 2))]),
    Case("mm", ("matmul",), nbgrad.mm, np.matmul, [((3, 2), (2, 5))]),
    Case("max", ("select",), lambda x: x.max(), np.max, [((3,),), ((2, 3),), ((),)]),
    Case("min_dim", ("select",), lambda x: x.min(1).values, lambda x: x.min(1), [((2, 3),), ((2, 3, 4),)]),
    Case("max_dim_keepdim", ("select",), lambda x: nbgrad.max(x, 0, keepdim=True)[0],
         lambda x: x.max(0, keepdims=True), [((3, 2),), ((4,),)]),
    Case("var", ("sum", "sum_dims", "mul_scalar"), lambda x: x.var(), lambda x: x.var(ddof=1), [((5,),), ((2, 3),)]),
    Case("var_dim", ("sum_dims",), lambda x: x.var(1, correction=0), lambda x: x.var(1), [((2, 3),)]),
    Case("std_dim", ("sqrt",), lambda x: x.std(0, keepdim=True), lambda x: x.std(0, ddof=1, keepdims=True),
         [((3, 2),)]),
    Case("norm", ("sqrt",), lambda x: x.norm(), np.linalg.norm, [((3,),), ((2, 3),)]),
    Case("norm_p3_dim", ("pow_scalar", "abs"), lambda x: x.norm(3, dim=1),
         lambda x: (np.abs(x) ** 3).sum(1) ** (1 / 3), [((2, 3),)]),
    Case("unsqueeze", ("view",), lambda x: x.unsqueeze(1), lambda x: np.expand_dims(x, 1), [((2, 3),), ((3,),)]),
    Case("squeeze", ("view",), lambda x: x.squeeze(), np.squeeze, [((2, 1, 3),), ((1,),)]),
    Case("expand", ("strided",), lambda x: x.expand(2, 3, -1), lambda x: np.broadcast_to(x, (2, 3, x.shape[-1])),
         [((3, 1),), ((1, 4),), ((4,),)]),
    Case("cat", ("cat",), lambda a, b: nbgrad.cat([a, b], 1), lambda a, b: np.concatenate([a, b], 1),
         [((2, 1), (2, 3)), ((2, 3, 1), (2, 2, 1))]),
    Case("cat5", ("cat",), lambda *xs: nbgrad.cat(xs), lambda *xs: np.concatenate(xs),
         [((1,), (2,), (3,), (1,), (2,))]),
    Case("stack", ("cat",), lambda a, b, c: nbgrad.stack([a, b, c], -1), lambda *xs: np.stack(xs, -1),
         [((2, 3),) * 3, ((),) * 3]),
    Case("index_basic", ("strided",), lambda x: x[1:, ::2, None, 0], lambda x: x[1:, ::2, None, 0], [((3, 4, 2),)]),
    Case("index_int", ("strided",), lambda x: x[-1], lambda x: x[-1], [((3,),), ((3, 2),)]),
    Case("index_rows", ("take",), lambda x: x[[2, 0, 2]], lambda x: x[[2, 0, 2]], [((3,),), ((3, 2),)]),
    Case("index_arrays", ("take",), lambda x: x[[0, 1, 1], ..., [1, 0, 1]], lambda x: x[[0, 1, 1], ..., [1, 0, 1]],
         [((2, 3, 2),)]),
    Case("index_pairs", ("take",), lambda x: x[[0, 1, 1], [2, 0, 2]], lambda x: x[[0, 1, 1], [2, 0, 2]], [((2, 3),)]),
    Case("index_mask", ("take",), lambda x: x[x.detach() > 0], lambda x: x[x > 0], [((3, 4),)]),
    Case("linear", ("linear",), F.linear, lambda x, w, b: x @ w.T + b, [((3, 4), (2, 4), (2,)), ((4,), (3, 4), (3,)),
                                                                          ((2, 2, 4), (5, 4), (5,))]),
    Case("linear_no_bias", ("linear",), F.linear, lambda x, w: x @ w.T, [((3, 4), (2, 4))]),
    Case("softmax", ("softmax",), lambda x: x.softmax(-1), lambda x: softmax_np(x, -1), [((3, 4),), ((2, 3, 4),)]),
    Case("softmax_dim0", ("softmax",), lambda x: nbgrad.softmax(x, 0), lambda x: softmax_np(x, 0), [((3, 4),), ((),)]),
    Case("log_softmax", ("log_softmax",), lambda x: F.log_softmax(x, 1), lambda x: np.log(softmax_np(x, 1)),
         [((3, 4),), ((2, 3, 2),)]),
    Case("nll_loss", ("nll_loss",), lambda x: F.nll_loss(x, TARGET), lambda x: -x[range(3), TARGET_NP].mean(),
         [((3, 4),)]),
    Case("nll_loss_none", ("nll_loss",), lambda x: F.nll_loss(x, TARGET, reduction="none"),
         lambda x: -x[range(3), TARGET_NP], [((3, 4),)]),
    Case("cross_entropy", ("cross_entropy",), lambda x: F.cross_entropy(x, TARGET, reduction="sum"),
         lambda x: -np.log(softmax_np(x, 1))[range(3), TARGET_NP].sum(), [((3, 4),)]),
    Case("cross_entropy_mean_ignored", ("cross_entropy",), lambda x: F.cross_entropy(x, TARGET, ignore_index=0),
         lambda x: -np.log(softmax_np(x, 1))[[0, 2], TARGET_NP[[0, 2]]].mean(), [((3, 4),)]),
    Case("cross_entropy_none", ("cross_entropy",), lambda x: F.cross_entropy(x, TARGET, reduction="none"),
         lambda x: -np.log(softmax_np(x, 1))[range(3), TARGET_NP], [((3, 4),)]),
    Case("cross_entropy_unfused", ("log_softmax", "nll_loss"),
         lambda x: F.cross_entropy(x.unsqueeze(2), TARGET.unsqueeze(1), reduction="sum"),
         lambda x: -np.log(softmax_np(x, 1))[range(3), TARGET_NP].sum(), [((3, 4),)]),
    Case("mse_loss", ("mse_loss",), F.mse_loss, lambda a, b: ((a - b) ** 2).mean(), [((3,), (3,)), ((2, 3), (3,))]),
    Case("mse_loss_none", ("mse_loss",), lambda a, b: F.mse_loss(a, b, reduction="none"),
         lambda a, b: (a - b) ** 2, [((2, 3), (2, 3))]),
    Case("copy_", ("copy",), lambda x, s: (x * 1).copy_(s), lambda x, s: np.broadcast_to(s, x.shape),
         [((2, 3), (3,)), ((3,), (3,)), ((2, 2), ())]),
    Case("zero_", ("copy",), lambda x: (x * 1).zero_(), np.zeros_like, [((2, 3),)]),
    Case("setitem", ("put",), lambda x, v: put(x, (slice(1, None), [0, 2]), v), lambda x, v: put_np(x, v),
         [((3, 4), (2,)), ((3, 4), (2, 2)), ((3, 4), ())]),
    Case("strided_scatter", ("strided_scatter",), lambda g: nbgrad.ops.strided_scatter(g, 1, (2, 2), (4, 2), 12),
         lambda g: strided_scatter_np(g), [((2, 2),)]),
    Case("index_add", ("index_add",), lambda g: nbgrad.ops.index_add(g, [2, 0, 2], 2, 8),
         lambda g: index_add_np(g), [((3, 2),)]),
    Case("setitem_mask", ("put",), lambda x, v: put(x, x.detach() > 0, v), lambda x, v: put_np(x, v, mask=True),
         [((3, 4), ())]),
]


def make_inputs(case, shapes, dtype):
    rng = np.random.default_rng(1)
    values = []
    for shape in shapes:
        v = rng.uniform(case.low, case.high, shape)
        if case.away_from_zero:
            v = np.where(np.abs(v) < 0.1, 0.5, v)
        values.append(v)
    tensors = [nbgrad.tensor(v, dtype=dtype, requires_grad=True) for v in values]
    return values, tensors


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_forward_matches_numpy(case):
    for shapes in case.shapes:
        values, tensors = make_inputs(case, shapes, nbgrad.float64)
        out = case.fn(*tensors)
        expected = case.reference(*values)
        assert out.shape == np.shape(expected), shapes
        np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_float32_forward_keeps_dtype(case):
    values, tensors = make_inputs(case, case.shapes[0], nbgrad.float32)
    out = case.fn(*tensors)
    assert out.dtype is nbgrad.float32
    np.testing.assert_allclose(out.detach().numpy(), case.reference(*[v.astype(np.float32) for v in values]),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_gradcheck(case):
    for shapes in case.shapes:
        _, tensors = make_inputs(case, shapes, nbgrad.float64)
        assert gradcheck(case.fn, tensors), shapes


def test_every_declared_op_has_a_case():
    covered = {op for case in CASES for op in case.ops} | {"to"}  # "to": test_cast_gradient below
    assert set(OPS) <= covered, set(OPS) - covered


def test_cast_gradient_has_the_input_dtype():
    x = nbgrad.tensor([1.0, 2.0], dtype=nbgrad.float64, requires_grad=True)
    y = x.float()
    assert y.grad_fn.name() == "ToCopyBackward0" and y.dtype is nbgrad.float32
    (y * 3).sum().backward()
    assert x.grad.dtype is nbgrad.float64
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_mixed_dtypes_promote_and_route_gradients_back():
    a = nbgrad.ones(2, requires_grad=True)
    b = nbgrad.full((2,), 2.0, dtype=nbgrad.float64, requires_grad=True)
    c = a * b
    assert c.dtype is nbgrad.float64
    c.sum().backward()
    assert a.grad.dtype is nbgrad.float32 and b.grad.dtype is nbgrad.float64
    np.testing.assert_array_equal(a.grad.numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])


# Exact values where the math is simple.

def grad_of(fn, values):
    x = nbgrad.tensor(values, requires_grad=True)
    fn(x).backward()
    return x.grad.tolist()


def test_exact_gradients():
    assert grad_of(lambda x: (x * x).sum(), [1.0, -2.0, 3.0]) == [2.0, -4.0, 6.0]
    assert grad_of(lambda x: (3 * x + 1).mean(), [1.0, 2.0, 3.0, 4.0]) == [0.75] * 4
    assert grad_of(lambda x: x.relu().sum(), [-1.0, 2.0]) == [0.0, 1.0]
    assert grad_of(lambda x: (x ** 2).sum(), [3.0]) == [6.0]
    assert grad_of(lambda x: (1 - x).sum(), [5.0]) == [-1.0]
    assert grad_of(lambda x: x.exp().sum(), [0.0]) == [1.0]
    assert grad_of(lambda x: x.log().sum(), [4.0]) == [0.25]
    assert grad_of(lambda x: x.sqrt().sum(), [4.0]) == [0.25]
    assert grad_of(lambda x: x.sigmoid().sum(), [0.0]) == [0.25]
    assert grad_of(lambda x: x.tanh().sum(), [0.0]) == [1.0]


def test_broadcast_gradient_sums_to_input_shape():
    a = nbgrad.ones(2, 3, requires_grad=True)
    b = nbgrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.tolist() == [[1.0, 2.0, 3.0]] * 2
    assert b.grad.tolist() == [2.0, 2.0, 2.0]


def test_matmul_gradients_exact():
    a = nbgrad.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    b = nbgrad.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    (a @ b).sum().backward()
    assert a.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert b.grad.tolist() == [[4.0, 4.0], [6.0, 6.0]]


def test_numerics_at_the_edges():
    assert nbgrad.log(nbgrad.tensor([0.0])).item() == -np.inf
    assert np.isnan(nbgrad.log(nbgrad.tensor([-1.0])).item())
    s = nbgrad.tensor([-1e4, 1e4], requires_grad=True)
    out = s.sigmoid()
    assert out.tolist() == [0.0, 1.0]
    out.sum().backward()
    assert s.grad.tolist() == [0.0, 0.0]
    x = nbgrad.tensor([np.nan, 1.0], requires_grad=True)
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    y = nbgrad.tensor([np.nan], requires_grad=True)
    (y * y).sum().backward()
    assert np.isnan(y.grad.item())


def test_integer_arithmetic_and_promotion():
    i = nbgrad.tensor([1, 2, 3])
    assert (i + 1).dtype is nbgrad.int64 and (i + 1).tolist() == [2, 3, 4]
    assert (i * 2.5).dtype is nbgrad.float32 and (i * 2.5).tolist() == [2.5, 5.0, 7.5]
    assert (i / 2).dtype is nbgrad.float32 and (i / 2).tolist() == [0.5, 1.0, 1.5]
    assert (i / i).dtype is nbgrad.float32
    assert i.sum().dtype is nbgrad.int64 and i.sum().item() == 6
    f = nbgrad.ones(3)
    d = nbgrad.ones(3, dtype=nbgrad.float64)
    assert (f + d).dtype is nbgrad.float64
    assert (f + nbgrad.tensor(2.0, dtype=nbgrad.float64)).dtype is nbgrad.float32  # 0-d does not promote
    assert (i + nbgrad.tensor(2.0)).dtype is nbgrad.float32  # ...unless it is of a higher category
    assert nbgrad.exp(i).dtype is nbgrad.float32


def test_matmul_over_an_empty_batch_with_a_shared_operand():
    a = nbgrad.ones(3, 4, requires_grad=True)
    b = nbgrad.zeros(0, 4, 5, requires_grad=True)
    out = a @ b
    assert out.shape == (0, 3, 5)
    out.sum().backward()
    assert a.grad.tolist() == [[0.0] * 4] * 3 and b.grad.shape == (0, 4, 5)


def test_matmul_with_empty_dimensions():
    a = nbgrad.ones(2, 0, requires_grad=True)
    b = nbgrad.ones(0, 3, requires_grad=True)
    out = a @ b
    assert out.tolist() == [[0.0] * 3] * 2
    out.sum().backward()
    assert a.grad.shape == (2, 0) and b.grad.shape == (0, 3)
    assert (nbgrad.ones(0, 2) @ nbgrad.ones(2, 3)).shape == (0, 3)
