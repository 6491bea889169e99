"""The backward executor's engine: planning a backward and routing gradients.

A backward runs in one compiled call (``execute`` in the module that
``nbgrad.autograd.codegen`` writes from the op declarations, which adds the
per-op dispatch, through a table of each op's backward compiled as a C function
on first use): ``plan`` collects the rows reachable from the root in
topological order and gives each a slot in one gradient arena; then, for each
row, ``input_grad`` hands the op's backward kernel the buffer to accumulate
into, and ``reduce_broadcast`` sums broadcast gradients back to the input's
shape. Leaves accumulate straight into their ``.grad`` buffer.

Nothing zeroes the arena (or a ``.grad`` that holds no gradient yet) up front:
``mark_unwritten`` flags those buffers, the first kernel that writes one
overwrites it when it can (``input_grad_fresh``: a matrix product then runs
with ``beta = 0``) and anything else zeroes it on first use (``grad_of``). At a
medium MLP's backward that saves zeroing 5 MB, 4 % of a training step.
"""
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .jit import DEBUG, njit
from .movement import scatter_add
from .tape import (
    BCAST,
    BCAST_SIZE,
    BROADCAST_INPUTS,
    DEPS,
    FLAGS,
    FLOAT32,
    FLOAT64,
    GRAD_BUF,
    GRAD_DEFINED,
    IN,
    ITEMSIZE,
    LEAF,
    MARK,
    MAX_INPUTS,
    MAX_NDIM,
    MODIFIED,
    NEEDS_SAVED,
    NUMEL,
    OP,
    PYTHON,
    REFUSED,
    RELEASED,
    RETAIN,
    SLOT,
    UNWRITTEN,
    row_at,
    view,
)

# STALE of a REFUSED row whose backward kernel raised (NBGRAD_DEBUG: an index out of bounds), and
# of one Python refused (it says why).
KERNEL_FAILED = -2
REFUSED_BY_PYTHON = -3

# Status codes of execute, read by the Python engine (>= 0: a Python row; <= -2: a released or modified row;
# NEEDS: an op's backward for a dtype is not compiled yet).
DONE = -1
NEEDS = -(1 << 62)

# The dispatch table of op backwards (see nbgrad.autograd.codegen.Backwards): per opcode, the
# addresses for float32, float32 in threads, float64, float64 in threads, the gradient size
# from which the op's backward runs in threads, and a bit per input whose gradient is the output's
# gradient unchanged (add, views, the bias add's input): ``plan`` may give such an input the
# output's arena slot, and its backward then copies nothing.
TABLE_STRIDE = 6
PARALLEL_FROM = 4
PASS_THROUGH = 5

# UNWRITTEN of a row that shares its consumer's arena slot (see ``plan``): written when the consumer's is.
SHARED_SLOT = -1

# After the op entries, the table holds the addresses of the broadcast reducers, for float32 and float64
# (see ``reduce_broadcast``; 0 until compiled), and ``prepare`` copies them to the arena's first two words,
# where op backwards read them: the arena's slots start after them.
REDUCERS = 2
ARENA_HEADER = 8 * REDUCERS


def _c_call(argument_types):
    """The codegen of a call of the C function at the address in the first argument, which takes
    ``argument_types`` (the call's own arguments are cast to them) and returns nothing."""
    def codegen(context, builder, signature, values):
        function_type = ir.FunctionType(ir.VoidType(), [context.get_value_type(t) for t in argument_types])
        function = builder.inttoptr(values[0], function_type.as_pointer())
        builder.call(function, [context.cast(builder, value, given, wanted)
                                for value, given, wanted in zip(values[1:], signature.args[1:], argument_types)])
        return context.get_dummy_value()

    return codegen


BACKWARD_ARGS = 6  # chunk addresses, number of chunks, row, arena address, gradient address, gradient size


@intrinsic
def call_backward(typingctx, address, chunk_addresses, n_chunks, row, arena, g_address, g_size):
    """Call the op backward compiled at ``address`` (a C function of BACKWARD_ARGS int64s)."""
    args = (chunk_addresses, n_chunks, row, arena, g_address, g_size)
    if not all(isinstance(a, types.Integer) for a in (address, *args)):
        return None
    return types.void(types.int64, *args), _c_call([types.int64] * BACKWARD_ARGS)


# A broadcast reducer's arguments: chunk addresses, number of chunks, row, input, arena address, gradient
# address, gradient size (int64s), and the scale (a float64).
REDUCER_ARGS = [types.int64] * 7 + [types.float64]


@intrinsic
def call_reducer(typingctx, address, chunk_addresses, n_chunks, row, i, arena, g_address, g_size, scale):
    """Call the broadcast reducer compiled at ``address`` (see REDUCER_ARGS)."""
    args = (chunk_addresses, n_chunks, row, i, arena, g_address, g_size)
    if not all(isinstance(a, types.Integer) for a in (address, *args)) or not isinstance(scale, types.Float):
        return None
    return types.void(types.int64, *args, scale), _c_call(REDUCER_ARGS)


