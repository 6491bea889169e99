"""RMSprop, Adagrad and the schedules ExponentialLR, MultiStepLR, LambdaLR and ReduceLROnPlateau:
against updates computed by hand and, where PyTorch is installed, against PyTorch."""
import itertools
import math

import numpy as np
import pytest
from test_nn_optim import run_three_steps  # three steps on sum(p ** 3), shared with the older optimizers

import nbgrad as nb
from nbgrad import optim
from nbgrad.optim import lr_scheduler

# --- references --------------------------------------------------------------


def reference_rmsprop(p, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
                      maximize=False):
    v, a, b = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        d = (-g if maximize else g) + weight_decay * p
        v = alpha * v + (1 - alpha) * d * d
        a = a + (1 - alpha) * (d - a)
        avg = np.sqrt(v - a * a if centered else v) + eps
        if momentum > 0:
            b = momentum * b + d / avg
            p = p - lr * b
        else:
            p = p - lr * d / avg
    return p


def reference_adagrad(p, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                      maximize=False):
    total = np.full_like(p, initial_accumulator_value)
    for step, g in enumerate(grads, 1):
        d = (-g if maximize else g) + weight_decay * p
        total = total + d * d
        p = p - lr / (1 + (step - 1) * lr_decay) * d / (np.sqrt(total) + eps)
    return p


# --- by hand ---------------------------------------------------------------


def test_rmsprop_first_step_by_hand():
    p = nb.tensor([1.0, -2.0], dtype=nb.float64, requires_grad=True)
    opt = optim.RMSprop([p])
    (p * p).sum().backward()  # g = [2, -4], square_avg = 0.01 g ** 2
    opt.step()
    assert p.tolist() == pytest.approx([1 - 0.01 * 2 / (0.2 + 1e-8), -2 + 0.01 * 4 / (0.4 + 1e-8)], rel=1e-12)
    assert opt.state[p]["square_avg"].tolist() == pytest.approx([0.04, 0.16], rel=1e-12)
    assert set(opt.state[p]) == {"step", "square_avg"} and opt.state[p]["step"] == 1


def test_rmsprop_centered_momentum_first_steps_by_hand():
    p = nb.tensor([1.0], dtype=nb.float64, requires_grad=True)
    opt = optim.RMSprop([p], lr=0.1, alpha=0.5, eps=0.0, momentum=0.5, centered=True)
    (p * 3).sum().backward()  # g = 3: square_avg 4.5, grad_avg 1.5, avg sqrt(4.5 - 2.25) = 1.5, buf 2
    opt.step()
    assert p.tolist() == pytest.approx([0.8], rel=1e-12)
    state = opt.state[p]
    assert [state[k].item() for k in ("square_avg", "grad_avg", "momentum_buffer")] == pytest.approx([4.5, 1.5, 2])
    opt.step()  # the same g: square_avg 6.75, grad_avg 2.25, avg sqrt(1.6875), buf 1 + 3 / avg
    assert p.item() == pytest.approx(0.8 - 0.1 * (1 + 3 / math.sqrt(1.6875)), rel=1e-12)


def test_adagrad_first_steps_by_hand():
    p = nb.tensor([3.0], dtype=nb.float64, requires_grad=True)
    opt = optim.Adagrad([p], lr=0.1, lr_decay=0.5, initial_accumulator_value=0.5)
    assert set(opt.state[p]) == {"step", "sum"} and opt.state[p]["sum"].tolist() == [0.5]  # made at once
    (p * 6).sum().backward()  # g = 6: sum 36.5
    opt.step()
    first = 3 - 0.1 * 6 / (math.sqrt(36.5) + 1e-10)
    assert p.item() == pytest.approx(first, rel=1e-12)
    opt.step()  # step 2: lr 0.1 / (1 + 0.5), sum 72.5
    assert p.item() == pytest.approx(first - 0.1 / 1.5 * 6 / (math.sqrt(72.5) + 1e-10), rel=1e-12)
    assert opt.state[p]["step"] == 2 and opt.state[p]["sum"].item() == 72.5


