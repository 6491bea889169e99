"""nbgrad.compile: a captured training step gives what the eager one gives, its guards recapture,
and what cannot be captured runs eagerly with a warning."""
import threading
import tracemalloc
import warnings

import numpy as np
import pytest

import nbgrad
import nbgrad.nn as nn
import nbgrad.nn.functional as F
from nbgrad.autograd import tape
from nbgrad.compiler.capture import CaptureError

ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU}
OPTIMIZERS = {
    "sgd": lambda p: nbgrad.optim.SGD(p, lr=0.1),
    "momentum": lambda p: nbgrad.optim.SGD(p, lr=0.1, momentum=0.9),
    "nesterov": lambda p: nbgrad.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "weight_decay": lambda p: nbgrad.optim.SGD(p, lr=0.1, weight_decay=0.05),
    "adam": lambda p: nbgrad.optim.Adam(p, lr=0.01),
    "adamw": lambda p: nbgrad.optim.AdamW(p, lr=0.01, weight_decay=0.1),
}
TOLERANCE = {nbgrad.float64: 1e-10, nbgrad.float32: 1e-5}


def _model(layers=2, activation="tanh", dtype=nbgrad.float64, dropout=0.0):
    nbgrad.manual_seed(0)
    modules, width = [], 6
    for _ in range(layers):
        modules += [nn.Linear(width, 8), ACTIVATIONS[activation]()]
        modules += [nn.Dropout(dropout)] if dropout else []
        width = 8
    return nn.Sequential(*modules, nn.Linear(width, 3)).to(dtype)


def _data(steps, dtype, batch=5):
    g = np.random.default_rng(1)
    return [(nbgrad.tensor(g.standard_normal((batch, 6)), dtype=dtype), nbgrad.tensor(g.integers(0, 3, batch)))
            for _ in range(steps)]


def _cross_entropy_step(model, opt, twist=None):
    """The training step the tests compile: zero the grads, cross-entropy (through ``twist``), backward, update."""
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if twist is not None:
            loss = twist(loss)
        loss.backward()
        opt.step()
        return loss

    return step


def _train(compiled, steps=20, optimizer="sgd", dtype=nbgrad.float64, scheduler=None, loss="cross_entropy",
           **model_options):
    model = _model(dtype=dtype, **model_options)
    opt = OPTIMIZERS[optimizer](model.parameters())
    schedule = scheduler(opt) if scheduler else None

    def step(x, y):
        opt.zero_grad()
        out = model(x)
        error = F.cross_entropy(out, y) if loss == "cross_entropy" else F.mse_loss(out, nbgrad.zeros_like(out) + 0.5)
        error.backward()
        opt.step()
        return error

    fn = nbgrad.compile(step) if compiled else step
    losses = []
    for x, y in _data(steps, dtype):
        losses.append(fn(x, y).item())
        if schedule is not None:
            schedule.step()
    return [p.detach().numpy().copy() for p in model.parameters()], losses, fn


def _same_as_eager(dtype=nbgrad.float64, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback would warn
        compiled, compiled_losses, fn = _train(True, dtype=dtype, **options)
    eager, eager_losses, _ = _train(False, dtype=dtype, **options)
    for a, b in zip(compiled, eager):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOLERANCE[dtype])
    np.testing.assert_allclose(compiled_losses, eager_losses, rtol=0, atol=TOLERANCE[dtype])
    assert len(fn.programs) == 1 and sum(p.replays for p in fn.programs.values()) == 18
    return fn


@pytest.mark.parametrize("dtype", [nbgrad.float64, nbgrad.float32])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_optimizers_match_eager(optimizer, dtype):
    _same_as_eager(dtype=dtype, optimizer=optimizer)


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_models_match_eager(layers, activation):
    _same_as_eager(layers=layers, activation=activation)


def test_mse_loss_matches_eager():
    _same_as_eager(loss="mse", optimizer="adam")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("scheduler", [lambda opt: nbgrad.optim.lr_scheduler.StepLR(opt, 3, gamma=0.5),
                                       lambda opt: nbgrad.optim.lr_scheduler.ExponentialLR(opt, 0.9)])