@njit
def _grow(array, n):
    if n < array.size:
        return array
    bigger = np.empty(2 * array.size, np.int64)
    for i in range(array.size):  # loops, not array assignments: those compile a shape-error path (seconds)
        bigger[i] = array[i]
    return bigger


@njit
def refused(flags):
    """Whether the executor must not run a row: its saved buffers were released or changed in
    place, or Python refused it (``REFUSED``)."""
    return (flags & NEEDS_SAVED and flags & (RELEASED | MODIFIED)) or flags & REFUSED


@njit
def plan(chunks, root, epoch, accumulate, order, backwards):
    """Rows reachable from ``root``, consumers before inputs, and the arena size in bytes.

    ``order`` is the caller's buffer for the rows, used when big enough (a fresh one
    costs an allocation, and handing it back to Python a slow path of Numba's boxing).
    Returns ``(order, count, arena_bytes)``. With ``accumulate`` leaves accumulate straight into ``.grad``;
    without (``autograd.grad``), every row's gradient gets a slot in the arena. A row whose one
    consumer passes its gradient through unchanged shares that consumer's slot (``shares_slot``).
    """
    if order.size == 0:
        order = np.empty(64, np.int64)
    stack = np.empty(64, np.int64)
    root_row = row_at(chunks, root)
    root_row[MARK] = epoch
    root_row[DEPS] = 0
    root_row[UNWRITTEN] = 0
    stack[0] = root
    depth = 1
    while depth > 0:  # mark the reachable rows and count each one's consumers
        depth -= 1
        r = stack[depth]
        row = row_at(chunks, r)
        if row[FLAGS] & LEAF:
            continue
        for i in range(MAX_INPUTS):
            j = row[IN + i]
            if j < 0:
                continue
            input_row = row_at(chunks, j)
            if input_row[MARK] != epoch:
                input_row[MARK] = epoch
                input_row[DEPS] = 0
                input_row[UNWRITTEN] = r + 1  # scratch until mark_unwritten: its only consumer so far
                stack = _grow(stack, depth)
                stack[depth] = j
                depth += 1
            else:
                input_row[UNWRITTEN] = 0  # a second consumer (or the same one twice)
            input_row[DEPS] += 1
    order[0] = root
    count = 1
    head = 0
    while head < count:  # Kahn's order: a row comes after all its consumers
        row = row_at(chunks, order[head])
        head += 1
        if row[FLAGS] & LEAF:
            continue
        for i in range(MAX_INPUTS):
            j = row[IN + i]
            if j < 0:
                continue
            input_row = row_at(chunks, j)
            input_row[DEPS] -= 1
            if input_row[DEPS] == 0:
                order = _grow(order, count)
                order[count] = j
                count += 1
    arena_bytes = ARENA_HEADER
    for k in range(count):  # gradient slots; leaves accumulate in place into .grad
        r = order[k]
        row = row_at(chunks, r)
        flags = row[FLAGS]
        consumer = row[UNWRITTEN] - 1
        row[UNWRITTEN] = 0
        if accumulate and flags & LEAF and not flags & PYTHON:
            row[SLOT] = -1
        elif consumer >= 0 and shares_slot(row_at(chunks, consumer), r, row, backwards):
            row[SLOT] = row_at(chunks, consumer)[SLOT]  # planned already: consumers come first
            row[UNWRITTEN] = SHARED_SLOT
        else:
            row[SLOT] = arena_bytes
            arena_bytes += (row[NUMEL] * row[ITEMSIZE] + 7) // 8 * 8
    return order, count, arena_bytes


@njit
def shares_slot(consumer, r, row, backwards):
    """Whether row ``r``, whose only consumer is ``consumer``, can take the consumer's gradient
    as its own, in the same memory: the consumer's op passes that input's gradient through
    unchanged, not broadcast, in the same dtype."""
    if consumer[SLOT] < 0 or consumer[NUMEL] != row[NUMEL] or consumer[ITEMSIZE] != row[ITEMSIZE]:
        return False
    entry = TABLE_STRIDE * consumer[OP]
    passes = backwards[entry + PASS_THROUGH] if entry < backwards.size - REDUCERS else 0
    for i in range(MAX_INPUTS):
        if consumer[IN + i] == r:
            return (passes >> i) & 1 == 1 and (i >= BROADCAST_INPUTS or consumer[BCAST + i * BCAST_SIZE] == 0)
    return False