RMSPROP_CASES = [dict(momentum=m, centered=c, weight_decay=wd)
                 for m, c, wd in itertools.product((0.0, 0.9), (False, True), (0.0, 0.1))]
RMSPROP_CASES += [dict(lr=0.05, alpha=0.9, eps=1e-3, momentum=0.5, centered=True, maximize=True)]
ADAGRAD_CASES = [dict(lr_decay=d, initial_accumulator_value=v, weight_decay=wd)
                 for d, v, wd in itertools.product((0.0, 0.1), (0.0, 0.5), (0.0, 0.1))]
ADAGRAD_CASES += [dict(lr=0.5, eps=1e-3, lr_decay=0.2, maximize=True)]


@pytest.mark.parametrize("kwargs", RMSPROP_CASES, ids=str)
def test_rmsprop_matches_hand_computed_updates(kwargs):
    start, grads, final = run_three_steps(lambda ps: optim.RMSprop(ps, **kwargs))
    np.testing.assert_allclose(final, reference_rmsprop(start, grads, **kwargs), rtol=1e-12)


@pytest.mark.parametrize("kwargs", ADAGRAD_CASES, ids=str)
def test_adagrad_matches_hand_computed_updates(kwargs):
    start, grads, final = run_three_steps(lambda ps: optim.Adagrad(ps, **kwargs))
    np.testing.assert_allclose(final, reference_adagrad(start, grads, **kwargs), rtol=1e-12)


def test_maximize_climbs():
    for cls in (optim.RMSprop, optim.Adagrad):
        p = nb.zeros(1, requires_grad=True)
        opt = cls([p], lr=0.1, maximize=True)
        p.sum().backward()
        opt.step()
        assert p.item() > 0, cls.__name__


def test_rmsprop_options_turned_on_between_steps_get_fresh_buffers():
    """A buffer the first steps did not need (momentum 0, not centered) starts at zero when the
    option is turned on, instead of the kernel reading a buffer that is not there."""
    p = nb.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    opt = optim.RMSprop([p], lr=0.1)
    grads = []
    for step in range(4):
        if step == 2:
            opt.param_groups[0].update(momentum=0.9, centered=True)
        opt.zero_grad()
        (p ** 3).sum().backward()
        grads.append(p.grad.numpy().copy())
        opt.step()
    assert set(opt.state[p]) == {"step", "square_avg", "momentum_buffer", "grad_avg"}
    start = np.array([0.5, -1.0, 2.0])
    v = a = b = np.zeros(3)
    for step, g in enumerate(grads):  # the reference, with grad_avg and the momentum from step 2 on
        v = 0.99 * v + 0.01 * g * g
        if step < 2:
            start = start - 0.1 * g / (np.sqrt(v) + 1e-8)
            continue
        a = a + 0.01 * (g - a)
        b = 0.9 * b + g / (np.sqrt(v - a * a) + 1e-8)
        start = start - 0.1 * b
    np.testing.assert_allclose(p.detach().numpy(), start, rtol=1e-12)


def test_adagrad_state_of_a_group_added_later_and_after_a_reset():
    p, q = nb.ones(2, requires_grad=True), nb.ones(2, requires_grad=True)
    opt = optim.Adagrad([p], lr=0.1, initial_accumulator_value=1.0)
    opt.add_param_group({"params": [q], "initial_accumulator_value": 5.0})  # as PyTorch: not read
    opt.state = {}
    (p + q).sum().backward()
    opt.step()
    for t in (p, q):
        assert opt.state[t]["sum"].tolist() == [2.0, 2.0] and opt.state[t]["step"] == 1


def test_state_dict_round_trip(tmp_path):
    for make in (lambda ps: optim.RMSprop(ps, lr=0.05, momentum=0.9, centered=True, weight_decay=0.1),
                 lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.1, initial_accumulator_value=0.2)):
        p = nb.tensor([0.5, -1.0, 2.0], requires_grad=True)
        opt = make([p])
        for _ in range(3):
            opt.zero_grad()
            (p ** 3).sum().backward()
            opt.step()
        nb.save(opt.state_dict(), tmp_path / "opt.npz")
        q = nb.tensor(p.detach().numpy().copy(), requires_grad=True)
        other = make([q])
        other.param_groups[0]["lr"] = 1.0  # loaded back
        other.load_state_dict(nb.load(tmp_path / "opt.npz"))
        assert other.state[q]["step"] == 3 and other.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
        for _ in range(3):
            for o, t in ((opt, p), (other, q)):
                o.zero_grad()
                (t ** 3).sum().backward()
                o.step()
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
        assert other.state[q]["step"] == 6


