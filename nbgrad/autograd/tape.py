"""The Python side of the tape: rows handed out and taken back, and what keeps
the memory behind a row's addresses alive.

A row belongs to exactly one live node; the node frees it when it dies. A
row's saved buffers are held in ``saved[row]`` and dropped when a backward
without ``retain_graph`` releases them (the row is flagged, so the executor
refuses to read them again) or when the row is freed.

Rows ``[0, rows_in_use)`` are the only ones ever handed out: compiled scans of
the tape (``mark_modified``) stop there, whatever the rows hold. Rows join the
free list a batch at a time, and the tape shrinks (``trim``) when most of it
is free, so its memory and the cost of those scans follow the live graph, not
the largest graph the process ever built.
"""
import threading

import numpy as np

from ..kernels import tape as layout

CHUNK_SHIFT = layout.CHUNK_SHIFT
CHUNK_MASK = layout.CHUNK_MASK
BATCH = 64           # rows added to the free list at a time: a scan reads at most this many never used
TRIM_MIN = 2 * layout.CHUNK_ROWS  # free rows from which trimming is worth a look

chunks = []            # int64 arrays (CHUNK_ROWS, WIDTH); never reallocated while they hold a live row
chunk_addresses = np.zeros(0, np.int64)  # for the executor
row_addresses = []  # row_addresses[row]: the address of the row, for forward entries
saved = []             # saved[row]: what keeps the row's saved buffers alive
free_rows = []         # popped from the end; a trim orders it so that the lowest rows go first
rows_in_use = 0        # rows ever handed out (since the last trim): rows from here on are never read
refusals = {}          # row -> why the executor refuses it (rows flagged REFUSED)
_trim_at = TRIM_MIN
_grow_lock = threading.Lock()


def _grow():
    """Add the next batch of rows to the free list (a new chunk when the last one is used up)."""
    global chunk_addresses, rows_in_use, _trim_at
    with _grow_lock:
        if free_rows:
            return
        if rows_in_use == len(chunks) * layout.CHUNK_ROWS:
            _trim_at = TRIM_MIN  # the live graph outgrew the tape: once it dies, trim again
            chunk = np.zeros((layout.CHUNK_ROWS, layout.WIDTH), np.int64)
            chunks.append(chunk)
            chunk_addresses = np.append(chunk_addresses, chunk.ctypes.data)
            row_addresses.extend(range(chunk.ctypes.data, chunk.ctypes.data + chunk.nbytes, chunk.strides[0]))
            saved.extend([None] * layout.CHUNK_ROWS)
        first = rows_in_use
        end = min(first + BATCH, len(chunks) * layout.CHUNK_ROWS)  # a trim may leave a chunk's rest
        free_rows.extend(range(end - 1, first - 1, -1))
        rows_in_use = end


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


def maybe_trim():
    """Trim the tape if most of what was handed out is free again (cheap to call often)."""
    if len(free_rows) >= _trim_at and 2 * len(free_rows) > rows_in_use:
        trim()


def trim():
    """Give back the free rows at the top of the tape, and the chunks left without rows.

    The free rows are taken off the free list one atomic ``pop`` at a time, so
    no other thread can be handed one of them meanwhile (it waits in ``_grow``
    for the lock); those that stay go back sorted, the lowest to be handed out
    first, which keeps the live rows at the bottom of the tape.
    """
    global chunk_addresses, rows_in_use, _trim_at
    with _grow_lock:
        taken = []
        pop = free_rows.pop
        try:
            while True:
                taken.append(pop())
        except IndexError:
            pass
        taken.sort(reverse=True)
        top = np.array(taken, np.int64)
        # the run of rows_in_use - 1, rows_in_use - 2, ... at its start: the free top of the tape
        gaps = np.flatnonzero(top != rows_in_use - 1 - np.arange(top.size))
        run = int(gaps[0]) if gaps.size else top.size
        if run:
            rows_in_use -= run
            keep = -(-rows_in_use // layout.CHUNK_ROWS)  # chunks that still hold handed-out rows
            for r in [r for r in refusals if r >= rows_in_use]:
                del refusals[r]
            del chunks[keep:]
            del row_addresses[keep * layout.CHUNK_ROWS:]
            del saved[keep * layout.CHUNK_ROWS:]
            chunk_addresses = chunk_addresses[:keep].copy()
        free_rows.extend(taken[run:])  # rows freed meanwhile were appended already: they stay too
        _trim_at = len(free_rows) + TRIM_MIN  # look again once that many more rows are free


def refuse(r, message):
    """Make the executor refuse row ``r`` (it raises ``message``) from now on."""
    from ..kernels.executor import REFUSED_BY_PYTHON

    refusals[r] = message
    row(r)[layout.FLAGS] |= layout.REFUSED
    row(r)[layout.STALE] = REFUSED_BY_PYTHON
