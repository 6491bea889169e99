"""The one place for compile options, and where compiled code is cached.

Numba caches a function beside its source and invalidates the cache only when
that file changes, not when a kernel it calls (in another file) or an option
here changes. So nbgrad keeps every kernel's cache in a folder named by a hash
of all kernel sources and the Numba version: an edit or an upgrade means a new
folder and a fresh compile, never stale machine code.

- ``NBGRAD_CACHE=0`` turns the on-disk cache off.
- ``NBGRAD_DEBUG=1`` compiles every kernel with bounds checks on every index
  and fills every gradient buffer a backward kernel must overwrite with NaN
  before it runs (what it fails to write shows as NaN); it is cached apart
  from the normal build. The bounds checks reach every function Numba
  compiles in the process (``register_op`` kernels too), and Numba's cache
  for functions decorated after nbgrad loads moves to a folder of the debug
  build's (Numba's cache does not tell builds with and without checks apart).
- ``NBGRAD_CACHE_DIR`` chooses the folder, else ``$NUMBA_CACHE_DIR/nbgrad`` when
  that is set; by default it is ``__generated__`` beside these kernels when
  writable (a virtual environment, a checkout), else ``~/.cache/nbgrad`` (or
  ``$XDG_CACHE_HOME/nbgrad``): a system-wide install caches per user.
"""
import atexit
import contextlib
import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import sys
import threading
import time
import types as pytypes
from pathlib import Path

import numba
import numba.core.event
from numba.core import types
from numba.core.caching import FunctionCache
from numba.np.ufunc.parallel import _launch_threads

CACHE = os.environ.get("NBGRAD_CACHE", "1") != "0"
DEBUG = os.environ.get("NBGRAD_DEBUG", "0") not in ("", "0")
KERNELS_DIR = Path(__file__).parent

# fastmath without nnan/ninf: NaN and inf must survive in values and gradients;
# without afn: exp/log keep libm accuracy, which gradcheck relies on.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# error_model="numpy": x / 0 gives inf or nan, as in NumPy and PyTorch, not ZeroDivisionError.
JIT = dict(cache=CACHE, nogil=True, fastmath=FASTMATH, error_model="numpy", boundscheck=DEBUG)

# Big kernels run in parallel threads (prange): from PARALLEL_MIN elements those that compute a
# transcendental function per element, from PARALLEL_MIN_LIGHT those bound by memory. Waking the
# sleeping threads (below) costs 50-100 us on a 2-core virtual machine: there exp of 64k float32
# took 244-365 us serially and 132-232 us on 2 threads, but relu of 256k 52 us serially and 77 us
# on threads, of 1M 314 and 242 us. Work is split in CHUNK-element pieces whose partial results
# combine in a fixed order: the same result on any number of threads.
PARALLEL_MIN = 1 << 15
PARALLEL_MIN_LIGHT = 1 << 20
CHUNK = 1 << 13

BLAS_CHOICES = ("mkl", "openblas", "scipy")


def mkl_library():
    """The path of ``libmkl_rt`` in the installed ``mkl`` wheel (``pip install mkl``), or None."""
    import importlib.metadata

    try:
        files = importlib.metadata.files("mkl") or ()
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if os.path.basename(str(file)).startswith("libmkl_rt.so"):
            path = os.path.realpath(str(file.locate()))
            if os.path.exists(path):
                return path
    return None


def cpu_vendor():
    """The CPU's vendor string (``GenuineIntel``, ``AuthenticAMD``, ...), or '' when unknown."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return next((vendor for vendor in ("GenuineIntel", "AuthenticAMD") if vendor in platform.processor()), "")


def blas_choice():
    """The BLAS for the matrix products: ``NBGRAD_BLAS`` (mkl, openblas or scipy) when set, else MKL
    when its wheel is installed and the CPU is Intel's, else OpenBLAS (blas.py falls back to SciPy's).
    MKL runs AVX2 code at best on other CPUs: on an AMD Zen 5 its 512^3 float32 product took 1.3 ms,
    OpenBLAS's AVX-512 kernels 0.62 ms. Decided here, before any OpenMP thread starts, because MKL's
    threads are OpenMP's."""
    choice = os.environ.get("NBGRAD_BLAS", "").strip().lower()
    if choice and choice not in BLAS_CHOICES:
        raise ValueError(f"NBGRAD_BLAS={choice!r}: choose one of {', '.join(BLAS_CHOICES)}")
    return choice or ("mkl" if mkl_library() and cpu_vendor() in ("GenuineIntel", "") else "openblas")


