"""In-place ops, x[idx] = v and version counters, mirroring PyTorch's documented behaviour."""
import numpy as np
import pytest

import nbgrad as nb
from nbgrad.autograd import gradcheck

MODIFIED = "one of the variables needed for gradient computation has been modified by an inplace operation"


def leaf(*values):
    return nb.tensor(np.array(values, np.float64), requires_grad=True)


@pytest.mark.parametrize("name, args, expected", [
    ("add_", (2.0,), [3.0, 4.0]),
    ("sub_", (nb.tensor([1.0, 1.0]),), [0.0, 1.0]),
    ("mul_", (3,), [3.0, 6.0]),
    ("div_", (nb.tensor([2.0]),), [0.5, 1.0]),
    ("clamp_", (1.5, 1.75), [1.5, 1.75]),
    ("zero_", (), [0.0, 0.0]),
    ("fill_", (7,), [7.0, 7.0]),
    ("copy_", (nb.tensor([5, 6]),), [5.0, 6.0]),
])
def test_in_place_ops_change_the_storage_return_self_and_count_a_version(name, args, expected):
    t = nb.tensor([1.0, 2.0])
    shared = t.numpy()
    assert getattr(t, name)(*args) is t
    assert t.tolist() == expected
    assert shared.tolist() == expected  # the NumPy array over the same memory sees it
    assert t._version == 1


def test_augmented_assignment_is_in_place():
    y = nb.ones(3)
    alias = y
    y += nb.tensor([1.0, 2.0, 3.0])
    y *= 2
    y -= 1
    y /= 2
    assert y is alias and alias.tolist() == [1.5, 2.5, 3.5] and alias._version == 4
    w = nb.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w += 1
    t = w * 2
    t += w
    t.sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]


def test_views_share_the_version_counter():
    t = nb.zeros(2, 2)
    v = t.view(4)
    d = t.detach()
    t.add_(1)
    v.mul_(2)
    assert (t._version, v._version, d._version) == (2, 2, 2)
    assert t.tolist() == [[2.0, 2.0], [2.0, 2.0]]


def test_modifying_a_saved_output_names_the_op_and_versions():
    x = nb.ones(2, 2, requires_grad=True)
    y = x.sigmoid()
    y.mul_(2)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    message = str(info.value)
    assert message.startswith(MODIFIED)
    assert "[nbgrad.FloatTensor [2, 2]], which is output 0 of Sigmoid, is at version 1; expected version 0" in message


def test_modifying_a_saved_input_without_history_is_caught():
    w = nb.ones(3, requires_grad=True)
    z = nb.ones(3)
    y = w * z
    z.add_(1)
    z.add_(1)
    with pytest.raises(RuntimeError, match=r"\[nbgrad.FloatTensor \[3\]\] is at version 2; expected version 0"):
        y.sum().backward()


def test_an_optimizer_style_update_of_a_saved_leaf_is_caught():
    w = leaf(1.0, 2.0)
    y = (w * w).sum()
    with nb.no_grad():
        w.sub_(0.1 * w.grad if w.grad is not None else 0.1)
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_modifying_a_buffer_the_backward_does_not_read_is_fine():
    w = leaf(1.0, 2.0)
    y = w.exp()  # saves its output, not w
    with nb.no_grad():
        w.add_(1)
    y.sum().backward()
    assert np.allclose(w.grad.numpy(), np.exp([1.0, 2.0]))
    assert w._version == 1


def test_a_released_graph_does_not_block_later_updates():
    w = leaf(1.0, 2.0)
    for _ in range(3):
        (w * w).sum().backward()
        with nb.no_grad():
            w.sub_(0.25 * w.grad)
        w.grad = None
    assert w.tolist() == pytest.approx([0.125, 0.25])


def test_a_retained_graph_is_refused_after_its_input_changed():
    w = leaf(1.0, 2.0)
    y = (w * w).sum()
    y.backward(retain_graph=True)
    with nb.no_grad():
        w.mul_(2)
    with pytest.raises(RuntimeError, match="is at version 1; expected version 0"):
        y.backward()


def test_leaf_that_requires_grad_cannot_change_in_place_outside_no_grad():
    w = leaf(1.0)
    for change in (lambda: w.add_(1), lambda: w.zero_(), lambda: w.__setitem__(0, 2.0)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            change()
    with nb.no_grad():
        w.add_(1)
    assert w.tolist() == [2.0] and w.is_leaf and w.requires_grad


def test_in_place_on_a_view_rewrites_the_history_of_base_and_views():
    x = leaf(1.0, 2.0, 3.0, 4.0)
    y = x * 1
    v = y.view(2, 2)
    v.mul_(2)  # reaches y, and y's history with it
    assert y.tolist() == [2.0, 4.0, 6.0, 8.0] and type(y.grad_fn).__name__ == "CopySlices"
    y.sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0, 2.0]
    x.grad = None
    y = x * 1
    v = y.view(2, 2)
    y.add_(1)  # the base changed: its view reads the new history
    (v * v).sum().backward()
    assert x.grad.tolist() == [4.0, 6.0, 8.0, 10.0]  # d/dx (x + 1)^2
    x.grad = None
    base = nb.zeros(4, dtype=nb.float64)
    flat = base.reshape(2, 2)
    flat.add_(x.view(2, 2))  # a base without history gets one
    assert base.requires_grad
    (base * 3).sum().backward()
    assert x.grad.tolist() == [3.0, 3.0, 3.0, 3.0]