@njit
def mark_unwritten(chunks, order, start, count, arena_rows):
    """Mark the rows ``order[start:count]`` whose gradient buffer holds no gradient yet: each
    ``.grad`` this backward defines and, with ``arena_rows`` (a backward's start), every arena
    slot. Done just before those rows run: at the start, and again after Python ran a row
    (``settle`` left the arena zeroed and undefined ``.grad`` undefined)."""
    for k in range(start, count):
        row = row_at(chunks, order[k])
        if row[SLOT] >= 0:
            if not (arena_rows and row[UNWRITTEN] == SHARED_SLOT):
                row[UNWRITTEN] = 1 if arena_rows else 0
        elif not row[FLAGS] & GRAD_DEFINED:
            row[FLAGS] |= GRAD_DEFINED
            row[UNWRITTEN] = 1
        else:
            row[UNWRITTEN] = 0


@njit
def settle(chunks, order, start, count, arena_address):
    """``settle_row`` for ``order[start:count]``: before Python runs a row (a hook, a Function),
    which may read or add to any gradient, or stop the backward with an error."""
    for k in range(start, count):
        settle_row(row_at(chunks, order[k]), arena_address)


@njit
def settle_row(row, arena_address):
    """If the row's gradient is still unwritten: zero its arena slot, or leave a leaf's ``.grad``
    undefined (None, as before this backward: nothing reached it). A slot shared with the row's
    consumer is the consumer's to settle."""
    if row[UNWRITTEN] != 1:
        return
    row[UNWRITTEN] = 0
    if row[SLOT] < 0:
        row[FLAGS] &= ~GRAD_DEFINED
    else:
        view(arena_address + row[SLOT], row[NUMEL] * row[ITEMSIZE], np.uint8)[:] = 0


@njit
def grad_address(row, arena_address):
    """The address of a planned row's gradient (as ``grad_of``, zeroed if unwritten), whatever its dtype:
    the executor's own code compiles once for both (a float32 graph compiles no float64 executor)."""
    address = row[GRAD_BUF] if row[SLOT] < 0 else arena_address + row[SLOT]
    if row[UNWRITTEN] != 0:
        row[UNWRITTEN] = 0
        view(address, row[NUMEL] * row[ITEMSIZE], np.uint8)[:] = 0
    return address


@njit
def grad_of(row, arena_address, dtype):
    """The gradient of a planned row: its arena slot, or its .grad buffer for a leaf
    (zeroed first if unwritten)."""
    grad, fresh = fresh_grad_of(row, arena_address, dtype)
    if fresh:
        grad[:] = 0
    return grad


@njit
def fresh_grad_of(row, arena_address, dtype):
    """``(gradient, fresh)``: the row's gradient buffer, and whether it held no gradient (then
    the caller must overwrite all of it)."""
    fresh = row[UNWRITTEN] != 0
    row[UNWRITTEN] = 0
    address = row[GRAD_BUF] if row[SLOT] < 0 else arena_address + row[SLOT]
    grad = view(address, row[NUMEL], dtype)
    if DEBUG and fresh:
        poison(grad)
    return grad, fresh


@njit
def poison(buffer):
    """NBGRAD_DEBUG: fill a buffer that its kernel must overwrite with NaN (all bits set), so that
    what it fails to write shows."""
    view(buffer.ctypes.data, buffer.size * buffer.itemsize, np.uint8)[:] = 255


@njit
def input_grad(chunks, row, i, arena_address, dtype):
    """Where the op's backward adds input ``i``'s gradient (a zeroed temporary if broadcast)."""
    grad, fresh = input_grad_fresh(chunks, row, i, arena_address, dtype)
    if fresh:
        grad[:] = 0
    return grad


@njit
def input_grad_fresh(chunks, row, i, arena_address, dtype):
    """``(buffer, fresh)`` for a backward kernel that takes ``fresh``: it overwrites the buffer
    when fresh, else adds to it."""
    j = row[IN + i]
    if j < 0:
        return np.empty(0, dtype), True
    block = BCAST + i * BCAST_SIZE
    ndim = row[block] if i < BROADCAST_INPUTS else 0
    if ndim > 0:
        numel = 1
        for d in range(ndim):
            numel *= row[block + 1 + d]
        temporary = np.empty(numel, dtype)
        if DEBUG:
            poison(temporary)
        return temporary, True
    return fresh_grad_of(row_at(chunks, j), arena_address, dtype)


@njit
def sum_to_input(chunks, row, i, arena_address, grad, scale):
    """If input ``i`` was broadcast, add ``scale * grad`` summed back to its shape and return True."""
    if i >= BROADCAST_INPUTS:
        return False
    block = BCAST + i * BCAST_SIZE
    ndim = row[block]
    j = row[IN + i]
    if j < 0 or ndim == 0:
        return False
    shape = row[block + 1:block + 1 + ndim]
    strides = row[block + 1 + MAX_NDIM:block + 1 + MAX_NDIM + ndim]
    target = grad_of(row_at(chunks, j), arena_address, grad.dtype)
    scatter_add(grad, shape, strides, scale, target)
    return True