# A cached function that calls a parallel one does not start Numba's thread pool when it is
# loaded from the cache (numba issues 8578 and 9938): calling it would crash. Start it now,
# with idle threads that sleep: OpenMP's default, spinning for a while after each parallel
# kernel, took the cores from the BLAS threads of the next matmul (a 512-wide MLP step ran
# 4x slower). Set OMP_WAIT_POLICY yourself to choose otherwise.
#
# The threading layer must be safe for parallel kernels called from several Python threads at
# once (the workqueue layer aborts the process then): OpenMP (bundled with Numba's wheels) or TBB.
# NUMBA_THREADING_LAYER still decides when set; without either safe layer, the workqueue stays.
BLAS = blas_choice()
if BLAS == "mkl":
    # MKL runs on GNU OpenMP threads, the pool Numba's own threads are (see blas.py): idle, they spin
    # a little before they sleep. Woken from sleep for every product, they made a small one 2-3x slower.
    os.environ.setdefault("GOMP_SPINCOUNT", "100000")
# Elementwise ops (which choose serial or threads when called, not when compiled) that are bound by
# memory run in threads from this many elements. With MKL the threads are usually awake, spinning
# after a product: relu of 262k float32 took 23 us on them against 70 us serially; asleep (with
# OpenBLAS, whose threads are not Numba's) waking them costs more than they save below 1M.
ELEMENTWISE_LIGHT_THREADS_FROM = 1 << 17 if BLAS == "mkl" else PARALLEL_MIN_LIGHT
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "threadsafe"
try:
    _launch_threads()
except ValueError:  # no safe layer could be loaded
    numba.config.THREADING_LAYER = "workqueue"
    _launch_threads()


def _import_array_math_without_scipy_linalg():
    """Numba's array functions check at import that SciPy's BLAS imports, and importing
    ``scipy.linalg.cython_blas`` runs all of ``scipy.linalg`` (0.12 s here, a seventh of the
    first backward's start-up). That one extension module alone imports in a few ms: give Numba
    it for the check, then forget it, so that a later import goes the usual way (it gets the same
    module object)."""
    name = "scipy.linalg.cython_blas"
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    try:
        import scipy

        stem = os.path.join(os.path.dirname(scipy.__file__), "linalg", "cython_blas")
        (path,) = [stem + suffix for suffix in importlib.machinery.EXTENSION_SUFFIXES if os.path.exists(stem + suffix)]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception:  # another layout: let Numba import it the usual way
        sys.modules.pop(name, None)
        return
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        sys.modules.pop(name, None)


_import_array_math_without_scipy_linalg()


def cache_root():
    """The folder for nbgrad's generated glue and compiled-code caches."""
    configured = os.environ.get("NBGRAD_CACHE_DIR")
    if configured:
        return Path(configured)
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / "nbgrad"
    beside = KERNELS_DIR / "__generated__"
    try:
        beside.mkdir(exist_ok=True)
        if os.access(beside, os.W_OK):
            return beside
    except OSError:
        pass
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "nbgrad"


