"""Shared helpers for the asv suites (this module defines no benchmarks).

Every suite is parametrized by ``framework`` in ``FRAMEWORKS``; ``setup`` calls
``import_framework`` and binds the module as ``fw`` so the same benchmark code runs
against nbgrad and PyTorch. A missing torch raises ``NotImplementedError``, which asv
reports as a skipped benchmark rather than a failure.
"""

import importlib

FRAMEWORKS = ["nbgrad", "torch"]


def import_framework(name):
    """Return the framework module (``nbgrad`` or ``torch``), or skip the benchmark."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise NotImplementedError(f"{name} is not importable: {exc}") from exc
