"""A first run compiles in two processes: this one, and a helper that compiles ahead.

On an empty cache (the backward executor not in it yet) the first compile starts a
helper process (``python -m nbgrad._compile_ahead``) that compiles into the same
cache what this process will need later, while this one compiles what it needs
now: the executor during the first forward, and each optimizer's step once it
is made. The op backwards that a backward needs are shared: each process takes
the next one when it is free (the first backward starts on them while the
helper may still be compiling the executor). Before compiling
a function, this process waits for the helper if the helper is compiling it,
then loads it from the cache, so nothing is compiled twice on purpose. Nothing
changes but where things compile; if the helper fails or dies, this process
compiles alone.

Only with the cache on, on a machine with several cores, and not in a process
started by mpiexec (its ranks fill one cache already). The helper leaves when
the program ends or after ``IDLE_S`` without a job. ``NBGRAD_COMPILE_AHEAD=0``
turns it off.
"""
import collections
import os
import select
import subprocess
import sys
import threading

import numba.core.event

from .kernels import jit

ENABLED = os.environ.get("NBGRAD_COMPILE_AHEAD", "1") not in ("", "0")
WAIT_S = 60  # the most this process waits for one function of the helper's
IDLE_S = 30  # the helper leaves after this long without a job
WAIT_EVENT = jit.WAIT_EVENT  # the compile notice counts the waits as compiling
_MPI_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")


def _key(function):
    return f"{function.__module__}.{function.__qualname__}"


class Helper(numba.core.event.Listener):
    """This process's side: starts the helper at its first compile on an empty cache, asks it for
    work, and holds what it is compiling now (its ``start``/``done`` lines)."""

    def __init__(self, glue):
        self.glue = glue
        self.changed = threading.Condition()
        self.process = None
        self.decided = False
        self.asked = set()
        self.waiting = []  # asked before the helper started
        self.compiling = set()  # keys of the functions the helper compiles now
        self.finished = set()  # the jobs it has done
        self.shared = collections.deque()  # jobs either process may take (see share)

    # -- asking ----------------------------------------------------------------------------------

    def ask(self, line):
        """Queue one job for the helper (once): ``execute``, ``backward OP ITEMSIZE BIG`` or
        ``optimizer KIND NUMPY_DTYPE``."""
        if self.decided and self.process is None:
            return
        with self.changed:
            if line in self.asked or (self.decided and self.process is None):
                return
            self.asked.add(line)
            if self.process is None:
                self.waiting.append(line)
                return
        self._send(line)

    def _send(self, line):
        try:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        except (OSError, ValueError, AttributeError):  # it died: this process compiles alone
            self._gone()

    # -- this process's compiles -------------------------------------------------------------------

    def on_start(self, event):
        if not self.decided:
            self._decide()

    def on_end(self, event):
        pass

    def _decide(self):
        with self.changed:
            if self.decided:
                return
            self.decided = True
            if not _wanted(self.glue):
                return
            package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            try:  # from nbgrad's folder, which goes first on its path: it imports this very nbgrad
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "nbgrad._compile_ahead"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, text=True, bufsize=1, cwd=package,
                    env=dict(os.environ, NBGRAD_QUIET="1", NBGRAD_COMPILE_AHEAD="0",
                             NBGRAD_CACHE_DIR=str(jit.cache_root())))
            except (OSError, ValueError, TypeError):
                return
            threading.Thread(target=self._read, args=(self.process,), name="nbgrad-compile-ahead", daemon=True).start()
            waiting, self.waiting = ["execute"] + self.waiting, []
            self.asked.add("execute")
        for line in waiting:
            self._send(line)

    def _read(self, process):
        for line in process.stdout:
            kind, _, key = line.rstrip("\n").partition(" ")
            if kind == "key" and key != jit.SOURCES_KEY:  # another version of the kernels: of no use here
                process.kill()
                break
            with self.changed:
                if kind == "start":
                    self.compiling.add(key)
                elif kind == "done":
                    self.compiling.discard(key)
                elif kind == "finished":  # a job: its line
                    self.finished.add(key)
                elif kind == "failed":
                    self.compiling.clear()
                    self.finished.add(key)
                self.changed.notify_all()
            if kind in ("finished", "failed"):
                self._feed()
        self._gone()
        try:  # it closes its end when it exits
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for pipe in (process.stdin, process.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def share(self, jobs):
        """Share ``jobs`` (lines) with the helper: this process takes them from the front
        (``take``), the helper from the back whenever it is idle. Returns False if there is no helper."""
        if self.process is None:
            return False
        with self.changed:
            if self.process is None:
                return False
            self.shared = collections.deque(jobs)
        self._feed()
        return True

    def take(self):
        """This process's next job of those shared, or None."""
        with self.changed:
            return self.shared.popleft() if self.shared else None

    def _feed(self):
        """Give the helper the last shared job if it has nothing to do."""
        with self.changed:
            if not self.shared or self.process is None or not self.asked <= self.finished:
                return
            line = self.shared.pop()
        self.ask(line)

    def wait_job(self, line):
        """Wait until the helper has done job ``line`` (if it has it, and is alive)."""
        with self.changed, numba.core.event.trigger_event(WAIT_EVENT):
            if not self.changed.wait_for(lambda: self.process is None or line not in self.asked
                                         or line in self.finished, timeout=WAIT_S):
                self._abandon()

    def _gone(self):
        with self.changed:
            self.process = None
            self.compiling.clear()
            self.shared.clear()
            self.changed.notify_all()

    def _abandon(self):
        """A wait ran out: the helper is stuck, or far too slow to wait for again."""
        process = self.process
        self._gone()
        if process is not None:
            process.kill()

    def forget_after_fork(self):
        """In a forked child: no helper (the parent's is the parent's; its reader thread and
        maybe its lock did not come along)."""
        self.changed = threading.Condition()
        self.decided, self.process = True, None
        self.compiling, self.shared = set(), collections.deque()

    def wait_for(self, function):
        """Called before this process looks for ``function`` in the cache: if the helper is compiling
        it, wait until it is saved there."""
        if not self.compiling:
            return
        key = _key(function)
        with self.changed, numba.core.event.trigger_event(WAIT_EVENT):
            if not self.changed.wait_for(lambda: key not in self.compiling, timeout=WAIT_S):
                self._abandon()


def _wanted(glue):
    """Whether a helper may help this process: a first run (the executor not in the cache), the
    cache on, several cores for it, and no sibling processes that compile the same (a rank of an MPI
    or Slurm job, a worker of a multiprocessing pool)."""
    import multiprocessing

    cache = getattr(glue.execute, "_cache", None)
    index = getattr(getattr(cache, "_cache_file", None), "_index_path", None)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    ranks = any(name in os.environ for name in _MPI_RANK_VARIABLES) or int(os.environ.get("SLURM_NTASKS", "1")) > 1
    return bool(ENABLED and jit.CACHE and cores >= 2 and index is not None and not os.path.exists(index) and not ranks
                and multiprocessing.parent_process() is None and sys.executable and not getattr(sys, "frozen", False))


_helper = None


def install(glue):
    """Listen to this process's compiles (``glue``: the generated ops module, whose executor tells an
    empty cache). Called once, when the kernels load."""
    global _helper
    _helper = Helper(glue)
    numba.core.event.register("numba:compile", _helper)
    jit.before_cache_load = _helper.wait_for
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_helper.forget_after_fork)


