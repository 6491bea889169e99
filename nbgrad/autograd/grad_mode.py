"""Grad modes: thread-local, each a context manager and a decorator."""
import functools
import threading


class _State(threading.local):
    enabled = True


state = _State()


def is_grad_enabled():
    """True when ops record the graph (the default), per thread."""
    return state.enabled


class _Mode:
    """Base of the grad-mode context managers; an instance also decorates functions."""

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._args):
                return fn(*args, **kwargs)

        return wrapper

    def __enter__(self):
        self._previous = state.enabled
        state.enabled = self._flag

    def __exit__(self, *exc):
        state.enabled = self._previous
        return False


class no_grad(_Mode):
    """Run without recording: results don't require grad.

    >>> with nbgrad.no_grad():
    ...     y = x * 2          # y.requires_grad is False
    """

    _args = ()
    _flag = False


class enable_grad(_Mode):
    """Record again inside a ``no_grad`` block."""

    _args = ()
    _flag = True


class set_grad_enabled(_Mode):
    """``set_grad_enabled(False)`` is ``no_grad()``; it also works as a plain call."""

    def __init__(self, mode):
        self._args = (bool(mode),)
        self._flag = bool(mode)
        self._previous = state.enabled
        state.enabled = self._flag  # like PyTorch: effective at once when called plainly

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        state.enabled = self._previous
        return False

    def __call__(self, fn):
        state.enabled = self._previous  # used as a decorator: undo the eager switch
        return super().__call__(fn)