def test_schedulers_are_read_at_each_replay(optimizer, scheduler):
    _same_as_eager(optimizer=optimizer, scheduler=scheduler)


def test_dropout_in_eval_mode_is_identical():
    model = _model(dropout=0.5)
    model.eval()
    x, y = _data(1, nbgrad.float64)[0]
    fn = nbgrad.compile(lambda x: model(x))
    with nbgrad.no_grad():
        results = [fn(x).numpy() for _ in range(4)]
    for r in results:
        np.testing.assert_array_equal(r, results[0])
    assert sum(p.replays for p in fn.programs.values()) == 2


def test_dropout_in_train_mode_draws_fresh_masks_as_eager_does():
    fn = _same_as_eager(dropout=0.3)
    model = _model(dropout=0.5)
    x, _ = _data(1, nbgrad.float64)[0]
    forward = nbgrad.compile(lambda x: model(x))
    with nbgrad.no_grad():
        results = [forward(x).numpy() for _ in range(4)]
    assert not np.array_equal(results[2], results[3])  # two replays, two masks
    assert fn.eager is None


def test_results_are_new_tensors():
    _, _, fn = _train(True, steps=2)
    x, y = _data(1, nbgrad.float64)[0]
    second = fn(x, y)
    kept = second.item()
    third = fn(x, y)
    assert third is not second and second.item() == kept and third.item() != kept


def test_a_changing_batch_size_captures_each_shape():
    model = _model()
    opt = nbgrad.optim.SGD(model.parameters(), lr=0.1)
    eager_model = _model()
    eager_opt = nbgrad.optim.SGD(eager_model.parameters(), lr=0.1)

    fn, eager = nbgrad.compile(_cross_entropy_step(model, opt)), _cross_entropy_step(eager_model, eager_opt)
    for batch in [4, 4, 4, 7, 7, 4, 7, 1, 1]:
        x, y = _data(1, nbgrad.float64, batch)[0]
        assert abs(fn(x, y).item() - eager(x, y).item()) < 1e-12
    assert len(fn.programs) == 3
    for a, b in zip(model.parameters(), eager_model.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=1e-12)


def _step_and_parts():
    model = _model()
    opt = nbgrad.optim.SGD(model.parameters(), lr=0.1)
    return nbgrad.compile(_cross_entropy_step(model, opt)), model, opt


@pytest.mark.parametrize("change", ["data", "parameter", "training", "grad_none", "grad_replaced", "grad_held"])
def test_guards(change):
    fn, model, opt = _step_and_parts()
    x, y = _data(1, nbgrad.float64)[0]
    for _ in range(3):
        fn(x, y)
    first = model[0]
    if change == "data":  # .data replaced: the program must read the new buffer
        first.weight.data = first.weight.detach() * 0.5
    elif change == "parameter":  # a new Parameter object in the module (and the optimizer)
        first.weight = nn.Parameter(first.weight.detach() * 0.5)
        opt.param_groups[0]["params"][0] = first.weight
    elif change == "training":
        model.eval()
    elif change == "grad_none":
        first.weight.grad = None
    elif change == "grad_replaced":
        first.weight.grad = nbgrad.zeros_like(first.weight)
    held = first.weight.grad if change == "grad_held" else None
    held_value = None if held is None else held.numpy().copy()
    eager_model = _model()  # the same step eagerly from the same state
    eager_model.load_state_dict({name: p.clone() for name, p in model.state_dict().items()})
    eager_model.train(model.training)
    loss = fn(x, y).item()
    eager_opt = nbgrad.optim.SGD(eager_model.parameters(), lr=0.1)
    eager_opt.zero_grad()
    eager_loss = F.cross_entropy(eager_model(x), y)
    eager_loss.backward()
    eager_opt.step()
    assert abs(loss - eager_loss.item()) < 1e-12
    for (_, p), (_, q) in zip(sorted(model.named_parameters()), sorted(eager_model.named_parameters())):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), atol=1e-12)
    if held is not None:  # a .grad kept by the caller is not written by the next step
        np.testing.assert_array_equal(held.numpy(), held_value)
    recaptured = change in ("data", "parameter", "training")
    assert len(fn.programs) == 1 and fn.captures == 1 + recaptured


