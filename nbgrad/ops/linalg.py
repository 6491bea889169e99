"""Matrix products and the bias add: the ops whose kernels are in ``kernels/linalg.py``, and the
BLAS they call (chosen once, at the first use of nbgrad).
"""
import math

import numpy as np

from .. import dtypes
from .._tensor import Tensor
from ..autograd.node import node_class
from ..autograd.registry import declare
from ..autograd.tape import saved as _saved
from ..compiler import recording
from ..kernels import blas, jit, linalg
from ..kernels import elementwise as ew
from .core import _apply, _broadcast_shape, _not_a_tensor
from .movement import _expand, contiguous

# --- declarations -----------------------------------------------------------

# a_layout, b_layout: 2 x the matrices each operand holds (1: shared), + 1 when stored transposed.
MATMUL = declare("matmul", "MmBackward0", linalg.matmul_fwd, (linalg.matmul_bwd_a, linalg.matmul_bwd_b),
                 inputs=("a", "b"), ints=("a_layout", "b_layout", "m", "k", "n", "gemm"), saves=("a", "b"))
# threads_from: jit.ELEMENTWISE_LIGHT_THREADS_FROM, when the bias passes go to threads (an argument, so
# that the compiled kernels do not depend on the BLAS the process chose; light_from: from there the op
# layer picks the kernels' threaded twins).
LINEAR = declare("linear", "AddmmBackward0", linalg.linear_fwd,
                 (linalg.linear_bwd_x, linalg.linear_bwd_w, linalg.linear_bwd_b), inputs=("x", "w", "b"),
                 ints=("m", "k", "n", "gemm", "threads_from"), saves=("x", "w"),
                 light_from=jit.ELEMENTWISE_LIGHT_THREADS_FROM)
# x + b where b matches x's trailing dimensions (``x @ w + b``): AddBackward0 as PyTorch, in one pass.
BIAS_ADD = declare("bias_add", "AddBackward0", linalg.bias_add_fwd, (ew.identity_bwd, linalg.linear_bwd_b),
                   inputs=("x", "b"), ints=("m", "n", "threads_from"), keeps_shapes=True,
                   light_from=jit.ELEMENTWISE_LIGHT_THREADS_FROM)


# --- matrix products ----------------------------------------------------------

_C_NAMES = {dtypes.float32: "float", dtypes.float64: "double", dtypes.int64: "long int", dtypes.int32: "int",
            dtypes.bool_: "bool"}  # PyTorch's words for dtypes in its product errors


def _matmul_error(op, sa, sb):
    return RuntimeError(f"{op}: shapes {tuple(sa)} and {tuple(sb)} cannot be multiplied")


BLAS = blas.find_blas()  # chosen once, at the first use of nbgrad (NBGRAD_BLAS decides when set)
_THREADS_FROM = jit.ELEMENTWISE_LIGHT_THREADS_FROM
_GEMM = {dtype: BLAS.table(dtype) for dtype in (np.dtype(np.float32), np.dtype(np.float64))}


def _operand(t, count):
    """What the product reads of ``t`` (holding ``count`` matrices): its array and layout word. A
    transposed view (``x.t()``, ``x.mT``) goes to BLAS as it lies in memory, with the transpose flag:
    no copy."""
    data = t._data
    if data.flags.c_contiguous or data.ndim < 2:
        return data, 2 * count
    swapped = data.swapaxes(-1, -2)
    if not swapped.flags.c_contiguous:
        return data, 2 * count  # copied at the op's entry
    if recording.active is not None:
        recording.active.view(t, swapped, None)
    return swapped, 2 * count + 1


def _product(a, b, count_a, count_b, m, k, n, out, node=None):
    """``_apply(MATMUL)``; the row saves the operands as the caller sees them (a transposed view,
    not the buffer handed to BLAS): what ``create_graph`` and ``grad_fn._saved_*`` read."""
    da, layout_a = _operand(a, count_a)
    db, layout_b = _operand(b, count_b)
    result = _apply(MATMUL, (a, b), (da, db), (layout_a, layout_b, m, k, n, _GEMM[out.dtype]), out, node)
    if (layout_a | layout_b) & 1 and result._node is not None:
        _saved[result._node._row] = (a._data if layout_a & 1 else _saved[result._node._row][0],
                                     b._data if layout_b & 1 else _saved[result._node._row][1])
    return result


