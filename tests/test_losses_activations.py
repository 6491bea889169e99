"""Losses and activations of ``nbgrad.nn.functional`` and their modules: values and gradients against
PyTorch (when installed) on ordinary and extreme inputs, gradcheck in float64, PyTorch's errors,
warnings and module reprs."""
import math
import warnings

import numpy as np
import pytest

import nbgrad
import nbgrad.nn as nn
import nbgrad.nn.functional as F
from nbgrad.autograd import gradcheck


def torch_or_skip():
    return pytest.importorskip("torch")


rng = np.random.default_rng(7)
# ordinary values, the edges of the stable forms, and values around softplus's threshold
X = np.concatenate([rng.normal(size=10) * 3, [0.0, 1.0, -1.0, 6.0, 50.0, -50.0, 1e4, -1e4, 20.0, 20.5, -17.0, 5e-6,
                                             -5e-6]])
SMOOTH_POINTS = np.array([-3.1, -1.2, -0.3, 0.0, 0.4, 1.7, 2.9])  # for gradcheck (no kinks at 0 in these)
KINKED_POINTS = np.array([-3.1, -1.2, -0.3, 0.4, 1.7, 2.9, 6.5])


def _torch_dtype(torch, dtype):
    return {np.float32: torch.float32, np.float64: torch.float64}[dtype]


def _pair(torch, arrays, dtype, requires_grad=True):
    grads = requires_grad if isinstance(requires_grad, (list, tuple)) else [requires_grad] * len(arrays)
    ours = [nbgrad.tensor(np.asarray(a, dtype), requires_grad=g) for a, g in zip(arrays, grads)]
    theirs = [torch.tensor(np.asarray(a, dtype), requires_grad=g) for a, g in zip(arrays, grads)]
    return ours, theirs


def _close(ours, theirs, dtype, what, atol=1e-30):
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol, err_msg=what)


def _compare(torch, f_ours, f_theirs, arrays, dtype, requires_grad=True, grad_rtol=None, atol=1e-30):
    """Values, and the gradients of (out * seed).sum(), of both libraries' functions."""
    ours, theirs = _pair(torch, arrays, dtype, requires_grad)
    out, expected = f_ours(*ours), f_theirs(*theirs)
    assert tuple(out.shape) == tuple(expected.shape)
    _close(out, expected, dtype, "value", atol)
    seed = rng.uniform(0.5, 1.5, tuple(expected.shape))
    (out * nbgrad.tensor(seed.astype(dtype))).sum().backward()
    (expected * torch.tensor(seed.astype(dtype))).sum().backward()
    rtol = grad_rtol or (1e-5 if dtype == np.float32 else 1e-11)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if b.requires_grad:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=1e-30, err_msg=f"grad {i}")
    return out


# --- activations --------------------------------------------------------------

# (name, keyword arguments, smooth at 0)
ACTIVATIONS = [
    ("softplus", {}, True),
    ("softplus", {"beta": 2, "threshold": 10}, True),
    ("softplus", {"beta": 0.5, "threshold": 3}, True),
    ("logsigmoid", {}, True),
    ("leaky_relu", {}, False),
    ("leaky_relu", {"negative_slope": 0.2}, False),
    ("elu", {}, True),
    ("elu", {"alpha": 0.5}, False),
    ("gelu", {}, True),
    ("gelu", {"approximate": "tanh"}, True),
    ("silu", {}, True),
    ("hardtanh", {}, False),
    ("hardtanh", {"min_val": -2.0, "max_val": 0.5}, False),
    ("relu6", {}, False),
]
ACTIVATION_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw, _ in ACTIVATIONS]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name, kwargs, smooth", ACTIVATIONS, ids=ACTIVATION_IDS)
def test_activation_matches_torch(name, kwargs, smooth, dtype):
    torch = torch_or_skip()
    theirs = getattr(torch.nn.functional, name)
    # float32 gelu: 1 + erf(x / sqrt 2) cancels for x << 0, where each library's rounding shows (both ~1e-7 off)
    atol = 1e-6 if name == "gelu" and dtype == np.float32 else 1e-30
    for x in (X, X[:20].reshape(4, 5)):
        _compare(torch, lambda x: getattr(F, name)(x, **kwargs), lambda x: theirs(x, **kwargs), [x], dtype, atol=atol)


