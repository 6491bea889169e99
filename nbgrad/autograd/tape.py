"""The Python side of the tape: rows handed out and taken back, and what keeps
the memory behind a row's addresses alive.

A row belongs to exactly one live node; the node frees it when it dies. A
row's saved buffers are held in ``saved[row]`` and dropped when a backward
without ``retain_graph`` releases them (the row is flagged, so the executor
refuses to read them again) or when the row is freed.
"""
import threading

import numpy as np

from ..kernels import tape as layout

CHUNK_SHIFT = layout.CHUNK_SHIFT
CHUNK_MASK = layout.CHUNK_MASK

chunks = []            # int64 arrays (CHUNK_ROWS, WIDTH); never reallocated
chunk_addresses = np.zeros(0, np.int64)  # for the executor
row_addresses = []  # row_addresses[row]: the address of the row, for forward entries
saved = []             # saved[row]: what keeps the row's saved buffers alive
free_rows = []
_grow_lock = threading.Lock()


def _grow():
    global chunk_addresses
    with _grow_lock:
        if free_rows:
            return
        chunk = np.zeros((layout.CHUNK_ROWS, layout.WIDTH), np.int64)
        first = len(chunks) * layout.CHUNK_ROWS
        chunks.append(chunk)
        chunk_addresses = np.append(chunk_addresses, chunk.ctypes.data)
        row_addresses.extend(range(chunk.ctypes.data, chunk.ctypes.data + chunk.nbytes, chunk.strides[0]))
        saved.extend([None] * layout.CHUNK_ROWS)
        free_rows.extend(range(first + layout.CHUNK_ROWS - 1, first - 1, -1))


def alloc_row():
    """A free row id (chunk ``row >> CHUNK_SHIFT``, index ``row & CHUNK_MASK``)."""
    try:
        return free_rows.pop()
    except IndexError:
        _grow()
        return free_rows.pop()


def row(r):
    """Row ``r`` as a writable int64 view (for Python-side reads and rare writes)."""
    return chunks[r >> CHUNK_SHIFT][r & CHUNK_MASK]
