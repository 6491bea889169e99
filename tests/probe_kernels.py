"""Kernels for the register_op cases of test_memory_safety (register_op needs them at a module's top
level, and the cases run in subprocesses that import this file)."""
from numba import njit


@njit(cache=True)
def copy_or_raise(x, out):
    """out = x, but a forward that fails (inside compiled code) when x[0] > 100"""
    if x[0] > 100:
        raise ValueError("x[0] > 100")
    for i in range(out.size):
        out[i] = x[i]


@njit(cache=True)
def add_grad(g, grad):
    for i in range(g.size):
        grad[i] += g[i]


@njit(cache=True)
def add_grad_past_the_end(g, grad):
    """A buggy backward: it writes one element past its buffer."""
    for i in range(g.size + 1):
        grad[i] += g[0]


@njit(cache=True)
def write_half(g, fresh, grad):
    """A buggy backward that takes ``fresh`` (it must overwrite its buffer) but writes only half of it."""
    for i in range(g.size // 2):
        grad[i] = g[i]
