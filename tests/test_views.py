"""Views that share storage, as in PyTorch: every view op, table-driven.

Each case is a view op, the NumPy expression that reads the same elements, and an input
shape. For each: the values, storage shared both ways (a write through the view reaches the
base, a write to the base reaches the view), one version counter, the gradient (gradcheck in
float64, and PyTorch's where it is installed), the in-place error of a saved view changed
through its base, and an in-place op through the view rewriting the base's history.
"""
import numpy as np
import pytest

import nbgrad as nb
from nbgrad.autograd import gradcheck

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")

# name: (the view, the same read in NumPy, input shape)
VIEWS = {
    "transpose": (lambda x: x.transpose(0, 1), lambda a: a.transpose(1, 0), (3, 4)),
    "transpose_3d": (lambda x: x.transpose(-1, 0), lambda a: a.transpose(2, 1, 0), (2, 3, 4)),
    "swapaxes": (lambda x: x.swapaxes(0, 1), lambda a: a.swapaxes(0, 1), (3, 4)),
    "permute": (lambda x: x.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), (2, 3, 4)),
    "t": (lambda x: x.t(), lambda a: a.T, (3, 4)),
    "T": (lambda x: x.T, lambda a: a.T, (2, 3, 4)),
    "mT": (lambda x: x.mT, lambda a: a.swapaxes(-1, -2), (2, 3, 4)),
    "expand": (lambda x: x.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)), (3, 1)),
    "expand_as": (lambda x: x.expand_as(x.new_zeros(4, 3)), lambda a: np.broadcast_to(a, (4, 3)), (3,)),
    "narrow": (lambda x: x.narrow(1, 1, 2), lambda a: a[:, 1:3], (3, 4)),
    "select": (lambda x: x.select(1, -1), lambda a: a[:, -1], (3, 4)),
    "index_int": (lambda x: x[1], lambda a: a[1], (3, 4)),
    "index_ints_0d": (lambda x: x[1, 2], lambda a: a[1, 2, ...], (3, 4)),
    "index_slices": (lambda x: x[1:, ::2], lambda a: a[1:, ::2], (3, 5)),
    "index_none_ellipsis": (lambda x: x[None, ..., 1], lambda a: a[None, ..., 1], (2, 3, 4)),
    "index_alias": (lambda x: x[...], lambda a: a[...], (3, 4)),
    "squeeze": (lambda x: x.squeeze(1), lambda a: a.squeeze(1), (3, 1, 4)),
    "squeeze_all": (lambda x: x.squeeze(), lambda a: a.squeeze(), (1, 3, 1)),
    "unsqueeze": (lambda x: x.unsqueeze(1), lambda a: a[:, None], (3, 4)),
    "view": (lambda x: x.view(4, 3), lambda a: a.reshape(4, 3), (3, 4)),
    "view_as": (lambda x: x.view_as(x.new_zeros(2, 6)), lambda a: a.reshape(2, 6), (3, 4)),
    "view_of_transpose": (lambda x: x.t().view(2, 2, 3), lambda a: a.T.reshape(2, 2, 3), (3, 4)),
    "reshape": (lambda x: x.reshape(2, 6), lambda a: a.reshape(2, 6), (3, 4)),
    "reshape_of_slice": (lambda x: x[:, 1:3].reshape(3, 2, 1), lambda a: a[:, 1:3].reshape(3, 2, 1), (3, 4)),
    "flatten": (lambda x: x.flatten(), lambda a: a.reshape(-1), (2, 3, 4)),
    "flatten_of_slice": (lambda x: x[:, 1:].flatten(1), lambda a: a[:, 1:].reshape(2, 8), (2, 3, 4)),
    "diagonal": (lambda x: x.diagonal(), lambda a: np.diagonal(a), (3, 4)),
    "diagonal_offset": (lambda x: x.diagonal(1), lambda a: np.diagonal(a, 1), (3, 4)),
    "diagonal_dims": (lambda x: x.diagonal(-1, 0, 2), lambda a: np.diagonal(a, -1, 0, 2), (3, 2, 4)),
    "unbind": (lambda x: x.unbind(1)[2], lambda a: a[:, 2], (3, 4)),
    "split": (lambda x: x.split(2, 1)[1], lambda a: a[:, 2:4], (3, 5)),
    "split_sizes": (lambda x: x.split([1, 3], 0)[1], lambda a: a[1:], (4, 2)),
    "chunk": (lambda x: x.chunk(2, 1)[1], lambda a: a[:, 3:], (3, 5)),
    "unfold": (lambda x: x.unfold(1, 2, 2), lambda a: a.reshape(3, 2, 2), (3, 4)),
    "unfold_overlapping": (lambda x: x.unfold(0, 3, 1),
                           lambda a: np.lib.stride_tricks.sliding_window_view(a, 3, axis=0), (4, 2)),
    "view_of_view": (lambda x: x.t()[1:].unsqueeze(0), lambda a: a.T[None, 1:], (3, 4)),
}
# Views whose elements repeat: a write through them is refused (expand), or ambiguous (unfold).
REPEATING = {"expand", "expand_as", "unfold_overlapping"}
MULTI = {"unbind", "split", "split_sizes", "chunk"}  # outputs of functions returning several views


