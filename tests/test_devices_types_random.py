"""Devices, the legacy tensor types and random sampling, as PyTorch (compared with it where installed)."""
import pickle

import numpy as np
import pytest

import nbgrad as nb

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


# --- devices ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [("cpu",), ("cuda",), ("cuda:1",), ("cuda", 2), ("cpu", 0), ("mps",), ("meta",)])
def test_device_construction_str_repr_and_equality_as_pytorch(args):
    d = nb.device(*args)
    assert (d.type, d.index) == (args[0].split(":")[0], int(args[0][5:]) if ":" in args[0] else
                                 (args[1] if len(args) > 1 else None))
    assert nb.device(d) == d and hash(nb.device(d)) == hash(d) and pickle.loads(pickle.dumps(d)) == d
    if torch is not None:
        t = torch.device(*args)
        assert (str(d), repr(d)) == (str(t), repr(t))


@pytest.mark.parametrize("args, error", [(("foo",), RuntimeError), (("cuda:0", 1), RuntimeError),
                                         (("cuda:x",), RuntimeError), ((0,), RuntimeError), ((1.5,), TypeError)])
def test_bad_devices_raise(args, error):
    with pytest.raises(error):
        nb.device(*args)


def test_a_device_is_not_equal_to_its_name():
    assert nb.device("cpu") != "cpu" and nb.device("cpu") == nb.device("cpu") and nb.ones(1).device == nb.device("cpu")


def test_the_cpu_is_accepted_everywhere_and_other_devices_refused_clearly():
    cpu = nb.device("cpu")
    for make in (lambda d: nb.zeros(2, device=d), lambda d: nb.ones(2, device=d), lambda d: nb.empty(2, device=d),
                 lambda d: nb.full((2,), 1.0, device=d), lambda d: nb.arange(3, device=d),
                 lambda d: nb.tensor([1.0], device=d), lambda d: nb.rand(2, device=d), lambda d: nb.randn(2, device=d),
                 lambda d: nb.randint(0, 3, (2,), device=d), lambda d: nb.zeros_like(nb.ones(2), device=d),
                 lambda d: nb.randperm(3, device=d), lambda d: nb.eye(2, device=d),
                 lambda d: nb.linspace(0, 1, 3, device=d),
                 lambda d: nb.FloatTensor([1.0], device=d), lambda d: nb.ones(2).new_zeros(2, device=d)):
        for good in ("cpu", "cpu:0", cpu, None):
            assert make(good).device == cpu
        with pytest.raises(RuntimeError, match="CPU only.*cuda"):
            make("cuda")
        with pytest.raises(AssertionError):  # PyTorch built without CUDA raises an AssertionError
            make(nb.device("cuda", 0))


def test_cpu_and_cuda_methods():
    x = nb.ones(2)
    assert x.cpu() is x and x.is_cpu and not x.is_cuda and x.get_device() == -1 and not x.is_pinned()
    with pytest.raises(RuntimeError, match="CPU only"):
        x.cuda()


def test_a_script_that_asks_for_a_gpu_runs_on_the_cpu():
    device = nb.device("cuda" if nb.cuda.is_available() else "cpu")
    model = nb.nn.Linear(3, 2).to(device)
    out = model(nb.randn(4, 3).to(device))
    assert out.device == device and out.shape == (4, 2)
    assert nb.cuda.device_count() == 0 and not nb.cuda.is_initialized() and not nb.cuda.is_bf16_supported()
    assert nb.cuda.manual_seed(0) is None and nb.cuda.manual_seed_all(0) is None and nb.cuda.memory_allocated() == 0
    assert not nb.backends.mps.is_available() and not nb.backends.mps.is_built()
    assert not nb.backends.cudnn.is_available()
    nb.backends.cudnn.benchmark = True
    nb.backends.cudnn.deterministic = True
    nb.backends.cuda.matmul.allow_tf32 = True
    assert not nb.accelerator.is_available() and nb.accelerator.current_accelerator() is None
    for needs_a_gpu in (nb.cuda.current_device, nb.cuda.synchronize, nb.cuda.get_device_name):
        with pytest.raises(RuntimeError, match="no CUDA device"):
            needs_a_gpu()


def test_default_device_and_dtype():
    nb.set_default_device("cpu")
    nb.set_default_device(None)
    assert nb.get_default_device() == nb.device("cpu")
    with pytest.raises(RuntimeError, match="CPU only"):
        nb.set_default_device("cuda")
    try:
        nb.set_default_dtype(nb.float64)
        assert nb.get_default_dtype() is nb.float64
        assert nb.ones(2).dtype is nb.float64 and nb.tensor([1.5]).dtype is nb.float64
        assert nb.rand(1).dtype is nb.float64
        assert (nb.ones(2, dtype=nb.float32) * 1.5).dtype is nb.float32
        assert nb.nn.Linear(2, 2).weight.dtype is nb.float64
    finally:
        nb.set_default_dtype(nb.float32)
    assert nb.ones(1).dtype is nb.float32
    with pytest.raises(TypeError, match="only floating-point types"):
        nb.set_default_dtype(nb.int64)


