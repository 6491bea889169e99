"""SPEC §3, point by point, in the words of PyTorch's autograd tutorial."""
import threading
import warnings

import numpy as np
import pytest

import nbgrad as torch


def test_1_requires_grad_tracks_and_defaults_to_false():
    assert torch.ones(2).requires_grad is False
    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    assert y.requires_grad
    a = torch.randn(2, 2)
    assert a.requires_grad_() is a and a.requires_grad
    a.requires_grad_(False)
    assert not a.requires_grad
    assert not (a * 2).requires_grad


def test_1_only_floating_tensors_can_require_grad():
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        torch.ones(2, dtype=torch.int64, requires_grad=True)
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        torch.tensor([1, 2]).requires_grad_()


def test_2_results_have_grad_fn_named_like_pytorch():
    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    assert type(y.grad_fn).__name__ == "AddBackward0"
    assert repr(y.grad_fn).startswith("<AddBackward0 object at 0x")
    z = y * y * 3
    out = z.mean()
    assert type(z.grad_fn).__name__ == "MulBackward0"
    assert type(out.grad_fn).__name__ == "MeanBackward0"
    assert x.grad_fn is None and x.is_leaf and not y.is_leaf
    names = {
        "SubBackward0": x - 1, "RsubBackward1": 1 - x, "DivBackward0": x / 2, "PowBackward0": x ** 2,
        "PowBackward1": x ** x, "SumBackward0": x.sum(), "SumBackward1": x.sum(0),
        "MmBackward0": x @ x, "ExpBackward0": x.exp(), "ViewBackward0": x.view(4),
        "TBackward0": x.t(), "PermuteBackward0": x.T, "TransposeBackward0": x.transpose(0, 1),
        "NegBackward0": -x, "MeanBackward1": x.mean(1), "ToCopyBackward0": x.double(),
    }
    for name, result in names.items():
        assert type(result.grad_fn).__name__ == name


def test_2_repr_like_pytorch():
    x = torch.ones(2, 2, requires_grad=True)
    assert repr(x) == "tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)"
    assert repr(torch.tensor(3.5, requires_grad=True) * 1) == "tensor(3.5000, grad_fn=<MulBackward0>)"
    assert repr(torch.tensor([1.5, 2, 3.25])) == "tensor([1.5000, 2.0000, 3.2500])"
    assert repr(torch.tensor([1e-5, 1.0])) == "tensor([1.0000e-05, 1.0000e+00])"
    assert repr(torch.tensor([1.0, 2.0]).double()) == "tensor([1., 2.], dtype=nbgrad.float64)"
    assert repr(torch.tensor([[-1, 200], [3, 4]])) == "tensor([[ -1, 200],\n        [  3,   4]])"
    assert repr(torch.tensor([True])) == "tensor([True])"
    assert repr(torch.zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert repr(torch.tensor([float("nan"), float("inf"), 1.5])) == "tensor([   nan,    inf, 1.5000])"


def test_3_next_functions():
    x = torch.ones(2, requires_grad=True)
    c = torch.ones(2)
    y = x * c
    (acc, index), (none, zero) = y.grad_fn.next_functions
    assert type(acc).__name__ == "AccumulateGrad" and acc.variable is x and index == 0
    assert none is None and zero == 0
    z = y.exp()
    assert z.grad_fn.next_functions[0][0] is y.grad_fn
    assert (x * 2).grad_fn.next_functions[1] == (None, 0)


def test_4_backward_of_a_scalar_needs_no_argument():
    x = torch.ones(2, 2, requires_grad=True)
    out = ((x + 2) * (x + 2) * 3).mean()
    out.backward()
    assert x.grad.tolist() == [[4.5, 4.5], [4.5, 4.5]]


def test_4_non_scalar_needs_gradient_and_computes_vjp():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        y.backward()
    y.backward(torch.tensor([0.1, 1.0, 0.0001]))
    np.testing.assert_allclose(x.grad.numpy(), [0.2, 2.0, 0.0002], rtol=1e-6)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(torch.ones(2))


def test_5_gradients_accumulate_and_non_leaf_grad_is_none_with_warning():
    x = torch.ones(3, requires_grad=True)
    assert x.grad is None
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 5.0, 5.0]
    y = x * 2
    y.sum().backward()
    with pytest.warns(UserWarning, match="not a leaf Tensor"):
        assert y.grad is None


def test_5_retain_grad_and_hooks():
    x = torch.ones(3, requires_grad=True)
    y = x * 2
    y.retain_grad()
    seen = []
    z = y * y
    z.register_hook(lambda g: seen.append(g.tolist()))
    handle = y.register_hook(lambda g: g * 10)  # replaces y's gradient
    z.sum().backward()
    assert seen == [[1.0, 1.0, 1.0]]
    assert y.grad.tolist() == [40.0, 40.0, 40.0]
    assert x.grad.tolist() == [80.0, 80.0, 80.0]
    handle.remove()
    x.grad = None
    (x * 2 * 2).sum().backward()
    assert x.grad.tolist() == [4.0, 4.0, 4.0]
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        torch.ones(2).register_hook(print)