def test_too_many_recaptures_run_eagerly_with_one_warning():
    fn, model, opt = _step_and_parts()
    x, y = _data(1, nbgrad.float64)[0]
    fn(x, y)
    with pytest.warns(UserWarning, match="runs eagerly from now on"):
        for _ in range(12):
            model.train(not model.training)
            fn(x, y)
    assert fn.captures == 8 and fn.eager


class _Double(nbgrad.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g * 2


def _hooked(x):
    x.register_hook(lambda g: g * 2)
    return x


FALLBACKS = {
    "item": (lambda loss: loss + loss.item(), "item()"),
    "numpy": (lambda loss: loss * float(loss.detach().numpy()), "host"),
    "print": (lambda loss: (print(loss), loss)[1], "printing"),
    "condition": (lambda loss: loss * 2 if loss > 1 else loss, "item()"),
    "function": (lambda loss: _Double.apply(loss), "Function"),
    "hook": (lambda loss: _hooked(loss * 1), "hook"),
    "mask": (lambda loss: loss.reshape(1)[loss.reshape(1) > -1].sum(), "capture"),
    "in_place": (lambda loss: loss.clone().mul_(2), "in-place"),
    "random": (lambda loss: loss + nbgrad.rand((), dtype=nbgrad.float64), "random"),
    "scheduler": (lambda loss: (_SCHEDULER.step(), loss)[1], "scheduler"),
}
_SCHEDULER = nbgrad.optim.lr_scheduler.StepLR(nbgrad.optim.SGD([nbgrad.zeros(1, requires_grad=True)], lr=0.1), 1)


@pytest.mark.parametrize("reason", list(FALLBACKS))
def test_fallbacks_warn_once_and_give_the_eager_result(reason, capsys):
    twist, words = FALLBACKS[reason]
    results = {}
    for compiled in (True, False):
        nbgrad.manual_seed(3)
        model = _model()
        opt = nbgrad.optim.SGD(model.parameters(), lr=0.1)
        step = _cross_entropy_step(model, opt, twist)
        fn = nbgrad.compile(step) if compiled else step
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            losses = [fn(x, y).item() for x, y in _data(6, nbgrad.float64)]
        results[compiled] = losses, [p.detach().numpy() for p in model.parameters()]
        if compiled:
            messages = [str(w.message) for w in caught if "nbgrad.compile" in str(w.message)]
            assert len(messages) == 1 and words in messages[0] and "test_compile.py" in messages[0], messages
            assert fn.eager
    np.testing.assert_allclose(results[True][0], results[False][0], atol=1e-12)
    for a, b in zip(results[True][1], results[False][1]):
        np.testing.assert_allclose(a, b, atol=1e-12)


def test_fullgraph_raises():
    model = _model()
    fn = nbgrad.compile(lambda x: model(x).sum().item(), fullgraph=True)
    x, _ = _data(1, nbgrad.float64)[0]
    fn(x)
    with pytest.raises(CaptureError, match="item"):
        fn(x)


def test_accepts_backend_and_mode_and_works_as_a_decorator():
    model = _model()

    @nbgrad.compile(backend="inductor", mode="max-autotune")
    def forward(x):
        return model(x).relu()

    x, _ = _data(1, nbgrad.float64)[0]
    with nbgrad.no_grad():
        expected = model(x).relu().numpy()
        for _ in range(3):
            np.testing.assert_allclose(forward(x).numpy(), expected, atol=1e-15)
    assert sum(p.replays for p in forward.programs.values()) == 1


def test_a_pure_function_whose_result_requires_grad_runs_eagerly():
    model = _model()
    forward = nbgrad.compile(lambda x: model(x).sum())
    x, _ = _data(1, nbgrad.float64)[0]
    forward(x)
    with pytest.warns(UserWarning, match="requires grad"):
        out = forward(x)
    out.backward()
    assert model[0].weight.grad is not None


def test_targets_out_of_bounds_raise_at_replay():
    fn, model, _ = _step_and_parts()
    x, y = _data(1, nbgrad.float64)[0]
    for _ in range(3):
        fn(x, y)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    with pytest.raises(IndexError, match="Target 7 is out of bounds"):
        fn(x, nbgrad.tensor([0, 1, 7, 0, 1]))
    for p, b in zip(model.parameters(), before):  # the step stopped before the update, as eagerly
        np.testing.assert_array_equal(p.detach().numpy(), b)
    fn(x, y)  # and the next call replays
    assert sum(p.replays for p in fn.programs.values()) == 3


def test_memory_is_flat_over_many_replays():
    fn, _, _ = _step_and_parts()
    x, y = _data(1, nbgrad.float64)[0]
    for _ in range(100):
        fn(x, y)
    rows = tape.rows_in_use
    tracemalloc.start()
    try:
        for _ in range(1000):
            fn(x, y)
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(10_000):
            fn(x, y)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 64 * 1024
    assert tape.rows_in_use == rows


def test_two_threads():
    """Two threads, each with its model and compiled step, give what each gives alone; and one
    compiled step replayed from two threads at once runs each replay whole."""
    expected = [_train(False, optimizer=name)[0] for name in ("sgd", "adam")]
    runs = {}
    for name in ("sgd", "adam"):  # made here: model initialisation draws from the one generator
        model = _model()
        opt = OPTIMIZERS[name](model.parameters())
        runs[name] = (model, opt, _data(20, nbgrad.float64))

    def train(name):
        model, opt, data = runs[name]
        step = nbgrad.compile(_cross_entropy_step(model, opt))
        for x, y in data:
            step(x, y)

    threads = [threading.Thread(target=train, args=(name,)) for name in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, want in zip(runs, expected):
        for a, b in zip(runs[name][0].parameters(), want):
            np.testing.assert_allclose(a.detach().numpy(), b, atol=1e-10)
    fn, model, _ = _step_and_parts()
    x, y = _data(1, nbgrad.float64)[0]
    for _ in range(3):  # eager, captured, replayed: from here on both threads replay
        fn(x, y)
    losses = []
    shared = [threading.Thread(target=lambda: losses.extend(fn(x, y).item() for _ in range(50))) for _ in range(2)]
    for t in shared:
        t.start()
    for t in shared:
        t.join()
    assert len(losses) == 100 and np.isfinite(losses).all()
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.parameters())


def _step_with_views(w, b, opt):
    def step(x, y):
        opt.zero_grad()
        h = x[:, ::2].reshape(-1, 3) @ w.t()[::2]  # a strided slice of the transpose, copied for the product
        loss = F.cross_entropy((h + b).view(-1).view(5, 3), y)
        loss.backward()
        opt.step()
        return loss

    return step


def test_a_step_with_views_is_captured_and_matches_eager():
    """Transposes, slices and reshapes inside the function: the views cost no step, the copies at
    the ops' entries are replayed, and the result is the eager one."""
    results = []
    for compiled in (False, True):
        nbgrad.manual_seed(0)
        w = nbgrad.randn(3, 6, dtype=nbgrad.float64, requires_grad=True)
        b = nbgrad.zeros(3, dtype=nbgrad.float64, requires_grad=True)
        step = _step_with_views(w, b, nbgrad.optim.SGD([w, b], lr=0.1))
        fn = nbgrad.compile(step) if compiled else step
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback to eager
            losses = [fn(x, y).item() for x, y in _data(6, nbgrad.float64)]
        results.append((losses, w.detach().numpy().copy()))
        if compiled:
            assert fn.eager is None and sum(p.replays for p in fn.programs.values()) == 4
    np.testing.assert_allclose(results[1][0], results[0][0], atol=1e-12)
    np.testing.assert_allclose(results[1][1], results[0][1], atol=1e-12)
