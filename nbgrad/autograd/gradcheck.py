"""gradcheck: analytical gradients against central finite differences, in float64."""
import numpy as np

from .grad_mode import no_grad


class GradcheckError(RuntimeError):
    """Analytical and numerical Jacobians differ (the message shows both)."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(func, inputs):
    from .._tensor import Tensor

    return tuple(o for o in _as_tuple(func(*inputs)) if isinstance(o, Tensor))


def _numerical_jacobians(func, inputs, targets, eps):
    """J[i][k, j] = d outputs_flat[j] / d inputs[i]_flat[k], by central differences."""
    with no_grad():
        sizes = [o.numel() for o in _outputs(func, inputs)]
        jacobians = []
        for t in targets:
            flat = t._data.reshape(-1)
            jacobian = np.zeros((flat.size, sum(sizes)))
            for k in range(flat.size):
                original = flat[k]
                flat[k] = original + eps
                plus = np.concatenate([o._data.reshape(-1).astype(np.float64) for o in _outputs(func, inputs)])
                flat[k] = original - eps
                minus = np.concatenate([o._data.reshape(-1).astype(np.float64) for o in _outputs(func, inputs)])
                flat[k] = original
                jacobian[k] = (plus - minus) / (2 * eps)
            jacobians.append(jacobian)
    return jacobians


def _analytical_jacobians(func, inputs, targets):
    """The same Jacobians from ``autograd.grad`` with one-hot output gradients (``.grad`` untouched)."""
    from .engine import grad

    outputs = _outputs(func, inputs)
    jacobians = [np.zeros((t.numel(), sum(o.numel() for o in outputs))) for t in targets]
    column = 0
    for o in outputs:
        for j in range(o.numel()):
            if o._requires_grad:
                seed = np.zeros(o._data.size)
                seed[j] = 1
                grads = grad(o, targets, seed.reshape(o._data.shape), retain_graph=True, allow_unused=True)
                for i, g in enumerate(grads):
                    if g is not None:
                        jacobians[i][:, column] = g._data.reshape(-1)
            column += 1
    return jacobians


def gradcheck(func, inputs, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check ``func``'s gradients with respect to the float64 ``inputs`` that require grad.

    Returns True when every analytical Jacobian matches the numerical one within
    ``atol + rtol * |numerical|``; otherwise raises GradcheckError showing both
    (or returns False with ``raise_exception=False``).

    >>> x = nbgrad.randn(3, dtype=nbgrad.float64, requires_grad=True)
    >>> gradcheck(lambda t: (t * t).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    targets = [t for t in inputs if getattr(t, "requires_grad", False)]
    if not targets:
        raise ValueError("gradcheck expects at least one input tensor that requires grad")
    for t in targets:
        if t.dtype.name != "float64":
            raise ValueError(f"gradcheck needs float64 inputs for accurate differences, got {t.dtype!r}")
    numerical = _numerical_jacobians(func, inputs, targets, eps)
    analytical = _analytical_jacobians(func, inputs, targets)
    for i, (n, a) in enumerate(zip(numerical, analytical)):
        if not np.allclose(a, n, rtol=rtol, atol=atol, equal_nan=True):
            if raise_exception:
                raise GradcheckError(
                    f"Jacobian mismatch for output 0 with respect to input {i},\n"
                    f"numerical:{n}\nanalytical:{a}\n"
                )
            return False
    return True


def gradgradcheck(func, inputs, grad_outputs=None, *, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True):
    """Check second derivatives: ``gradcheck`` of ``x -> grad(func(x), x, v, create_graph=True)``.

    ``grad_outputs`` (``v``, one per output of ``func``) default to fixed random
    float64 tensors. Raises GradcheckError (or returns False) on a mismatch.
    """
    from .._tensor import _wrap
    from .engine import grad
    from .grad_mode import enable_grad

    inputs = _as_tuple(inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        with enable_grad():
            grad_outputs = [_wrap(rng.standard_normal(o._data.shape)) for o in _outputs(func, inputs)]

    def first_derivatives(*args):
        with enable_grad():
            outputs = _outputs(func, args)
            differentiated = [t for t in args if getattr(t, "requires_grad", False)]
            return grad(outputs, differentiated, grad_outputs=list(_as_tuple(grad_outputs)), create_graph=True,
                        materialize_grads=True)

    return gradcheck(first_derivatives, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)
