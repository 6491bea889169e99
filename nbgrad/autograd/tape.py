"""The Python side of the tape: rows handed out and taken back, and what keeps
the memory behind a row's addresses alive.

A row belongs to exactly one live node; the node frees it when it dies. A
row's saved buffers are held in ``saved[row]`` and dropped when a backward
without ``retain_graph`` releases them (the row is flagged, so the executor
refuses to read them again) or when the row is freed.

Rows ``[0, rows_in_use)`` are the only ones ever handed out: compiled scans of
the tape (``mark_modified``) stop there, whatever the rows hold, and skip the
chunks given back (address 0). Rows join the free list a batch at a time, and
the tape shrinks (``trim``) when most of it is free: every chunk whose rows are
all free is given back, wherever it lies, so its memory and the cost of those
scans follow the live graph, not the largest graph the process ever built.
"""
import threading

import numpy as np

from ..kernels import tape as layout

CHUNK_SHIFT = layout.CHUNK_SHIFT
CHUNK_MASK = layout.CHUNK_MASK
CHUNK_ROWS = layout.CHUNK_ROWS
BATCH = 64           # rows added to the free list at a time: a scan reads at most this many never used
TRIM_MIN = 2 * CHUNK_ROWS  # free rows from which trimming is worth a look

chunks = []            # int64 arrays (CHUNK_ROWS, WIDTH), None where given back; never moved while in use
chunk_addresses = np.zeros(0, np.int64)  # for the executor (0 where given back)
row_addresses = []  # row_addresses[row]: the address of the row, for forward entries
saved = []             # saved[row]: what keeps the row's saved buffers alive
free_rows = []         # popped from the end; a trim orders it so that the lowest rows go first
rows_in_use = 0        # rows ever handed out (since the last trim): rows from here on are never read
refusals = {}          # row -> why the executor refuses it (rows flagged REFUSED)
_trim_at = TRIM_MIN
_grow_lock = threading.Lock()


def _new_chunk(index):
    """Memory for chunk ``index`` (appended, or in the place of one given back)."""
    global chunk_addresses
    chunk = np.zeros((CHUNK_ROWS, layout.WIDTH), np.int64)
    first = index * CHUNK_ROWS
    addresses = range(chunk.ctypes.data, chunk.ctypes.data + chunk.nbytes, chunk.strides[0])
    if index == len(chunks):
        chunks.append(chunk)
        chunk_addresses = np.append(chunk_addresses, chunk.ctypes.data)
        row_addresses.extend(addresses)
        saved.extend([None] * CHUNK_ROWS)
    else:
        chunks[index] = chunk
        row_addresses[first:first + CHUNK_ROWS] = addresses
        addresses = chunk_addresses.copy()  # a new array: a running executor keeps the one it was given
        addresses[index] = chunk.ctypes.data
        chunk_addresses = addresses


def _grow():
    """Add rows to the free list: a chunk given back earlier, else the next batch of new rows
    (a new chunk when the last one is used up)."""
    global rows_in_use, _trim_at
    with _grow_lock:
        if free_rows:
            return
        holes = [i for i in range(rows_in_use // CHUNK_ROWS) if chunks[i] is None]
        if holes:
            _new_chunk(holes[0])
            first = holes[0] * CHUNK_ROWS
            free_rows.extend(range(first + CHUNK_ROWS - 1, first - 1, -1))
            return
        if rows_in_use == len(chunks) * CHUNK_ROWS:
            _trim_at = TRIM_MIN  # the live graph outgrew the tape: once it dies, trim again
            _new_chunk(len(chunks))
        first = rows_in_use
        end = min(first + BATCH, len(chunks) * CHUNK_ROWS)  # a trim may leave a chunk's rest
        free_rows.extend(range(end - 1, first - 1, -1))
        rows_in_use = end


def alloc_row():
    """A free row id (chunk ``row >> CHUNK_SHIFT``, index ``row & CHUNK_MASK``)."""
    while True:
        try:
            return free_rows.pop()
        except IndexError:  # another thread may take the rows _grow adds before this one pops
            _grow()


def row(r):
    """Row ``r`` as a writable int64 view (for Python-side reads and rare writes)."""
    return chunks[r >> CHUNK_SHIFT][r & CHUNK_MASK]


def maybe_trim():
    """Trim the tape if most of what was handed out is free again (cheap to call often)."""
    if len(free_rows) >= _trim_at and 2 * len(free_rows) > rows_in_use:
        trim()


def trim():
    """Give back every chunk whose rows are all free, and the free rows at the top of the tape.

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
        free = np.array(taken, np.int64)
        # rows handed out per chunk (the last one may be handed out in part), and how many are free
        handed_out = np.minimum(rows_in_use - np.arange(len(chunks)) * CHUNK_ROWS, CHUNK_ROWS)
        empty = np.flatnonzero(np.bincount(free >> CHUNK_SHIFT, minlength=len(chunks)) == handed_out)
        addresses = chunk_addresses.copy()  # a new array: a running executor keeps the one it was given
        for index in empty.tolist():
            chunks[index] = None
            addresses[index] = 0
        free = np.sort(free[~np.isin(free >> CHUNK_SHIFT, empty)])[::-1]
        while chunks and chunks[-1] is None:  # the top of the tape given back
            chunks.pop()
        rows_in_use = min(rows_in_use, len(chunks) * CHUNK_ROWS)
        # then the run rows_in_use - 1, rows_in_use - 2, ... of free rows at the top of the last chunk
        free = free[free < rows_in_use]
        gaps = np.flatnonzero(free != rows_in_use - 1 - np.arange(free.size))
        run = int(gaps[0]) if gaps.size else free.size
        rows_in_use -= run
        del chunks[-(-rows_in_use // CHUNK_ROWS):]  # chunks left with no row handed out
        del row_addresses[len(chunks) * CHUNK_ROWS:]
        del saved[len(chunks) * CHUNK_ROWS:]
        chunk_addresses = addresses[:len(chunks)]
        for r in [r for r in refusals if r >= rows_in_use or chunks[r >> CHUNK_SHIFT] is None]:
            del refusals[r]
        free_rows.extend(free[run:].tolist())  # rows freed meanwhile were appended already: they stay too
        _trim_at = len(free_rows) + TRIM_MIN  # look again once that many more rows are free


def refuse(r, message):
    """Make the executor refuse row ``r`` (it raises ``message``) from now on."""
    from ..kernels.executor import REFUSED_BY_PYTHON

    refusals[r] = message
    row(r)[layout.FLAGS] |= layout.REFUSED
    row(r)[layout.STALE] = REFUSED_BY_PYTHON