def ask(line):
    """Queue a job for the helper, if there will be one (see ``Helper.ask``)."""
    if _helper is not None and ENABLED:
        _helper.ask(line)


def compile_backwards(backwards, needed):
    """Compile (or load) the op backwards ``needed``, ``(opcode, itemsize, numel)`` each, into the
    table ``backwards`` (a ``codegen.Backwards``), sharing them with the helper when there is one."""
    from .autograd.codegen import REDUCER
    from .autograd.registry import BY_OPCODE, OPS

    jobs = []
    for opcode, itemsize, numel in needed:
        op, line = BY_OPCODE.get(opcode), None
        if opcode == REDUCER:
            line = f"reducer {itemsize}"
        elif op is not None and OPS.get(op.name) is op:  # the helper has nbgrad's ops, not registered ones
            line = f"backward {op.name} {itemsize} {int(numel >= op.parallel_from[1] and op.threaded[1])}"
        jobs.append((line, (opcode, itemsize, numel)))
    lines = list(dict.fromkeys(line for line, _ in jobs if line))
    if _helper is None or not ENABLED or len(lines) < 2 or not _helper.share(lines):
        for _, job in jobs:
            backwards.compile(*job)
        return
    mine = []
    while (line := _helper.take()) is not None:
        mine.append(line)
        for other, job in jobs:
            if other == line:
                backwards.compile(*job)
    for line, job in jobs:
        if line not in mine:  # the helper's, or a registered op's
            if line is not None:
                _helper.wait_job(line)
            backwards.compile(*job)  # from the cache, where the helper put it


