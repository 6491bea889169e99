"""nn.Module and friends, initialisation, optimizers (against hand-computed updates and torch)."""
import math

import numpy as np
import pytest

import nbgrad as nb
from nbgrad import nn, optim
from nbgrad.nn import functional as F


def mlp():
    nb.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = mlp()
        self.scale = nn.Parameter(nb.ones(1))
        self.note = "not a parameter"

    def forward(self, x):
        return self.body(x) * self.scale


def test_parameters_are_registered_in_assignment_order_with_dotted_names():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["scale", "body.0.weight", "body.0.bias", "body.2.weight", "body.2.bias"]  # own ones first
    assert [p.shape for p in net.parameters()] == [(1,), (3, 4), (3,), (2, 3), (2,)]
    assert list(net.state_dict()) == names
    assert [type(m).__name__ for m in net.modules()] == ["Net", "Sequential", "Linear", "ReLU", "Linear"]
    assert [type(m).__name__ for m in net.children()] == ["Sequential"]
    assert net.note == "not a parameter"
    shared = nn.Linear(2, 2)
    assert len(list(nn.Sequential(shared, shared).parameters())) == 2  # a shared module counts once


def test_repr_follows_pytorch():
    assert repr(mlp()) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=3, out_features=2, bias=True)\n"
        ")")
    assert repr(nn.Parameter(nb.zeros(1))).startswith("Parameter containing:\ntensor([0.]")


def test_sequential_indexing_len_and_iteration():
    model = mlp()
    assert len(model) == 3 and isinstance(model[1], nn.ReLU) and isinstance(model[-1], nn.Linear)
    assert isinstance(model[:2], nn.Sequential) and len(model[:2]) == 2
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    with pytest.raises(IndexError, match="out of range"):
        model[5]


def test_linear_default_init_and_forward():
    layer = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)
    assert np.abs(layer.weight.detach().numpy()).max() <= bound
    assert np.abs(layer.bias.detach().numpy()).max() <= bound
    assert layer.weight.detach().numpy().std() > bound / 3  # spread over the range, not constant
    y = layer(nb.ones(7, 100))
    assert y.shape == (7, 50) and type(y.grad_fn).__name__ == "AddmmBackward0"
    assert nn.Linear(3, 2, bias=False).bias is None
    assert len(list(nn.Linear(3, 2, bias=False).parameters())) == 1


def test_init_functions():
    t = nb.empty(20, 30)
    nn.init.xavier_uniform_(t)
    assert np.abs(t.numpy()).max() <= math.sqrt(6 / 50)
    nn.init.zeros_(t)
    assert not t.numpy().any()
    nn.init.normal_(t, 2.0, 0.1)
    assert abs(t.numpy().mean() - 2.0) < 0.05
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        nn.init.kaiming_uniform_(nb.empty(3))


def test_zero_grad_train_eval_and_dropout():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    model(nb.ones(2, 3)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    model.eval()
    assert not model[1].training
    x = nb.ones(4, 3)
    assert model(x).tolist() == model(x).tolist()  # dropout is the identity in eval
    model.train()
    assert model[1].training


def test_state_dict_round_trip_and_strict_errors():
    source, target = mlp(), nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    result = target.load_state_dict(source.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for a, b in zip(source.parameters(), target.parameters()):
        assert a.tolist() == b.tolist() and a is not b
    state = source.state_dict()
    del state["2.bias"]
    state["extra"] = nb.ones(1)
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "extra".\n\tMissing key\(s\) in '
                                           r'state_dict: "2.bias"'):
        target.load_state_dict(state)
    assert target.load_state_dict(state, strict=False).missing_keys == ["2.bias"]
    bad = source.state_dict()
    bad["0.weight"] = nb.ones(4, 4)
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: copying a param with shape "
                                           r"nbgrad.Size\(\[4, 4\]\) from checkpoint"):
        target.load_state_dict(bad)


def test_losses_as_modules():
    x = nb.tensor([[2.0, 0.5, -1.0]])
    assert nn.CrossEntropyLoss()(x, nb.tensor([0])).item() == pytest.approx(
        -math.log(math.exp(2) / (math.exp(2) + math.exp(0.5) + math.exp(-1))), rel=1e-6)
    assert nn.MSELoss(reduction="sum")(x, nb.zeros(1, 3)).item() == pytest.approx(5.25)