def test_hyper_parameter_errors():
    w = nb.ones(2, requires_grad=True)
    cases = [(optim.RMSprop, dict(lr=-1), "Invalid learning rate: -1"),
             (optim.RMSprop, dict(eps=-1), "Invalid epsilon value: -1"),
             (optim.RMSprop, dict(momentum=-0.5), "Invalid momentum value: -0.5"),
             (optim.RMSprop, dict(weight_decay=-1), "Invalid weight_decay value: -1"),
             (optim.RMSprop, dict(alpha=-1), "Invalid alpha value: -1"),
             (optim.Adagrad, dict(lr=-1), "Invalid learning rate: -1"),
             (optim.Adagrad, dict(lr_decay=-1), "Invalid lr_decay value: -1"),
             (optim.Adagrad, dict(weight_decay=-1), "Invalid weight_decay value: -1"),
             (optim.Adagrad, dict(initial_accumulator_value=-1), "Invalid initial_accumulator_value value: -1"),
             (optim.Adagrad, dict(eps=-1), "Invalid epsilon value: -1")]
    for cls, kwargs, message in cases:
        with pytest.raises(ValueError) as error:
            cls([w], **kwargs)
        assert str(error.value) == message
    with pytest.raises(RuntimeError, match="`fused` does not support `differentiable`"):
        optim.Adagrad([w], fused=True, differentiable=True)
    optim.RMSprop([w], capturable=True, foreach=True, differentiable=True)  # accepted, as PyTorch
    optim.Adagrad([w], foreach=False, fused=True)


# --- optimizers against PyTorch -----------------------------------------------


def steps_with_given_gradients(lib, name, kwargs, dtype, steps=20, groups=False, schedule=None):
    """``steps`` of ``lib.optim.<name>`` on two parameters with the same starting values and
    gradients in either library (set by hand; the second has none at step 5)."""
    rng = np.random.default_rng(0)
    starts = [rng.uniform(-1, 1, (3, 4)).astype(dtype), rng.uniform(-1, 1, 5).astype(dtype)]
    grads = [[rng.normal(size=s.shape).astype(dtype) for s in starts] for _ in range(steps)]
    for g in grads:
        g[1][0] = 0  # an element whose gradient is always zero
    params = [lib.tensor(s.copy(), requires_grad=True) for s in starts]
    spec = [{"params": params[:1], "lr": 0.05}, {"params": params[1:]}] if groups else params
    opt = getattr(lib.optim, name)(spec, **kwargs)
    scheduler = schedule(lib, opt) if schedule else None
    for step, step_grads in enumerate(grads):
        for k, (p, g) in enumerate(zip(params, step_grads)):
            p.grad = None if (step == 5 and k == 1) else lib.tensor(g.copy())
        opt.step()
        if scheduler:
            scheduler.step()
    return params, opt


def assert_same_steps(name, kwargs, dtype, **options):
    torch = pytest.importorskip("torch")
    ours, opt = steps_with_given_gradients(nb, name, kwargs, dtype, **options)
    theirs, reference = steps_with_given_gradients(torch, name, kwargs, dtype, **options)
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=tolerance, atol=tolerance)
        assert set(opt.state[p]) == set(reference.state[q])
        for key, value in reference.state[q].items():
            if key == "step":
                assert opt.state[p]["step"] == int(value)
            else:  # a buffer sums terms (each rounded) as large as its largest element: so may its error
                scale = max(1.0, float(np.abs(value.numpy()).max()))
                np.testing.assert_allclose(opt.state[p][key].numpy(), value.numpy(), rtol=tolerance,
                                           atol=tolerance * scale)
    ours_saved, theirs_saved = opt.state_dict(), reference.state_dict()
    assert [sorted(g) for g in ours_saved["param_groups"]] == [sorted(g) for g in theirs_saved["param_groups"]]
    assert ours_saved["state"].keys() == theirs_saved["state"].keys()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", RMSPROP_CASES, ids=str)