def _positions(case):
    """For each element of the view, its position in the base's C order."""
    _, numpy_view, shape = VIEWS[case]
    return numpy_view(np.arange(int(np.prod(shape))).reshape(shape))


def _base(shape, **kwargs):
    return nb.arange(1.0, 1.0 + np.prod(shape), dtype=nb.float64).reshape(shape).clone().requires_grad_(
        kwargs.get("requires_grad", False))


@pytest.mark.parametrize("case", VIEWS)
def test_values_and_storage_shared_both_ways(case):
    view_of, numpy_view, shape = VIEWS[case]
    x = _base(shape)
    v = view_of(x)
    np.testing.assert_array_equal(v.numpy(), numpy_view(x.numpy()))
    assert v._base is x._base or v._base is x
    assert np.shares_memory(v.numpy(), x.numpy())
    x.mul_(2)  # the base written: the view sees it
    np.testing.assert_array_equal(v.numpy(), numpy_view(x.numpy()))
    assert v._version == x._version == 1
    if case not in REPEATING:  # the view written: the base sees it
        expected = x.numpy().copy().reshape(-1)
        expected[_positions(case).reshape(-1)] += 10
        v.add_(10)
        np.testing.assert_array_equal(x.numpy().reshape(-1), expected)
        assert v._version == x._version == 2


@pytest.mark.parametrize("case", VIEWS)
def test_gradient(case):
    view_of, _, shape = VIEWS[case]
    x = _base(shape, requires_grad=True)
    weights = nb.tensor(np.random.default_rng(0).standard_normal(view_of(x).shape), dtype=nb.float64)
    assert gradcheck(lambda x: view_of(x) * weights, (x,))
    (view_of(x) * weights).sum().backward()
    expected = np.zeros(x.numel())
    np.add.at(expected, _positions(case).reshape(-1), weights.numpy().reshape(-1))  # repeats add up
    np.testing.assert_allclose(x.grad.numpy().reshape(-1), expected)


@needs_torch
@pytest.mark.parametrize("case", VIEWS)
def test_against_pytorch(case):
    view_of, _, shape = VIEWS[case]
    mine, theirs = _base(shape, requires_grad=True), torch.arange(1.0, 1.0 + np.prod(shape),
                                                                   dtype=torch.float64).reshape(shape)
    theirs.requires_grad_(True)
    v, w = view_of(mine), view_of(theirs)
    assert v.shape == tuple(w.shape) and v.stride() == w.stride() and v.is_contiguous() == w.is_contiguous()
    assert type(v.grad_fn).__name__ == type(w.grad_fn).__name__
    (v * v).sum().backward()
    (w * w).sum().backward()
    np.testing.assert_allclose(mine.grad.numpy(), theirs.grad.numpy())