@pytest.mark.parametrize("name, kwargs, smooth", ACTIVATIONS, ids=ACTIVATION_IDS)
def test_activation_gradcheck(name, kwargs, smooth):
    points = SMOOTH_POINTS if smooth else KINKED_POINTS
    x = nbgrad.tensor(points, requires_grad=True)
    assert gradcheck(lambda t: getattr(F, name)(t, **kwargs), (x,))


@pytest.mark.parametrize("name, kwargs, smooth", ACTIVATIONS, ids=ACTIVATION_IDS)
def test_activation_is_finite_at_extremes(name, kwargs, smooth):
    x = nbgrad.tensor([-1e4, -50.0, 50.0, 1e4, 0.0], dtype=nbgrad.float32, requires_grad=True)
    y = getattr(F, name)(x, **kwargs)
    y.sum().backward()
    assert np.isfinite(y.detach().numpy()).all() and np.isfinite(x.grad.numpy()).all()


def test_slopes_at_the_edges_are_pytorchs():
    x = nbgrad.tensor([0.0], dtype=nbgrad.float64, requires_grad=True)
    for f, slope in ((F.softplus, 0.5), (F.logsigmoid, 0.5), (F.leaky_relu, 0.01), (F.elu, 1.0), (F.silu, 0.5),
                     (F.gelu, 0.5), (F.relu6, 0.0), (lambda t: F.elu(t, 0.3), 0.3)):
        x.grad = None
        f(x).sum().backward()
        assert x.grad.item() == pytest.approx(slope), f
    # hardtanh: no gradient at the bounds themselves, NaN passes through (as PyTorch)
    x = nbgrad.tensor([-1.0, 1.0, 0.0, 6.0, float("nan")], requires_grad=True)
    F.hardtanh(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1, 0, 1])
    x.grad = None
    F.relu6(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 1, 0, 0, 1])


def test_stable_forms_keep_tiny_values():
    # log1p and expm1 where log(1 + .) and exp(.) - 1 would round the answer away
    np.testing.assert_allclose(F.softplus(nbgrad.tensor([-40.0, -17.0])).numpy(), [4.248354e-18, 4.139938e-08],
                               rtol=1e-6)
    np.testing.assert_allclose(F.logsigmoid(nbgrad.tensor([40.0, -1e4])).numpy(), [-4.248354e-18, -1e4], rtol=1e-6)
    np.testing.assert_allclose(F.elu(nbgrad.tensor([-1e-5])).numpy(), [-9.99995e-06], rtol=1e-6)
    assert F.softplus(nbgrad.tensor([1e4, 20.5])).tolist() == [1e4, 20.5]  # above the threshold: x itself


def test_integer_inputs_are_refused_as_in_pytorch():
    x = nbgrad.tensor([1, -2, 7])
    for f, kernel in ((F.softplus, "softplus"), (F.elu, "elu"), (F.leaky_relu, "leaky_relu"), (F.silu, "silu"),
                      (F.logsigmoid, "log_sigmoid"), (F.gelu, "GeluKernelImpl")):
        with pytest.raises(NotImplementedError, match=f'"{kernel}" not implemented for \'Long\''):
            f(x)
    assert F.relu6(x).tolist() == [1, 0, 6] and F.relu6(x).dtype is nbgrad.int64
    assert F.hardtanh(x).tolist() == [1, -1, 1]


def test_activation_argument_errors():
    x = nbgrad.randn(3)
    with pytest.raises(RuntimeError, match="approximate argument must be either none or tanh"):
        F.gelu(x, approximate="fast")
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        F.hardtanh(x, 2.0, 1.0)
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        nn.Hardtanh(2.0, 1.0)
    with pytest.raises(TypeError, match="softplus"):
        F.softplus([1.0])


@pytest.mark.parametrize("name, kwargs", [("relu_", {}), ("leaky_relu_", {"negative_slope": 0.3}),
                                          ("elu_", {"alpha": 0.7}), ("hardtanh_", {"min_val": -0.5}),
                                          ("leaky_relu", {"inplace": True}), ("elu", {"inplace": True}),
                                          ("silu", {"inplace": True}), ("relu6", {"inplace": True}),
                                          ("hardtanh", {"inplace": True})])
