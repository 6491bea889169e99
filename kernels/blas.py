"""Matrix products through BLAS ``?gemm``, called by address from compiled code.

Numba's ``np.dot`` goes through SciPy's BLAS, which on the wheels we measured
runs a 512^3 float32 product in ~2.2 ms against ~1.2 ms for the OpenBLAS that
NumPy ships; it also cannot accumulate (``beta = 1``), so a backward pays for a
temporary and an add, and it is slow to compile. So Python chooses a BLAS once
(``find_blas``) and hands the kernels, per dtype, the address of a small int64
table (the op's ``gemm`` parameter), which keeps process-specific pointers out of
compiled code and Numba's cache. The table says:

- ``KIND``: ``CBLAS64``, a row-major CBLAS ``?gemm`` with 64-bit integers
  (NumPy's OpenBLAS, MKL's ``cblas_?gemm_64``), or ``FORTRAN32``, SciPy's
  Fortran ``?gemm`` (always there: SciPy is a dependency);
- ``GEMM``: its address;
- ``SET_THREADS``: the address of the BLAS's ``int f(int)`` that sets the calling
  thread's thread count and returns the previous one (0: none), and
  ``SERIAL_UP_TO``, ``SKINNY``: a product of more multiply-adds than the BLAS
  itself runs on one thread, that sums over at most ``SKINNY`` terms, is set to
  one thread (``one_thread``): the BLAS's threads cost more than they save there
  (measured, below). Others are left to the BLAS, and cost no call.
"""
import ctypes
import glob
import os
import warnings

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import jit
from .jit import njit
from .tape import view

ROW_MAJOR = 101
NO_TRANS = 111
TRANS = 112

KIND, GEMM, SET_THREADS, SERIAL_UP_TO, SKINNY = range(5)
TABLE_SIZE = 5
CBLAS64, FORTRAN32 = 1, 2

# Measured on a 2-core x86-64 (AVX-512) machine, float32, each BLAS on 1 and 2 threads (the README's
# BLAS section has the table). OpenBLAS: 2 threads were slower when the summed dimension is small
# (512x512 over 10: 117 us, against 91 us on one); up to 2^18 multiply-adds OpenBLAS runs on one
# thread by itself (its GEMM_MULTITHREAD_THRESHOLD), so small products need no call (setting and
# restoring the count cost tiny models 5%). MKL's 2 threads were never slower (once its threads
# spin a little: see jit.py).
SERIAL_UP_TO_OPENBLAS, SKINNY_OPENBLAS = 1 << 18, 16
SERIAL_UP_TO_MKL, SKINNY_MKL = 0, 0


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