# --- types -------------------------------------------------------------------------------------

TYPES = ["FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor"]


@pytest.mark.parametrize("name", TYPES)
def test_legacy_types_construct_and_match(name):
    kind = getattr(nb, name)
    values = kind([1, 0, 2])
    assert isinstance(values, kind) and isinstance(values, nb.Tensor) and values.type() == f"torch.{name}"
    assert kind(2, 3).shape == (2, 3) and kind().shape == (0,) and kind(values) is values
    others = [getattr(nb, n) for n in TYPES if n != name]
    assert not any(isinstance(values, other) for other in others)
    if torch is not None:
        expected = getattr(torch, name)([1, 0, 2])
        assert values.tolist() == expected.tolist() and str(values.dtype)[7:] == str(expected.dtype)[6:]


def test_legacy_type_conversions_and_errors():
    x = nb.tensor([1.7, -2.5])
    assert x.type() == "torch.FloatTensor"
    assert x.type(nb.float64).dtype is nb.float64 and x.type(nb.LongTensor).tolist() == [1, -2]
    assert x.type("torch.IntTensor").dtype is nb.int32 and x.type(nb.FloatTensor) is x
    assert nb.LongTensor([1.7]).tolist() == [1]
    assert x.float() is x and x.double().dtype is nb.float64 and x.long().dtype is nb.int64
    assert x.int().dtype is nb.int32 and x.bool().tolist() == [True, True]
    with pytest.raises(ValueError, match="invalid type: 'float'"):
        x.type("float")
    with pytest.raises(RuntimeError, match="CPU only"):
        x.type("torch.cuda.FloatTensor")
    with pytest.raises(TypeError):
        nb.FloatTensor(2.5)
    with pytest.raises(TypeError, match="float64"):
        nb.FloatTensor(nb.ones(2, dtype=nb.float64))


def test_new_factories_take_the_tensors_dtype():
    x = nb.ones(2, dtype=nb.float64)
    assert x.new_ones(3).dtype is nb.float64 and x.new_zeros((2, 2)).shape == (2, 2)
    assert x.new_full((2,), 3).tolist() == [3.0, 3.0] and x.new_empty(4).shape == (4,)
    assert nb.ones(2, dtype=nb.int64).new_full((2,), 3.5).tolist() == [3, 3]
    assert x.new_tensor([1, 2]).dtype is nb.float64 and x.new_ones(2, dtype=nb.int32).dtype is nb.int32
    assert x.new_ones(2, requires_grad=True).requires_grad
    with pytest.warns(UserWarning, match="detach"):
        copied = x.new_tensor(x)
    assert copied.tolist() == [1.0, 1.0] and not copied.requires_grad


# --- random --------------------------------------------------------------------------------------

def test_samplers_repeat_with_a_seed_and_with_a_generator():
    def draw(**kw):
        return [nb.rand(3, **kw).tolist(), nb.randn(3, **kw).tolist(), nb.randint(0, 9, (3,), **kw).tolist(),
                nb.randperm(5, **kw).tolist(), nb.normal(0.0, 1.0, size=(2,), **kw).tolist()]

    nb.manual_seed(3)
    first = draw()
    nb.manual_seed(3)
    assert draw() == first
    g = nb.Generator().manual_seed(5)
    from_g = draw(generator=g)
    assert draw(generator=nb.Generator().manual_seed(5)) == from_g and g.initial_seed() == 5
    state = nb.get_rng_state()
    again = nb.rand(4).tolist()
    nb.set_rng_state(state)
    assert nb.rand(4).tolist() == again
    assert isinstance(nb.manual_seed(1), nb.Generator) and nb.initial_seed() == 1


def test_normal_overloads_and_their_statistics():
    nb.manual_seed(0)
    n = 20000
    mean, std = nb.full((n,), 2.0), nb.full((n,), 3.0)
    for sample in (nb.normal(mean, std), nb.normal(mean, 3.0), nb.normal(2.0, std), nb.normal(2.0, 3.0, size=(n,)),
                   nb.normal(2.0, 3.0, (n,))):
        values = sample.numpy()
        assert sample.shape == (n,) and sample.dtype is nb.float32
        assert abs(values.mean() - 2) < 0.1 and abs(values.std() - 3) < 0.1
    assert nb.normal(nb.zeros(2, dtype=nb.float64), 1.0).dtype is nb.float64
    assert nb.normal(nb.zeros(2, 1), nb.ones(3)).shape == (2, 3)  # broadcast
    with pytest.raises(RuntimeError, match="must match"):
        nb.normal(nb.zeros(2), nb.ones(3))
    with pytest.raises(RuntimeError, match="std >= 0.0"):
        nb.normal(0.0, -1.0, (2,))
    with pytest.raises(TypeError, match="size="):
        nb.normal(0.0, 1.0)


