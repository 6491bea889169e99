"""Version counters: how many times in-place ops have changed a storage.

A tensor's version is its storage's (the NumPy array at the root of its
``.base`` chain), so a tensor and its views share it. Counters exist only for
storages that were changed in place or viewed by a view op. Changing a storage
also flags the tape rows whose saved buffers lie in it (``mark_modified``):
the executor refuses those rows, so a backward that would read stale values
raises instead of returning a wrong gradient.
"""
import weakref

import numpy as np

from ..compiler import recording
from ..kernels import tape as layout
from . import tape

_storages = {}  # id(root) -> [weak reference to root, version, viewed by a view op]
_prune_at = 1024


def _root(array):
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _entry(array, create):
    """The root of ``array`` and its counter entry (None if it has none and not ``create``)."""
    global _prune_at
    root = _root(array)
    entry = _storages.get(id(root))
    if entry is not None and entry[0]() is not root:  # the id of a storage that died
        entry = None
    if entry is None and create:
        if len(_storages) >= _prune_at:  # drop dead storages' counters, amortised over many
            for key in [key for key, value in _storages.items() if value[0]() is None]:
                del _storages[key]
            _prune_at = 2 * len(_storages) + 1024
        entry = _storages[id(root)] = [weakref.ref(root), 0, False]
    return root, entry


def version(array):
    entry = _entry(array, False)[1]
    return entry[1] if entry else 0


def shares_storage(a, b):
    return _root(a) is _root(b)


def mark_viewed(array):
    """A view op made a tensor over ``array``'s storage."""
    _entry(array, True)[1][2] = True


def viewed(array):
    entry = _entry(array, False)[1]
    return bool(entry and entry[2])


def storages(arrays):
    """What ``bump_storages`` needs for ``arrays``: their counters and byte ranges (reusable
    while the arrays live: an optimizer computes it once for its parameters)."""
    entries = [_entry(array, True) for array in arrays]
    starts = np.array([root.__array_interface__["data"][0] for root, _ in entries], np.int64)
    ends = starts + np.array([max(root.nbytes, 1) for root, _ in entries], np.int64)
    return [entry for _, entry in entries], starts, ends


def bump_storages(entries, starts, ends):
    """The storages are about to change in place: flag the rows that saved them (one scan of
    the tape for all) and count a version for each."""
    if recording.active is not None:
        recording.active.in_place()
    tape.maybe_trim()  # the scan reads every row handed out: keep that to the live graph
    layout.mark_modified(tape.chunk_addresses, tape.rows_in_use, starts, ends,
                         np.array([e[1] for e in entries], np.int64))
    for entry in entries:
        entry[1] += 1


def bump(*arrays):
    bump_storages(*storages(arrays))