def test_in_place_forms(name, kwargs):
    torch = torch_or_skip()

    def ours(x):
        y = x * 2
        out = getattr(F, name)(y, **kwargs)
        assert out is y
        return y

    def theirs(x):
        y = x * 2
        out = getattr(torch.nn.functional, name)(y, **kwargs)
        assert out is y
        return y

    _compare(torch, ours, theirs, [KINKED_POINTS], np.float64)
    leaf = nbgrad.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(F, name)(leaf, **kwargs)


def test_erf_log1p_expm1_match_torch():
    torch = torch_or_skip()
    x = np.array([-30.0, -3.0, -0.5, -1e-9, 0.0, 1e-9, 0.7, 2.5, 30.0])
    for dtype in (np.float32, np.float64):
        _compare(torch, nbgrad.erf, torch.erf, [x], dtype)
        _compare(torch, lambda t: t.expm1(), lambda t: t.expm1(), [x[1:]], dtype)
        _compare(torch, nbgrad.log1p, torch.log1p, [np.abs(x) - 0.999], dtype, grad_rtol=1e-4)
    # expm1's gradient is exp(x) itself, not PyTorch's expm1(x) + 1, which rounds to 0 for x << 0 in float32
    x = nbgrad.tensor([-30.0], requires_grad=True)
    x.expm1().backward()
    assert x.grad.item() == pytest.approx(math.exp(-30), rel=1e-6)
    assert nbgrad.special.erf is nbgrad.erf
    assert math.isinf(nbgrad.log1p(nbgrad.tensor(-1.0)).item()) and math.isnan(nbgrad.log1p(nbgrad.tensor(-2.0)).item())
    assert nbgrad.erf(nbgrad.tensor([1.0], requires_grad=True)).grad_fn.name() == "ErfBackward0"


# --- losses -------------------------------------------------------------------

REDUCTIONS = ["mean", "sum", "none"]


def _probabilities(*shape):
    return rng.uniform(0.02, 0.98, shape)


def _loss_cases():
    logits = np.concatenate([rng.normal(size=6) * 3, [0.0, 50.0, -50.0, 1e4, -1e4, 2.0]]).reshape(3, 4)
    y = rng.uniform(size=(3, 4))
    y[0, :2] = [0.0, 1.0]
    p = _probabilities(3, 4)
    a, b = rng.normal(size=(3, 4)) * 2, rng.normal(size=(3, 4)) * 2
    log_p = np.log(_probabilities(3, 4))
    return [
        ("binary_cross_entropy", {}, [p, y]),
        ("binary_cross_entropy", {"weight": rng.uniform(size=4)}, [p, y]),
        ("binary_cross_entropy", {"weight": rng.uniform(size=(3, 1))}, [p, y]),
        ("binary_cross_entropy_with_logits", {}, [logits, y]),
        ("binary_cross_entropy_with_logits", {"pos_weight": rng.uniform(0.5, 3, 4)}, [logits, y]),
        ("binary_cross_entropy_with_logits", {"weight": rng.uniform(size=(3, 1)),
                                              "pos_weight": rng.uniform(0.5, 3, 4)}, [logits, y]),
        ("l1_loss", {}, [a, b]),
        ("smooth_l1_loss", {}, [a, b]),
        ("smooth_l1_loss", {"beta": 0.3}, [a, b]),
        ("smooth_l1_loss", {"beta": 0.0}, [a, b]),
        ("huber_loss", {}, [a, b]),
        ("huber_loss", {"delta": 2.5}, [a, b]),
        ("kl_div", {}, [log_p, _probabilities(3, 4)]),
        ("kl_div", {"log_target": True}, [log_p, np.log(_probabilities(3, 4))]),
    ]


LOSS_CASES = _loss_cases()
LOSS_IDS = [name + "".join(f"-{k}" for k in kw) for name, kw, _ in LOSS_CASES]