@pytest.mark.parametrize("shape, dtype", [((6, 5), nb.float64), ((200, 300), nb.float32)])  # serial, threads
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_in_one_node_matches_log_softmax_then_nll_loss(shape, dtype, reduction):
    rng = np.random.default_rng(0)
    values = rng.normal(size=shape) * 3
    target = rng.integers(0, shape[1], shape[0])
    target[1] = -100  # ignored
    losses, grads = [], []
    for fused in (True, False):
        x = nb.tensor(values, dtype=dtype, requires_grad=True)
        t = nb.tensor(target)
        loss = (F.cross_entropy(x, t, reduction=reduction) if fused
                else F.nll_loss(F.log_softmax(x, 1), t, reduction=reduction))
        assert loss.grad_fn.name() == "NllLossBackward0"
        assert [type(n).__name__ for n, _ in loss.grad_fn.next_functions] == (
            ["AccumulateGrad"] if fused else ["LogSoftmaxBackward0"])
        loss.backward(nb.tensor(np.linspace(0.5, 2, loss.numel()).reshape(loss.shape), dtype=dtype))
        losses.append(loss.detach().numpy())
        grads.append(x.grad.numpy())
    tolerance = 1e-12 if dtype is nb.float64 else 1e-5
    np.testing.assert_allclose(losses[0], losses[1], rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(grads[0], grads[1], rtol=tolerance, atol=tolerance)
    assert grads[0][1].tolist() == [0.0] * shape[1]  # the ignored row


def test_cross_entropy_in_one_node_edge_cases_match_the_two_step_path():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(3, 4))
    target = nb.tensor(np.array([0, 3, 1]))

    def both(fn):
        """fn(loss_fn) for the fused op and for log_softmax then nll_loss."""
        return [fn(lambda x, t, **kw: F.cross_entropy(x, t, **kw)),
                fn(lambda x, t, **kw: F.nll_loss(F.log_softmax(x, 1), t, **kw))]

    def logits_changed_in_place_after_the_forward(loss_fn):  # PyTorch allows it: nothing saved them
        w = nb.tensor(values, requires_grad=True)
        x = w * 1.0
        loss = loss_fn(x, target)
        x.mul_(2.0)
        loss.backward()
        return w.grad.numpy()

    def second_derivative_all_ignored(loss_fn):  # zeros, not 0 * inf
        x = nb.tensor(values, requires_grad=True)
        (g,) = nb.autograd.grad(loss_fn(x * x, nb.zeros(3, dtype=nb.int64), ignore_index=0) * 3, x,
                                create_graph=True)
        (gg,) = nb.autograd.grad(g.sum(), x)
        return np.concatenate([g.detach().numpy(), gg.numpy()])

    def ignored_row_of_nan(loss_fn):  # NaN reaches the ignored row's gradient, as in PyTorch
        x = nb.tensor(np.where(np.arange(3)[:, None] == 0, np.nan, values), requires_grad=True)
        loss_fn(x, target, ignore_index=0).backward()  # row 0 (target 0) is ignored
        return x.grad.numpy()

    for case in (logits_changed_in_place_after_the_forward, second_derivative_all_ignored, ignored_row_of_nan):
        fused, two_step = both(case)
        np.testing.assert_allclose(fused, two_step, rtol=1e-12, atol=1e-12, err_msg=case.__name__)
    nan_row = both(ignored_row_of_nan)[0]
    assert np.isnan(nan_row[0]).all() and np.isfinite(nan_row[1:]).all()
    assert not both(second_derivative_all_ignored)[0].any()


def test_cross_entropy_refuses_a_target_out_of_range():
    with pytest.raises(IndexError, match=r"Target 3 is out of bounds \(cross_entropy over 3 classes\)"):
        F.cross_entropy(nb.ones(2, 3, requires_grad=True), nb.tensor([0, 3]))


# --- optimizers -------------------------------------------------------------