@pytest.mark.parametrize("case", VIEWS)
def test_saved_view_changed_through_its_base(case):
    """``v * v`` saves v; changing the base afterwards makes the backward raise, as in PyTorch."""
    view_of, _, shape = VIEWS[case]
    a = _base(shape, requires_grad=True).clone()
    product = view_of(a) * view_of(a)
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        product.sum().backward()


@pytest.mark.parametrize("case", sorted(set(VIEWS) - REPEATING - MULTI))
def test_in_place_through_a_view_rewrites_the_base(case):
    view_of, _, shape = VIEWS[case]
    leaf = _base(shape, requires_grad=True)
    a = leaf.clone()
    v = view_of(a)
    v.mul_(3)
    assert type(a.grad_fn).__name__ == "CopySlices"
    assert type(v.grad_fn).__name__ == "AsStridedBackward0"
    (a * a).sum().backward()
    factor = np.ones(leaf.numel())
    factor[_positions(case).reshape(-1)] = 3
    np.testing.assert_allclose(leaf.grad.numpy().reshape(-1), 2 * leaf.detach().numpy().reshape(-1) * factor ** 2)


@needs_torch
@pytest.mark.parametrize("case", sorted(set(VIEWS) - REPEATING - MULTI))
def test_in_place_through_a_view_against_pytorch(case):
    view_of, _, shape = VIEWS[case]
    grads = []
    for lib in (nb, torch):
        leaf = lib.arange(1.0, 1.0 + np.prod(shape), dtype=lib.float64).reshape(shape).clone().requires_grad_()
        a = leaf.clone()
        v = view_of(a)
        other = view_of(a)  # another view of the base: it reads the new history too
        v.mul_(3).add_(a.detach().sum())
        (a.sin() * 2 + other.exp().sum()).sum().backward()
        grads.append(leaf.grad.detach().numpy())
        assert type(other.grad_fn).__name__ == "AsStridedBackward0"
    np.testing.assert_allclose(grads[0], grads[1])


def test_views_of_the_base_read_its_new_history():
    """An in-place op on the base: its views made before read the new values' history."""
    leaf = nb.ones(3, 4, requires_grad=True)
    a = leaf.clone()
    row = a[1]
    a.mul_(5)
    row.sum().backward()
    expected = np.zeros((3, 4))
    expected[1] = 5
    np.testing.assert_array_equal(leaf.grad.numpy(), expected)
    assert type(row.grad_fn).__name__ == "AsStridedBackward0"


def test_copy_into_a_view_of_a_tensor_without_history():
    b = nb.zeros(2, 3)
    w = nb.ones(3, requires_grad=True)
    rest = b[1]
    b[0].copy_(w * 2)
    assert b.requires_grad and rest.requires_grad
    (b * nb.tensor([[1.0, 2, 3], [4, 5, 6]])).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2, 4, 6])


# --- what is refused, in PyTorch's words -------------------------------------------

def test_in_place_on_a_view_of_a_leaf():
    x = nb.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad is being used in an in-place"):
        x[0].mul_(2)
    with nb.no_grad():
        x[0].mul_(2)  # allowed outside the graph, as in PyTorch


@pytest.mark.parametrize("write", [lambda e: e.add_(1), lambda e: e.mul_(2), lambda e: e.copy_(nb.ones(2, 3)),
                                   lambda e: e.__setitem__(0, 1.0)])  # fill_ and zero_ may: see below
def test_in_place_on_an_expanded_tensor(write):
    e = nb.zeros(3).expand(2, 3)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor refers to a single"):
        write(e)


@pytest.mark.parametrize("pieces, name", [(lambda a: a.unbind(), "Unbind"), (lambda a: a.split(2), "Split"),
                                          (lambda a: a.split([1, 3]), "SplitWithSizes"),
                                          (lambda a: a.chunk(2), "Split")])