def _call(lib, name, kwargs, dtype, reduction):
    tensor = nbgrad.tensor if lib is F else lib.tensor
    extra = {k: tensor(np.asarray(v, dtype)) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    functional = F if lib is F else lib.nn.functional
    return lambda *t: getattr(functional, name)(*t, reduction=reduction, **extra)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name, kwargs, arrays", LOSS_CASES, ids=LOSS_IDS)
def test_loss_matches_torch(name, kwargs, arrays, reduction, dtype):
    torch = torch_or_skip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kl_div's 'mean'
        _compare(torch, _call(F, name, kwargs, dtype, reduction), _call(torch, name, kwargs, dtype, reduction),
                 arrays, dtype)


def test_kl_div_batchmean_and_zero_targets_match_torch():
    torch = torch_or_skip()
    log_p = np.log(_probabilities(4, 3))
    target = _probabilities(4, 3)
    target[0, 0] = 0.0  # xlogy(0, 0) = 0
    for log_target in (False, True):
        for dtype in (np.float32, np.float64):
            _compare(torch, lambda x, t, lt=log_target: F.kl_div(x, t, reduction="batchmean", log_target=lt),
                     lambda x, t, lt=log_target: torch.nn.functional.kl_div(x, t, reduction="batchmean", log_target=lt),
                     [log_p, target], dtype, requires_grad=[True, False])
    scalar = F.kl_div(nbgrad.tensor(-1.0), nbgrad.tensor(0.5), reduction="batchmean")  # 0-d: the sum
    assert scalar.item() == pytest.approx(0.5 * (math.log(0.5) + 1))


@pytest.mark.parametrize("name, kwargs, arrays", LOSS_CASES, ids=LOSS_IDS)
def test_loss_gradcheck(name, kwargs, arrays):
    inputs = [nbgrad.tensor(np.asarray(a, np.float64)[:2, :3].copy(), requires_grad=True) for a in arrays]
    if name == "binary_cross_entropy":  # targets inside (0, 1): the finite differences step both ways
        inputs[1] = nbgrad.tensor(rng.uniform(0.05, 0.95, (2, 3)), requires_grad=True)
    if name == "binary_cross_entropy_with_logits":
        inputs[0] = nbgrad.tensor(rng.normal(size=(2, 3)) * 3, requires_grad=True)
    if name in ("l1_loss", "smooth_l1_loss", "huber_loss"):  # away from the kinks |d| = 0 and |d| = beta
        d = rng.choice([-1, 1], (2, 3)) * rng.uniform(0.1, 0.25, (2, 3)) + rng.choice([0, 3], (2, 3))
        inputs[1] = nbgrad.tensor(inputs[0].detach().numpy() - d, requires_grad=True)
    extra = {k: nbgrad.tensor(np.asarray(v, np.float64)[..., :3] if v.ndim == 1 else v[:2], requires_grad=True)
             for k, v in kwargs.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in kwargs.items() if not isinstance(v, np.ndarray)}
    names = list(extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reduction in REDUCTIONS + (["batchmean"] if name == "kl_div" else []):
            def f(*t, reduction=reduction):
                return getattr(F, name)(*t[:2], reduction=reduction, **dict(zip(names, t[2:])), **scalars)

            assert gradcheck(f, (*inputs, *extra.values())), reduction


def test_binary_cross_entropy_edges_are_pytorchs():
    """At probabilities 0 and 1 and below x (1 - x) = 1e-12 PyTorch clamps each log at -100 and the
    gradient's denominator at 1e-12: the same values and input gradients, and no NaN."""
    torch = torch_or_skip()
    p = np.array([0.0, 1.0, 1e-13, 1 - 1e-13, 1e-50, 0.5, 0.0, 1.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.3, 0.0, 1.0])
    for dtype in (np.float32, np.float64):
        for reduction in REDUCTIONS:
            out = _compare(torch, lambda a, b, r=reduction: F.binary_cross_entropy(a, b, reduction=r),
                           lambda a, b, r=reduction: torch.nn.functional.binary_cross_entropy(a, b, reduction=r),
                           [p, y], dtype, requires_grad=[True, False])
            assert np.isfinite(out.detach().numpy()).all()
    # the target's gradient too where no log is clamped (PyTorch's is infinite where one is)
    _compare(torch, F.binary_cross_entropy, torch.nn.functional.binary_cross_entropy, [p[2:4], y[2:4]], np.float64)


def test_binary_cross_entropy_with_logits_at_extremes():
    x = nbgrad.tensor([1e4, -1e4, 50.0, -50.0, 0.0], requires_grad=True)
    y = nbgrad.tensor([1.0, 0.0, 0.0, 1.0, 0.5])
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss.detach().numpy(), [0.0, 0.0, 50.0, 50.0, math.log(2)], rtol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1.0, -1.0, 0.0], atol=1e-7)


