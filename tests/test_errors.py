"""The error catalogue: bad calls raise a clear Python error naming the op and the shapes or
dtypes, of the type PyTorch uses, and never a Numba typing traceback or a crash."""
import numpy as np
import pytest

import nbgrad as nb
import nbgrad.nn.functional as F


def m23():
    return nb.ones(2, 3)


def grad_leaf():
    return nb.ones(2, requires_grad=True)


CATALOGUE = [
    # shapes
    ("matmul shapes", lambda: m23() @ nb.ones(4, 5), RuntimeError, r"matmul.*\(2, 3\).*\(4, 5\)"),
    ("mm of 1-d", lambda: nb.mm(nb.ones(3), nb.ones(3)), RuntimeError, "mm"),
    ("broadcast add", lambda: m23() + nb.ones(4), RuntimeError, r"size of tensor a \(3\) must match.*\(4\)"),
    ("broadcast mul", lambda: m23() * nb.ones(2, 2), RuntimeError, "must match"),
    ("reshape size", lambda: m23().reshape(4), RuntimeError, r"reshape: shape '\[4\]' is invalid for input of size 6"),
    ("view two -1", lambda: m23().view(-1, -1), RuntimeError, "only one dimension can be inferred"),
    ("expand", lambda: m23().expand(3, 3), RuntimeError, "expanded size"),
    ("cat shapes", lambda: nb.cat([m23(), nb.ones(2, 4)]), RuntimeError, "cat"),
    ("cat empty list", lambda: nb.cat([]), RuntimeError, "non-empty"),
    ("stack shapes", lambda: nb.stack([m23(), nb.ones(3, 2)]), RuntimeError, "stack"),
    ("mse_loss shapes", lambda: F.mse_loss(nb.ones(3), nb.ones(4)), RuntimeError, "mse_loss"),
    ("linear shapes", lambda: F.linear(m23(), nb.ones(4, 4)), RuntimeError, "linear"),
    ("cross_entropy batch", lambda: F.cross_entropy(m23(), nb.tensor([0, 1, 1])), ValueError, "cross_entropy|nll_loss"),
    ("backward non-scalar", lambda: (grad_leaf() * 2).backward(), RuntimeError, "implicitly created only for scalar"),
    ("backward gradient shape", lambda: (grad_leaf() * 2).backward(nb.ones(3)), RuntimeError, "Mismatch in shape"),
    ("setitem value shape", lambda: m23().__setitem__(0, nb.ones(2)), RuntimeError, "cannot be broadcast"),
    ("in-place broadcast", lambda: nb.ones(3).add_(m23()), RuntimeError, "doesn't match the broadcast shape"),
    # dims and indices
    ("sum dim", lambda: m23().sum(dim=2), IndexError, "Dimension out of range"),
    ("softmax dim", lambda: m23().softmax(dim=-3), IndexError, "Dimension out of range"),
    ("transpose dim", lambda: m23().transpose(0, 5), IndexError, "Dimension out of range"),
    ("max dim", lambda: m23().max(dim=3), IndexError, "Dimension out of range"),
    ("unsqueeze dim", lambda: m23().unsqueeze(4), IndexError, "Dimension out of range"),
    ("index out of range", lambda: m23()[2], IndexError, "out of bounds|index"),
    ("index array out of range", lambda: m23()[nb.tensor([0, 5])], IndexError, "out of bounds"),
    ("too many indices", lambda: m23()[0, 0, 0], IndexError, "too many indices|index"),
    ("float index", lambda: m23()[nb.tensor([0.5])], IndexError, "long, int or bool"),
    ("negative step", lambda: m23()[::-1], ValueError, "step must be greater than zero"),
    ("nll_loss target range", lambda: F.nll_loss(m23(), nb.tensor([0, 7])), IndexError, "Target 7 is out of bounds"),
    ("permute dims", lambda: m23().permute(0, 0), RuntimeError, "permute"),
    # dtypes
    ("int requires_grad", lambda: nb.ones(2, dtype=nb.int64).requires_grad_(), RuntimeError,
     "Only Tensors of floating point"),
    ("int tensor factory grad", lambda: nb.tensor([1, 2], requires_grad=True), RuntimeError,
     "Only Tensors of floating point"),
    ("in-place cast", lambda: nb.ones(2, dtype=nb.int64).mul_(0.5), RuntimeError, "can't be cast"),
    ("cross_entropy float target of wrong shape", lambda: F.cross_entropy(m23(), nb.ones(3)),
     (RuntimeError, ValueError), "cross_entropy|nll_loss"),
    ("nll_loss float target", lambda: F.nll_loss(m23(), nb.tensor([0.0, 1.0])), RuntimeError, "nll_loss|int64|Long"),
    ("neg of bool", lambda: -nb.tensor([True]), RuntimeError, "Negation"),
    ("matmul of a string", lambda: m23() @ "x", TypeError, "matmul"),
    ("add a list", lambda: nb.add(m23(), [1, 2]), TypeError, "add"),
    # values and modes
    ("reduction", lambda: F.mse_loss(nb.ones(2), nb.ones(2), reduction="avg"), ValueError, "reduction"),
    ("ce reduction", lambda: F.cross_entropy(m23(), nb.tensor([0, 1]), reduction="bogus"), ValueError, "reduction"),
    ("dropout p", lambda: F.dropout(nb.ones(2), p=1.5), ValueError, "dropout probability"),
    ("clamp without bounds", lambda: m23().clamp(), RuntimeError, "at least one of 'min' or 'max'"),
    ("item of many", lambda: m23().item(), RuntimeError, "cannot be converted to Scalar"),
    ("bool of many", lambda: bool(m23()), RuntimeError, "ambiguous"),
    ("numpy with grad", lambda: grad_leaf().numpy(), RuntimeError, "Can't call numpy"),
    ("leaf in place", lambda: grad_leaf().add_(1), RuntimeError, "leaf Variable that requires grad"),
    ("backward without grad", lambda: m23().sum().backward(), RuntimeError, "does not require grad"),
    ("requires_grad of non-leaf", lambda: (grad_leaf() * 2).requires_grad_(False), RuntimeError, "leaf variables"),
    ("to a device", lambda: m23().to("cuda"), RuntimeError, "CPU"),
    ("unknown dtype", lambda: nb.ones(2, dtype="complex"), (TypeError, ValueError), "dtype"),
    ("nine dimensions", lambda: nb.ones(*[1] * 9) + nb.ones(1), RuntimeError, "at most 8 dimensions"),
    ("fill with a vector", lambda: nb.ones(2).fill_(nb.ones(2)), RuntimeError, "0-dimension"),
]


@pytest.mark.parametrize("name, call, kind, pattern", CATALOGUE, ids=[entry[0] for entry in CATALOGUE])
def test_bad_call_raises_a_clear_error(name, call, kind, pattern):
    with pytest.raises(kind, match=pattern) as info:
        call()
    assert "numba" not in type(info.value).__module__
    assert "Numba" not in str(info.value) and "nopython" not in str(info.value)


def test_the_catalogue_is_large():
    assert len(CATALOGUE) >= 30


def test_a_second_backward_is_refused_not_garbage():
    x = nb.ones(3, requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    assert np.allclose(x.grad.numpy(), 2 * np.e)