def test_rmsprop_matches_torch(kwargs, dtype):
    assert_same_steps("RMSprop", kwargs, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", ADAGRAD_CASES, ids=str)
def test_adagrad_matches_torch(kwargs, dtype):
    assert_same_steps("Adagrad", kwargs, dtype)


@pytest.mark.parametrize("name, kwargs", [("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
                                          ("Adagrad", dict(lr=0.1, lr_decay=0.01))])
def test_training_through_backward_matches_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    finals = []
    for lib in (nb, torch):
        w = lib.tensor(np.linspace(-1, 1, 12).reshape(3, 4), requires_grad=True)
        opt = getattr(lib.optim, name)([w], **kwargs)
        for step in range(20):
            opt.zero_grad()
            ((w * (step % 3 + 1)).tanh() ** 2).sum().backward()
            opt.step()
        finals.append(w.detach().numpy().copy())
    np.testing.assert_allclose(finals[0], finals[1], rtol=1e-12, atol=1e-12)


def test_optimizer_error_messages_match_torch():
    torch = pytest.importorskip("torch")
    cases = [("RMSprop", dict(lr=-1)), ("RMSprop", dict(eps=-1e-3)), ("RMSprop", dict(momentum=-1)),
             ("RMSprop", dict(weight_decay=-1)), ("RMSprop", dict(alpha=-0.1)), ("Adagrad", dict(lr=-1)),
             ("Adagrad", dict(lr_decay=-1)), ("Adagrad", dict(weight_decay=-1)),
             ("Adagrad", dict(initial_accumulator_value=-1)), ("Adagrad", dict(eps=-1)),
             ("Adagrad", dict(fused=True, differentiable=True)), ("Adagrad", dict(fused=True, foreach=True))]
    for name, kwargs in cases:
        errors = []
        for lib in (nb, torch):
            with pytest.raises(Exception) as error:
                getattr(lib.optim, name)([lib.ones(2, requires_grad=True)], **kwargs)
            errors.append((type(error.value), str(error.value)))
        assert errors[0] == errors[1], (name, kwargs)


# --- schedules by hand ---------------------------------------------------------


def lrs_of(make_scheduler, epochs, metrics=None, lr=1.0):
    opt = optim.SGD([nb.ones(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(opt)
    seen = []
    for epoch in range(epochs):
        seen.append(scheduler.get_last_lr()[0])
        scheduler.step(*([] if metrics is None else [metrics[epoch]]))
    return seen


def test_schedules_by_hand():
    assert lrs_of(lambda o: lr_scheduler.ExponentialLR(o, gamma=0.5), 4) == [1.0, 0.5, 0.25, 0.125]
    assert lrs_of(lambda o: lr_scheduler.MultiStepLR(o, [2, 4, 4], gamma=0.1), 6) == pytest.approx(
        [1, 1, 0.1, 0.1, 0.001, 0.001])
    assert lrs_of(lambda o: lr_scheduler.LambdaLR(o, lambda e: 1 / (e + 1)), 4) == [1, 0.5, 1 / 3, 0.25]
    # patience 1: the second epoch without improvement lowers the lr
    seen = lrs_of(lambda o: lr_scheduler.ReduceLROnPlateau(o, patience=1), 7, [1, 1, 1, 0.5, 0.5, 0.5, 0.5])
    assert seen == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])


def test_reduce_on_plateau_min_lr_cooldown_and_state_dict():
    opt = optim.SGD([{"params": [nb.ones(1, requires_grad=True)]}, {"params": [nb.ones(1, requires_grad=True)]}],
                    lr=1.0)
    plateau = lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=0, cooldown=1, min_lr=[0, 0.4])
    for _ in range(3):
        plateau.step(1.0)  # epoch 1 sets best; each later one is bad, but the one after a cut is cooldown
    assert plateau.get_last_lr() == [0.5, 0.5]
    state = plateau.state_dict()
    assert "optimizer" not in state and state["best"] == 1.0
    other = lr_scheduler.ReduceLROnPlateau(opt)
    other.load_state_dict(state)
    other.step(1.0)
    assert other.get_last_lr() == [0.25, 0.4] and other.cooldown_counter == 1


def test_lambda_lr_state_dict_saves_callable_objects_not_functions():
    class Warmup:
        def __init__(self, epochs):
            self.epochs = epochs

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.epochs)

    opt = optim.SGD([{"params": [nb.ones(1, requires_grad=True)]}, {"params": [nb.ones(1, requires_grad=True)]}],
                    lr=1.0)
    scheduler = lr_scheduler.LambdaLR(opt, [Warmup(4), lambda e: 0.5 ** e])
    state = scheduler.state_dict()
    assert state["lr_lambdas"] == [{"epochs": 4}, None]
    state["lr_lambdas"][0] = {"epochs": 2}
    state["last_epoch"] = 0
    scheduler.load_state_dict(state)
    scheduler.step()
    assert scheduler.get_last_lr() == [1.0, 0.5]


def test_schedule_errors():
    opt = optim.SGD([{"params": [nb.ones(1, requires_grad=True)]}, {"params": [nb.ones(1, requires_grad=True)]}],
                    lr=1.0)
    cases = [(lambda: lr_scheduler.ReduceLROnPlateau(opt, factor=1.0), ValueError, "Factor should be < 1.0."),
             (lambda: lr_scheduler.ReduceLROnPlateau(opt, mode="up"), ValueError, "mode up is unknown!"),
             (lambda: lr_scheduler.ReduceLROnPlateau(opt, threshold_mode="x"), ValueError,
              "threshold mode x is unknown!"),
             (lambda: lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0]), ValueError, "expected 2 min_lrs, got 1"),
             (lambda: lr_scheduler.LambdaLR(opt, [lambda e: 1]), ValueError, "Expected 2 lr_lambdas, but got 1"),
             (lambda: lr_scheduler.ExponentialLR(object(), 0.5), TypeError, "object is not an Optimizer"),
             (lambda: lr_scheduler.ReduceLROnPlateau(object()), TypeError, "object is not an Optimizer")]
    for make, kind, message in cases:
        with pytest.raises(kind) as error:
            make()
        assert str(error.value) == message