def test_loss_errors_and_warnings_follow_pytorch():
    x, y = nbgrad.rand(3), nbgrad.rand(3, 1)
    with pytest.raises(ValueError, match=r"Using a target size \(nbgrad.Size\(\[3, 1\]\)\) that is different to "
                                         r"the input size \(nbgrad.Size\(\[3\]\)\) is deprecated"):
        F.binary_cross_entropy(x, y)
    with pytest.raises(ValueError, match=r"Target size \(nbgrad.Size\(\[3, 1\]\)\) must be the same as input size"):
        F.binary_cross_entropy_with_logits(x, y)
    for f in (F.l1_loss, F.smooth_l1_loss, F.huber_loss):
        with pytest.warns(UserWarning, match="This will likely lead to incorrect results due to broadcasting"):
            assert f(x, y).shape == ()
    with pytest.raises(RuntimeError, match="l1_loss: the size of tensor a"):
        F.l1_loss(nbgrad.rand(3), nbgrad.rand(4))
    with pytest.raises(RuntimeError, match="all elements of input should be between 0 and 1"):
        F.binary_cross_entropy(nbgrad.tensor([1.5]), nbgrad.tensor([1.0]))
    with pytest.raises(RuntimeError, match="all elements of target should be between 0 and 1"):
        F.binary_cross_entropy(nbgrad.tensor([0.5]), nbgrad.tensor([1.5]))
    with pytest.raises(RuntimeError, match="Found dtype Long but expected Float"):
        F.binary_cross_entropy(nbgrad.tensor([0.5]), nbgrad.tensor([1]))
    with pytest.raises(RuntimeError, match="smooth_l1_loss does not support negative values for beta."):
        F.smooth_l1_loss(x, x, beta=-1)
    with pytest.raises(RuntimeError, match="huber_loss does not support non-positive values for delta."):
        F.huber_loss(x, x, delta=0)
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        F.l1_loss(x, x, reduction="foo")
    with pytest.raises(ValueError, match="foo is not a valid value for reduction"):
        F.kl_div(x, x, reduction="foo")
    with pytest.raises(RuntimeError, match="Integral inputs not supported"):
        F.kl_div(nbgrad.tensor([1, 2]), nbgrad.tensor([1, 2]))
    with pytest.raises(ValueError, match="Weights and input must have the same size."):
        F.l1_loss(x, x, weight=nbgrad.rand(2))
    with pytest.raises(RuntimeError, match="binary_cross_entropy_with_logits: the size of tensor a"):
        F.binary_cross_entropy_with_logits(x, x, pos_weight=nbgrad.rand(2))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        F.kl_div(x, x)
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated, please use "
                                         "reduction='sum' instead."):
        assert F.binary_cross_entropy(x, x, size_average=False).shape == ()
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert nn.L1Loss(reduce=False).reduction == "none"


def test_weighted_l1_and_huber_match_torch():
    torch = torch_or_skip()
    a, b, w = rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), rng.uniform(size=(3, 4))
    for name, kwargs in (("l1_loss", {}), ("huber_loss", {"delta": 0.7})):
        for reduction in REDUCTIONS:
            def ours(x, t, name=name, reduction=reduction, kwargs=kwargs):
                return getattr(F, name)(x, t, reduction=reduction, weight=nbgrad.tensor(w), **kwargs)

            def theirs(x, t, name=name, reduction=reduction, kwargs=kwargs):
                return getattr(torch.nn.functional, name)(x, t, reduction=reduction, weight=torch.tensor(w), **kwargs)

            _compare(torch, ours, theirs, [a, b], np.float64)


# --- modules ------------------------------------------------------------------

