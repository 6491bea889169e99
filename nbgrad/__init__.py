"""nbgrad: a PyTorch-style autograd whose ops are Numba-compiled kernels and whose
``backward()`` runs the whole graph in one compiled call.

>>> import nbgrad as torch
>>> x = torch.ones(2, 2, requires_grad=True)
>>> out = ((x + 2) * (x + 2) * 3).mean()
>>> out.backward()
>>> x.grad
tensor([[4.5000, 4.5000],
        [4.5000, 4.5000]])
"""
import os as _os
import pkgutil as _pkgutil
import threading as _threading
from importlib import import_module as _import

__version__ = "0.1.0"

# Numba's OpenMP threads sleep when idle (see kernels/jit.py). Set here, at import, so that it
# holds for a PyTorch imported next, whose OpenMP runtime would otherwise spin and slow nbgrad.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Numba and the kernels take about 0.3 s to import: ``import nbgrad`` defers them to the
# first use of a name it exports, which loads them all (``_api``) and binds its names here.
# A submodule loads on its own, on import or on first use as an attribute.
_SUBMODULES = frozenset([module.name for module in _pkgutil.iter_modules(__path__)] + ["kernels"])
_loading = _threading.RLock()  # two threads' first uses: one loads, the other waits for it


def _load():
    with _loading:
        api = _import("nbgrad._api")
    names = {name: value for name, value in vars(api).items() if not name.startswith("_")}
    globals().update(names)
    return names


def __getattr__(name):
    if name == "__all__":  # ``from nbgrad import *``
        return sorted(_load())
    if name.startswith("_"):  # no exported name starts so: probes (pytest's, hasattr) load nothing
        raise AttributeError(f"module 'nbgrad' has no attribute {name!r}")
    if name in _SUBMODULES:
        with _loading:
            return _import(f"nbgrad.{name}")
    names = _load()
    if name not in names:
        raise AttributeError(f"module 'nbgrad' has no attribute {name!r}")
    return names[name]


def __dir__():
    return sorted(set(globals()) | set(_load()) | _SUBMODULES)
