"""Strided copies: broadcasting, reductions over dimensions and permutations.

All three walk an index space ``shape`` in C order while an offset moves
through another buffer by ``strides`` (0 on a broadcast dimension):
``gather`` reads through the offset, ``scatter_add`` accumulates through it.
"""
import numpy as np
from numba import prange

from .jit import CHUNK, PARALLEL_MIN_LIGHT, njit
from .tape import view


@njit
def broadcast_strides(shape, small):
    """Strides into a C-contiguous ``small`` (aligned to ``shape``) from the index space ``shape``."""
    strides = np.zeros(shape.size, np.int64)
    step = 1
    for d in range(shape.size - 1, -1, -1):
        if small[d] != 1 or shape[d] == 1:
            strides[d] = step
        step *= small[d]
    return strides


@njit
def _advance(index, offset, shape, strides):
    """Move a C-order multi-index one step, returning the new offset."""
    d = shape.size - 1
    while d >= 0:
        index[d] += 1
        offset += strides[d]
        if index[d] < shape[d]:
            return offset
        offset -= strides[d] * shape[d]
        index[d] = 0
        d -= 1
    return offset


@njit
def _rows(shape, strides):
    """Length and stride of the innermost dimension, and the multi-index walk over the others."""
    if shape.size == 0:
        return 1, 0, shape, strides, np.zeros(0, np.int64)
    return shape[-1], strides[-1], shape[:-1], strides[:-1], np.zeros(shape.size - 1, np.int64)