# --- schedules against PyTorch ------------------------------------------------


@pytest.mark.parametrize("name, kwargs", [("RMSprop", dict(momentum=0.9, centered=True)),
                                          ("Adagrad", dict(lr_decay=0.05, initial_accumulator_value=0.1))])
def test_param_groups_and_a_schedule_match_torch(name, kwargs):
    """Groups with their own lr, and an lr a scheduler changes at every step."""
    for dtype in (np.float32, np.float64):
        assert_same_steps(name, kwargs, dtype, groups=True,
                          schedule=lambda lib, opt: lib.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9))


def lr_sequences(lib, make, epochs=30, metrics=None):
    """Each group's lr after each epoch (three groups with their own lrs)."""
    params = [lib.ones(1, requires_grad=True) for _ in range(3)]
    opt = lib.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params, (1.0, 0.3, 0.01))], lr=0.1)
    scheduler = make(lib.optim.lr_scheduler, opt)
    seen = [scheduler.get_last_lr()]
    for epoch in range(epochs):
        opt.step()
        scheduler.step(*([] if metrics is None else [metrics[epoch]]))
        seen.append(scheduler.get_last_lr())
    return seen


# losses that fall, stall, wobble below the relative threshold and fall again
LOSSES = [1.0, 0.8, 0.8, 0.79995, 0.81, 0.8, 0.5, 0.5, 0.49999, 0.6, 0.6, 0.6, 0.4, 0.41, 0.41, 0.42, 0.39, 0.39,
          0.39, 0.39, 0.3, 0.31, 0.3, 0.3, 0.3, 0.3, 0.3, 0.29, 0.3, 0.3]
