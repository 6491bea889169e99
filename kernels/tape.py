"""The tape: one int64 row per recorded node, and raw views of memory.

Forward kernels write their node's row while they run (addresses of the
buffers the backward needs are free to read in compiled code); the executor
reads rows and rebuilds arrays from addresses with ``view``. Rows live in
fixed-size chunks that are never reallocated, so a row's address is stable
and two threads can record at once.
"""
import numpy as np
from llvmlite import ir
from numba import carray, types
from numba.extending import intrinsic

from .jit import njit

MAX_NDIM = 8
CHUNK_SHIFT = 12
CHUNK_ROWS = 1 << CHUNK_SHIFT
CHUNK_MASK = CHUNK_ROWS - 1

# Row layout (int64 columns).
OP = 0           # opcode; 0 is a leaf (AccumulateGrad)
FLAGS = 1
ITEMSIZE = 2     # 4: float32, 8: float64
NUMEL = 3        # elements of the node's output
IN = 4           # IN + i: row of input i, or -1 when it needs no gradient
MAX_INPUTS = 3
SAVED = 7        # SAVED + k: address of saved buffer k
SAVED_NUMEL = 10
GRAD_BUF = 13    # address of the .grad buffer of a leaf or a retain_grad node
MARK = 14        # epoch of the last backward that reached the row
SLOT = 15        # byte offset of the row's gradient in that backward's arena
DEPS = 16        # consumers not yet run, during a backward
FLOATS = 17      # 2 float parameters, stored as bit patterns
INTS = 19        # 6 int parameters
SHAPES = 25      # 2 shape parameters, each [ndim, d0 .. d7]
SHAPE_SIZE = 1 + MAX_NDIM
BROADCAST_INPUTS = 2  # inputs 0 and 1 may be broadcast (a third input has the output's shape)
BCAST = SHAPES + 2 * SHAPE_SIZE  # per broadcast input i < 2: [ndim, shape[8], strides[8]]
BCAST_SIZE = 1 + 2 * MAX_NDIM
STALE = BCAST + BROADCAST_INPUTS * BCAST_SIZE  # for a MODIFIED row: [which saved buffer, its version then]
UNWRITTEN = STALE + 2  # during a backward, 1 while the row's gradient buffer holds stale bytes, not zeros
                       # (its first writer overwrites it; whatever reads it first zeroes it)
WIDTH = UNWRITTEN + 1

# FLAGS bits.
NEEDS_SAVED = 1   # backward reads saved buffers
RELEASED = 2      # saved buffers were freed by a backward without retain_graph
LEAF = 4
RETAIN = 8        # a non-leaf whose gradient is also written to GRAD_BUF
GRAD_DEFINED = 16  # GRAD_BUF holds a gradient (else the next backward overwrites it)
PYTHON = 32       # the executor returns to Python at this row (hooks, Python Functions)
MODIFIED = 64     # an in-place op changed a saved buffer since it was saved
REFUSED = 128     # the executor must not run the row (Python knows why: a .data replaced, say)


@intrinsic
def _typed_pointer(typingctx, address, dtype):
    """Reinterpret an int64 address as a pointer to ``dtype`` (a dtype or an array of it)."""
    if isinstance(dtype, (types.Array, types.DType)):
        target = dtype.dtype
    else:  # a NumPy scalar type such as np.float32
        target = dtype.instance_type
    pointer = types.CPointer(target)

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(pointer))

    return pointer(address, dtype), codegen


@intrinsic
def _float_bits(typingctx, value):
    def codegen(context, builder, signature, args):
        as_double = context.cast(builder, args[0], signature.args[0], types.float64)
        return builder.bitcast(as_double, ir.IntType(64))

    return types.int64(value), codegen


@intrinsic
def _bits_float(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(bits), codegen



# The float dtypes as the glue passes them: as dtype objects, the type ``array.dtype`` has in compiled
# code. Numba compiles a function taking a dtype apart for np.float32 and np.dtype(np.float32).
FLOAT32, FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)


@njit
def view(address, n, dtype):
    """A 1-D array of ``n`` elements of ``dtype`` at ``address`` (no ownership)."""
    return carray(_typed_pointer(address, dtype), n)


@njit
def row_at(chunk_addresses, r):
    """Row ``r`` of the tape as an int64 view."""
    base = chunk_addresses[r >> CHUNK_SHIFT]
    return view(base + (r & CHUNK_MASK) * (WIDTH * 8), WIDTH, np.int64)


@njit
def float_param(row, k):
    return _bits_float(row[FLOATS + k])


@njit
def shape_param(row, k):
    base = SHAPES + k * SHAPE_SIZE
    return row[base + 1:base + 1 + row[base]]


@njit
def record(row, op, out, in0, in1, in2):
    """Start ``row`` for a node of opcode ``op`` whose output is ``out``."""
    record_sized(row, op, out.itemsize, out.size, in0, in1, in2)


