"""``nbgrad.show_config()``: what this process runs on, like ``numpy.show_config()``."""
import os
import platform
import sys


def show_config():
    """Print nbgrad's version and its dependencies', the BLAS in use and its threads, Numba's
    threading layer and thread count, and the compile cache's folder and switch."""
    import numba
    import numpy
    import scipy

    from . import __version__, ops
    from .kernels import blas, jit

    used = ops.BLAS
    table = used.tables[numpy.dtype(numpy.float32)]
    why = f"NBGRAD_BLAS={os.environ['NBGRAD_BLAS']}" if os.environ.get("NBGRAD_BLAS") else "the default choice"
    if not os.environ.get("NBGRAD_BLAS") and used.name != "mkl" and jit.mkl_library():
        why += f" on this {jit.cpu_vendor() or 'non-Intel'} CPU: MKL is installed, but it runs AVX2 code at best there"
    if table[blas.SET_THREADS] and table[blas.SKINNY]:
        threads = (f"{used.threads()}; 1 up to {table[blas.SERIAL_UP_TO]:,} multiply-adds (the BLAS's own rule) "
                   f"and for a product summing over at most {table[blas.SKINNY]} terms")
    else:
        threads = f"{used.threads()} for every product"
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        layer = f"{numba.config.THREADING_LAYER} (asked for)"
    lines = [
        f"nbgrad {__version__}",
        f"  Python {platform.python_version()} ({sys.executable})",
        f"  NumPy {numpy.__version__}, Numba {numba.__version__}, SciPy {scipy.__version__}",
        f"BLAS: {used.name} ({why}; NBGRAD_BLAS=mkl|openblas|scipy chooses)",
        f"  version: {used.version}",
        f"  library: {used.library}",
        *([f"  kernels: {_kernels(used)}"] if used.kernels else []),
        f"  threads: {threads}",
        f"Numba threads: layer {layer}, {numba.get_num_threads()} of {numba.config.NUMBA_NUM_THREADS}",
        f"Compile cache: {'on' if jit.CACHE else 'off (NBGRAD_CACHE=0)'}, {jit.cache_root()}",
        f"Debug build: {'on' if jit.DEBUG else 'off'} (NBGRAD_DEBUG=1: bounds checks, NaN-filled gradient buffers)",
    ]
    print("\n".join(lines))


def _kernels(used):
    """OpenBLAS's kernel set, and what chose it."""
    from .kernels import blas

    forced = os.environ.get("OPENBLAS_CORETYPE")
    if not forced:
        return f"{used.kernels} (OpenBLAS's choice for this CPU)"
    why = f"{used.kernels} (OPENBLAS_CORETYPE={forced} chose them"
    if used.kernels.lower() not in blas.AVX512_KERNELS and blas.cpu_has_avx512():
        return why + "; this CPU has AVX-512, which OpenBLAS's own choice uses: its products take about half the time)"
    return why + ")"
