"""autograd.grad, custom Functions, hooks and the graph picture (SPEC §3 items 5, 11, 12)."""
import numpy as np
import pytest

import nbgrad as torch
from nbgrad.autograd import Function, engine, gradcheck


def leaf(values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype, requires_grad=True)


# --- autograd.grad -------------------------------------------------------------


def test_grad_returns_gradients_and_leaves_dot_grad_alone():
    x, w = leaf([1.0, 2.0, 3.0]), leaf([0.5, -1.0, 2.0])
    y = (x * w).sum() + (x ** 2).sum()
    calls = engine.executor_calls
    gx, gw = torch.autograd.grad(y, [x, w])
    assert engine.executor_calls == calls + 1  # one compiled call
    np.testing.assert_allclose(gx.numpy(), [2.5, 3.0, 8.0])
    np.testing.assert_allclose(gw.numpy(), [1.0, 2.0, 3.0])
    assert x.grad is None and w.grad is None
    assert not gx.requires_grad and gx.dtype == torch.float64


def test_grad_leaves_existing_grad_untouched_and_works_for_float32():
    x = leaf([1.0, -2.0], torch.float32)
    (x * 3).sum().backward()
    (g,) = torch.autograd.grad((x * x).sum(), x)
    np.testing.assert_allclose(g.numpy(), [2.0, -4.0])
    assert g.dtype == torch.float32
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])


def test_grad_of_an_intermediate_tensor():
    x = leaf([1.0, 2.0])
    h = x * 2
    z = (h * h).sum()
    (gh,) = torch.autograd.grad(z, h, retain_graph=True)
    np.testing.assert_allclose(gh.numpy(), [4.0, 8.0])
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), [8.0, 16.0])


def test_grad_frees_the_graph_unless_retained():
    x = leaf([1.0, 2.0])
    y = (x.exp()).sum()
    torch.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch.autograd.grad(y, x)
    y = (x.exp()).sum()
    a = torch.autograd.grad(y, x, retain_graph=True)[0]
    b = torch.autograd.grad(y, x)[0]
    np.testing.assert_allclose(a.numpy(), b.numpy())


def test_grad_with_grad_outputs_and_several_outputs():
    x = leaf([1.0, 2.0, 3.0])
    y1, y2 = x * 2, x ** 2
    v1, v2 = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.5], dtype=torch.float64)
    (g,) = torch.autograd.grad([y1, y2], x, grad_outputs=[v1, v2])
    np.testing.assert_allclose(g.numpy(), 2 * v1.numpy() + 2 * x.detach().numpy() * v2.numpy())


def test_backward_into_chosen_inputs_only():
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0], requires_grad=True)
    h = w * 3
    loss = (h * h).sum() + b.sum()  # d/dw = 18 w, d/dh = 2 h, d/db = 1
    loss.backward(inputs=[w], retain_graph=True)
    assert w.grad.tolist() == [18.0, 36.0] and b.grad is None
    kept = w.grad
    loss.backward(inputs=w, retain_graph=True)  # accumulates, in place as in PyTorch
    assert kept.tolist() == [36.0, 72.0] and w.grad is kept and b.grad is None
    torch.autograd.backward([loss], inputs=[h, b])  # a non-leaf input gets its .grad too
    assert h.grad.tolist() == [6.0, 12.0] and b.grad.tolist() == [1.0] and w.grad.tolist() == [36.0, 72.0]
    unused = torch.tensor([1.0], requires_grad=True)
    (w * 2).sum().backward(inputs=[unused, w])
    assert unused.grad is None and w.grad.tolist() == [38.0, 74.0]
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (w * 2).sum().backward(inputs=[])


def test_grad_errors_like_pytorch():
    x, unused = leaf([1.0, 2.0]), leaf([3.0])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar outputs"):
        torch.autograd.grad(x * 2, x)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        torch.autograd.grad((x * 2).sum(), [x, unused])
    gx, gu = torch.autograd.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None and gx is not None
    _, zeros = torch.autograd.grad((x * 2).sum(), [x, unused], materialize_grads=True)
    np.testing.assert_array_equal(zeros.numpy(), [0.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        torch.autograd.grad((x * 2).sum(), torch.ones(2))
    with pytest.raises(RuntimeError, match="element 0 of tensors does not require grad"):
        torch.autograd.grad(torch.ones(2).sum(), x)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        torch.autograd.grad(x * 2, x, grad_outputs=torch.ones(3, dtype=torch.float64))


def test_grad_runs_tensor_hooks():
    x = leaf([1.0, 2.0])
    h = x * 3
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()) or g * 10)
    (g,) = torch.autograd.grad(h.sum(), x)
    np.testing.assert_allclose(seen[0], [1.0, 1.0])
    np.testing.assert_allclose(g.numpy(), [30.0, 30.0])