def test_in_place_on_an_output_of_a_multi_view_function(pieces, name):
    a = nb.ones(4, requires_grad=True).clone()
    with pytest.raises(RuntimeError, match=f"Output 1 of {name} is a view and is being modified inplace"):
        pieces(a)[1].mul_(2)
    with nb.no_grad():
        pieces(nb.ones(4))[1].mul_(2)


def test_in_place_in_grad_mode_on_a_view_made_in_no_grad_mode():
    a = nb.ones(3, requires_grad=True).clone()
    with nb.no_grad():
        v = a[:2]
    with pytest.raises(RuntimeError, match="A view was created in no_grad mode and is being modified inplace"):
        v.mul_(2)


def test_view_of_incompatible_strides_and_detach_():
    x = nb.randn(3, 4)
    with pytest.raises(RuntimeError, match=r"view size is not compatible .* Use .reshape\(...\) instead"):
        x.t().view(12)
    flat = x.t().reshape(12)  # a copy, in the transpose's order
    assert flat.is_contiguous() and flat.tolist() == x.t().contiguous().view(12).tolist()
    with pytest.raises(RuntimeError, match="Can't detach views in-place"):
        x[0].detach_()


# --- layout ----------------------------------------------------------------------

def test_layout_queries():
    x = nb.zeros(4, 6)
    v = x[1:, ::2]
    assert v.stride() == (6, 2) and v.stride(1) == 2 and v.storage_offset() == 6 and not v.is_contiguous()
    assert x.element_size() == 4 and v.data_ptr() == x.data_ptr() + 6 * 4
    assert x.contiguous() is x
    c = v.contiguous()
    assert c is not v and c.is_contiguous() and c._base is None
    np.testing.assert_array_equal(c.numpy(), v.numpy())
    assert x.t().is_contiguous() is False and x.t().t().is_contiguous() is True
    assert x.expand(2, 4, 6).stride() == (0, 6, 1)


def test_numpy_interop_shares_memory():
    array = np.arange(24.0).reshape(4, 6)
    t = nb.from_numpy(array[:, ::2])  # a strided array is shared, not copied
    t.add_(100)
    assert array[0, 0] == 100 and array[0, 1] == 1
    assert t.stride() == (6, 2)
    x = nb.zeros(3, 4)
    x.t().numpy()[0, 1] = 7  # .numpy() of a view is the view of the base's memory
    assert x[1, 0].item() == 7
    reversed_ = nb.from_numpy(np.arange(4.0)[::-1])  # negative strides: a copy, which nbgrad's tensors never have
    assert reversed_.tolist() == [3, 2, 1, 0] and reversed_.is_contiguous()


def test_ops_on_strided_views_match_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 5))
    x, y = nb.tensor(a), nb.tensor(b)
    np.testing.assert_allclose((x.T @ y.T).numpy(), a.T @ b.T)
    np.testing.assert_allclose((x.t() * y).numpy(), a.T * b)
    np.testing.assert_allclose((x[:, ::2] + 1).exp().sum(0).numpy(), np.exp(a[:, ::2] + 1).sum(0))
    np.testing.assert_allclose(nb.cat([x.t(), y]).numpy(), np.concatenate([a.T, b]))
    np.testing.assert_allclose(x.t().sum().item(), a.sum())
    np.testing.assert_allclose(nb.nn.functional.linear(x.t(), y).numpy(), a.T @ b.T)


def test_setitem_through_a_view():
    x = nb.zeros(3, 4)
    x.t()[1:, 0] = nb.tensor([1.0, 2, 3])
    np.testing.assert_array_equal(x[0].numpy(), [0, 1, 2, 3])
    x[:, 0].zero_()
    y = nb.ones(2, 3)
    y.t().add_(1)
    assert y.sum().item() == 12


def test_backward_through_a_view_with_create_graph():
    x = nb.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=nb.float64, requires_grad=True)
    y = (x.t() ** 3).diagonal().sum()
    (g,) = nb.autograd.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), [[3, 0], [0, 48]])
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[6, 0], [0, 24]])


