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
from importlib import import_module as _import
from os import listdir as _listdir
from os.path import dirname as _dirname

__version__ = "0.1.0"

# Numba and the kernels take about 0.3 s to import: ``import nbgrad`` defers them to the
# first use of a name it exports, which loads them all (``_api``) and binds its names here.
# A submodule loads on its own, on import or on first use as an attribute.
_SUBMODULES = frozenset(
    [name[:-3] if name.endswith(".py") else name for name in _listdir(_dirname(__file__))] + ["kernels"]
)


def _load():
    api = _import("nbgrad._api")
    names = {name: value for name, value in vars(api).items() if not name.startswith("_")}
    globals().update(names)
    return names


def __getattr__(name):
    if name == "__all__":  # ``from nbgrad import *``
        return sorted(_load())
    if name.startswith("__"):
        raise AttributeError(f"module 'nbgrad' has no attribute {name!r}")
    if name in _SUBMODULES:
        return _import(f"nbgrad.{name}")
    names = _load()
    if name not in names:
        raise AttributeError(f"module 'nbgrad' has no attribute {name!r}")
    return names[name]


def __dir__():
    return sorted(set(globals()) | set(_load()))