def test_grad_matches_backward_on_a_broadcasting_mlp():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((5, 4)))
    w = torch.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    b = torch.tensor(rng.standard_normal(3), requires_grad=True)
    loss = ((x @ w + b).relu() ** 2).mean()
    gw, gb = torch.autograd.grad(loss, [w, b], retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(gw.numpy(), w.grad.numpy())
    np.testing.assert_allclose(gb.numpy(), b.grad.numpy())


# --- custom Functions ------------------------------------------------------------


def exp_function(base):
    """exp as a custom Function of ``base`` (nbgrad's, or PyTorch's for comparison)."""

    class Exp(base):
        @staticmethod
        def forward(ctx, x):
            result = x.exp()
            ctx.save_for_backward(result)
            return result

        @staticmethod
        def backward(ctx, grad):
            (result,) = ctx.saved_tensors
            return grad * result

    return Exp


Exp = exp_function(Function)


class ScaledProduct(Function):
    """x * y * scale, with a non-tensor argument."""

    @staticmethod
    def forward(ctx, x, y, scale):
        ctx.save_for_backward(x, y)
        ctx.scale = scale
        assert ctx.needs_input_grad == (True, False, False) or ctx.needs_input_grad == (True, True, False)
        return x * y * scale

    @staticmethod
    def backward(ctx, grad):
        x, y = ctx.saved_tensors
        return grad * y * ctx.scale, (grad * x * ctx.scale if ctx.needs_input_grad[1] else None), None


def test_function_forward_and_backward_mix_with_built_in_ops():
    x = leaf([0.5, 1.0, 2.0])
    out = (Exp.apply(x * 2) * 3).sum()
    assert type(out.grad_fn.next_functions[0][0].next_functions[0][0]).__name__ == "ExpBackward"
    calls = engine.executor_calls
    out.backward()
    assert engine.executor_calls == calls + 2  # compiled, Python, compiled: two segments
    np.testing.assert_allclose(x.grad.numpy(), 6 * np.exp(2 * x.detach().numpy()))


def test_function_passes_gradcheck_and_a_wrong_backward_is_caught():
    x, y = leaf([0.3, -1.2, 2.0]), leaf([1.5, 0.5, -0.7])
    assert gradcheck(lambda a, b: ScaledProduct.apply(a, b, 2.5), (x, y))
    assert gradcheck(Exp.apply, (x,))

    class WrongExp(Exp):
        @staticmethod
        def backward(ctx, grad):
            (result,) = ctx.saved_tensors
            return grad * result * 1.1

    with pytest.raises(torch.autograd.GradcheckError, match="numerical"):
        gradcheck(WrongExp.apply, (x,))
    assert gradcheck(WrongExp.apply, (x,), raise_exception=False) is False


def test_function_needs_input_grad_and_non_tensor_arguments():
    x, y = leaf([1.0, 2.0]), torch.tensor([3.0, 4.0], dtype=torch.float64)
    ScaledProduct.apply(x, y, 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 8.0])


def test_function_with_several_outputs_and_many_inputs():
    class Split(Function):
        @staticmethod
        def forward(ctx, a, b, c, d, k):
            ctx.k = k
            return a * k + b, c * d

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * ctx.k, g1, None, g2 * 2, None

    a, b, c, d = (leaf([1.0, 2.0]) for _ in range(4))
    p, q = Split.apply(a, b, c, d, 5.0)
    assert type(p.grad_fn).__name__ == "SplitBackward" and len(p.grad_fn.next_functions) == 4
    (p.sum() + 3 * q.sum()).backward()
    np.testing.assert_allclose(a.grad.numpy(), [5.0, 5.0])
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])
    np.testing.assert_allclose(d.grad.numpy(), [6.0, 6.0])
    # only one output used: the other's gradient is zeros
    gd, ga = torch.autograd.grad(Split.apply(a, b, c, d, 5.0)[0].sum(), [d, a])
    np.testing.assert_allclose(gd.numpy(), [0.0, 0.0])
    np.testing.assert_allclose(ga.numpy(), [5.0, 5.0])