@pytest.mark.parametrize("shape_a, shape_b", [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 3, 4), (4, 5)),
                                              ((3, 4), (2, 4, 5)), ((4,), (4, 5)), ((2, 1, 3, 4), (5, 4, 5))])
@pytest.mark.parametrize("transposed", ["a", "b", "both"])
def test_products_of_transposed_views(shape_a, shape_b, transposed):
    """A transposed operand goes to BLAS as it lies in memory: values, gradients, gradients of
    gradients and the saved operands are those of the copied operand."""
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal(s) for s in (shape_a, shape_b)]
    stored = [nb.tensor(a.swapaxes(-1, -2).copy() if a.ndim > 1 and name in (transposed, "both") else a,
                        dtype=nb.float64, requires_grad=True) for a, name in zip(arrays, "ab")]

    def operands(a, b):
        return [t.mT if t.ndim > 1 and name in (transposed, "both") else t for t, name in zip((a, b), "ab")]

    a, b = operands(*stored)
    product = a @ b
    np.testing.assert_allclose(product.detach().numpy(), arrays[0] @ arrays[1])
    assert gradcheck(lambda a, b: nb.matmul(*operands(a, b)), stored)
    assert nb.autograd.gradgradcheck(lambda a, b: nb.matmul(*operands(a, b)), stored)
    if len(shape_a) > 1 and shape_a[:-2] in ((), shape_b[:-2]):  # an operand expanded to the batch saves that
        np.testing.assert_array_equal(product.grad_fn._saved_self.detach().numpy(), arrays[0])


def test_a_transposed_operand_changed_after_the_product():
    w = nb.randn(4, 3, dtype=nb.float64, requires_grad=True)
    base = w.clone()
    y = nb.randn(2, 4, dtype=nb.float64, requires_grad=True) @ base.t().t()
    out = nb.randn(5, 4, dtype=nb.float64, requires_grad=True) @ base  # saves base itself
    z = (nb.ones(3, 4, dtype=nb.float64) * 2).requires_grad_() @ base.t().t().t().t().t().t()  # no copy either
    base.add_(1)
    for result in (y, out, z):
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            result.sum().backward()


def test_data_replaced_by_a_strided_view():
    """``y.data = other.t()``: y shares other's storage; rows that saved y read its values in y's order."""
    x = nb.randn(3, 4, dtype=nb.float64, requires_grad=True)
    y = x.clone()
    z = y * y
    other = nb.randn(4, 3, dtype=nb.float64)
    y.data = other.t()
    assert np.shares_memory(y.detach().numpy(), other.numpy()) and not y.is_contiguous()
    z.sum().backward(retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), 2 * other.numpy().T)
    other.add_(1)  # the values the rows read changed: refused
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()
    with pytest.raises(RuntimeError, match="assigned grad is a strided view"):
        x.grad.data = nb.zeros(4, 3, dtype=nb.float64).t()


def test_optimizers_and_parameters_with_strided_views():
    w = nb.nn.Parameter(nb.randn(4, 3).t())  # a Parameter of a strided view holds a copy
    assert w.is_contiguous()
    leaf = nb.randn(4, 3).t().requires_grad_()  # a strided leaf: its update would write a flat buffer
    leaf.grad = nb.ones(3, 4)
    with pytest.raises(RuntimeError, match="is a strided view"):
        nb.optim.SGD([leaf], lr=0.1).step()
    opt = nb.optim.SGD([w], lr=0.1, momentum=0.9)
    w.grad = nb.ones(3, 4)
    opt.state[w] = {"momentum_buffer": nb.ones(4, 3).t()}  # a strided state buffer: copied, never written flat
    opt.step()
    np.testing.assert_allclose(opt.state[w]["momentum_buffer"].numpy(), np.full((3, 4), 1.9))


