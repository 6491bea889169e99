"""Matrix products through NumPy's own BLAS, called from compiled code.

Numba's ``np.dot`` goes through SciPy's BLAS, which on the wheels we measured
runs a 512^3 float32 product in ~2.2 ms against ~1.2 ms for the OpenBLAS that
NumPy ships; it also cannot accumulate (``beta = 1``), so a backward pays for a
temporary and an add. ``call_gemm`` calls a CBLAS ``?gemm`` by address: Python finds
the address once (``find_gemm``) and passes it as an int, so compiled code and
Numba's cache never hold a process-specific pointer. Address 0 means "not
found": the kernels then fall back to ``np.dot``.
"""
import ctypes
import glob
import os

import numpy as np
from llvmlite import ir
from numba import types
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


def find_gemm():
    """Addresses of NumPy's bundled CBLAS ILP64 ``sgemm`` and ``dgemm``, or (0, 0) when absent."""
    if os.environ.get("NBGRAD_NUMPY_BLAS", "1") == "0":
        return 0, 0
    folder = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(folder, "numpy.libs", "libscipy_openblas64_*"))):
        try:
            library = ctypes.CDLL(path)
            return (ctypes.cast(library.scipy_cblas_sgemm64_, ctypes.c_void_p).value,
                    ctypes.cast(library.scipy_cblas_dgemm64_, ctypes.c_void_p).value)
        except (OSError, AttributeError):
            continue
    return 0, 0