@njit
def _lines(flat, inner):
    """``flat`` as rows of ``inner``. Loops index it ``[r, j]``: two indices that are plainly not
    negative, so Numba adds no wraparound check and the inner loop vectorizes (a flat index
    ``start + j`` ran four times slower)."""
    return flat.reshape(flat.size // max(inner, 1), inner)


@njit
def gather(src, shape, strides, out):
    """out[i] = src[offset(i)]: broadcast or permute ``src`` into ``out`` of ``shape``"""
    inner, step, outer, outer_strides, index = _rows(shape, strides)
    lines = _lines(out, inner)
    if step == 1 and not outer_strides.any():  # one row repeated (a bias over a batch)
        for r in range(lines.shape[0]):
            for j in range(inner):
                lines[r, j] = src[j]
        return
    offset = 0
    for r in range(lines.shape[0]):
        for j in range(inner):  # a tight loop over the last dimension
            lines[r, j] = src[offset + j * step]
        offset = _advance(index, offset, outer, outer_strides)


@njit
def gather_add(src, shape, strides, scale, out):
    """out[i] += scale src[offset(i)] (backward of a reduction)"""
    inner, step, outer, outer_strides, index = _rows(shape, strides)
    lines = _lines(out, inner)
    offset = 0
    for r in range(lines.shape[0]):
        for j in range(inner):
            lines[r, j] += scale * src[offset + j * step]
        offset = _advance(index, offset, outer, outer_strides)


@njit
def scatter_add(src, shape, strides, scale, out):
    """out[offset(i)] += scale src[i] (a reduction; the backward of broadcast and permute)"""
    inner, step, outer, outer_strides, index = _rows(shape, strides)
    if src.size == 0:
        return
    lines = _lines(src, inner)
    if step == 0:  # each row sums into one element: a reduction over the last dimension
        offset = 0
        for r in range(lines.shape[0]):
            total = 0.0
            for j in range(inner):
                total += lines[r, j]
            out[offset] += scale * total
            offset = _advance(index, offset, outer, outer_strides)
        return
    if not outer_strides.any():  # every row adds into one block (a bias gradient): a local
        block = np.zeros(inner, out.dtype)  # accumulator that cannot alias src vectorizes
        for r in range(lines.shape[0]):
            for j in range(inner):
                block[j] += lines[r, j]
        for j in range(inner):
            out[j * step] += scale * block[j]
        return
    offset = 0
    for r in range(lines.shape[0]):
        for j in range(inner):
            out[offset + j * step] += scale * lines[r, j]
        offset = _advance(index, offset, outer, outer_strides)


@njit
def reduce_fwd(x, shape, strides, scale, out):
    """out = scale * sum of x over the dimensions where ``strides`` is 0"""
    out[:] = 0 * scale  # an empty mean (scale nan) is nan, as in PyTorch
    scatter_add(x, shape, strides, scale, out)


@njit
def reduce_bwd(g, shape, strides, scale, gx):
    """gx += scale * g broadcast back to x's shape"""
    gather_add(g, shape, strides, scale, gx)


@njit
def strided_fwd(x, offset, shape, strides, out):
    """out = the elements of x at ``offset`` + index . ``strides`` (a permutation, an expansion, a slice)"""
    gather(x[offset:], shape, strides, out)


@njit
def copy_strided(address, span, shape, strides, out):
    """out = the elements at ``address`` + index . ``strides`` (in elements of out's dtype, none
    negative; ``span`` elements reach them all): a strided view made contiguous"""
    gather(view(address, span, out.dtype), shape, strides, out.reshape(out.size))


@njit
def strided_bwd(g, offset, shape, strides, gx):
    """gx += g put back where each element came from (overlapping reads accumulate)"""
    scatter_add(g, shape, strides, 1.0, gx[offset:])


@njit
def strided_take_add(g, offset, shape, strides, gx):
    """gx += the elements of g at ``offset`` + index . ``strides`` (strided_bwd's own backward)"""
    gather_add(g[offset:], shape, strides, 1.0, gx)


@njit
def take_fwd(x, index, inner, out):
    """out[i, :] = x[index[i], :] for blocks of ``inner`` elements (advanced indexing)"""
    for i in range(index.size):
        source = index[i] * inner
        for j in range(inner):
            out[i * inner + j] = x[source + j]


@njit
def _take_add(g, index, inner, start, stop, gx):
    for i in range(start, stop):
        target = index[i] * inner
        for j in range(inner):
            gx[target + j] += g[i * inner + j]


SCATTER_PARTS = 4  # private copies of gx a big scatter-add fills in parallel (threads rarely exceed it here)


@njit
def take_add(g, index, inner, gx):
    """gx[i, :] += g[index[i], :] (take_bwd's own backward)"""
    for i in range(index.size):
        source = index[i] * inner
        for j in range(inner):
            gx[i * inner + j] += g[source + j]


@njit(threads=True)
def take_bwd(g, index, inner, gx):
    """gx[index[i], :] += g[i, :]; repeated indices accumulate. A big g (at least gx's size) is
    split in SCATTER_PARTS runs of indices, each scattered into its own zeroed copy of gx in
    parallel; the copies are then added in order (the same result on any number of threads)."""
    if g.size < PARALLEL_MIN_LIGHT or g.size < gx.size:
        _take_add(g, index, inner, 0, index.size, gx)
        return
    share = (index.size + SCATTER_PARTS - 1) // SCATTER_PARTS
    partial = np.zeros((SCATTER_PARTS, gx.size), gx.dtype)
    for part in prange(SCATTER_PARTS):
        _take_add(g, index, inner, part * share, min(index.size, (part + 1) * share), partial[part])
    for c in prange((gx.size + CHUNK - 1) // CHUNK):
        for part in range(SCATTER_PARTS):
            for i in range(c * CHUNK, min(gx.size, (c + 1) * CHUNK)):
                gx[i] += partial[part, i]


@njit
def copy_block(x, outer, offset, total, out):
    """out[o, offset:offset + size] = x[o, :] for each of ``outer`` rows of ``total`` elements
    (the forward of cat, one input at a time)"""
    size = x.size // outer if outer else 0
    for o in range(outer):
        for j in range(size):
            out[o * total + offset + j] = x[o * size + j]


@njit
def _block_add(g, outer, offset, size, total, gx):
    for o in range(outer):
        for j in range(size):
            gx[o * size + j] += g[o * total + offset + j]


# A cat row has up to three inputs, each a block of every one of ``outer`` rows: a, b and
# the rest (another cat row, over the remaining inputs, whose gradient is just its block).

@njit
def cat_bwd_a(g, outer, size_a, size_b, size_rest, ga):
    _block_add(g, outer, 0, size_a, size_a + size_b + size_rest, ga)


@njit
def cat_bwd_b(g, outer, size_a, size_b, size_rest, gb):
    _block_add(g, outer, size_a, size_b, size_a + size_b + size_rest, gb)


@njit
def cat_bwd_rest(g, outer, size_a, size_b, size_rest, grest):
    _block_add(g, outer, size_a + size_b, size_rest, size_a + size_b + size_rest, grest)


# x[index] = v: ``index`` holds flat positions of x, ``v`` one value per position.

@njit
def put_fwd(x, v, index, out):
    """out = x with out[index[i]] = v[i] (a repeated position keeps the last value, as NumPy)"""
    out[:] = x
    for i in range(index.size):
        out[index[i]] = v[i]


@njit
def put_bwd_x(g, index, gx):
    """gx += g where x's value survived (not overwritten)"""
    written = np.zeros(g.size, np.bool_)
    for i in range(index.size):
        written[index[i]] = True
    for i in range(g.size):
        if not written[i]:
            gx[i] += g[i]


@njit
def put_bwd_v(g, index, gv):
    """gv[i] += g[index[i]]"""
    for i in range(index.size):
        gv[i] += g[index[i]]