@njit
def record_sized(row, op, itemsize, numel, in0, in1, in2):
    """``record`` for an output of ``numel`` elements of ``itemsize`` bytes."""
    row[OP] = op
    row[FLAGS] = 0
    row[ITEMSIZE] = itemsize
    row[NUMEL] = numel
    row[IN] = in0
    row[IN + 1] = in1
    row[IN + 2] = in2
    row[SAVED] = row[SAVED + 1] = row[SAVED + 2] = 0  # what mark_modified compares with (0: not saved)
    row[SAVED_NUMEL] = row[SAVED_NUMEL + 1] = row[SAVED_NUMEL + 2] = 0
    row[GRAD_BUF] = 0
    row[MARK] = 0
    row[BCAST] = 0
    row[BCAST + BCAST_SIZE] = 0


@njit
def record_view(row_address, op, itemsize, numel, in0, offset, shape, strides):
    """The row of a view's node, whose values are already in place (no kernel runs): ``op`` reads
    the input's elements at ``offset`` + index . ``strides`` (a strided read; a reshape ignores them)."""
    row = view(row_address, WIDTH, np.int64)
    record_sized(row, op, itemsize, numel, in0, -1, -1)
    save_int(row, 0, offset)
    save_shape(row, 0, shape)
    save_shape(row, 1, strides)


@njit
def save(row, k, buffer):
    """Saved buffer ``k``; the Python node keeps ``buffer`` alive."""
    row[SAVED + k] = buffer.ctypes.data
    row[SAVED_NUMEL + k] = buffer.size
    row[FLAGS] |= NEEDS_SAVED


@njit
def save_float(row, k, value):
    row[FLOATS + k] = _float_bits(value)


@njit
def save_int(row, k, value):
    row[INTS + k] = value


@njit
def save_shape(row, k, shape):
    base = SHAPES + k * SHAPE_SIZE
    row[base] = shape.size
    for d in range(shape.size):
        row[base + 1 + d] = shape[d]


@njit
def set_grad_buffer(rows, r, buffer, flags):
    """Point row ``r`` at ``buffer`` for its .grad and set ``flags`` (LEAF/RETAIN/GRAD_DEFINED)."""
    rows[r, GRAD_BUF] = buffer.ctypes.data
    rows[r, FLAGS] = (rows[r, FLAGS] & ~(LEAF | RETAIN | GRAD_DEFINED)) | flags


@njit
def save_broadcast(rows, r, i, shape, strides):
    """Input ``i`` was broadcast to ``shape``; ``strides`` index the input from that shape."""
    base = BCAST + i * BCAST_SIZE
    rows[r, base] = shape.size
    for d in range(shape.size):
        rows[r, base + 1 + d] = shape[d]
        rows[r, base + 1 + MAX_NDIM + d] = strides[d]


@njit
def _saves_live(flags):
    return flags & NEEDS_SAVED and not flags & (RELEASED | MODIFIED)


@njit
def mark_modified(chunks, rows, starts, ends, versions):
    """Flag every row among the first ``rows`` with a live saved buffer in one of the byte ranges
    ``[starts[i], ends[i])``, storages that in-place ops are about to change from ``versions[i]``;
    returns how many."""
    flagged = 0
    for c in range(chunks.size):
        if not chunks[c]:  # a chunk given back
            continue
        table = view(chunks[c], CHUNK_ROWS * WIDTH, np.int64)
        for base in range(0, min(rows - c * CHUNK_ROWS, CHUNK_ROWS) * WIDTH, WIDTH):
            flags = table[base + FLAGS]
            if not _saves_live(flags):
                continue
            for k in range(3):
                address = table[base + SAVED + k]
                for i in range(starts.size):
                    if starts[i] <= address < ends[i]:
                        table[base + FLAGS] = flags | MODIFIED
                        table[base + STALE] = k
                        table[base + STALE + 1] = versions[i]
                        flagged += 1
                        break
                if table[base + FLAGS] & MODIFIED:
                    break
    return flagged


@njit
def find_saved(chunks, rows, address, numel):
    """``(row, k)`` pairs, among the first ``rows``, whose live saved buffer ``k`` is the ``numel``
    elements at ``address``."""
    found = np.empty((0, 2), np.int64)
    for sweep in range(2):  # count, then fill
        n = 0
        for c in range(chunks.size):
            if not chunks[c]:  # a chunk given back
                continue
            for r in range(c * CHUNK_ROWS, min(rows, (c + 1) * CHUNK_ROWS)):
                row = row_at(chunks, r)
                if not _saves_live(row[FLAGS]):
                    continue
                for k in range(3):
                    if numel and row[SAVED + k] == address and row[SAVED_NUMEL + k] == numel:
                        if sweep:
                            found[n, 0] = r
                            found[n, 1] = k
                        n += 1
        if not sweep:
            found = np.empty((n, 2), np.int64)
    return found


@njit
def record_leaf(rows, r, grad_buffer):
    """Start row ``r`` for a leaf whose gradients accumulate into ``grad_buffer``."""
    record(rows[r], 0, grad_buffer, -1, -1, -1)
    rows[r, GRAD_BUF] = grad_buffer.ctypes.data
    rows[r, FLAGS] = LEAF