def test_randperm_bernoulli_multinomial():
    nb.manual_seed(0)
    assert sorted(nb.randperm(10).tolist()) == list(range(10)) and nb.randperm(3).dtype is nb.int64
    assert nb.randperm(4, dtype=nb.float32).dtype is nb.float32 and nb.randperm(0).shape == (0,)
    p = nb.tensor([0.0, 1.0, 0.3])
    drawn = nb.bernoulli(p.expand(5000, 3)).numpy()
    assert set(np.unique(drawn)) <= {0.0, 1.0} and drawn[:, 0].sum() == 0 and drawn[:, 1].sum() == 5000
    assert abs(drawn[:, 2].mean() - 0.3) < 0.03 and nb.bernoulli(p, p=1.0).tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(RuntimeError, match=r"p_in >= 0 && p_in <= 1"):
        nb.bernoulli(nb.tensor([1.5]))
    weights = nb.tensor([0.0, 1.0, 3.0])
    samples = nb.multinomial(weights, 4000, replacement=True)
    counts = np.bincount(samples.numpy(), minlength=3)
    assert samples.dtype is nb.int64 and counts[0] == 0 and abs(counts[2] / 4000 - 0.75) < 0.03
    rows = nb.multinomial(nb.tensor([[1.0, 1.0, 1.0], [0.0, 2.0, 1.0]]), 2)
    assert rows.shape == (2, 2) and all(len(set(r)) == 2 for r in rows.tolist()) and 0 not in rows.tolist()[1]
    for bad, match in ((lambda: nb.multinomial(nb.tensor([0.0, 0.0]), 1), "sum of probabilities <= 0"),
                       (lambda: nb.multinomial(nb.tensor([0.5, 0.5]), 3), "n_sample > prob_dist.size"),
                       (lambda: nb.multinomial(nb.tensor([-1.0, 2.0]), 1), "element < 0"),
                       (lambda: nb.multinomial(nb.tensor([0.0, 1.0]), 2), "not enough non-negative")):
        with pytest.raises(RuntimeError, match=match):
            bad()


def test_in_place_samplers():
    nb.manual_seed(0)
    x = nb.empty(20000)
    version = x._version
    assert x.uniform_(-1, 3) is x and x._version > version
    values = x.numpy()
    assert values.min() >= -1 and values.max() < 3 and abs(values.mean() - 1) < 0.05
    assert abs(nb.empty(20000).uniform_(**{"from": 2, "to": 4}).numpy().mean() - 3) < 0.05
    values = x.normal_(1.0, 2.0).numpy()
    assert abs(values.mean() - 1) < 0.1 and abs(values.std() - 2) < 0.1
    assert abs(x.exponential_(2.0).numpy().mean() - 0.5) < 0.05
    assert set(np.unique(x.bernoulli_(0.5).numpy())) == {0.0, 1.0}
    assert nb.empty(2).bernoulli_(nb.tensor([0.0, 1.0])).tolist() == [0.0, 1.0]
    ints = nb.empty(1000, dtype=nb.int64).random_(5)
    assert ints.dtype is nb.int64 and set(np.unique(ints.numpy())) == {0, 1, 2, 3, 4}
    assert set(np.unique(nb.empty(1000).random_(2, 4).numpy())) == {2.0, 3.0}
    assert nb.empty(100).random_().numpy().max() > 1000
    for bad, error in ((lambda: nb.empty(2).uniform_(2, 1), RuntimeError),
                       (lambda: nb.empty(2, dtype=nb.int64).uniform_(), NotImplementedError),
                       (lambda: nb.empty(2).exponential_(-1), RuntimeError),
                       (lambda: nb.empty(2).normal_(0, -1), RuntimeError),
                       (lambda: nb.empty(2).random_(3, 3), RuntimeError),
                       (lambda: nb.rand_like(nb.ones(2, dtype=nb.int64)), NotImplementedError),
                       (lambda: nb.zeros(2, requires_grad=True).uniform_(), RuntimeError)):
        with pytest.raises(error):
            bad()
    w = nb.zeros(3, requires_grad=True)
    with nb.no_grad():
        w.uniform_(-0.1, 0.1)  # initialising a parameter
    assert w.requires_grad and w.is_leaf and np.all(np.abs(w.detach().numpy()) <= 0.1)


def test_like_samplers():
    x = nb.ones(2, 3, dtype=nb.float64)
    assert nb.rand_like(x).dtype is nb.float64 and nb.randn_like(x).shape == (2, 3)
    assert nb.randint_like(x, 5).dtype is nb.float64 and nb.randint_like(x, 1, 5).numpy().min() >= 1


@needs_torch
def test_error_messages_match_pytorch():
    cases = [lambda m: m.normal(0.0, -1.0, (2,)), lambda m: m.empty(2).uniform_(2, 1),
             lambda m: m.empty(2).exponential_(-1), lambda m: m.multinomial(m.tensor([0.0, 0.0]), 1),
             lambda m: m.multinomial(m.tensor([0.5, 0.5]), 3), lambda m: m.device("cuda:0", 1),
             lambda m: m.set_default_dtype(m.int64), lambda m: m.ones(1).type("float")]
    for case in cases:
        with pytest.raises(Exception) as expected:
            case(torch)
        with pytest.raises(type(expected.value)) as found:
            case(nb)
        assert str(expected.value).split("\n")[0][:40] in str(found.value)