def test_function_mark_non_differentiable_and_no_grad():
    class SortWithIndex(Function):
        @staticmethod
        def forward(ctx, x):
            index = torch.tensor(np.argsort(x.detach().numpy()))
            values = x[index]
            ctx.mark_non_differentiable(index)
            ctx.save_for_backward(index)
            ctx.n = x.shape[0]
            return values, index

        @staticmethod
        def backward(ctx, g_values, g_index):
            (index,) = ctx.saved_tensors
            grad = np.zeros(ctx.n)
            grad[index.numpy()] = g_values.numpy()
            return torch.tensor(grad)

    x = leaf([3.0, 1.0, 2.0])
    values, index = SortWithIndex.apply(x)
    assert values.requires_grad and not index.requires_grad
    (values * torch.tensor([1.0, 10.0, 100.0], dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [100.0, 1.0, 10.0])
    with torch.no_grad():
        assert not Exp.apply(x).requires_grad


def test_function_errors():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, grad):
            return grad

    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad.sum()

    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"TooFewBackward returned an incorrect number of gradients \(expected 2"):
        TooFew.apply(x, x).sum().backward()
    with pytest.raises(RuntimeError, match="BadShapeBackward returned an invalid gradient at index 0"):
        BadShape.apply(x).sum().backward()
    with pytest.raises(RuntimeError, match="through .apply"):
        Exp()
    y = Exp.apply(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_function_saved_tensor_modified_in_place_is_refused():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = Exp.apply(h)
    y.sub_(1)  # the saved result
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_function_matches_torch_when_installed():
    torch_ref = pytest.importorskip("torch")
    RefExp = exp_function(torch_ref.autograd.Function)

    values = [0.1, -0.4, 1.3]
    x, xr = leaf(values), torch_ref.tensor(values, dtype=torch_ref.float64, requires_grad=True)
    (Exp.apply(x * x) * x).sum().backward()
    (RefExp.apply(xr * xr) * xr).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xr.grad.numpy())


# --- hooks -------------------------------------------------------------------------


def test_hooks_run_in_registration_order_and_can_be_removed():
    x = leaf([1.0, 2.0])
    h = x * 2
    order = []
    first = h.register_hook(lambda g: order.append("first"))
    h.register_hook(lambda g: order.append("second") or g * 3)
    h.sum().backward(retain_graph=True)
    assert order == ["first", "second"]
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])
    first.remove()
    order.clear()
    x.grad = None
    h.sum().backward()
    assert order == ["second"]
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_post_accumulate_grad_hook_sees_the_accumulated_leaf():
    x = leaf([1.0, 2.0])
    seen = []
    handle = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    (x * 3).sum().backward()
    (x * 2).sum().backward()
    np.testing.assert_allclose(seen, [[3.0, 3.0], [5.0, 5.0]])
    torch.autograd.grad((x * 2).sum(), x)  # grad() accumulates nothing: no call
    (torch.ones(2) * 2).sum()  # a graph without x
    assert len(seen) == 2
    handle.remove()
    (x * 3).sum().backward()
    assert len(seen) == 2


def test_hook_errors_like_pytorch():
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        torch.ones(2).register_hook(lambda g: g)
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't require gradient"):
        torch.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="post accumulate grad hooks cannot be registered on non-leaf tensors"):
        (leaf([1.0]) * 2).register_post_accumulate_grad_hook(lambda t: None)


def test_retain_grad_keeps_an_intermediate_gradient():
    x = leaf([1.0, 2.0])
    h = x * 2
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [4.0, 8.0])


# --- the graph picture ----------------------------------------------------------------


def _parse_dot(text):
    """Node labels and edges of the DOT text that to_dot writes."""
    import re

    labels = dict(re.findall(r'^\s+(\w+) \[label="([^"]*)"', text, re.M))
    edges = set(re.findall(r"^\s+(\w+) -> (\w+);", text, re.M))
    return labels, edges


