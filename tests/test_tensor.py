"""Tensors, dtypes, factories and conversions."""
import numpy as np
import pytest

import nbgrad


def test_factories_shapes_and_dtypes():
    assert nbgrad.ones(2, 3).shape == (2, 3) == nbgrad.ones((2, 3)).shape
    assert nbgrad.zeros(2).dtype is nbgrad.float32
    assert nbgrad.zeros(2, dtype=nbgrad.double).dtype is nbgrad.float64
    assert nbgrad.tensor([1, 2]).dtype is nbgrad.int64
    assert nbgrad.tensor([1.0, 2]).dtype is nbgrad.float32
    assert nbgrad.tensor([True]).dtype is nbgrad.bool
    assert nbgrad.tensor(np.ones(2)).dtype is nbgrad.float64  # NumPy arrays keep their dtype
    assert nbgrad.arange(5).tolist() == [0, 1, 2, 3, 4] and nbgrad.arange(5).dtype is nbgrad.int64
    assert nbgrad.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert nbgrad.linspace(0, 1, 3).tolist() == [0.0, 0.5, 1.0]
    assert nbgrad.eye(2).tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert nbgrad.full((2,), 7).dtype is nbgrad.int64 and nbgrad.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert nbgrad.empty(3).shape == (3,)
    assert nbgrad.zeros_like(nbgrad.ones(2, dtype=nbgrad.float64)).dtype is nbgrad.float64
    assert nbgrad.ones_like(nbgrad.ones(2, 2), requires_grad=True).requires_grad
    r = nbgrad.randint(0, 10, (100,))
    assert r.dtype is nbgrad.int64 and 0 <= r.numpy().min() and r.numpy().max() < 10
    assert nbgrad.rand(3, 4).shape == (3, 4) and nbgrad.randn_like(nbgrad.ones(2)).shape == (2,)
    with pytest.raises(RuntimeError, match="negative dimension"):
        nbgrad.zeros(-1)


def test_manual_seed_makes_random_tensors_repeatable():
    nbgrad.manual_seed(3)
    a = nbgrad.randn(4).tolist()
    nbgrad.manual_seed(3)
    assert nbgrad.randn(4).tolist() == a


def test_attributes():
    x = nbgrad.ones(2, 3)
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.ndim == 2 == x.dim() and x.numel() == 6 and len(x) == 2
    assert repr(x.shape) == "nbgrad.Size([2, 3])"
    assert str(x.device) == "cpu" and repr(x.device) == "device(type='cpu')"
    assert x.T.shape == (3, 2)
    assert nbgrad.tensor(2.5).item() == 2.5 and float(nbgrad.tensor([1.5])) == 1.5
    with pytest.raises(RuntimeError, match="cannot be converted to Scalar"):
        x.item()
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.size(2)


def test_from_numpy_shares_memory_and_numpy_roundtrips():
    a = np.arange(4.0)
    t = nbgrad.from_numpy(a)
    a[0] = 9.0
    assert t.tolist()[0] == 9.0
    t.numpy()[1] = 7.0
    assert a[1] == 7.0
    assert np.asarray(t) is a or np.shares_memory(np.asarray(t), a)
    assert np.shares_memory(nbgrad.as_tensor(a).numpy(), a)
    assert nbgrad.tensor(a).numpy() is not a


def test_dtype_conversions():
    x = nbgrad.tensor([1.7, -2.2])
    assert x.double().dtype is nbgrad.float64
    assert x.long().tolist() == [1, -2]
    assert x.to(nbgrad.float64).dtype is nbgrad.float64
    assert x.to(nbgrad.float32) is x
    assert x.float() is x
    assert nbgrad.tensor([1, 0]).bool().tolist() == [True, False]
    with pytest.raises(RuntimeError, match="CPU"):
        x.to("cuda")


def test_comparisons_and_logic():
    a = nbgrad.tensor([1.0, 2.0, 3.0])
    assert (a > 1.5).tolist() == [False, True, True]
    assert a.eq(nbgrad.tensor([1.0, 0.0, 3.0])).tolist() == [True, False, True]
    assert (a <= 2).tolist() == [True, True, False]
    assert a.ne(2).tolist() == [True, False, True]
    assert (a >= 2).any().item() is True and (a >= 2).all().item() is False
    assert (a == a).all().item() and nbgrad.equal(a, a.clone())
    assert not (a > 0).requires_grad


def test_norm():
    assert nbgrad.tensor([3.0, 4.0]).norm().item() == 5.0
    x = nbgrad.tensor([3.0, 4.0], requires_grad=True)
    x.norm().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.6, 0.8], rtol=1e-6)


def test_errors_name_the_op_and_shapes():
    with pytest.raises(RuntimeError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be multiplied"):
        nbgrad.ones(2, 3) @ nbgrad.ones(4, 5)
    with pytest.raises(RuntimeError, match=r"mul: the size of tensor a \(3\) must match"):
        nbgrad.ones(3) * nbgrad.ones(4)
    with pytest.raises(RuntimeError, match="reshape: shape '\\[4, 2\\]' is invalid for input of size 6"):
        nbgrad.ones(6).reshape(4, 2)
    with pytest.raises(RuntimeError, match="mm: both arguments must be matrices"):
        nbgrad.mm(nbgrad.ones(3), nbgrad.ones(3))
    with pytest.raises(IndexError, match="transpose"):
        nbgrad.ones(2, 2).transpose(0, 2)
    with pytest.raises(RuntimeError, match="mean\\(\\): could not infer output dtype"):
        nbgrad.tensor([1, 2]).mean()
    with pytest.raises(TypeError, match="exp\\(\\)"):
        nbgrad.exp([1.0])


def test_dlpack_shares_memory_with_numpy_both_ways():
    t = nbgrad.tensor([1.0, 2.0, 3.0])
    a = np.from_dlpack(t)
    a[0] = 7.0
    assert t[0].item() == 7.0
    u = nbgrad.from_dlpack(a)
    u.numpy()[1] = -1.0
    assert t.tolist() == [7.0, -1.0, 3.0]


def test_dlpack_shares_memory_with_torch():
    torch = pytest.importorskip("torch")
    t = nbgrad.zeros(3)
    theirs = torch.from_dlpack(t)
    theirs[2] = 5.0
    assert t.tolist() == [0.0, 0.0, 5.0]
    ours = nbgrad.from_dlpack(torch.arange(4, dtype=torch.float64))
    assert ours.dtype is nbgrad.float64 and ours.tolist() == [0.0, 1.0, 2.0, 3.0]
