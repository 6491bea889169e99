"""``nbgrad.compile``: a training step captured once and replayed in one compiled call.

Call 1 of the compiled function runs eagerly (kernels compile); a later call
runs eagerly too while a recorder (``recording.active``) notes what the ops,
the backward and the optimizer do: which compiled kernel ran on which buffers.
That record becomes a program, an int64 array of steps (a C function's address
and its arguments), and later calls whose guards hold run it in one call of the
compiled interpreter ``kernels/replay.py``: no code is generated or compiled per
program. See ``capture.py`` for what is recorded and what falls back to eager.
"""


def compile(model=None, *, fullgraph=False, dynamic=None, backend=None, mode=None, options=None, disable=False):
    """Compile ``model`` (a function or a Module): PyTorch's ``torch.compile``, also a decorator.

    >>> @nbgrad.compile
    ... def step(x, y):
    ...     opt.zero_grad()
    ...     loss = F.cross_entropy(model(x), y)
    ...     loss.backward()
    ...     opt.step()
    ...     return loss

    ``backend``, ``mode``, ``dynamic`` and ``options`` are accepted and ignored.
    What cannot be captured runs eagerly with one warning; ``fullgraph=True``
    raises instead. ``disable=True`` returns ``model`` itself.
    """
    def wrap(fn):
        if disable:
            return fn
        from .capture import CompiledFunction

        return CompiledFunction(fn, fullgraph)

    return wrap if model is None else wrap(model)
