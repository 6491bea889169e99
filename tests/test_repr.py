"""Tensor printing against PyTorch's, character for character (``torch.`` read as ``nbgrad.``
in dtype names), plus literal strings checked without PyTorch."""
import numpy as np
import pytest

import nbgrad as nb


def torch_or_skip():
    return pytest.importorskip("torch")


def _from(lib, array, requires_grad=False):
    t = lib.from_numpy(np.array(array, copy=True))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _normal(seed, shape, scale=1.0, dtype=np.float32):
    return np.asarray(np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


NAN, INF = float("nan"), float("inf")

# name -> builder(lib) -> tensor; each builds the same tensor in nbgrad and in PyTorch
CASES = {}

for k in range(-6, 9):
    for shape in [(), (1,), (7,), (4, 5), (2, 3, 4), (25,), (2, 2, 3, 4)]:
        for dtype in (np.float32, np.float64):
            CASES[f"normal_1e{k}_{'x'.join(map(str, shape)) or 'scalar'}_{dtype.__name__}"] = (
                lambda lib, k=k, shape=shape, dtype=dtype: _from(lib, _normal(k + 100, shape, 10.0 ** k, dtype)))

for k in (-5, 0, 3, 9):
    for shape in [(1001,), (2000,), (40, 40), (3, 1000), (1000, 3), (11, 11, 11), (2, 2, 300), (5, 5, 5, 5, 5)]:
        CASES[f"summarised_1e{k}_{'x'.join(map(str, shape))}"] = (
            lambda lib, k=k, shape=shape: _from(lib, _normal(k + 7, shape, 10.0 ** k)))

_VALUES = {
    "nan": [NAN],
    "inf_ninf": [INF, -INF],
    "nan_one": [NAN, 1.0],
    "nan_fraction": [NAN, 1.5],
    "inf_tiny": [INF, 1e-5],
    "zero_nan_big": [0.0, NAN, 1e10],
    "nan_inf_mix_2d": [[NAN, -INF, 2.25], [INF, 0.0, -1e-3]],
    "zeros": [0.0, 0.0, 0.0],
    "negative_zero": [-0.0, 1.0],
    "negative_zero_fraction": [-0.0, 1.5],
    "zero_tiny": [0.0, 1e-5],
    "integral": [1.0, 2.0, 3.0],
    "integral_negative": [-3.0, 2.0, 100.0],
    "integral_huge": [1e9, 1.0],
    "integral_ratio": [1.0, 5000.0],
    "integral_1e8": [1e8, 2.0],
    "threshold_1e-4": [1e-4, 1.0],
    "ratio_1000": [1.0, 1000.0],
    "ratio_1001": [1.0, 1001.0],
    "big_1e8": [1e8, 1e8 + 16],
    "huge_1e38": [3e38, -1e-38],
    "tiny_denormal": [5e-324, 1.0],
    "rounding": [9.99996, 0.5],
    "rounding_sci": [9.99996e-7, 1.0],
    "two_d_nan_rows": [[NAN, NAN], [NAN, NAN]],
    "large_integral_wrap": [float(12345678 * i) for i in range(-10, 12)],
}
for name, values in _VALUES.items():
    for dtype in (np.float32, np.float64):
        CASES[f"{name}_{dtype.__name__}"] = lambda lib, v=values, d=dtype: _from(lib, np.array(v, dtype=d))
    CASES[f"{name}_scalar"] = lambda lib, v=values: _from(lib, np.array(np.array(v).flat[0], dtype=np.float32))

_INTEGERS = {
    "small": [1, 2, 3],
    "negative": [[-1, 200], [3, 4]],
    "huge": [2 ** 31 - 1, -(2 ** 31), 7],
    "wrap": list(range(10000, 10040)),
    "wrap_2d": np.arange(-60, 60).reshape(4, 30),
    "summarised": np.arange(1001),
    "summarised_3d": np.arange(-3000, 3000).reshape(10, 20, 30),
    "scalar": np.array(-42),
}
for name, values in _INTEGERS.items():
    for dtype in (np.int64, np.int32):
        CASES[f"int_{name}_{dtype.__name__}"] = lambda lib, v=values, d=dtype: _from(lib, np.array(v, dtype=d))

_BOOLS = {
    "all_true": [True, True],
    "mixed": [True, False, True],
    "two_d": [[True, False], [False, False]],
    "scalar": True,
    "summarised": np.arange(1200) % 3 == 0,
    "wrap": np.arange(30) % 2 == 0,
}
for name, values in _BOOLS.items():
    CASES[f"bool_{name}"] = lambda lib, v=values: _from(lib, np.array(v, dtype=np.bool_))

for shape in [(0,), (0, 3), (3, 0), (2, 0, 4)]:
    for dtype in (np.float32, np.float64, np.int64, np.int32, np.bool_):
        CASES[f"empty_{'x'.join(map(str, shape))}_{dtype.__name__}"] = (
            lambda lib, shape=shape, dtype=dtype: _from(lib, np.zeros(shape, dtype=dtype)))
CASES["int_huge_int64"] = lambda lib: _from(lib, np.array([2 ** 40, -(2 ** 63), 7]))
CASES["huge_1e300_float64"] = lambda lib: _from(lib, np.array([1e300, -1e-300, 5e-324, 1.0]))
CASES["empty_requires_grad"] = lambda lib: _from(lib, np.zeros((0, 2), np.float32), requires_grad=True)
CASES["empty_float64_grad_fn"] = lambda lib: _from(lib, np.zeros(0, np.float64), requires_grad=True) * 2

CASES.update({
    "requires_grad_ones": lambda lib: lib.ones(2, 2, requires_grad=True),
    "requires_grad_scalar": lambda lib: lib.tensor(3.5, requires_grad=True),
    "grad_fn_scalar": lambda lib: lib.tensor(3.5, requires_grad=True) * 1,
    "grad_fn_sum": lambda lib: _from(lib, np.arange(-4, 5, dtype=np.float32).reshape(3, 3) / 8 + 0.3,
                                     requires_grad=True).sum(),  # exact in any order
    "grad_fn_2d": lambda lib: _from(lib, _normal(2, (4, 4)), requires_grad=True) * 2,
    # the last row is long: grad_fn= goes on a line of its own
    "grad_fn_long_row": lambda lib: _from(lib, _normal(3, (14,)), requires_grad=True) + 1,
    "grad_fn_long_2d": lambda lib: _from(lib, _normal(4, (3, 8)), requires_grad=True) * 3,
    "grad_fn_short_last_row": lambda lib: _from(lib, _normal(5, (9,)), requires_grad=True) * 3,
    "requires_grad_long_row": lambda lib: _from(lib, _normal(6, (8,), 1e3), requires_grad=True),
    "requires_grad_row_at_limit": lambda lib: _from(lib, np.arange(1, 12, dtype=np.float32) / 4,
                                                    requires_grad=True),
    "float64_grad_fn_long": lambda lib: _from(lib, _normal(7, (2, 8), 1.0, np.float64), requires_grad=True) * 2,
    "float64_grad_fn_short": lambda lib: _from(lib, np.ones(2), requires_grad=True).exp(),
    "float64_requires_grad_sci": lambda lib: _from(lib, _normal(8, (3, 5), 1e-6, np.float64), requires_grad=True),
    "summarised_grad_fn": lambda lib: _from(lib, _normal(9, (50, 50)), requires_grad=True) * 2,
    "summarised_1d_grad_fn": lambda lib: _from(lib, _normal(10, (5000,), 1e4), requires_grad=True) * 2,
    "float32_from_float64_grad_fn": lambda lib: _from(lib, np.ones(3, np.float32), requires_grad=True).double(),
})


def _texts(name, torch):
    return CASES[name](nb), CASES[name](torch)


def _same(ours, theirs):
    assert ours == theirs.replace("torch.", "nbgrad.")


@pytest.mark.parametrize("name", sorted(CASES))
def test_repr_matches_pytorch(name):
    torch = torch_or_skip()
    ours, theirs = _texts(name, torch)
    _same(repr(ours), repr(theirs))
    _same(str(ours), str(theirs))
    _same(format(ours), format(theirs))


def test_long_lines_wrap_at_80_columns():
    text = repr(nb.arange(40) * 1000.5)  # (rows of a 2-d tensor may pass it, as in PyTorch)
    assert max(map(len, text.splitlines())) <= 80
    text = repr(nb.from_numpy(_normal(3, (14,), 1.0, np.float64)).requires_grad_() * 2)
    assert max(map(len, text.splitlines())) <= 80 and text.endswith(
        "],\n       dtype=nbgrad.float64, grad_fn=<MulBackward0>)")


_OPTIONS = [
    {"precision": 2},
    {"precision": 0},
    {"precision": 8},
    {"threshold": 5},
    {"threshold": 5, "edgeitems": 1},
    {"threshold": 5, "edgeitems": 0},
    {"edgeitems": 0},
    {"linewidth": 40},
    {"linewidth": 200},
    {"sci_mode": True},
    {"sci_mode": False},
    {"profile": "short"},
    {"profile": "full"},
    {"profile": "full", "precision": 6},
]
_OPTION_CASES = ["normal_1e-3_4x5_float32", "normal_1e6_25_float64", "summarised_1e0_40x40",
                 "summarised_1e3_2000", "int_wrap_int64", "zeros_float32", "integral_float32",
                 "nan_one_float32", "grad_fn_long_row", "bool_summarised", "normal_1e0_scalar_float32",
                 "empty_0x3_float32"]


@pytest.fixture
def default_options():
    yield
    nb.set_printoptions(profile="default")
    try:
        import torch
    except ImportError:
        return
    torch.set_printoptions(profile="default")


@pytest.mark.parametrize("options", _OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_print_options_match_pytorch(options, default_options):
    torch = torch_or_skip()
    nb.set_printoptions(**options)
    torch.set_printoptions(**options)
    for name in _OPTION_CASES:
        ours, theirs = _texts(name, torch)
        _same(repr(ours), repr(theirs))


def test_print_options_literal(default_options):
    nb.set_printoptions(precision=2)
    assert repr(nb.tensor([1.12345])) == "tensor([1.12])"
    nb.set_printoptions(threshold=5)  # precision stays; sci_mode returns to None
    assert repr(nb.arange(10)) == "tensor([0, 1, 2,  ..., 7, 8, 9])"
    nb.set_printoptions(profile="default")
    assert repr(nb.tensor([1.12345])) == "tensor([1.1235])"
    assert repr(nb.arange(10)) == "tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])"
    nb.set_printoptions(sci_mode=True)
    assert repr(nb.tensor([1.5, 2.0])) == "tensor([1.5000e+00, 2.0000e+00])"
    nb.set_printoptions(sci_mode=False)
    assert repr(nb.tensor([1e-5, 1.0])) == "tensor([0.0000, 1.0000])"
    nb.set_printoptions(edgeitems=0)
    assert repr(nb.ones(2, 3)) == "tensor([[1., 1., 1.],\n        [1., 1., 1.]], size=(2, 3))"
    from nbgrad._formatting import get_printoptions, printoptions

    nb.set_printoptions(profile="default")
    with printoptions(precision=1, linewidth=20):
        assert get_printoptions()["precision"] == 1
        assert repr(nb.arange(6) / 4) == "tensor([0.0, 0.2,\n        0.5, 0.8,\n        1.0, 1.2])"
    assert get_printoptions() == {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80,
                                  "sci_mode": None}


@pytest.mark.parametrize("build, text", [
    (lambda: nb.tensor(2.0), "tensor(2.)"),
    (lambda: nb.tensor(-0.5), "tensor(-0.5000)"),
    (lambda: nb.tensor([1e-5, 1.0]), "tensor([1.0000e-05, 1.0000e+00])"),
    (lambda: nb.tensor([1e9, 1.0]), "tensor([1.0000e+09, 1.0000e+00])"),
    (lambda: nb.tensor([NAN, INF, -INF, 1.0]), "tensor([nan, inf, -inf, 1.])"),
    (lambda: nb.tensor([NAN, INF, 1.5]), "tensor([   nan,    inf, 1.5000])"),
    (lambda: nb.tensor([0.0, NAN]), "tensor([0., nan])"),
    (lambda: nb.tensor([[-1, 200], [3, 4]]), "tensor([[ -1, 200],\n        [  3,   4]])"),
    (lambda: nb.tensor([True, False]), "tensor([ True, False])"),
    (lambda: nb.tensor([1, 2], dtype=nb.int32), "tensor([1, 2], dtype=nbgrad.int32)"),
    (lambda: nb.tensor([1.0, 2.0]).double(), "tensor([1., 2.], dtype=nbgrad.float64)"),
    (lambda: nb.tensor([]), "tensor([])"),
    (lambda: nb.zeros(0, 3), "tensor([], size=(0, 3))"),
    (lambda: nb.zeros(0, dtype=nb.int64), "tensor([], dtype=nbgrad.int64)"),
    (lambda: nb.zeros(2, 0, dtype=nb.bool), "tensor([], size=(2, 0), dtype=nbgrad.bool)"),
    (lambda: nb.ones(2, 2, requires_grad=True), "tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)"),
    (lambda: nb.tensor(3.5, requires_grad=True) * 1, "tensor(3.5000, grad_fn=<MulBackward0>)"),
    (lambda: nb.arange(2000), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"),
    (lambda: nb.zeros(100, 100),
     "tensor([[0., 0., 0.,  ..., 0., 0., 0.],\n"
     "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
     "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
     "        ...,\n"
     "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
     "        [0., 0., 0.,  ..., 0., 0., 0.],\n"
     "        [0., 0., 0.,  ..., 0., 0., 0.]])"),
    (lambda: nb.arange(20).reshape(2, 2, 5),
     "tensor([[[ 0,  1,  2,  3,  4],\n"
     "         [ 5,  6,  7,  8,  9]],\n\n"
     "        [[10, 11, 12, 13, 14],\n"
     "         [15, 16, 17, 18, 19]]])"),
    (lambda: nb.arange(1, 13, dtype=nb.float32).requires_grad_() / 8,
     "tensor([0.1250, 0.2500, 0.3750, 0.5000, 0.6250, 0.7500, 0.8750, 1.0000, 1.1250,\n"
     "        1.2500, 1.3750, 1.5000], grad_fn=<DivBackward0>)"),
    (lambda: (nb.arange(1, 10, dtype=nb.float32) / 8).requires_grad_() * 1,
     "tensor([0.1250, 0.2500, 0.3750, 0.5000, 0.6250, 0.7500, 0.8750, 1.0000, 1.1250],\n"
     "       grad_fn=<MulBackward0>)"),
])
def test_repr_literal(build, text):
    t = build()
    assert repr(t) == text and str(t) == text
    if t.dim():  # a 0-d tensor formats as its number
        assert format(t) == text and f"{t}" == text


def test_parameter_repr_and_str():
    p = nb.nn.Parameter(nb.zeros(2))
    assert repr(p) == str(p) == "Parameter containing:\ntensor([0., 0.], requires_grad=True)"


def test_format_of_a_0d_tensor_is_its_number():
    loss = nb.tensor(0.123456, requires_grad=True) * 2
    assert f"{loss:.4f}" == "0.2469"
    assert "{:.2e}".format(nb.tensor(31415.9)) == "3.14e+04"  # noqa: UP032
    assert f"{nb.tensor(7):>4d}" == "   7"
    assert f"{nb.tensor(True)}" == "True"
    assert f"{nb.tensor(2.5)}" == "2.5"  # the Python number's str, not the tensor's
    assert "{}".format(nb.tensor(2.0)) == "2.0"  # noqa: UP032


def test_format_of_other_tensors_is_str_or_a_type_error():
    t = nb.tensor([1.5, 2.0])
    assert format(t) == "{}".format(t) == f"{t}" == str(t)  # noqa: UP032
    for other in (t, nb.tensor([1.5])):  # one element but 1-d: not a number, as in PyTorch
        with pytest.raises(TypeError, match=r"unsupported format string passed to Tensor\.__format__"):
            f"{other:.2f}"
    with pytest.raises(TypeError, match=r"unsupported format string passed to Parameter\.__format__"):
        f"{nb.nn.Parameter(nb.tensor(1.0)):.2f}"


@pytest.mark.parametrize("spec", ["", ".4f", ".2e", "10.3g", "+.1f"])
@pytest.mark.parametrize("name", ["normal_1e0_scalar_float32", "normal_1e-6_scalar_float64",
                                  "grad_fn_scalar", "grad_fn_sum"])
def test_format_matches_pytorch(name, spec):
    torch = torch_or_skip()
    ours, theirs = _texts(name, torch)
    assert format(ours, spec) == format(theirs, spec)


@pytest.mark.parametrize("spec", ["d", "5d", ""])
def test_format_of_integers_matches_pytorch(spec):
    torch = torch_or_skip()
    assert format(nb.tensor(-12), spec) == format(torch.tensor(-12), spec)
