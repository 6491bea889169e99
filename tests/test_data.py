"""nbgrad.utils.data against torch.utils.data: datasets, samplers, the DataLoader and default_collate.

The ``ref`` tests build the same datasets for both libraries (from the same NumPy values) and
compare what comes out: values, dtypes, shapes and the structure (list, tuple, dict, namedtuple),
and the errors' types and messages. They skip without PyTorch; the others need only nbgrad.
"""
import collections
import warnings

import numpy as np
import pytest

import nbgrad as nb
from nbgrad.utils import data
from nbgrad.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    random_split,
)
from nbgrad.utils.data import dataloader as nb_dataloader


@pytest.fixture
def ref():
    return pytest.importorskip("torch")


def libs(torch):
    """(tensor library, its data module) for nbgrad and for PyTorch."""
    import torch.utils.data

    return [(nb, data), (torch, torch.utils.data)]


Point = collections.namedtuple("Point", ["x", "y"])

FEATURES = np.random.default_rng(0).standard_normal((7, 3)).astype(np.float32)
LABELS = np.arange(7) % 3


def items(lib, kind):
    """Seven samples of one kind, built with ``lib`` (nbgrad or torch) from the same values."""
    f, y = FEATURES, LABELS
    n = len(f)
    if kind == "tensors":
        return [lib.tensor(f[i]) for i in range(n)]
    if kind == "tensor_pairs":
        return [(lib.tensor(f[i]), lib.tensor(int(y[i]))) for i in range(n)]
    if kind == "python_numbers":
        return [(float(f[i, 0]), int(y[i]), bool(y[i] % 2)) for i in range(n)]
    if kind == "mixed_numbers":  # an int first, floats after: PyTorch's float32 inference
        return [(i if i == 0 else i + 0.5) for i in range(n)]
    if kind == "numpy_arrays":
        return [(f[i], f[i].astype(np.float64), np.array([y[i], y[i] + 1]), f[i] > 0) for i in range(n)]
    if kind == "numpy_scalars":
        return [(np.float32(f[i, 0]), np.float64(f[i, 1]), np.int64(y[i]), np.int32(y[i]), np.bool_(y[i] > 0))
                for i in range(n)]
    if kind == "dicts":
        return [{"x": lib.tensor(f[i]), "label": int(y[i]), "name": f"s{i}", "meta": {"w": float(i) / 2}}
                for i in range(n)]
    if kind == "namedtuples":
        return [Point(lib.tensor(f[i]), float(f[i, 2])) for i in range(n)]
    if kind == "lists":
        return [[lib.tensor(f[i]), int(y[i]), "abc"] for i in range(n)]
    if kind == "strings":
        return [f"item{i}" for i in range(n)]
    if kind == "nested":
        return [({"a": [i, 2.5 * i]}, (np.array([i, i + 1]), b"raw")) for i in range(n)]
    raise AssertionError(kind)


KINDS = ["tensors", "tensor_pairs", "python_numbers", "mixed_numbers", "numpy_arrays", "numpy_scalars", "dicts",
         "namedtuples", "lists", "strings", "nested"]


def items_dataset(data_module, samples):
    class Items(data_module.Dataset):
        def __init__(self, samples):
            self.samples = samples

        def __len__(self):
            return len(self.samples)

        def __getitem__(self, index):
            return self.samples[index]

    return Items(samples)


def plain(x):
    """A batch as nested Python values both libraries' batches compare equal by."""
    if isinstance(x, np.ndarray):
        return ("ndarray", str(x.dtype), x.tolist())
    if hasattr(x, "dtype") and hasattr(x, "tolist") and hasattr(x, "shape"):  # a tensor of either library
        if isinstance(x, np.generic):
            return (type(x).__name__, x.item())
        return ("tensor", str(x.dtype).split(".")[-1], tuple(x.shape), x.tolist())
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return (type(x).__name__, tuple(plain(v) for v in x))
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [plain(v) for v in x])
    if isinstance(x, dict):
        return ("dict", {k: plain(v) for k, v in x.items()})
    return (type(x).__name__, x)


def loaded(data_module, dataset, **kwargs):
    loader = data_module.DataLoader(dataset, **kwargs)
    return len(loader), [plain(batch) for batch in loader]