def test_setitem_into_an_overlapping_view_writes_only_the_region():
    x = nb.arange(6.0, dtype=nb.float64)
    u = x.unfold(0, 3, 1)  # rows share elements
    u[0] = 5.0
    assert x.tolist() == [5, 5, 5, 3, 4, 5]
    u[1] = nb.tensor([7.0, 8, 9], dtype=nb.float64)
    assert x.tolist() == [5, 7, 8, 9, 4, 5]
    u[0, 1] = -1.0
    assert x.tolist() == [5, -1, 8, 9, 4, 5]
    leaf = nb.arange(6.0, dtype=nb.float64).requires_grad_()
    y = leaf * 1
    y.unfold(0, 3, 1)[0] = nb.tensor(5.0, dtype=nb.float64)
    (y * y).sum().backward()
    assert leaf.grad.tolist() == [0, 0, 0, 6, 8, 10]  # the written elements no longer depend on leaf
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        (leaf * 1).unfold(0, 3, 1).mul_(2)  # under a graph its gradient would count elements twice


def test_fill_and_zero_of_an_expanded_tensor():
    a = nb.zeros(3, 1)
    a.expand(3, 4).fill_(2.0)
    assert a.tolist() == [[2.0], [2.0], [2.0]]
    a.expand(3, 4)[0].zero_()
    assert a.tolist() == [[0.0], [2.0], [2.0]]


def test_losses_and_where_with_strided_arguments():
    rng = np.random.default_rng(3)
    logits = nb.tensor(rng.standard_normal((6, 4)), dtype=nb.float64, requires_grad=True)
    targets = nb.tensor([0, 9, 1, 9, 3, 9, 2, 9, 1, 9, 0, 9])
    strided = targets[::2]
    dense = nb.tensor(strided.tolist())
    for loss in (nb.nn.functional.cross_entropy, lambda x, t: nb.nn.functional.nll_loss(x.log_softmax(1), t),
                 lambda x, t: nb.nn.functional.cross_entropy(x, t, label_smoothing=0.1),
                 lambda x, t: nb.nn.functional.cross_entropy(x.t().t(), nb.tensor(2).expand(6))):
        np.testing.assert_allclose(loss(logits, strided).item(), loss(logits, dense).item())
    condition = (logits > 0).t()
    np.testing.assert_array_equal(nb.where(condition, logits.t(), 0.0).detach().numpy(),
                                  np.where(condition.numpy(), logits.detach().numpy().T, 0.0))
    mask = nb.tensor([True, False]).unsqueeze(0).expand(6, 2)
    np.testing.assert_array_equal(nb.where(mask, logits[:, :2], -1.0).detach().numpy()[:, 1], -1.0)


def test_view_edges():
    x = nb.zeros(2, 3)
    v = x[1]
    v.data = nb.arange(5.0)[2:]
    assert v.storage_offset() == 0 and v._base is None and v.tolist() == [2.0, 3.0, 4.0]
    with pytest.raises(RuntimeError, match="at most 8 dimensions"):
        nb.zeros(*[1] * 8).unsqueeze(0)
    assert [p.shape for p in nb.zeros(0, 3).chunk(3)] == [(0, 3)] * 3
    assert [p.shape for p in nb.zeros(5).chunk(3)] == [(2,), (2,), (1,)]
    leaf = nb.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="^a view of a leaf Variable"):
        leaf[0] = 2.0
    with pytest.raises(RuntimeError, match="^a leaf Variable"):
        leaf[[0]] = 2.0


def test_new_data_for_a_transposed_operand_refuses_its_product():
    """The product reads a transposed operand through BLAS's flag: new .data for that view (another
    layout) must not be read as if transposed."""
    w = nb.randn(3, 4, dtype=nb.float64, requires_grad=True)
    x = nb.randn(2, 4, dtype=nb.float64, requires_grad=True)
    wt = w.t()
    y = x @ wt
    wt.data = nb.randn(4, 3, dtype=nb.float64)
    with pytest.raises(RuntimeError, match="transposed view it saved"):
        y.sum().backward()