def reference_sgd(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    buf = None
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def reference_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t, g in enumerate(grads, 1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        p = p - lr / (1 - betas[0] ** t) * m / (np.sqrt(v) / math.sqrt(1 - betas[1] ** t) + eps)
    return p


def run_three_steps(make):
    """Three steps on f(p) = sum(p ** 3): gradients change with p, so the state matters."""
    start = np.array([0.5, -1.0, 2.0])
    p = nb.tensor(start, requires_grad=True)
    opt = make([p])
    grads = []
    for _ in range(3):
        opt.zero_grad()
        (p ** 3).sum().backward()
        grads.append(p.grad.numpy().copy())
        opt.step()
    return start, grads, p.detach().numpy()


@pytest.mark.parametrize("kwargs", [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, momentum=0.9,
                                    nesterov=True, weight_decay=0.1), dict(lr=0.1, momentum=0.5, dampening=0.3)])
def test_sgd_matches_hand_computed_updates(kwargs):
    start, grads, final = run_three_steps(lambda ps: optim.SGD(ps, **kwargs))
    np.testing.assert_allclose(final, reference_sgd(start, grads, **kwargs), rtol=1e-12)


@pytest.mark.parametrize("cls, kwargs, decoupled", [
    (optim.Adam, dict(lr=0.1), False), (optim.Adam, dict(lr=0.05, weight_decay=0.1, betas=(0.8, 0.9)), False),
    (optim.AdamW, dict(lr=0.1), True), (optim.AdamW, dict(lr=0.1, weight_decay=0.5, eps=1e-3), True)])
def test_adam_and_adamw_match_hand_computed_updates(cls, kwargs, decoupled):
    start, grads, final = run_three_steps(lambda ps: cls(ps, **kwargs))
    full = dict(kwargs, weight_decay=kwargs.get("weight_decay", 0.01 if decoupled else 0.0))
    np.testing.assert_allclose(final, reference_adam(start, grads, decoupled=decoupled, **full), rtol=1e-12)


def test_optimizers_match_torch_when_installed():
    torch = pytest.importorskip("torch")
    cases = [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)), ("Adam", dict(lr=0.01)),
             ("AdamW", dict(lr=0.01, weight_decay=0.1))]
    for name, kwargs in cases:
        finals = []
        for lib in (nb, torch):
            lib.manual_seed(0)
            w = lib.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), requires_grad=True)
            opt = getattr(lib.optim, name)([w], **kwargs)
            for step in range(3):
                opt.zero_grad()
                ((w * (step + 1)).tanh() ** 2).sum().backward()
                opt.step()
            finals.append(w.detach().numpy().copy())
        np.testing.assert_allclose(finals[0], finals[1], rtol=1e-5, atol=1e-6, err_msg=name)


def test_step_skips_parameters_without_grad_and_uses_group_lr():
    a = nb.ones(2, requires_grad=True)
    b = nb.ones(2, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    (a * 2 + b * 4).sum().backward()
    opt.step()
    assert a.tolist() == pytest.approx([0.8, 0.8]) and b.tolist() == pytest.approx([-1.0, -1.0])
    c = nb.ones(1, requires_grad=True)
    opt.add_param_group({"params": [c]})
    opt.step()  # c has no gradient: unchanged
    assert c.tolist() == [1.0]


def test_optimizer_step_invalidates_graphs_that_saved_the_parameters():
    w = nb.ones(3, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    loss = (w * w).sum()
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_optimizer_errors():
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    w = nb.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([w * 2], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate: -"):
        optim.Adam([w], lr=-1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)


def test_optimizer_state_dict_round_trip():
    start, _, _ = run_three_steps(lambda ps: optim.Adam(ps, lr=0.1))
    p = nb.tensor(start, requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    (p ** 3).sum().backward()
    opt.step()
    state = opt.state_dict()
    assert state["state"][0]["step"] == 1 and state["param_groups"][0]["params"] == [0]
    q = nb.tensor(p.detach().numpy().copy(), requires_grad=True)
    other = optim.Adam([q], lr=0.5)
    other.load_state_dict(state)
    for o in (opt, other):
        o.zero_grad()
    (p ** 3).sum().backward()
    (q ** 3).sum().backward()
    opt.step()
    other.step()
    assert other.param_groups[0]["lr"] == 0.1
    np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_schedulers():
    w = nb.ones(1, requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    steps = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    seen = []
    for _ in range(5):
        seen.append(steps.get_last_lr()[0])
        steps.step()
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.25]
    opt = optim.SGD([w], lr=1.0)
    cosine = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.1)
    for _ in range(4):
        cosine.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
