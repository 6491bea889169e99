"""Utilities: batching data (``nbgrad.utils.data``, loaded on first use as ``nbgrad.utils.data``)."""
from importlib import import_module as _import


def __getattr__(name):
    if name == "data":  # ``torch.utils.data.DataLoader`` after a plain ``import torch``
        return _import(f"{__name__}.data")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