@intrinsic
def call_set_threads(typingctx, function, threads):
    """``int function(int threads)`` at address ``function`` (a BLAS's per-thread thread count)."""
    if not isinstance(function, types.Integer) or not isinstance(threads, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        i32 = ir.IntType(32)
        callee = builder.inttoptr(args[0], ir.FunctionType(i32, [i32]).as_pointer())
        previous = builder.call(callee, [builder.trunc(args[1], i32)])
        return builder.sext(previous, ir.IntType(64))

    return types.int64(types.int64, types.int64), codegen


@njit
def one_thread(rows, cols, inner, table):
    """Whether to set a product to one thread: one the BLAS would thread that sums over too few terms
    to gain from it."""
    return inner <= table[SKINNY] and rows * cols * inner > table[SERIAL_UP_TO]


@njit
def gemm(table_address, dtype, trans_a, trans_b, rows, cols, inner, a, lda, b, ldb, beta, c, ldc):
    """C = op(A) op(B) + beta C (row-major, addresses) with the BLAS of the table at ``table_address``,
    on one thread when the product is small."""
    table = view(table_address, TABLE_SIZE, np.int64)
    restore = -1
    if table[SET_THREADS] and one_thread(rows, cols, inner, table):
        restore = call_set_threads(table[SET_THREADS], 1)
    if table[KIND] == CBLAS64:
        call_gemm(dtype, table[GEMM], trans_a, trans_b, rows, cols, inner, 1.0, a, lda, b, ldb, beta, c, ldc)
    else:
        call_gemm_fortran(dtype, table[GEMM], trans_a, trans_b, rows, cols, inner, 1.0, a, lda, b, ldb, beta, c,
                          ldc)
    if restore >= 0:
        call_set_threads(table[SET_THREADS], restore)


class Blas:
    """The BLAS in use: its name, library and version, and the tables the kernels read (kept alive
    here for the life of the process)."""

    def __init__(self, name, library, version, gemms, set_threads=0, serial_up_to=0, skinny=0, threads=None,
                 kernels=""):
        self.name, self.library, self.version, self._threads = name, library, version, threads
        self.kernels = kernels  # OpenBLAS's kernel set for this CPU ("core"), e.g. SkylakeX
        self.tables = {}
        for dtype, address in zip((np.dtype(np.float32), np.dtype(np.float64)), gemms):
            table = np.zeros(TABLE_SIZE, np.int64)
            table[KIND] = FORTRAN32 if name == "scipy" else CBLAS64
            table[GEMM] = address
            table[SET_THREADS] = set_threads
            table[SERIAL_UP_TO] = serial_up_to
            table[SKINNY] = skinny
            self.tables[dtype] = table

    def table(self, dtype):
        """The address the kernels take as ``gemm`` for ``dtype`` (float32 or float64)."""
        return self.tables[np.dtype(dtype)].ctypes.data

    def threads(self):
        """The number of threads the BLAS uses for a big product."""
        return self._threads() if self._threads else 1


def _function(library, name, restype=ctypes.c_int, argtypes=()):
    function = getattr(library, name)
    function.restype, function.argtypes = restype, list(argtypes)
    return function


def _address(function):
    return ctypes.cast(function, ctypes.c_void_p).value


def _mkl():
    path = jit.mkl_library()
    if path is None:
        return None
    library = ctypes.CDLL(path)
    # GNU OpenMP threads, the runtime Numba's own threads use (one pool, no second runtime spinning);
    # must come before any other MKL call.
    _function(library, "MKL_Set_Threading_Layer", argtypes=[ctypes.c_int])(3)  # MKL_THREADING_GNU
    buffer = ctypes.create_string_buffer(256)
    _function(library, "MKL_Get_Version_String", None, [ctypes.c_char_p, ctypes.c_int])(buffer, 256)
    set_local = _function(library, "MKL_Set_Num_Threads_Local", argtypes=[ctypes.c_int])
    max_threads = _function(library, "MKL_Get_Max_Threads")
    return Blas("mkl", path, buffer.value.decode().strip(), (_address(library.cblas_sgemm_64),
                _address(library.cblas_dgemm_64)), _address(set_local), SERIAL_UP_TO_MKL, SKINNY_MKL, max_threads)


def _openblas():
    folder = os.path.dirname(os.path.dirname(np.__file__))
    for path in sorted(glob.glob(os.path.join(folder, "numpy.libs", "libscipy_openblas64_*"))):
        try:
            library = ctypes.CDLL(path)
            config = _function(library, "scipy_openblas_get_config64_", ctypes.c_char_p)().decode()
            threads = _function(library, "scipy_openblas_get_num_threads64_")
            core = _function(library, "scipy_openblas_get_corename64_", ctypes.c_char_p)().decode()
            set_local = getattr(library, "openblas_set_num_threads_local", None)  # OpenBLAS 0.3.27 and later
            return Blas("openblas", path, config, (_address(library.scipy_cblas_sgemm64_),
                        _address(library.scipy_cblas_dgemm64_)), _address(set_local) if set_local else 0,
                        SERIAL_UP_TO_OPENBLAS, SKINNY_OPENBLAS, threads, core)
        except (OSError, AttributeError):
            continue
    return None


# OpenBLAS's kernel sets for CPUs with AVX-512. OPENBLAS_CORETYPE=Haswell on such a CPU (an AMD Zen 5)
# ran its 512^3 float32 product in 1.15 ms against 0.62 ms on the SkylakeX set OpenBLAS picks itself.
AVX512_KERNELS = ("skylakex", "cooperlake", "sapphirerapids")


def cpu_has_avx512():
    """Whether the CPU and the OS run AVX-512 (the Skylake-X set, which OpenBLAS's kernels need)."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__
    return bool(__cpu_features__.get("AVX512_SKX"))


def _scipy():
    # Only when needed: importing SciPy's BLAS costs a fifth of a second at start-up.
    from numba.extending import get_cython_function_address

    return Blas("scipy", "scipy.linalg.cython_blas", "SciPy's BLAS",
                tuple(get_cython_function_address("scipy.linalg.cython_blas", name) for name in ("sgemm", "dgemm")))


def find_blas(choice=None):
    """The BLAS to use, ``choice`` or ``jit.BLAS`` (see ``jit.blas_choice``); the OpenBLAS NumPy ships
    falls back to SciPy's when it is not found, and MKL to OpenBLAS when it fails to load unasked."""
    asked = choice or os.environ.get("NBGRAD_BLAS")
    choice = choice or jit.BLAS
    if choice == "mkl":
        try:
            found = _mkl()
        except (OSError, AttributeError) as error:  # a broken or foreign libmkl_rt
            if asked:
                raise RuntimeError(f"NBGRAD_BLAS=mkl, but MKL could not be loaded: {error}") from None
            warnings.warn(f"nbgrad: MKL could not be loaded ({error}); using NumPy's OpenBLAS", stacklevel=2)
            choice = "openblas"
        else:
            if found is None:
                raise RuntimeError('NBGRAD_BLAS=mkl, but the mkl wheel is not installed: pip install -e ".[mkl]" '
                                   "(or pip install mkl)")
            return found
    if choice == "openblas":
        found = _openblas()
        if found is not None:
            return found
        if asked:
            raise RuntimeError("NBGRAD_BLAS=openblas, but NumPy's bundled OpenBLAS was not found")
    return _scipy()