def test_5_hook_on_leaf_sees_the_full_gradient_before_accumulation():
    x = torch.ones(2, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    (x * 2 + x * 3).sum().backward()
    assert seen == [[5.0, 5.0]] and x.grad.tolist() == [5.0, 5.0]


def test_6_graph_is_freed_after_backward_unless_retained():
    x = torch.ones(2, requires_grad=True)
    loss = (x.exp() * 2).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.e)
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 4 * np.e)  # the failed call changed nothing
    simple = (x + 1).sum()  # saves nothing: may be walked again
    simple.backward()
    simple.backward()


def test_7_detach_and_data_share_storage_without_history():
    x = torch.ones(3, requires_grad=True)
    y = x.detach()
    assert not y.requires_grad and y.grad_fn is None
    y.numpy()[0] = 5.0
    assert x.tolist()[0] == 5.0
    d = x.data
    assert not d.requires_grad and d.numpy() is not None
    z = x * 2
    z.detach_()
    assert z.grad_fn is None and not z.requires_grad
    with pytest.raises(RuntimeError, match=r"Use tensor.detach\(\).numpy\(\) instead"):
        x.numpy()


def test_8_no_grad_enable_grad_set_grad_enabled():
    x = torch.ones(2, requires_grad=True)
    with torch.no_grad():
        assert not (x * 2).requires_grad
        assert not torch.is_grad_enabled()
        with torch.enable_grad():
            assert (x * 2).requires_grad
    assert torch.is_grad_enabled()

    @torch.no_grad()
    def double(t):
        return t * 2

    assert not double(x).requires_grad
    with torch.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    torch.set_grad_enabled(False)
    assert not torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_8_grad_mode_is_per_thread():
    x = torch.ones(2, requires_grad=True)
    results = {}
    barrier = threading.Barrier(2)

    def without():
        with torch.no_grad():
            barrier.wait()
            results["no_grad"] = [(x * 2).requires_grad for _ in range(200)]

    def with_grad():
        barrier.wait()
        out = []
        for _ in range(200):
            y = (x * 3).sum()
            out.append(y.requires_grad)
        results["grad"] = out

    threads = [threading.Thread(target=without), threading.Thread(target=with_grad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["no_grad"] == [False] * 200
    assert results["grad"] == [True] * 200


def test_9_variable_returns_a_tensor_sharing_storage():
    t = torch.ones(2)
    v = torch.autograd.Variable(t, requires_grad=True)
    assert isinstance(v, torch.Tensor) and v.requires_grad and not t.requires_grad
    v.detach().numpy()[0] = 3.0
    assert t.tolist() == [3.0, 1.0]
    assert not torch.autograd.Variable(t).requires_grad


def test_10_backward_without_grad_raises():
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad and does not have a grad_fn"):
        torch.ones(2).sum().backward()


def test_grad_assignment_and_none_reset():
    x = torch.ones(2, requires_grad=True)
    (x * 2).sum().backward()
    kept = x.grad
    x.grad = None
    (x * 5).sum().backward()
    assert kept.tolist() == [2.0, 2.0] and x.grad.tolist() == [5.0, 5.0]
    x.grad = torch.zeros(2)
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    with pytest.raises(RuntimeError, match="different size"):
        x.grad = torch.zeros(3)


def test_the_classic_tutorial_runs_unchanged(capsys):
    x = torch.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    print(z, out)
    out.backward()
    print(x.grad)
    x = torch.randn(3, requires_grad=True)
    y = x * 2
    while y.data.norm() < 1000:
        y = y * 2
    v = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)
    y.backward(v)
    print(x.grad)
    with torch.no_grad():
        print((x ** 2).requires_grad)
    print(x.eq(x.detach()).all())
    text = capsys.readouterr().out
    assert text.startswith(
        "tensor([[27., 27.],\n        [27., 27.]], grad_fn=<MulBackward0>) tensor(27., grad_fn=<MeanBackward0>)\n"
        "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])\n"
    )
    assert "False\ntensor(True)\n" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.grad is not None


def test_next_functions_lengths_match_pytorch_for_scalar_ops():
    x = torch.ones(2, requires_grad=True)
    lengths = {2: [x + 2, x - 1, x * 2, x / 2], 1: [1 - x, x ** 2, 2 ** x]}
    for length, results in lengths.items():
        for result in results:
            assert len(result.grad_fn.next_functions) == length, result.grad_fn
