"""save/load, the batch iterator and the bundled digits."""
import numpy as np
import pytest

import nbgrad as nb
from nbgrad.examples.data import load_digits
from nbgrad.utils.data import DataLoader, TensorDataset


def test_save_load_round_trip_keeps_values_dtypes_and_structure(tmp_path):
    state = {
        "model": {"0.weight": nb.randn(3, 2), "0.bias": nb.tensor(2.5, dtype=nb.float64)},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": nb.ones(2, dtype=nb.float64)}},
                      "param_groups": [{"lr": 0.1, "params": [0, 1], "nesterov": False, "betas": (0.9, 0.99)}]},
        "labels": nb.tensor([1, 2, 3]), "mask": nb.tensor([True, False]), "note": None, "name": "mlp",
    }
    path = tmp_path / "checkpoint"  # no suffix: the file is written exactly there
    nb.save(state, path)
    assert path.exists()
    loaded = nb.load(path)
    assert loaded["name"] == "mlp" and loaded["note"] is None
    assert loaded["optimizer"]["state"][0]["step"] == 3  # int keys stay ints
    assert loaded["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.99)
    for key in ("0.weight", "0.bias"):
        a, b = state["model"][key], loaded["model"][key]
        assert a.dtype == b.dtype and a.shape == b.shape and a.tolist() == b.tolist()
    assert loaded["labels"].dtype == nb.int64 and loaded["mask"].tolist() == [True, False]
    with np.load(path, allow_pickle=False) as raw:  # nothing in it needs pickle
        assert len(raw.files) == 6


def test_save_a_tensor_that_requires_grad_and_a_model(tmp_path):
    w = nb.ones(2, 2, requires_grad=True)
    nb.save(w, tmp_path / "w.npz")
    assert nb.load(tmp_path / "w.npz").tolist() == [[1.0, 1.0], [1.0, 1.0]]
    model = nb.nn.Linear(3, 2)
    nb.save(model.state_dict(), tmp_path / "m.npz")
    other = nb.nn.Linear(3, 2)
    other.load_state_dict(nb.load(tmp_path / "m.npz"))
    assert other.weight.tolist() == model.weight.tolist()


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        nb.load(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(ValueError, match="is not a file written by nbgrad.save"):
        nb.load(corrupt)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.ones(3))
    with pytest.raises(ValueError, match="no nbgrad structure record"):
        nb.load(foreign)
    with pytest.raises(TypeError, match=r"cannot store an object of type set \(at obj\['bad'\]\)"):
        nb.save({"bad": {1, 2}}, tmp_path / "bad.npz")


def test_data_loader_batches_and_shuffles_reproducibly():
    data = TensorDataset(nb.arange(10), nb.arange(10) * 2)
    loader = DataLoader(data, batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [len(x) for x, _ in batches] == [4, 4, 2]
    assert all((y == x * 2).all() for x, y in batches)
    assert len(DataLoader(data, batch_size=4, drop_last=True)) == 2
    assert [len(x) for x, _ in DataLoader(data, batch_size=4, drop_last=True)] == [4, 4]

    def order(seed):
        return [v for x, _ in DataLoader(data, batch_size=3, shuffle=True, generator=seed) for v in x.tolist()]

    assert sorted(order(0)) == list(range(10)) and order(0) == order(0) and order(0) != order(1)
    nb.manual_seed(3)
    first = [x.tolist() for x, _ in DataLoader(data, batch_size=5, shuffle=True)]
    nb.manual_seed(3)
    assert [x.tolist() for x, _ in DataLoader(data, batch_size=5, shuffle=True)] == first


def test_data_errors():
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(nb.ones(3), nb.ones(4))
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        DataLoader(TensorDataset(nb.ones(3)), batch_size=0)


def test_load_digits():
    x_train, y_train, x_test, y_test = load_digits()
    assert len(x_train) + len(x_test) == 1797 and x_train.shape[1] == 64
    assert x_train.dtype == nb.float32 and y_train.dtype == nb.int64
    assert 0.0 <= x_train.numpy().min() and x_train.numpy().max() <= 1.0
    assert set(y_train.tolist()) == set(range(10))
    again = load_digits(dtype=nb.float64)
    assert again[0].dtype == nb.float64 and again[1].tolist() == y_train.tolist()
