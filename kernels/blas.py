"""Matrix products through BLAS ``?gemm``, called by address from compiled code.

Numba's ``np.dot`` goes through SciPy's BLAS, which on the wheels we measured
runs a 512^3 float32 product in ~2.2 ms against ~1.2 ms for the OpenBLAS that
NumPy ships; it also cannot accumulate (``beta = 1``), so a backward pays for a
temporary and an add, and it is slow to compile. So Python finds a ``?gemm``
once (``find_gemm``) and passes its address as an int, which keeps
process-specific pointers out of compiled code and Numba's cache:

- a positive address: NumPy's bundled CBLAS (ILP64), the fast one;
- a negative address: minus the address of SciPy's Fortran ``?gemm`` (LP64),
  always there (SciPy is a dependency).
"""
import ctypes
import glob
import os

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

ROW_MAJOR = 101
NO_TRANS = 111
TRANS = 112


@intrinsic
def call_gemm(typingctx, dtype, function, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """C = alpha op(A) op(B) + beta C, row-major, with CBLAS ILP64 ``?gemm`` at ``function``;
    ``a``, ``b``, ``c`` are addresses, ``dtype`` picks sgemm (float32) or dgemm (float64)."""
    real = dtype.dtype if isinstance(dtype, (types.Array, types.DType)) else dtype.instance_type
    single = real == types.float32
    int_args = (function, trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc)
    if not all(isinstance(x, types.Integer) for x in int_args):
        return None
    signature = types.void(dtype, types.int64, types.int64, types.int64, types.int64, types.int64, types.int64,
                           types.float64, types.int64, types.int64, types.int64, types.int64, types.float64,
                           types.int64, types.int64)

    def codegen(context, builder, sig, args):
        scalar = ir.FloatType() if single else ir.DoubleType()
        i32, i64, pointer = ir.IntType(32), ir.IntType(64), scalar.as_pointer()
        function_type = ir.FunctionType(
            ir.VoidType(), [i32, i32, i32, i64, i64, i64, scalar, pointer, i64, pointer, i64, scalar, pointer, i64]
        )
        (_, address, ta, tb, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_, ldc_) = args

        def real_value(value):
            return builder.fptrunc(value, scalar) if single else value

        callee = builder.inttoptr(address, function_type.as_pointer())
        builder.call(callee, [
            ir.Constant(i32, ROW_MAJOR), builder.trunc(ta, i32), builder.trunc(tb, i32), m_, n_, k_,
            real_value(alpha_), builder.inttoptr(a_, pointer), lda_, builder.inttoptr(b_, pointer), ldb_,
            real_value(beta_), builder.inttoptr(c_, pointer), ldc_,
        ])
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def call_gemm_fortran(typingctx, dtype, function, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c,
                      ldc):
    """``call_gemm``'s row-major product through a Fortran (column-major, LP64) ``?gemm``:
    C^T = op(B)^T op(A)^T, so the operands and their flags swap places."""
    real = dtype.dtype if isinstance(dtype, (types.Array, types.DType)) else dtype.instance_type
    single = real == types.float32
    signature = types.void(dtype, types.int64, types.int64, types.int64, types.int64, types.int64, types.int64,
                           types.float64, types.int64, types.int64, types.int64, types.int64, types.float64,
                           types.int64, types.int64)

    def codegen(context, builder, sig, args):
        scalar = ir.FloatType() if single else ir.DoubleType()
        i8, i32 = ir.IntType(8), ir.IntType(32)
        pointer = scalar.as_pointer()
        function_type = ir.FunctionType(ir.VoidType(), [
            i8.as_pointer(), i8.as_pointer(), i32.as_pointer(), i32.as_pointer(), i32.as_pointer(), pointer,
            pointer, i32.as_pointer(), pointer, i32.as_pointer(), pointer, pointer, i32.as_pointer(),
        ])
        (_, address, ta, tb, m_, n_, k_, alpha_, a_, lda_, b_, ldb_, beta_, c_, ldc_) = args

        def by_reference(value, kind):
            return cgutils.alloca_once_value(builder, value if kind is None else kind(value))

        def flag(trans):  # CBLAS code -> 'N' or 'T'
            is_trans = builder.icmp_signed("==", trans, ir.Constant(trans.type, TRANS))
            return by_reference(builder.select(is_trans, ir.Constant(i8, ord("T")), ir.Constant(i8, ord("N"))),
                                None)

        def int32(value):
            return by_reference(builder.trunc(value, i32), None)

        def real_value(value):
            return by_reference(builder.fptrunc(value, scalar) if single else value, None)

        callee = builder.inttoptr(address, function_type.as_pointer())
        builder.call(callee, [
            flag(tb), flag(ta), int32(n_), int32(m_), int32(k_), real_value(alpha_),
            builder.inttoptr(b_, pointer), int32(ldb_), builder.inttoptr(a_, pointer), int32(lda_),
            real_value(beta_), builder.inttoptr(c_, pointer), int32(ldc_),
        ])
        return context.get_dummy_value()

    return signature, codegen


def find_gemm():
    """(sgemm, dgemm) addresses: NumPy's CBLAS when found, else minus SciPy's Fortran ones."""
    if os.environ.get("NBGRAD_NUMPY_BLAS", "1") != "0":
        folder = os.path.dirname(os.path.dirname(np.__file__))
        for path in sorted(glob.glob(os.path.join(folder, "numpy.libs", "libscipy_openblas64_*"))):
            try:
                library = ctypes.CDLL(path)
                return (ctypes.cast(library.scipy_cblas_sgemm64_, ctypes.c_void_p).value,
                        ctypes.cast(library.scipy_cblas_dgemm64_, ctypes.c_void_p).value)
            except (OSError, AttributeError):
                continue
    # Only now: importing SciPy's BLAS costs a fifth of a second at start-up.
    from numba.extending import get_cython_function_address

    return tuple(-get_cython_function_address("scipy.linalg.cython_blas", name) for name in ("sgemm", "dgemm"))