def compile_graph_backwards(backwards, root):
    """Before the first backward of a first run, whose executor the helper may still be compiling:
    compile the op backwards of the graph from tape row ``root`` meanwhile, sharing them with the
    helper (the executor would ask for them once it runs)."""
    if _helper is None or _helper.process is None:
        return
    from .autograd import tape
    from .autograd.engine import compiles_needed
    from .kernels.tape import FLAGS, IN, LEAF, MAX_INPUTS

    seen, rows, needed = set(), [root], {}
    while rows:
        r = rows.pop()
        row = tape.row(r)
        if r in seen or row[FLAGS] & LEAF:
            continue
        seen.add(r)
        needed.update(dict.fromkeys(compiles_needed(row)))
        rows += [int(j) for j in row[IN:IN + MAX_INPUTS] if j >= 0]
    compile_backwards(backwards, list(needed))


# -- the helper's side ---------------------------------------------------------------------------

class _Reporter(numba.core.event.Listener):
    """Says on stdout which cached function the helper starts compiling, and when it is in the cache."""

    def __init__(self):
        self.lock = threading.Lock()

    def say(self, kind, function):
        with self.lock:
            print(kind, _key(function), flush=True)

    def on_start(self, event):
        cache = getattr(event.data.get("dispatcher"), "_cache", None)
        if isinstance(cache, jit._LockedFunctionCache):
            self.say("start", cache._py_func)

    def on_end(self, event):
        """Numba saves a compiled function to the cache after this event (``jit.after_cache_save``
        says so); a failed compile saves nothing, a C function loaded from the cache compiled nothing."""
        cache = getattr(event.data.get("dispatcher"), "_cache", None)
        failed = getattr(event, "_exc_details", None) is not None  # Numba's Event.is_failed reads it inverted
        if isinstance(cache, jit._LockedFunctionCache) and (failed or event.data.get("loaded")):
            self.say("done", cache._py_func)


def _run(line):
    import numba
    import numpy as np

    from nbgrad.autograd import tape
    from nbgrad.autograd.codegen import REDUCER
    from nbgrad.autograd.registry import OPS
    from nbgrad.kernels import optim
    from nbgrad.ops import GENERATED

    job, *args = line.split()
    if job == "execute":  # for the argument types that autograd.engine passes
        values = (tape.chunk_addresses, 0, np.ones(1), 0, False, True, -1, np.zeros(0, np.int64), 0, np.zeros(0),
                  GENERATED.backwards.table)
        GENERATED.execute.compile(tuple(map(numba.typeof, values)))
    elif job == "backward":
        op, itemsize, big = args
        GENERATED.backwards.compile(OPS[op].opcode, int(itemsize), (1 << 62) if int(big) else 0)
    elif job == "reducer":
        GENERATED.backwards.compile(REDUCER, int(args[0]), 0)
    elif job == "optimizer":  # the step for the kind and dtype, over no parameters
        kind, dtype = int(args[0]), getattr(np, args[1])
        table = np.zeros((0, optim.COLUMNS), np.int64)
        hyper = np.zeros((0, optim.HYPER_COLUMNS))
        optim.STEPS[kind](tape.chunk_addresses, table, hyper, dtype, np.dtype(dtype).itemsize)


def _lines(idle):
    """The lines of stdin until it closes or nothing comes for ``idle`` seconds (read unbuffered:
    a line already read must not wait behind ``select``)."""
    fd, pending = sys.stdin.fileno(), b""
    while True:
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            yield line.decode().strip()
        if not select.select([fd], [], [], idle)[0]:
            return
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return
        pending += chunk


def serve():
    """Run the jobs read from stdin, one per line, until it closes, its program ends, or no job
    came for ``IDLE_S`` (the program then compiles alone)."""
    reporter = _Reporter()
    numba.core.event.register("numba:compile", reporter)
    numba.core.event.register("nbgrad:cfunc", reporter)
    jit.after_cache_save = lambda function: reporter.say("done", function)
    print("key", jit.SOURCES_KEY, flush=True)  # the program checks that both compile the same kernels
    parent = os.getppid()
    for line in _lines(IDLE_S):
        if os.getppid() != parent:  # it ended: leave the jobs it asked for
            return
        try:
            _run(line)
        except Exception:  # the other process compiles what the helper could not
            print("failed", line, flush=True)
        else:
            print("finished", line, flush=True)


if __name__ == "__main__":
    serve()
