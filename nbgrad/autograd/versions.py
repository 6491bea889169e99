"""Version counters: how many times in-place ops have changed a storage.

A tensor's version is its storage's (the NumPy array at the root of its
``.base`` chain), so a tensor and its views share it. Counters exist only for
storages that were changed in place or copied for an op. Changing a storage
also flags the tape rows whose saved buffers lie in it (``mark_modified``):
the executor refuses those rows, so a backward that would read stale values
raises instead of returning a wrong gradient.

An op's kernels read flat buffers, so an op copies a strided view at its entry;
the copy is the view's ``shadow``: rows that saved it are flagged when the
view's storage changes, as if they had saved the view (PyTorch's rule).
"""
import weakref

import numpy as np

from ..compiler import recording
from ..kernels import tape as layout
from . import tape

# id(root) -> [weak reference to root, version, weak references to the storage's shadows]
_storages = {}
_prune_at = 1024
_shadowed = False  # whether any storage has had shadows (until then a bump looks for none)


def _root(array):
    """The array that owns ``array``'s memory (through views, and through np.lib.stride_tricks)."""
    while True:
        base = array.base
        if isinstance(base, np.ndarray):
            array = base
        elif isinstance(getattr(base, "base", None), np.ndarray):  # as_strided's DummyArray
            array = base.base
        else:
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
        entry = _storages[id(root)] = [weakref.ref(root), 0, None]
    return root, entry


def version(array):
    entry = _entry(array, False)[1]
    return entry[1] if entry else 0


def shares_storage(a, b):
    return _root(a) is _root(b)


def shadow(copy, source):
    """``copy`` holds the values of ``source`` (a strided view) for an op's kernels: a row that
    saves it is refused once ``source``'s storage changes in place."""
    global _shadowed
    entry = _entry(source, True)[1]
    if entry[2] is None:
        entry[2] = []
        _shadowed = True
    append_weak(entry[2], copy)


def append_weak(refs, obj):
    """Append a weak reference to ``obj`` to ``refs``, dropping the dead ones first whenever the list
    reaches a power of two (from 16): amortised, and never more than twice the live ones."""
    n = len(refs)
    if n >= 16 and not n & (n - 1):
        refs[:] = [ref for ref in refs if ref() is not None]
    refs.append(weakref.ref(obj))


def storages(arrays):
    """What ``bump_storages`` needs for ``arrays``: their counters and byte ranges (reusable
    while the arrays live: an optimizer computes it once for its parameters)."""
    entries = [_entry(array, True) for array in arrays]
    starts = np.array([root.__array_interface__["data"][0] for root, _ in entries], np.int64)
    ends = starts + np.array([max(root.nbytes, 1) for root, _ in entries], np.int64)
    return [entry for _, entry in entries], starts, ends


def bump_storages(entries, starts, ends):
    """The storages are about to change in place: flag the rows that saved them or their
    shadows (one scan of the tape for all) and count a version for each."""
    if recording.active is not None:
        recording.active.in_place()
    tape.maybe_trim()  # the scan reads every row handed out: keep that to the live graph
    versions = [e[1] for e in entries]
    if _shadowed and any(e[2] for e in entries):
        starts, ends = list(starts), list(ends)
        for entry in entries:
            for copy in (ref() for ref in entry[2] or ()):
                if copy is None:
                    continue
                start = copy.__array_interface__["data"][0]
                starts.append(start)
                ends.append(start + max(copy.nbytes, 1))
                versions.append(entry[1])
        starts, ends = np.array(starts, np.int64), np.array(ends, np.int64)
    layout.mark_modified(tape.chunk_addresses, tape.rows_in_use, starts, ends, np.array(versions, np.int64))
    for entry in entries:
        entry[1] += 1


def bump(*arrays):
    bump_storages(*storages(arrays))