SCHEDULES = {
    "exponential": lambda s, o: s.ExponentialLR(o, gamma=0.9),
    "multistep": lambda s, o: s.MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.3),
    "multistep from 0": lambda s, o: s.MultiStepLR(o, milestones=[0, 5]),
    "lambda": lambda s, o: s.LambdaLR(o, lambda e: 0.95 ** e / (1 + e % 4)),
    "lambdas": lambda s, o: s.LambdaLR(o, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e, lambda e: 1.0]),
}
PLATEAUS = {
    "min rel": dict(patience=1),
    "min abs": dict(patience=1, threshold=0.05, threshold_mode="abs"),
    "max rel": dict(mode="max", patience=2, factor=0.5),
    "max abs": dict(mode="max", patience=0, threshold=0.01, threshold_mode="abs", factor=0.7),
    "cooldown": dict(patience=0, cooldown=2, factor=0.5),
    "min_lr": dict(patience=0, factor=0.5, min_lr=0.05),
    "min_lrs": dict(patience=0, factor=0.5, min_lr=[0.2, 0.1, 0.001], eps=1e-3),
    "eps": dict(patience=0, factor=0.9, eps=0.05),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_match_torch(name):
    torch = pytest.importorskip("torch")
    assert lr_sequences(nb, SCHEDULES[name]) == lr_sequences(torch, SCHEDULES[name])


@pytest.mark.parametrize("name", PLATEAUS)
def test_reduce_on_plateau_matches_torch(name):
    torch = pytest.importorskip("torch")
    kwargs = PLATEAUS[name]
    metrics = [-m for m in LOSSES] if kwargs.get("mode") == "max" else LOSSES
    make = lambda s, o: s.ReduceLROnPlateau(o, **kwargs)  # noqa: E731
    ours, theirs = lr_sequences(nb, make, metrics=metrics), lr_sequences(torch, make, metrics=metrics)
    assert ours == theirs
    assert len({tuple(lrs) for lrs in ours}) > 2, "the case should lower the lr more than once"


def test_schedule_state_dicts_resume_as_torch():
    """A scheduler rebuilt from its state_dict goes on with the same lrs as PyTorch's."""
    torch = pytest.importorskip("torch")
    for make in (SCHEDULES["multistep"], SCHEDULES["exponential"],
                 lambda s, o: s.ReduceLROnPlateau(o, patience=1, cooldown=1)):
        runs = []
        for lib in (nb, torch):
            params = [lib.ones(1, requires_grad=True)]
            opt = lib.optim.SGD(params, lr=1.0)
            scheduler = make(lib.optim.lr_scheduler, opt)
            plateau = type(scheduler).__name__ == "ReduceLROnPlateau"
            seen = []
            for epoch in range(20):
                if epoch == 10:
                    saved_opt, saved = opt.state_dict(), scheduler.state_dict()
                    opt = lib.optim.SGD(params, lr=1.0)
                    opt.load_state_dict(saved_opt)
                    scheduler = make(lib.optim.lr_scheduler, opt)
                    scheduler.load_state_dict(saved)
                opt.step()
                scheduler.step(*([LOSSES[epoch]] if plateau else []))
                seen.append(opt.param_groups[0]["lr"])
            runs.append(seen)
        assert runs[0] == runs[1]


def test_schedule_error_messages_match_torch():
    torch = pytest.importorskip("torch")
    schedules = [lambda s, o: s.ReduceLROnPlateau(o, factor=2), lambda s, o: s.ReduceLROnPlateau(o, mode="up"),
                 lambda s, o: s.ReduceLROnPlateau(o, threshold_mode="x"),
                 lambda s, o: s.ReduceLROnPlateau(o, min_lr=[0, 0]),
                 lambda s, o: s.LambdaLR(o, [lambda e: 1, lambda e: 1])]
    for make in schedules:
        errors = []
        for lib in (nb, torch):
            opt = lib.optim.SGD([lib.ones(1, requires_grad=True)], lr=0.1)
            with pytest.raises(Exception) as error:
                make(lib.optim.lr_scheduler, opt)
            errors.append((type(error.value), str(error.value)))
        assert errors[0] == errors[1]