def matmul(input, other):
    """Matrix product with NumPy's rules: 1-D vectors, 2-D matrices, batches broadcast."""
    if type(input) is Tensor and type(other) is Tensor:  # fast path: two float matrices
        da, db = input._data, other._data
        if da.ndim == 2 and db.ndim == 2 and da.dtype == db.dtype and da.dtype.kind == "f":
            m, k = da.shape
            if k == db.shape[0]:
                n = db.shape[1]
                if da.flags.c_contiguous and db.flags.c_contiguous:
                    return _apply(MATMUL, (input, other), (da, db), (2, 2, m, k, n, _GEMM[da.dtype]),
                                  np.empty((m, n), da.dtype))
                return _product(input, other, 1, 1, m, k, n, np.empty((m, n), da.dtype))
    if not isinstance(input, Tensor) or not isinstance(other, Tensor):
        raise TypeError("matmul(): both arguments must be Tensors")
    if input.dtype is not other.dtype:  # PyTorch's errors: no promotion in products
        if input.ndim == 1 and other.ndim == 1:
            raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                               f"{_C_NAMES[input.dtype].title()} and {_C_NAMES[other.dtype].title()}")
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_C_NAMES[input.dtype]} != "
                           f"{_C_NAMES[other.dtype]}")
    dtype = input.dtype
    if not dtype.is_floating_point:
        raise RuntimeError(f"matmul: integer tensors are not supported (got {input.dtype!r} and {other.dtype!r})")
    a, b = input, other
    sa, sb = a._data.shape, b._data.shape
    if not sa or not sb:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes {sa} and {sb}")
    k = sa[-1]
    if k != (sb[0] if len(sb) == 1 else sb[-2]):
        raise _matmul_error("matmul", sa, sb)
    n = 1 if len(sb) == 1 else sb[-1]
    name = "MmBackward0"
    if len(sa) == 1 and len(sb) == 1:
        name, m, batch_a, batch_b, out_shape = "DotBackward0", 1, 1, 1, ()
    elif len(sb) <= 2:  # a's batch folds into its rows: one matrix product
        m = math.prod(sa[:-1])
        batch_a = batch_b = 1
        if len(sa) > 2 and not a._data.flags.c_contiguous:
            a = contiguous(a)  # its rows must follow one another
        out_shape = sa[:-1] + ((n,) if len(sb) == 2 else ())
        if len(sa) == 2 and len(sb) == 1:
            name = "MvBackward0"
    else:
        m = 1 if len(sa) == 1 else sa[-2]
        batch = _broadcast_shape(sa[:-2], sb[:-2], "matmul")
        batch_count = math.prod(batch)
        counts = []  # matrices held by each input: 1 (shared), the batch, or None (to expand)
        for data in (a._data, b._data):
            if data.ndim <= 2:
                counts.append(1)
            elif data.shape[:-2] == batch:
                counts.append(batch_count)
            else:
                counts.append(None)
        batch_a, batch_b = counts
        if batch_a is None:
            a = _expand(a, batch + sa[-2:])
            batch_a = batch_count
        if batch_b is None:
            b = _expand(b, batch + sb[-2:])
            batch_b = batch_count
        out_shape = batch + ((m,) if len(sa) > 1 else ()) + (n,)
        name = "BmmBackward0"

    return _product(a, b, batch_a, batch_b, m, k, n, np.empty(out_shape, dtype.numpy), node_class(name))


def mm(input, mat2):
    """Product of two matrices (2-D only)."""
    if type(input) is not Tensor:
        _not_a_tensor("mm", input)
    if input.ndim != 2 or mat2.ndim != 2:
        raise RuntimeError(
            f"mm: both arguments must be matrices, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    if input.shape[1] != mat2.shape[0]:
        raise _matmul_error("mm", input.shape, mat2.shape)
    return matmul(input, mat2)


def _dims(name, t):
    if type(t) is not Tensor:
        _not_a_tensor(name, t)
    return t.ndim


def dot(input, tensor):
    """The inner product of two 1-D tensors of one size and dtype (a 0-d tensor)."""
    if (_dims("dot", input), _dims("dot", tensor)) != (1, 1):
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {tensor.ndim}D tensors")
    if input.shape[0] != tensor.shape[0]:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
                           f"[{tensor.shape[0]}] to have the same number of elements, but got {input.shape[0]} "
                           f"and {tensor.shape[0]} elements respectively")
    return matmul(input, tensor)


def mv(input, vec):
    """Matrix (n, m) times vector (m,)."""
    if (_dims("mv", input), _dims("mv", vec)) != (2, 1):
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}")
    if input.shape[1] != vec.shape[0]:
        raise RuntimeError(f"size mismatch, got input ({input.shape[0]}), mat ({input.shape[0]}x{input.shape[1]}), "
                           f"vec ({vec.shape[0]})")
    return matmul(input, vec)


def bmm(input, mat2):
    """Batches of matrix products: (b, n, m) @ (b, m, p), the batch sizes equal (no broadcasting)."""
    for label, t in (("batch1", input), ("batch2", mat2)):
        if _dims("bmm", t) != 3:
            raise RuntimeError(f"{label} must be a 3D tensor")
    expected = [input.shape[0], input.shape[2]]
    if list(mat2.shape[:2]) != expected:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: {expected} but got: "
                           f"{list(mat2.shape[:2])}.")
    return matmul(input, mat2)


def outer(input, vec2):
    """The outer product of two 1-D tensors: (n,) and (m,) give (n, m)."""
    for label, t in (("self", input), ("vec2", vec2)):
        if _dims("outer", t) != 1:
            raise RuntimeError(f"outer: Expected 1-D argument {label}, but got {t.ndim}-D")
    from .elementwise import mul
    from .movement import reshape

    return mul(reshape(input, (-1, 1)), vec2)


ger = outer


def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape (beta = 0: input
    is not read, as in PyTorch)."""
    from .elementwise import add, mul

    product = mm(mat1, mat2)
    if type(input) is not Tensor:
        _not_a_tensor("addmm", input)
    if _broadcast_shape(tuple(input.shape), tuple(product.shape), "addmm") != tuple(product.shape):
        raise RuntimeError(f"The expanded size of the tensor ({product.shape[-1]}) must match the existing size "
                           f"({input.shape[-1]}) at non-singleton dimension {input.ndim - 1}.  Target sizes: "
                           f"{list(product.shape)}.  Tensor sizes: {list(input.shape)}")
    if alpha != 1:
        product = mul(product, alpha)
    if beta == 0:
        return product
    return add(input if beta == 1 else mul(input, beta), product)