def test_to_dot_shows_nodes_leaves_saved_shapes_and_edges():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    w = leaf([[1.0], [2.0], [3.0]])
    out = (x @ w).relu().sum()
    text = torch.autograd.graph.to_dot(out)
    assert text.startswith("digraph backward {") and text.rstrip().endswith("}")
    labels, edges = _parse_dot(text)
    by_name = {label.split("\\n")[0]: node for node, label in labels.items() if node != "output"}
    assert set(by_name) == {"SumBackward0", "ReluBackward0", "MmBackward0", "AccumulateGrad"}
    leaves = [label for label in labels.values() if label.startswith("AccumulateGrad")]
    assert sorted(leaves) == ["AccumulateGrad\\nleaf (2, 3)", "AccumulateGrad\\nleaf (3, 1)"]
    assert (by_name["SumBackward0"], "output") in edges
    assert (by_name["ReluBackward0"], by_name["SumBackward0"]) in edges
    mm = by_name["MmBackward0"]
    assert "saved" in labels[mm] and "(2, 3)" in labels[mm]
    assert sum(1 for a, b in edges if b == mm) == 2  # both leaves feed the product


def test_to_dot_of_a_tensor_without_history_and_render_without_graphviz(tmp_path):
    assert "tensor (2)" in torch.autograd.graph.to_dot(torch.ones(2))
    try:
        import graphviz  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r'pip install -e "\.\[graph\]"') as raised:
            torch.autograd.graph.render((leaf([1.0]) * 2).sum(), tmp_path / "g.svg")
        assert raised.value.__cause__ is None and raised.value.__suppress_context__  # one error, no chain
    else:
        pytest.skip("graphviz is installed: the missing-package error cannot be shown")


def test_render_without_graphvizs_dot_program_says_what_to_install(tmp_path, monkeypatch):
    import shutil
    import sys
    import types

    monkeypatch.setitem(sys.modules, "graphviz", types.ModuleType("graphviz"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="needs Graphviz's dot program"):
        torch.autograd.graph.render((leaf([1.0]) * 2).sum(), tmp_path / "g.svg")


def test_save_for_backward_refuses_what_is_not_a_tensor():
    class SavesANumber(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 2.0)
            return x * 2

    with pytest.raises(TypeError, match="argument 1 is of type float"):
        SavesANumber.apply(leaf([1.0]))


class _Half(torch.autograd.Function):
    """y = x / 2, with no gradient for its second input."""

    @staticmethod
    def forward(ctx, x, unused):
        return x / 2

    @staticmethod
    def backward(ctx, g):
        return g / 2, None


def test_a_leaf_no_gradient_reaches_keeps_grad_none():
    x = torch.ones(3, requires_grad=True)
    c = torch.ones(3, requires_grad=True)
    (_Half.apply(x, c) * 4).sum().backward()
    assert x.grad.tolist() == [2.0] * 3 and c.grad is None  # as PyTorch


def test_a_hook_that_raises_leaves_unreached_grads_none_and_the_next_backward_exact():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    h = x * w
    h.register_hook(lambda g: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        (h * h).sum().backward(retain_graph=True)
    assert x.grad is None and w.grad is None
    ((x * w) ** 2).sum().backward()
    assert x.grad.tolist() == [18.0, -64.0] and w.grad.tolist() == [6.0, 32.0]


class _SquareVia(torch.autograd.Function):
    """y = h * h, whose backward asks autograd.grad through the graph that made h."""

    @staticmethod
    def forward(ctx, h):
        ctx.save_for_backward(h)
        return h * h

    @staticmethod
    def backward(ctx, g):
        (h,) = ctx.saved_tensors
        with torch.enable_grad():
            (twice_h,) = torch.autograd.grad((h * h).sum(), [h], retain_graph=True)
        return g * twice_h


def test_a_function_whose_backward_runs_a_backward_through_shared_rows():
    x = torch.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
    h = (x * 1.5).relu() + x
    _SquareVia.apply(h).sum().backward()
    v = x.detach().numpy()
    h = np.maximum(1.5 * v, 0) + v
    np.testing.assert_allclose(x.grad.numpy(), 2 * h * np.where(v > 0, 2.5, 1.0), rtol=1e-6)