LOADER_CASES = [dict(), dict(batch_size=3), dict(batch_size=3, drop_last=True), dict(batch_size=7),
                dict(batch_size=10, drop_last=False), dict(batch_size=None)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("kwargs", LOADER_CASES, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_batches_match_pytorch(ref, kind, kwargs):
    got = [loaded(m, items_dataset(m, items(lib, kind)), **kwargs) for lib, m in libs(ref)]
    assert got[0] == got[1]


def test_batch_kinds_without_pytorch():
    x, y = next(iter(DataLoader(items_dataset(data, items(nb, "tensor_pairs")), batch_size=4)))
    assert x.shape == (4, 3) and x.dtype == nb.float32 and y.dtype == nb.int64 and y.tolist() == [0, 1, 2, 0]
    f, i, b = next(iter(DataLoader(items_dataset(data, items(nb, "python_numbers")), batch_size=3)))
    assert (f.dtype, i.dtype, b.dtype) == (nb.float64, nb.int64, nb.bool) and b.tolist() == [False, True, False]
    assert f.tolist() == [float(v) for v in FEATURES[:3, 0]]
    batch = next(iter(DataLoader(items_dataset(data, items(nb, "dicts")), batch_size=2)))
    assert list(batch) == ["x", "label", "name", "meta"] and batch["name"] == ["s0", "s1"]
    assert batch["meta"]["w"].tolist() == [0.0, 0.5] and batch["x"].shape == (2, 3)
    point = next(iter(DataLoader(items_dataset(data, items(nb, "namedtuples")), batch_size=2)))
    assert type(point) is Point and point.x.shape == (2, 3) and point.y.dtype == nb.float64
    arrays = next(iter(DataLoader(items_dataset(data, items(nb, "numpy_arrays")), batch_size=2)))
    assert isinstance(arrays, list) and [a.dtype for a in arrays] == [nb.float32, nb.float64, nb.int64, nb.bool]
    scalars = next(iter(DataLoader(items_dataset(data, items(nb, "numpy_scalars")), batch_size=2)))
    assert [a.dtype for a in scalars] == [nb.float32, nb.float64, nb.int64, nb.int32, nb.bool]
    assert next(iter(DataLoader(items_dataset(data, items(nb, "strings")), batch_size=2))) == ["item0", "item1"]
    single = next(iter(DataLoader(items_dataset(data, items(nb, "numpy_arrays")), batch_size=None)))
    assert isinstance(single, list) and single[0].shape == (3,) and single[0].dtype == nb.float32
    assert next(iter(DataLoader(items_dataset(data, [(1.5, "a")]), batch_size=None))) == [1.5, "a"]


def test_tensor_dataset_matches_pytorch_through_its_fast_path(ref):
    def run(lib, m, **kwargs):
        x, y = lib.tensor(FEATURES), lib.tensor(LABELS)
        full = m.TensorDataset(x, y)
        cases = [loaded(m, full, batch_size=3, **kwargs), loaded(m, full, batch_size=None),
                 loaded(m, m.Subset(full, [6, 0, 2, 5]), batch_size=3, **kwargs),
                 loaded(m, m.Subset(m.Subset(full, [6, 5, 4, 3]), [3, 0, 1]), batch_size=2, **kwargs),
                 loaded(m, full, batch_sampler=[[4, 1], [0, -1, 3]]),
                 loaded(m, full, sampler=[2, 2, 0], batch_size=2)]
        return cases

    got = [run(lib, m) for lib, m in libs(ref)]
    assert got[0] == got[1]
    assert run(nb, data, drop_last=True) == run(*libs(ref)[1], drop_last=True)
    # the one-gather path gives what the sample-by-sample path gives
    rows = TensorDataset(nb.tensor(FEATURES), nb.tensor(LABELS))
    assert loaded(data, rows, batch_size=3) == loaded(data, items_dataset(data, [rows[i] for i in range(7)]),
                                                      batch_size=3)


def test_tensor_dataset_keeps_gradients_like_pytorch(ref):
    def run(lib, m):
        x = lib.tensor(FEATURES, requires_grad=True)
        xb, yb = next(iter(m.DataLoader(m.TensorDataset(x, lib.tensor(LABELS)), batch_size=4)))
        (xb * 2).sum().backward()
        return type(xb.grad_fn).__name__, x.grad.tolist(), yb.tolist()

    assert run(nb, data) == run(*libs(ref)[1])


def test_collate_fn_samplers_and_batch_samplers_match_pytorch(ref):
    def run(lib, m):
        ds = items_dataset(m, items(lib, "tensor_pairs"))
        seq = m.SequentialSampler(ds)
        return [
            loaded(m, ds, batch_size=2, collate_fn=lambda batch: batch),
            loaded(m, ds, batch_size=3, collate_fn=lambda batch: len(batch)),
            loaded(m, ds, batch_size=None, collate_fn=lambda sample: sample[1]),
            loaded(m, ds, sampler=[5, 1, 3], batch_size=2),
            loaded(m, ds, sampler=seq, batch_size=4, drop_last=True),
            loaded(m, ds, sampler=[6, 0], batch_size=None),
            loaded(m, ds, batch_sampler=[[0, 2], [1], [6, 5, 4]]),
            loaded(m, ds, batch_sampler=m.BatchSampler(seq, 3, drop_last=False)),
            loaded(m, ds, shuffle=False, batch_size=5),
            (list(seq), len(seq)),
            [(list(m.BatchSampler(range(10), 3, drop_last)), len(m.BatchSampler(range(10), 3, drop_last)))
             for drop_last in (False, True)],
            list(m.BatchSampler(m.SequentialSampler(range(6)), 2, True)),
        ]

    got = [run(lib, m) for lib, m in libs(ref)]
    assert got[0] == got[1]


def test_datasets_match_pytorch(ref):
    def run(lib, m):
        a, b = items_dataset(m, list(range(4))), items_dataset(m, [10, 11])
        both = a + b
        stack_t = m.StackDataset(a, items_dataset(m, list("wxyz")))
        stack_d = m.StackDataset(num=a, t=m.TensorDataset(lib.tensor(FEATURES[:4])))
        return [
            type(both).__name__, len(both), [both[i] for i in range(6)], both[-1], both[-6], both.cumulative_sizes,
            len(m.ConcatDataset([a, b, a])), [m.ConcatDataset([a, b, a])[i] for i in (3, 4, 6, 9)],
            [m.Subset(a, [3, 1])[i] for i in range(2)], len(m.Subset(a, [3, 1])),
            loaded(m, both, batch_size=4), loaded(m, m.Subset(both, [5, 0, 4]), batch_size=2),
            plain(stack_t[1]), len(stack_t), loaded(m, stack_t, batch_size=3), plain(stack_d[2]),
            loaded(m, stack_d, batch_size=3),
            plain(m.TensorDataset(lib.tensor(FEATURES), lib.tensor(LABELS))[2]),
            plain(m.TensorDataset(lib.tensor(FEATURES))[1:3]),
        ]

    got = [run(lib, m) for lib, m in libs(ref)]
    assert got[0] == got[1]


def stream(m, samples, with_len=True):
    class Stream(m.IterableDataset):
        def __iter__(self):
            return iter(samples)

    if with_len:
        Stream.__len__ = lambda self: len(samples)
    return Stream()


def test_iterable_datasets_match_pytorch(ref):
    def run(lib, m):
        numbers = stream(m, list(range(7)))
        dicts = stream(m, [{"i": i, "x": lib.tensor(FEATURES[i])} for i in range(7)], with_len=False)
        chained = numbers + stream(m, [100, 101])
        return [
            loaded(m, numbers), loaded(m, numbers, batch_size=3), loaded(m, numbers, batch_size=3, drop_last=True),
            loaded(m, numbers, batch_size=None), type(chained).__name__, len(chained),
            [plain(b) for b in m.DataLoader(chained, batch_size=4)],
            [plain(b) for b in m.DataLoader(dicts, batch_size=5)],
            [plain(b) for b in m.DataLoader(dicts, batch_size=5, shuffle=False)],
            [plain(b) for b in m.DataLoader(m.ChainDataset([numbers, numbers]), batch_size=None)],
        ]

    got = [run(lib, m) for lib, m in libs(ref)]
    assert got[0] == got[1]
    loader = DataLoader(stream(data, list(range(5))), batch_size=2)
    assert len(loader) == 3 and [b.tolist() for b in loader] == [[0, 1], [2, 3], [4]]


def test_iterable_dataset_longer_than_its_len_warns_like_pytorch(ref):
    def run(m):
        class Liar(m.IterableDataset):
            def __iter__(self):
                return iter(range(4))

            def __len__(self):
                return 2

        loader = m.DataLoader(Liar(), batch_size=None)
        assert len(loader) == 2
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = [int(v) for v in loader]
        return values, [str(w.message).split(" was reported")[1] for w in caught]

    got = [run(m) for _, m in libs(ref)]
    assert got[0] == got[1] and len(got[0][1]) == 2


def test_default_collate_and_default_convert_match_pytorch(ref):
    def run(lib, m):
        cases = [[0, 1, 2], [True, False], [1.5, 2], [(0, 1), (2, 3)], [[0, 1], [2, 3]],
                 [{"A": 0, "B": 1}, {"A": 100, "B": 100}], [Point(0, 0), Point(1, 1)], ["a", "b"], [b"x", b"y"],
                 [np.array([1, 2], dtype=np.int32), np.array([3, 4], dtype=np.int32)], [np.array(1.5), np.array(2.5)],
                 [np.float32(1.5), np.float32(2)], [np.int64(1), np.int32(2)], [np.float64(1), np.float32(2)],
                 [lib.tensor(1.5), lib.tensor(2.5)], [lib.tensor([1, 2]), lib.tensor([3, 4])],
                 [lib.tensor([1, 2]), lib.tensor([3.5, 4])],
                 [collections.OrderedDict(a=1), collections.OrderedDict(a=2)]]
        converts = [0, 1.5, "s", np.array([0, 1]), np.float64(2.5), np.int32(3), np.bool_(True), (np.array(0), 1),
                    [np.array(1.0), "x"], {"a": np.array([1])}, Point(np.array(0), 1), np.array(["a", "b"]),
                    lib.tensor([1.5])]
        return [plain(m.default_collate(c)) for c in cases] + [plain(m.default_convert(c)) for c in converts]

    got = [run(lib, m) for lib, m in libs(ref)]
    assert got[0] == got[1]


def _errors(lib, m):
    """Calls that raise, for both libraries."""
    ds = items_dataset(m, items(lib, "tensor_pairs"))
    stream_ds = stream(m, [1, 2, 3])

    def late_set():
        loader = m.DataLoader(ds)
        loader.batch_size = 4

    def subset_override():
        class MySubset(m.Subset):
            def __getitem__(self, idx):
                return 0

        MySubset(ds, [0])

    return {
        "sampler and shuffle": lambda: m.DataLoader(ds, sampler=[0, 1], shuffle=True),
        "batch_sampler and batch_size": lambda: m.DataLoader(ds, batch_sampler=[[0]], batch_size=2),
        "batch_sampler and shuffle": lambda: m.DataLoader(ds, batch_sampler=[[0]], shuffle=True),
        "batch_sampler and sampler": lambda: m.DataLoader(ds, batch_sampler=[[0]], sampler=[0]),
        "batch_sampler and drop_last": lambda: m.DataLoader(ds, batch_sampler=[[0]], drop_last=True),
        "no batching and drop_last": lambda: m.DataLoader(ds, batch_size=None, drop_last=True),
        "batch_size 0": lambda: m.DataLoader(ds, batch_size=0),
        "batch_size float": lambda: m.DataLoader(ds, batch_size=2.0),
        "batch_size bool": lambda: m.BatchSampler(range(3), True, False),
        "drop_last int": lambda: m.DataLoader(ds, batch_size=2, drop_last=1),
        "num_workers negative": lambda: m.DataLoader(ds, num_workers=-1),
        "timeout negative": lambda: m.DataLoader(ds, timeout=-1),
        "timeout without workers": lambda: iter(m.DataLoader(ds, timeout=2)),
        "prefetch_factor without workers": lambda: m.DataLoader(ds, prefetch_factor=2),
        "persistent_workers without workers": lambda: m.DataLoader(ds, persistent_workers=True),
        "multiprocessing_context without workers": lambda: m.DataLoader(ds, multiprocessing_context="spawn"),
        "set batch_size later": late_set,
        "iterable and shuffle": lambda: m.DataLoader(stream_ds, shuffle=True),
        "iterable and sampler": lambda: m.DataLoader(stream_ds, sampler=[0, 1]),
        "iterable and batch_sampler": lambda: m.DataLoader(stream_ds, batch_sampler=[[0, 1]]),
        "random sampler replacement": lambda: m.RandomSampler(ds, replacement=1),
        "random sampler num_samples": lambda: m.RandomSampler(ds, num_samples=0),
        "random sampler empty": lambda: m.RandomSampler([]),
        "shuffle empty": lambda: m.DataLoader([], shuffle=True),
        "weighted num_samples": lambda: m.WeightedRandomSampler([1.0, 2.0], 0),
        "weighted num_samples bool": lambda: m.WeightedRandomSampler([1.0, 2.0], True),
        "weighted replacement": lambda: m.WeightedRandomSampler([1.0], 2, replacement=1),
        "weighted shape": lambda: m.WeightedRandomSampler([[1.0, 2.0]], 1),
        "weighted negative": lambda: list(m.WeightedRandomSampler([1.0, -1.0], 1)),
        "weighted zero sum": lambda: list(m.WeightedRandomSampler([0.0, 0.0], 1)),
        "weighted too many": lambda: list(m.WeightedRandomSampler([1.0, 2.0], 3, replacement=False)),
        "weighted nan": lambda: list(m.WeightedRandomSampler([1.0, float("nan")], 1)),
        "weighted infinity": lambda: list(m.WeightedRandomSampler([1.0, float("inf")], 1)),
        "split sum": lambda: m.random_split(range(10), [3, 3]),
        "split fractions": lambda: m.random_split(range(10), [0.5, 0.4]),
        "split fraction range": lambda: m.random_split(range(10), [1.5, -0.5]),
        "concat empty": lambda: m.ConcatDataset([]),
        "concat iterable": lambda: m.ConcatDataset([stream_ds]),
        "concat index": lambda: m.ConcatDataset([range(3)])[-5],
        "concat past the end": lambda: m.ConcatDataset([range(3)])[3],
        "chain of map-style": lambda: list(m.ChainDataset([range(3)])),
        "stack none": lambda: m.StackDataset(),
        "stack sizes": lambda: m.StackDataset(range(2), range(3)),
        "stack both kinds": lambda: m.StackDataset(range(2), a=range(2)),
        "stack dict sizes": lambda: m.StackDataset(a=range(2), b=range(3)),
        "dataset getitem": lambda: m.Dataset()[0],
        "sampler iter": lambda: iter(m.Sampler()),
        "subset override": subset_override,
        "tensor sizes": lambda: m.TensorDataset(lib.ones(3), lib.ones(4)),
        "collate sizes": lambda: m.default_collate([lib.ones(3), lib.ones(2)]),
        "collate ranks": lambda: m.default_collate([lib.ones(3), lib.ones(3, 1)]),
        "collate none": lambda: m.default_collate([None, None]),
        "collate lengths": lambda: m.default_collate([[1, 2], [1]]),
        "collate strings array": lambda: m.default_collate([np.array(["a"]), np.array(["b"])]),
        "collate objects array": lambda: m.default_collate([np.array([None]), np.array([None])]),
        "loader sizes": lambda: list(m.DataLoader(items_dataset(m, [lib.ones(2), lib.ones(3)]), batch_size=2)),
        "loader index": lambda: list(m.DataLoader(ds, sampler=[0, 9])),
    }


ERROR_CASES = list(_errors(nb, data))


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_match_pytorch(ref, case):
    raised = []
    for lib, m in libs(ref):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(Exception) as info:
                _errors(lib, m)[case]()
        raised.append(info.value)
    ours, theirs = raised
    assert isinstance(ours, type(theirs)), (ours, theirs)
    assert str(ours) == str(theirs)


def test_errors_without_pytorch():
    ds = TensorDataset(nb.ones(3))
    with pytest.raises(ValueError, match="Size mismatch between tensors"):
        TensorDataset(nb.ones(3), nb.ones(4))
    with pytest.raises(AssertionError, match="Size mismatch between tensors"):  # PyTorch's type too
        TensorDataset(nb.ones(3), nb.ones(4))
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive with batch_size"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="batch_size=None option disables auto-batching"):
        DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(RuntimeError, match="stack expects each tensor to be equal size"):
        default_collate([nb.ones(3), nb.ones(2)])
    with pytest.raises(TypeError, match="default_collate: batch must contain tensors, numpy arrays, numbers"):
        default_collate([None])
    with pytest.raises(ValueError, match="Sum of input lengths does not equal"):
        random_split(range(4), [1, 2])
    with pytest.raises(TypeError, match="generator should be None, an nbgrad.Generator, an int seed"):
        DataLoader(ds, shuffle=True, generator="seed")


def test_random_samplers_draw_permutations_and_counts():
    order = list(RandomSampler(range(10)))
    assert sorted(order) == list(range(10)) and len(RandomSampler(range(10))) == 10
    drawn = list(RandomSampler(range(10), replacement=True, num_samples=50))
    assert len(drawn) == 50 and set(drawn) <= set(range(10)) and len(set(drawn)) > 1
    assert all(type(i) is int for i in drawn)
    long = list(RandomSampler(range(10), num_samples=25))
    assert len(long) == 25 and sorted(long[:10]) == sorted(long[10:20]) == list(range(10))
    assert len(set(long[20:])) == 5
    assert len(RandomSampler(range(10), replacement=True, num_samples=3)) == 3
    subset = list(SubsetRandomSampler([3, 7, 11, 20]))
    assert sorted(subset) == [3, 7, 11, 20] and len(SubsetRandomSampler([3, 7])) == 2
    weighted = list(WeightedRandomSampler([0, 1, 3, 0], 2000))
    assert set(weighted) == {1, 2} and 2.0 < weighted.count(2) / weighted.count(1) < 4.5
    assert sorted(WeightedRandomSampler(nb.tensor([0.0, 1.0, 3.0, 2.0]), 3, replacement=False)) == [1, 2, 3]
    zeros_last = list(WeightedRandomSampler([1.0, 0.0, 0.0, 2.0], 4, replacement=False))
    assert sorted(zeros_last[:2]) == [0, 3] and zeros_last[2:] == [1, 2]  # PyTorch: the zeros last too
    sampler = WeightedRandomSampler([1.0, 2.0], 5)
    assert sampler.weights.dtype == nb.float64 and len(sampler) == 5 and sampler.replacement


def test_random_samplers_are_repeatable():
    def draws(**kwargs):
        return ([list(RandomSampler(range(20), **kwargs)) for _ in range(2)],
                list(RandomSampler(range(20), replacement=True, **kwargs)),
                list(SubsetRandomSampler(list(range(5, 25)), **kwargs)),
                list(WeightedRandomSampler([1.0] * 20, 10, **kwargs)))

    nb.manual_seed(5)
    first = draws()
    nb.manual_seed(5)
    assert draws() == first
    assert first[0][0] != first[0][1]  # a new order each pass
    assert draws(generator=3) == draws(generator=3)
    numpy_generator = np.random.default_rng(3)
    assert list(RandomSampler(range(20), generator=numpy_generator)) == list(RandomSampler(range(20), generator=3))
    assert draws(generator=3) != draws(generator=4)
    sampler = RandomSampler(range(20), generator=7)
    assert list(sampler) != list(sampler)  # an int seed: the generator is made once, epochs differ


def test_shuffled_loader_is_a_permutation_each_epoch_and_repeatable():
    rows = TensorDataset(nb.arange(20), nb.arange(20) * 10)
    nb.manual_seed(1)
    loader = DataLoader(rows, batch_size=6, shuffle=True)
    epochs = [[v for x, _ in loader for v in x.tolist()] for _ in range(3)]
    assert all(sorted(e) == list(range(20)) for e in epochs) and epochs[0] != epochs[1]
    assert all((y == x * 10).all() for x, y in loader)
    nb.manual_seed(1)
    assert [[v for x, _ in loader for v in x.tolist()] for _ in range(3)] == epochs
    # the order is drawn as each epoch starts: a seed set after the loader is made counts
    nb.manual_seed(2)
    again = [v for x, _ in loader for v in x.tolist()]
    nb.manual_seed(2)
    assert [v for x, _ in DataLoader(rows, batch_size=6, shuffle=True) for v in x.tolist()] == again
    seeded = [[v for x, _ in DataLoader(rows, batch_size=6, shuffle=True, generator=9) for v in x.tolist()]
              for _ in range(2)]
    assert seeded[0] == seeded[1]


def test_random_split_matches_pytorch_lengths(ref):
    for n, lengths in [(10, [0.8, 0.2]), (11, [0.5, 0.5]), (7, [0.3, 0.3, 0.4]), (5, [0.1, 0.1, 0.8]),
                       (3, [1.0]), (10, [3, 7]), (4, [0, 4]), (101, [0.25] * 4), (9, [1 / 3] * 3)]:
        with warnings.catch_warnings(record=True) as ours_warned:
            warnings.simplefilter("always")
            ours = random_split(range(n), lengths, generator=0)
        with warnings.catch_warnings(record=True) as theirs_warned:
            warnings.simplefilter("always")
            theirs = ref.utils.data.random_split(range(n), lengths, generator=ref.Generator().manual_seed(0))
        assert [len(s) for s in ours] == [len(s) for s in theirs], (n, lengths)
        assert [str(w.message) for w in ours_warned] == [str(w.message) for w in theirs_warned]
        assert all(type(s) is Subset for s in ours)


def test_random_split_is_disjoint_and_repeatable():
    parts = random_split(range(10, 30), [0.5, 0.3, 0.2], generator=42)
    assert [len(p) for p in parts] == [10, 6, 4]
    values = [p[i] for p in parts for i in range(len(p))]
    assert sorted(values) == list(range(10, 30))
    assert [p.indices for p in random_split(range(10, 30), [0.5, 0.3, 0.2], generator=42)] == [
        p.indices for p in parts]
    nb.manual_seed(3)
    first = [p.indices for p in random_split(range(8), [5, 3])]
    nb.manual_seed(3)
    assert [p.indices for p in random_split(range(8), [5, 3])] == first
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(range(2), [0.9, 0.1])
    rows = TensorDataset(nb.arange(10).reshape(5, 2))
    train, test = random_split(rows, [3, 2], generator=np.random.default_rng(0))
    batch = next(iter(DataLoader(train, batch_size=3)))[0]
    assert sorted(r[0] // 2 for r in batch.tolist()) == sorted(train.indices)


def test_num_workers_loads_in_process_and_warns_once(monkeypatch):
    monkeypatch.setattr(nb_dataloader, "_warned_in_process", False)
    ds = items_dataset(data, items(nb, "dicts"))
    expected = loaded(data, ds, batch_size=3)
    called = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = DataLoader(ds, batch_size=3, num_workers=2, worker_init_fn=called.append)
        second = DataLoader(ds, batch_size=3, num_workers=4, prefetch_factor=4, persistent_workers=True,
                            timeout=5, multiprocessing_context="spawn", pin_memory=True)
        results = [loaded(data, ds, batch_size=3, num_workers=2), (len(first), [plain(b) for b in first]),
                   (len(second), [plain(b) for b in second]), (len(second), [plain(b) for b in second])]
    assert [w.category for w in caught] == [UserWarning]
    assert "main process" in str(caught[0].message) and caught[0].filename == __file__
    assert all(r == expected for r in results)
    assert first.prefetch_factor == 2 and second.prefetch_factor == 4 and called == []
    assert data.get_worker_info() is None


def test_loader_options_and_iteration():
    ds = items_dataset(data, items(nb, "tensor_pairs"))
    loader = DataLoader(ds, batch_size=3, pin_memory=True)
    assert len(loader) == 3 and len(iter(loader)) == 3
    assert [plain(b) for b in loader] == [plain(b) for b in loader]  # iterating again starts over
    it = iter(loader)
    assert iter(it) is it and plain(next(it)) == plain(next(iter(loader)))
    assert len(DataLoader(ds, batch_size=3, drop_last=True)) == 2 and len(DataLoader(ds, batch_size=None)) == 7
    assert isinstance(loader.sampler, SequentialSampler) and isinstance(loader.batch_sampler, BatchSampler)
    assert loader.collate_fn is default_collate and loader.batch_size == 3 and not loader.drop_last
    shuffled = DataLoader(ds, shuffle=True)
    assert isinstance(shuffled.sampler, RandomSampler) and len(shuffled) == 7
    custom = DataLoader(ds, batch_sampler=[[0, 1], [2]])
    assert custom.batch_size is None and len(custom) == 2
    with pytest.raises(ValueError, match="dataset attribute should not be set after DataLoader is initialized"):
        loader.dataset = ds
    loader.num_workers = 0  # the others may change
    assert DataLoader(ds, generator=np.random.default_rng(0)).generator is not None


def test_existing_api_and_pytorch_import_paths():
    import nbgrad.utils.data._utils.collate as collate_module
    from nbgrad.utils.data.dataloader import default_collate as from_dataloader
    from nbgrad.utils.data.dataset import TensorDataset as from_dataset
    from nbgrad.utils.data.sampler import Sampler

    assert nb.utils.data.DataLoader is DataLoader and from_dataset is TensorDataset
    assert from_dataloader is default_collate and nb.utils.data.default_convert is collate_module.default_convert
    assert nb.Tensor in collate_module.default_collate_fn_map

    class Ints(Dataset[int]):  # generic, as PyTorch's
        def __getitem__(self, index):
            return index

        def __len__(self):
            return 3

    class Evens(Sampler[int]):
        def __iter__(self):
            return iter([0, 2])

        def __len__(self):
            return 2

    assert [b.tolist() for b in DataLoader(Ints(), batch_size=2)] == [[0, 1], [2]]
    assert [b.tolist() for b in DataLoader(Ints(), sampler=Evens(), batch_size=5)] == [[0, 2]]
    assert isinstance(Ints() + Ints(), ConcatDataset) and len(Ints() + Ints()) == 6
    assert issubclass(IterableDataset, Dataset)
    # the batches are lists, as PyTorch's (the DataLoader gave tuples before)
    assert isinstance(next(iter(DataLoader(TensorDataset(nb.ones(2), nb.ones(2))))), list)


def test_collate_extends_through_its_map():
    from nbgrad.utils.data._utils.collate import collate, default_collate_fn_map

    class Box:
        def __init__(self, v):
            self.v = v

    def collate_box(batch, *, collate_fn_map=None):
        return sum(b.v for b in batch)

    assert collate([Box(1), Box(2)], collate_fn_map={**default_collate_fn_map, Box: collate_box}) == 3
    assert collate([(Box(1), 2.5), (Box(3), 1.0)], collate_fn_map={Box: collate_box, float: lambda b, **k: b}) == [
        4, (2.5, 1.0)]


def test_numpy_dtypes_nbgrad_lacks_are_widened():
    images = [np.full((2, 2), i, dtype=np.uint8) for i in range(3)]
    batch = default_collate(images)
    assert batch.dtype == nb.int64 and batch.shape == (3, 2, 2) and batch[2].tolist() == [[2, 2], [2, 2]]
    assert default_collate([np.float16(1.5), np.float16(2)]).dtype == nb.float32
    assert data.default_convert(np.arange(3, dtype=np.int16)).dtype == nb.int64


def test_an_nbgrad_generator_drives_the_samplers_and_random_split():
    import nbgrad as nb
    from nbgrad.utils.data import DataLoader, RandomSampler, random_split

    def orders(seed):
        g = nb.Generator().manual_seed(seed)
        split = [list(part.indices) for part in random_split(range(10), [0.6, 0.4], generator=g)]
        loader = DataLoader(list(range(8)), batch_size=8, shuffle=True, generator=g)
        return split, [batch.tolist() for batch in loader], list(RandomSampler(range(5), generator=g))

    assert orders(3) == orders(3) and orders(3) != orders(4)