def test_in_place_result_joins_the_graph():
    x = leaf(1.0, 2.0)
    y = x * 3
    y.add_(x, alpha=2)
    y.mul_(y)  # the new node reads its own copy of the old values
    assert type(y.grad_fn).__name__ == "MulBackward0"
    y.sum().backward()
    assert x.grad.tolist() == [50.0, 100.0]  # d/dx (5x)^2 = 50x


def test_in_place_with_a_tensor_that_requires_grad_makes_self_require_grad():
    w = leaf(2.0)
    t = nb.ones(3, dtype=nb.float64)
    t.mul_(w)
    assert t.requires_grad and type(t.grad_fn).__name__ == "MulBackward0"
    t.sum().backward()
    assert w.grad.tolist() == [3.0]


def test_copy_fill_and_zero_cut_the_old_history():
    x = leaf(1.0, 2.0)
    src = leaf(5.0)
    y = x * 1
    y.copy_(src)  # broadcast from one element
    (y * nb.tensor([1.0, 2.0], dtype=nb.float64)).sum().backward()
    assert src.grad.tolist() == [3.0]
    assert x.grad.tolist() == [0.0, 0.0]
    for change, name in ((lambda t: t.zero_(), "ZeroBackward0"), (lambda t: t.fill_(4), "FillBackward2")):
        y = x * 1
        change(y)
        assert type(y.grad_fn).__name__ == name


def test_copy_converts_dtype_differentiably():
    src = nb.tensor([1.0, 2.0], dtype=nb.float64, requires_grad=True)
    dst = nb.zeros(2, 2)
    dst.copy_(src)
    assert dst.dtype == nb.float32
    dst.sum().backward()
    assert src.grad.tolist() == [2.0, 2.0] and src.grad.dtype == nb.float64


def test_setitem_is_differentiable_to_both_sides():
    x = nb.randn(3, 4, dtype=nb.float64, requires_grad=True)
    v = nb.randn(4, dtype=nb.float64, requires_grad=True)

    def put(x, v):
        y = x * 1
        y[1] = v * 2
        y[:, ::2] = y[:, 1:2] * 3  # reads what the first assignment wrote
        return y

    assert gradcheck(put, (x, v))
    y = put(x, v)
    assert type(y.grad_fn).__name__ == "CopySlices"


@pytest.mark.parametrize("index", [
    0, (slice(None), 1), (Ellipsis, 2), ([0, 2],), (np.array([True, False, True]),), (slice(0, 3, 2), [1, 3]),
])
def test_setitem_matches_numpy(index):
    data = np.arange(12.0).reshape(3, 4)
    expected = data.copy()
    expected[index] = -1.0
    t = nb.tensor(data)
    t[index] = -1.0
    assert t.tolist() == expected.tolist()
    assert t._version == 1


def test_setitem_value_gets_the_gradient_of_each_position_it_fills():
    z = nb.zeros(2, 3)
    v = leaf(1.0, 2.0, 3.0)
    z[0] = v
    z[1, [0, 2]] = v[2]
    (z * nb.tensor([[1.0, 1.0, 1.0], [10.0, 20.0, 30.0]], dtype=nb.float64)).sum().backward()
    assert v.grad.tolist() == [1.0, 1.0, 41.0]


def test_setitem_errors_name_shapes():
    t = nb.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"value tensor of shape \[2\] cannot be broadcast to indexing result "
                                           r"of shape \[4\]"):
        t[0] = nb.ones(2)
    with pytest.raises(IndexError, match="shape"):
        t[5] = 1.0
    t[0] = nb.ones(1, 1, 4)  # leading ones are dropped, as NumPy does
    assert t[0].tolist() == [1.0] * 4


def test_in_place_errors_follow_pytorch():
    t = nb.ones(3, dtype=nb.int64)
    with pytest.raises(RuntimeError, match="add_: result type nbgrad.float32 can't be cast to the desired output"):
        t.add_(1.5)
    with pytest.raises(RuntimeError, match=r"doesn't match the broadcast shape \[2, 3\]"):
        nb.ones(3).add_(nb.ones(2, 3))
    with pytest.raises(RuntimeError, match="fill_ only supports 0-dimension value tensor"):
        nb.ones(3).fill_(nb.ones(2))
    assert t.tolist() == [1, 1, 1] and t._version == 0
    t.mul_(2)
    assert t.tolist() == [2, 2, 2]


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(0).standard_normal((3, 4))
    results = []
    for lib in (nb, torch):
        x = lib.tensor(data, requires_grad=True)
        y = x * 2
        y[1:, [0, 3]] = x[0, :2].exp()
        y.clamp_(-1.0, 1.5)
        y.div_(x.detach() + 3)
        y.sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy()))
    for mine, theirs in zip(*results):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12)
