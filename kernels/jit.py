"""The one place for compile options.

``NBGRAD_CACHE=0`` turns Numba's on-disk cache off (for developers editing
kernels: Numba does not see edits in other files that a cached function calls).
"""
import os

import numba

CACHE = os.environ.get("NBGRAD_CACHE", "1") != "0"

# fastmath without nnan/ninf: NaN and inf must survive in values and gradients;
# without afn: exp/log keep libm accuracy, which gradcheck relies on.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# error_model="numpy": x / 0 gives inf or nan, as in NumPy and PyTorch, not ZeroDivisionError.
JIT = dict(cache=CACHE, nogil=True, fastmath=FASTMATH, error_model="numpy")
# Kernels worth threads: Numba's prange only pays above ~10^5 elements (measured).
JIT_PARALLEL = dict(JIT, parallel=True)
PARALLEL_MIN_SIZE = 1 << 17


def njit(fn=None, **options):
    """``numba.njit`` with the project's options (``cache`` always on unless disabled)."""
    opts = dict(JIT, **options)
    if fn is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(fn)