MODULES = [
    "Softmax(1)", "Softmax()", "LogSoftmax(dim=-1)", "LeakyReLU()", "LeakyReLU(0.2, True)", "ELU()",
    "ELU(alpha=0.5, inplace=True)", "GELU()", "GELU('tanh')", "SiLU()", "SiLU(inplace=True)", "Softplus()",
    "Softplus(2, 10)", "Identity(3, a=4)", "Hardtanh()", "Hardtanh(-2.0, 2.0, True)", "ReLU6()", "ReLU6(True)",
    "LogSigmoid()", "BCELoss()", "BCEWithLogitsLoss()", "L1Loss()", "SmoothL1Loss(beta=0.5)", "HuberLoss(delta=2)",
    "NLLLoss()", "KLDivLoss(reduction='batchmean')",
]


@pytest.mark.parametrize("spec", MODULES)
def test_module_repr_is_pytorchs(spec):
    torch = torch_or_skip()
    assert repr(eval("nn." + spec)) == repr(eval("nn." + spec, {"nn": torch.nn}))


@pytest.mark.parametrize("spec, inputs", [
    ("Softmax(dim=1)", "x"), ("LogSoftmax(1)", "x"), ("LeakyReLU(0.1)", "x"), ("ELU(0.5)", "x"), ("GELU('tanh')", "x"),
    ("GELU()", "x"), ("SiLU()", "x"), ("Softplus(2, 5)", "x"), ("Identity(7)", "x"), ("Hardtanh(-0.5, 0.5)", "x"),
    ("ReLU6()", "x"), ("LogSigmoid()", "x"), ("BCELoss(weight=w)", "p, y"), ("BCELoss(reduction='sum')", "p, y"),
    ("BCEWithLogitsLoss(pos_weight=w)", "x, y"), ("BCEWithLogitsLoss(w, reduction='none')", "x, y"),
    ("L1Loss(reduction='sum')", "x, y"), ("SmoothL1Loss(beta=0.3)", "x, y"), ("HuberLoss('none', 0.5)", "x, y"),
    ("NLLLoss(weight=w, ignore_index=1)", "logp, t"), ("NLLLoss(reduction='none')", "logp, t"),
    ("KLDivLoss(reduction='batchmean')", "logp, y"), ("KLDivLoss(reduction='sum', log_target=True)", "logp, logp2"),
])
def test_module_forward_matches_torch(spec, inputs):
    torch = torch_or_skip()
    values = {"x": rng.normal(size=(3, 4)) * 3, "p": _probabilities(3, 4), "y": _probabilities(3, 4),
              "logp": np.log(_probabilities(3, 4)), "logp2": np.log(_probabilities(3, 4))}
    w = rng.uniform(0.5, 2, 4)
    names = [n.strip() for n in inputs.split(",")]
    results = []
    for lib in (nbgrad, torch):
        scope = {k: lib.tensor(v, requires_grad=True) for k, v in values.items()}
        scope["t"] = lib.tensor([0, 3, 1])
        scope["w"] = lib.tensor(w)
        scope["nn"] = lib.nn
        module = eval("nn." + spec, scope)
        out = module(*[scope[n] for n in names])
        out.sum().backward()
        results.append((out.detach().numpy(), scope[names[0]].grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-15)


def test_module_arguments_are_in_pytorchs_order():
    assert nn.BCELoss(None, None, None, "sum").reduction == "sum"
    assert nn.BCEWithLogitsLoss(None, None, None, "none").reduction == "none"
    assert nn.NLLLoss(None, None, 3).ignore_index == 3
    assert nn.SmoothL1Loss(None, None, "sum", 0.5).beta == 0.5
    assert nn.HuberLoss("sum", 3.0).delta == 3.0
    assert nn.KLDivLoss(None, None, "batchmean", True).log_target
    x = nbgrad.randn(2, 3)
    assert nn.Identity("anything", flag=True)(x) is x


def test_loss_modules_take_pytorchs_positional_arguments():
    weight = nbgrad.tensor([1.0, 2.0, 3.0])
    logits, target = nbgrad.tensor([[0.1, 0.5, -0.2], [1.0, 0.0, 0.3]]), nbgrad.tensor([2, 0])
    by_position = nn.CrossEntropyLoss(weight)(logits, target)
    assert by_position.item() == F.cross_entropy(logits, target, weight=weight).item()
    with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated"):
        summed = nn.MSELoss(size_average=False)
    assert summed.reduction == "sum" and summed(nbgrad.ones(2), nbgrad.zeros(2)).item() == 2.0
    assert nn.CrossEntropyLoss(None, None, 1).ignore_index == 1