def sources_key(folder=KERNELS_DIR):
    """A hash of every kernel source in ``folder`` and of the Numba version."""
    digest = hashlib.sha256(numba.__version__.encode())
    for path in sorted(Path(folder).glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


SOURCES_KEY = sources_key()
BUILD = "debug-" if DEBUG else ""  # the debug build's caches and glue live apart from the normal one's
if DEBUG:
    numba.config.BOUNDSCHECK = True
    if CACHE:
        numba.config.CACHE_DIR = str(cache_root() / "debug-functions")
_cache_dir = None


def cache_dir():
    """Numba's cache for this version of the kernels (made on first use, when the caches of other
    versions unused for a day are removed)."""
    global _cache_dir
    if _cache_dir is None:
        root = cache_root()
        folder = root / f"numba-{BUILD}{SOURCES_KEY}"
        folder.mkdir(parents=True, exist_ok=True)
        for old in root.glob("numba-*"):  # caches of other kernel sources (of this build)
            if old != folder and old.name.startswith("numba-debug-") == DEBUG and unused_for_a_day(old):
                shutil.rmtree(old, ignore_errors=True)
        _cache_dir = folder
    return _cache_dir


def unused_for_a_day(path):
    """Whether nothing wrote ``path`` for a day: the cache of another version of nbgrad, which a
    process still running it (or another install sharing the folder) may be using otherwise."""
    import time

    try:
        return time.time() - path.stat().st_mtime > 86400
    except OSError:
        return False


@contextlib.contextmanager
def _caching_into_our_folder(sub=""):
    """Numba picks a function's cache folder when it is decorated: point it at ours meanwhile."""
    if not CACHE:
        yield
        return
    previous = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(cache_dir() / sub)
    try:
        yield
    finally:
        numba.config.CACHE_DIR = previous


@contextlib.contextmanager
def _locked(folder):
    """Hold the lock of the cache ``folder`` (an exclusive ``flock``, where there is one)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(os.path.join(folder, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _LockedFunctionCache(FunctionCache):
    """Numba's cache of a function, whose saves take the cache folder's lock. To save a signature
    Numba reads the function's index, names a data file after the entries it lists and writes both:
    two processes saving two signatures of one function at once (a precompile's workers, programs
    started together on an empty cache) can pick the same name, and the index then points one
    signature at the other's machine code."""

    def load_overload(self, sig, target_context):
        if before_cache_load is not None:
            before_cache_load(self._py_func)
        return super().load_overload(sig, target_context)

    def save_overload(self, sig, data):
        os.makedirs(self.cache_path, exist_ok=True)
        try:
            with _locked(self.cache_path):
                super().save_overload(sig, data)
        finally:
            if after_cache_save is not None:
                after_cache_save(self._py_func)


# Hooks of nbgrad._compile_ahead, which compiles in a second process on a first run: called with the
# Python function before this process looks for it in the cache, and after it saved it there.
before_cache_load = after_cache_save = None


def _plain(ty):
    """The type a compiled caller's argument is compiled for: an int constant (a literal) or a
    prange index (uint64) as int64, a bool constant as bool, so that one compile serves all."""
    ty = types.unliteral(ty)
    return types.int64 if ty == types.uint64 else ty


def _one_compile_for_all_constants(dispatcher):
    """Numba compiles a function called from compiled code once per constant argument value (and
    per prange index type): make it compile for the plain types instead (the caller casts)."""
    compile_for = dispatcher.get_call_template

    def get_call_template(args, kws):
        return compile_for(tuple(map(_plain, args)), {name: _plain(ty) for name, ty in kws.items()})

    dispatcher.get_call_template = get_call_template


THREADS = "_threads"  # the name suffix of a kernel's threaded twin


def _threaded_twin(f):
    """``f`` as a new function ``<name>_threads`` whose ``prange`` loops run in threads: its calls of
    kernels that have a twin (those decorated before it) call their twin instead."""
    module = f.__globals__
    code = f.__code__
    names = tuple(name + THREADS if name + THREADS in module else name for name in code.co_names)
    twin = pytypes.FunctionType(code.replace(co_names=names, co_name=f.__name__ + THREADS), module,
                                f.__name__ + THREADS, f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + THREADS  # Numba's cache names its files after it
    twin.__doc__ = f.__doc__
    return twin


def njit(fn=None, literals=False, threads=False, **options):
    """``numba.njit`` with the project's options and cache folder. Without ``literals``, a call
    from compiled code compiles for int64 where it passes a constant (see above).

    ``threads``: the function's ``prange`` loops run serially, and the module gets its threaded twin
    ``<name>_threads`` too (also its ``.threads``), compiled with ``parallel=True`` when first called:
    the parallel compile, slow, happens only once a tensor big enough for threads asks for it. The
    op layer and the executor pick the twin from the sizes where its loops go parallel; both run
    the same loops, so they give the same results."""
    # no C wrapper: nbgrad never passes a function as a first-class value (it calls C entries,
    # made by ``cfunc``, by address)
    opts = dict(JIT, no_cfunc_wrapper=True, **options)

    def compiled(f, sub="", **more):
        with _caching_into_our_folder(sub):
            dispatcher = numba.njit(**opts, **more)(f)
            if opts["cache"]:
                dispatcher._cache = _LockedFunctionCache(dispatcher.py_func)
        return dispatcher

    def decorate(f):
        dispatcher = compiled(f)
        # Compiled callers call a twin compiled without the wrapper that converts Python objects,
        # ``.unwrapped``: most functions are called only from compiled code, and that wrapper was a
        # seventh of the CPU time of the example's first run (12.7-14.2 s with it, 10.6-12.4 s without).
        # Made when a caller is first compiled (never when callers load from the cache: a warm start).
        dispatcher.unwrapped = None

        def unwrapped():
            if dispatcher.unwrapped is None:  # under Numba's compiler lock, as a caller compiles
                dispatcher.unwrapped = compiled(f, "unwrapped", no_cpython_wrapper=True)
            return dispatcher.unwrapped

        dispatcher.get_call_template = lambda args, kws: unwrapped().get_call_template(args, kws)
        dispatcher.get_overload = lambda sig: unwrapped().get_overload(sig)
        if not literals:
            _one_compile_for_all_constants(dispatcher)
        if threads:
            twin = _threaded_twin(f)
            parallel = "prange" in f.__code__.co_names  # else it only calls twins
            dispatcher.threads = njit(literals=literals, **dict(options, parallel=parallel))(twin)
            f.__globals__[twin.__name__] = dispatcher.threads
        return dispatcher

    return decorate if fn is None else decorate(fn)


def cfunc(signature, **options):
    """``numba.cfunc`` with the project's options and cache folder: a C function with an ``.address``.
    Its compile (or load from the cache: ``data["loaded"]``) is an ``nbgrad:cfunc`` event, which Numba
    does not broadcast for C functions (nbgrad.precompile --profile reads it)."""
    from numba.core import sigutils
    from numba.core.ccallback import CFunc

    opts = dict(JIT, **options)
    cache = opts.pop("cache")

    def decorate(f):
        with _caching_into_our_folder():
            function = CFunc(f, sigutils.normalize_signature(signature), locals={}, options=opts)
            if cache:
                function._cache = _LockedFunctionCache(f)
            data = dict(dispatcher=function, loaded=False)
            numba.core.event.start_event("nbgrad:cfunc", data=data)
            try:
                function.compile()
            finally:
                data["loaded"] = function.cache_hits > 0
                numba.core.event.end_event("nbgrad:cfunc", data=data)
            return function

    return decorate


class CompileNotice(numba.core.event.Listener):
    """Says on stderr when a first use compiles for more than ``after`` seconds, once per burst of
    compiles, and how long the burst took (it ends when nothing has compiled for ``quiet`` seconds,
    or at exit). Numba reports only real compiles, not loads from the cache; waits for a function
    that a helper process compiles count as compiling (``WAIT_EVENT``). ``NBGRAD_QUIET=1`` silences it."""

    def __init__(self, after=1.0, quiet=0.5, out=None):
        self.after, self.quiet, self.out = after, quiet, out
        self.enabled = os.environ.get("NBGRAD_QUIET", "0") in ("", "0")
        self.depth = 0
        self.started = self.ended = None
        self.announced = False
        self.lock = threading.Lock()
        atexit.register(self.finish)

    def on_start(self, event):
        with self.lock:
            self.depth += 1
            if self.started is None and self.enabled:
                self.started = time.perf_counter()
                threading.Thread(target=self._watch, name="nbgrad-compile-notice", daemon=True).start()

    def on_end(self, event):
        with self.lock:
            self.depth -= 1
            self.ended = time.perf_counter()

    def _watch(self):
        while True:
            time.sleep(0.1)
            with self.lock:
                if self.started is None:
                    return
                now = time.perf_counter()
                if self.depth == 0 and now - self.ended > self.quiet:
                    self._end()
                    return
                if not self.announced and now - self.started > self.after:
                    self.announced = True
                    self._say(f"nbgrad: compiling kernels for first use (once; cached in {cache_root()})")

    def finish(self):
        with self.lock:
            if self.started is not None and self.ended is not None:
                self._end()

    def _end(self):
        if self.announced:
            self._say(f"nbgrad: compiled in {self.ended - self.started:.1f} s")
        self.started, self.announced = None, False

    def _say(self, line):
        try:
            print(line, file=self.out or sys.stderr, flush=True)
        except (OSError, ValueError):  # a closed stream at exit
            pass


COMPILE_NOTICE = CompileNotice()
numba.core.event.register("numba:compile", COMPILE_NOTICE)
WAIT_EVENT = "nbgrad:compile-wait"  # a wait for a function that another process compiles (nbgrad._compile_ahead)
numba.core.event.register(WAIT_EVENT, COMPILE_NOTICE)
