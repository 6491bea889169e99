"""Where compile time goes: per Numba function, how many signatures it compiled and how long
they took, from Numba's compile events (``numba.core.event``).

Compiling a function compiles the functions it calls that are not compiled yet, inside its own
compile: ``total`` is the time from start to end, ``self`` leaves out the nested compiles, so the
self times add up to the time spent compiling. Numba reports only real compiles; loads from the
on-disk cache are counted afterwards from each function's cache hits (a warm cache shows no
compiles at all).
"""
import sys
import threading
import time
from dataclasses import dataclass, field

import numba.core.event

# the C entries that the executor calls (jit.cfunc): their own kind, since a load from the cache
# is known only when it ends
KINDS = ("numba:compile", "nbgrad:cfunc")


@dataclass
class Row:
    compiled: int = 0  # signatures
    total: float = 0.0  # seconds, wall clock, nested compiles included
    self: float = 0.0  # seconds, wall clock, nested compiles left out
    cpu: float = 0.0  # self time on the CPU (the compiling thread's): what a busy machine does not inflate
    loaded: int = 0  # signatures loaded from the cache
    signatures: list = field(default_factory=list)  # (cpu s, self s, types) of each signature compiled


def function_name(dispatcher):
    """``elementwise.exp_fwd``; the generated glue's functions as ``glue.forward_exp``."""
    function = getattr(dispatcher, "py_func", None) or getattr(dispatcher, "__wrapped__", dispatcher)
    module = getattr(function, "__module__", "") or ""
    module = "glue" if module.startswith("nbgrad._generated") else module.rsplit(".", 1)[-1]
    return f"{module}.{getattr(function, '__qualname__', repr(function))}"


class CompileProfile(numba.core.event.Listener):
    """Records compile events while installed (``with CompileProfile() as profile: ...``)."""

    def __init__(self):
        self.rows = {}
        self.local = threading.local()  # each thread's stack of compiles in progress
        self.lock = threading.Lock()
        self.started = self.wall = None

    def _stack(self):
        if not hasattr(self.local, "stack"):
            self.local.stack = []
        return self.local.stack

    def on_start(self, event):
        self._stack().append([time.perf_counter(), time.thread_time(), 0.0, 0.0])

    def on_end(self, event):
        stack = self._stack()
        if not stack:  # started before the profile was installed
            return
        wall, cpu, nested_wall, nested_cpu = stack.pop()
        total, total_cpu = time.perf_counter() - wall, time.thread_time() - cpu
        if stack:
            stack[-1][2] += total
            stack[-1][3] += total_cpu
        with self.lock:
            row = self.rows.setdefault(function_name(event.data["dispatcher"]), Row())
            if event.data.get("loaded"):  # a C entry loaded from the cache: counted with the other loads
                return
            row.compiled += 1
            row.total += total
            row.self += total - nested_wall
            row.cpu += total_cpu - nested_cpu
            args = event.data.get("args")
            row.signatures.append((total_cpu - nested_cpu, total - nested_wall,
                                   ", ".join(map(str, args)) if args is not None else "C entry"))

    def __enter__(self):
        for kind in KINDS:
            numba.core.event.register(kind, self)
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.started
        for kind in KINDS:
            numba.core.event.unregister(kind, self)
        self.count_loads()

    def count_loads(self):
        """Add the cache loads of every nbgrad function this process holds."""
        from . import precompile
        from .ops import GENERATED

        for dispatcher in precompile.dispatchers():
            hits = sum(dispatcher.stats.cache_hits.values())
            if hits:
                self.rows.setdefault(function_name(dispatcher), Row()).loaded += hits
        for entry in GENERATED.backwards.compiled.values():
            if entry.cache_hits:
                self.rows.setdefault(function_name(entry), Row()).loaded += entry.cache_hits

    def merge(self, rows):
        """Add the rows of another process's profile (``{name: vars(row)}``)."""
        with self.lock:
            for name, fields in rows.items():
                row = self.rows.setdefault(name, Row())
                for key, value in fields.items():
                    setattr(row, key, getattr(row, key) + (value if key != "signatures" else list(map(tuple, value))))

    def table(self, top=25, signatures=False):
        """The rows sorted by self time on the CPU (which other processes do not inflate), then by
        loads, at most ``top`` (None: all), and the sums."""
        rows = sorted(self.rows.items(), key=lambda item: (-item[1].cpu, -item[1].loaded, item[0]))
        width = max([len(name) for name, _ in rows[:top]] + [len("function")])
        lines = [f"{'function':<{width}}  {'compiled':>8}  {'total s':>8}  {'self s':>8}  {'cpu s':>8}  "
                 f"{'loaded':>6}"]
        for name, row in rows[:top]:
            lines.append(f"{name:<{width}}  {row.compiled:>8}  {row.total:>8.2f}  {row.self:>8.2f}  {row.cpu:>8.2f}  "
                         f"{row.loaded:>6}")
            if signatures:
                lines += [f"    {cpu:6.2f} s cpu  {seconds:6.2f} s  ({args})"
                          for cpu, seconds, args in sorted(row.signatures, reverse=True)]
        if top is not None and len(rows) > top:
            rest = [row for _, row in rows[top:]]
            lines.append(f"{f'... {len(rest)} more':<{width}}  {sum(r.compiled for r in rest):>8}  {'':>8}  "
                         f"{sum(r.self for r in rest):>8.2f}  {sum(r.cpu for r in rest):>8.2f}  "
                         f"{sum(r.loaded for r in rest):>6}")
        compiled = sum(row.compiled for row in self.rows.values())
        functions = sum(1 for row in self.rows.values() if row.compiled)
        lines.append(f"sum: {compiled} signatures of {functions} functions compiled in "
                     f"{sum(row.self for row in self.rows.values()):.1f} s "
                     f"({sum(row.cpu for row in self.rows.values()):.1f} s on the CPU), "
                     f"{sum(row.loaded for row in self.rows.values())} loaded from the cache; "
                     f"{self.wall or 0.0:.1f} s in all")
        return "\n".join(lines)

    def print(self, top=25, signatures=False, out=None):
        print(self.table(top, signatures), file=out or sys.stdout, flush=True)