@njit
def reduce_broadcast(chunk_addresses, n_chunks, r, row, i, arena_address, grad, scale):
    """If input ``i`` of row ``r`` was broadcast, add ``scale * grad`` (in the output's shape) summed back to
    the input's shape and return True. By the reducer for the dtype, a C function compiled only once a
    graph broadcasts (``needs_reducer``): calling ``sum_to_input`` here would compile it, and copy its
    code into every op backward (a first run's compile took a fifth longer)."""
    if i >= BROADCAST_INPUTS or row[IN + i] < 0 or row[BCAST + i * BCAST_SIZE] == 0:
        return False
    reducer = view(arena_address, REDUCERS, np.int64)[1 if grad.itemsize == 8 else 0]  # the arena's header
    call_reducer(reducer, chunk_addresses, n_chunks, r, i, arena_address, grad.ctypes.data, grad.size, scale)
    return True


@njit
def needs_reducer(chunks, row, backwards):
    """Whether a broadcast input of ``row`` needs the reducer of a dtype not compiled yet."""
    for i in range(BROADCAST_INPUTS):
        j = row[IN + i]
        if j >= 0 and row[BCAST + i * BCAST_SIZE] > 0:
            if backwards[backwards.size - REDUCERS + (1 if row_at(chunks, j)[ITEMSIZE] == 8 else 0)] == 0:
                return True
    return False


@njit
def write_reducers(arena, backwards):
    """The arena's header: the reducers' addresses, where op backwards read them (``reduce_broadcast``)."""
    header = view(arena.ctypes.data, REDUCERS, np.int64)
    for k in range(REDUCERS):
        header[k] = backwards[backwards.size - REDUCERS + k]


@njit
def write_retained(row, address):
    """Copy the finished gradient at ``address`` into the .grad buffer of a retain_grad() node or hooked leaf."""
    flags = row[FLAGS]
    if not flags & (RETAIN | LEAF) or row[GRAD_BUF] == 0:
        return
    n = row[NUMEL]
    if not flags & GRAD_DEFINED:  # a loop, not an array assignment (that compiles a shape check: seconds)
        nbytes = n * row[ITEMSIZE]
        target_bytes, grad_bytes = view(row[GRAD_BUF], nbytes, np.uint8), view(address, nbytes, np.uint8)
        for i in range(nbytes):
            target_bytes[i] = grad_bytes[i]
        row[FLAGS] = flags | GRAD_DEFINED
    elif row[ITEMSIZE] == 4:
        target, grad = view(row[GRAD_BUF], n, FLOAT32), view(address, n, FLOAT32)
        for i in range(n):
            target[i] += grad[i]
    else:
        target, grad = view(row[GRAD_BUF], n, FLOAT64), view(address, n, FLOAT64)
        for i in range(n):
            target[i] += grad[i]


@njit
def release(chunks, order, count):
    """Mark the saved buffers of the planned rows as freed (no retain_graph).

    Moves those rows to the front of ``order`` and returns how many there are,
    so that Python drops its references to their buffers without visiting the rest.
    """
    released = 0
    for k in range(count):
        r = order[k]
        row = row_at(chunks, r)
        if row[FLAGS] & NEEDS_SAVED:
            row[FLAGS] |= RELEASED
            order[released] = r
            released += 1
    return released


@njit
def add_into(row, slot, arena_address, grad):
    """Add ``grad`` (what a Python Function's backward returned) to the gradient of ``row``, whose
    arena slot was ``slot`` when the Function's row began; a leaf's ``.grad`` that holds no
    gradient yet (``settle`` left it undefined) takes it as it is."""
    if slot < 0:
        target = view(row[GRAD_BUF], grad.size, grad.dtype)
        if not row[FLAGS] & GRAD_DEFINED:
            row[FLAGS] |= GRAD_DEFINED
            for i in range(grad.size):
                target[i] = grad[i]
            return
    else:
        target = view(arena_address + slot, grad.size, grad.dtype)
    for i in range(grad.size):
        target[i] += grad[i]


@njit
def slots(chunks, order, count):
    """The arena slots and epoch marks of the planned rows (saved while Python runs a row: a
    backward called from there plans again and rewrites those of the rows both graphs share)."""
    result = np.empty(2 * count, np.int64)
    for k in range(count):
        row = row_at(chunks, order[k])
        result[2 * k] = row[SLOT]
        result[2 * k + 1] = row[MARK]
    return result


@njit
def restore_slots(chunks, order, count, saved_slots):
    for k in range(count):
        row = row_at(chunks, order[k])
        row[SLOT] = saved_slots[2 * k]
        row[MARK] = saved_slots[2 * k + 1]
