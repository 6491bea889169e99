"""Compile and cache every kernel and the backward executor ahead of time.

    python -m nbgrad.precompile [--dtype float32 float64] [--parallel] [--ops NAME ... | --example]
                                [--jobs N] [--profile]
    python -m nbgrad.precompile --profile --run MODULE [ARG ...]

Numba compiles a kernel the first time it is called. This runs a small
workload per op that calls it forward and backward, at a small size and at the
size where kernels go parallel (with ``--parallel``), then the functions that
are no op of their own and the optimizers, so that later processes only load
machine code from the cache.
``--ops`` compiles only the named ops, ``--example`` what the MLP example
needs; ``--jobs`` compiles in that many processes (one per core by default);
``--profile`` prints where the compile time went, per compiled function, and
``--run`` profiles (and caches) any module run as ``python -m MODULE``.
"""
import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time

import numba.core.event
import numpy as np

import nbgrad as nb
import nbgrad.nn.functional as F

from . import _compile_ahead
from ._compile_profile import CompileProfile
from .autograd.registry import OPS
from .kernels import jit
from .ops import GENERATED

# Rows x columns of the workload's matrices: small, and (--parallel) big enough for every kernel's
# threaded variant, which takes as long to compile as the rest.
SMALL, BIG = (3, 4), (jit.PARALLEL_MIN_LIGHT // 128, 128)
DTYPES = ("float32", "float64")


class Inputs:
    """What a workload gets: leaves ``x`` (in [-1, 1]) and ``y`` (in [0.5, 2]) of ``shape``, ``b`` of
    its last dimension, a matrix ``w`` to multiply ``x`` by, class indices ``target`` and row indices ``rows``."""

    def __init__(self, shape, dtype):
        rng = np.random.default_rng(0)
        rows, columns = shape
        self.shape, self.dtype = shape, dtype
        self.x = self.leaf(rng.uniform(-1, 1, shape))
        self.y = self.leaf(rng.uniform(0.5, 2, shape))
        self.b = self.leaf(rng.uniform(0.5, 2, columns))
        self.w = self.leaf(rng.uniform(-1, 1, (columns, columns)))
        self.target = nb.tensor(rng.integers(0, columns, rows))
        self.rows = nb.tensor(np.arange(rows)[::-1].copy())

    def leaf(self, values):
        return nb.tensor(values, dtype=self.dtype, requires_grad=True)


def _other(dtype):
    return nb.float64 if dtype == nb.float32 else nb.float32


def _in_place(s):
    y = s.x.clone()
    y[0] = s.x[-1]
    y[y > 0] = 0.0
    return y


def _scatter(s):
    """x added into zeros at an offset and strides: the op of a strided read's gradient."""
    return nb.ops.strided_scatter(s.x, 0, s.shape, (s.shape[1], 1), s.x.numel())


def _strided_read(s):
    """The op behind a view's gradient with create_graph (a view itself records no kernel)."""
    return nb.autograd.grad(_scatter(s).sum(), s.x, create_graph=True)[0]


# Per op: the expressions that run it, each ending in a tensor whose sum is backpropagated. They
# use few other ops (sum and clone are compiled first), so that the ops compile apart.
OP_WORKLOADS = {
    "to": lambda s: (s.x.to(_other(s.dtype)).to(s.dtype), (s.x > 0).to(s.dtype), s.x.argmax(1).to(s.dtype)),
    "clone": lambda s: (s.x.clone(),),
    "view": lambda s: (s.x.reshape(-1).view(s.shape), s.x.unsqueeze(0).squeeze(0), s.x[:1], s.x[:, None].flatten(1)),
    "copy": lambda s: (s.x.clone().copy_(s.y), s.x.clone().copy_(s.y.double())),
    "put": _in_place,
    "strided": lambda s: (s.x.T.contiguous(), s.x[::2], s.x[:1].expand(s.shape).contiguous(),
                          s.x.unsqueeze(0).permute(0, 2, 1).contiguous(), _strided_read(s)),
    "take": lambda s: (s.x[s.rows], s.x[s.x > 0]),
    "strided_scatter": lambda s: (_scatter(s),),
    "index_add": lambda s: (nb.ops.index_add(s.x, s.rows, s.shape[1], s.x.numel()),),
    "cat": lambda s: (nb.cat([s.x, s.y]), nb.stack([s.x, s.y, s.x])),
    "matmul": lambda s: (s.x @ s.w, s.x @ s.w[:, 0], s.x.unsqueeze(0) @ s.w),
    "linear": lambda s: (F.linear(s.x, s.w, s.b),),
    "bias_add": lambda s: (s.x + s.b,),
    **{name: lambda s, name=name: (getattr(s.x, name)(),) for name in (
        "neg", "exp", "tanh", "erf", "expm1", "sigmoid", "relu", "abs", "sin", "cos")},
    **{name: lambda s, name=name: (getattr(s.y, name)(),) for name in ("log", "sqrt", "log1p")},
    "clamp": lambda s: (s.x.clamp(-0.5, 0.5),),
    "add_scalar": lambda s: (s.x + 1,),
    "mul_scalar": lambda s: (s.x * 2,),
    "div_scalar": lambda s: (s.x / 3,),
    "rsub_scalar": lambda s: (1 - s.x,),
    "rdiv_scalar": lambda s: (2 / s.y,),
    "pow_scalar": lambda s: (s.y ** 1.5,),
    "rpow_scalar": lambda s: (2 ** s.x,),
    "add": lambda s: (s.x + s.y, s.x + s.y[:1], s.x.reshape(-1) + s.y.reshape(-1)),
    "sub": lambda s: (s.x - s.y, s.x - s.b),
    "mul": lambda s: (s.x * s.y, s.x * s.b),
    "div": lambda s: (s.x / s.y, s.x / s.b),
    "pow": lambda s: (s.y ** s.x, s.y ** s.b),
    "maximum": lambda s: (nb.maximum(s.x, s.y), nb.maximum(s.x, s.b)),
    "minimum": lambda s: (nb.minimum(s.x, s.y), nb.minimum(s.x, s.b)),
    "where": lambda s: (nb.where(s.x > 0, s.x, s.y),),
    "sum": lambda s: (s.x.sum(),),
    "sum_dims": lambda s: (s.x.sum(0), s.x.mean(1), s.x.sum((0, 1), keepdim=True), nb.stack([s.x, s.y]).mean(0)),
    "select": lambda s: (s.x.max(1)[0], s.x.min(), s.x.reshape(-1).max()),
    "softmax": lambda s: (s.x.softmax(1), s.x.softmax(0)),
    "log_softmax": lambda s: (F.log_softmax(s.x, 1),),
    "nll_loss": lambda s: (F.nll_loss(s.x, s.target), F.nll_loss(s.x, s.target, reduction="none")),
    "cross_entropy": lambda s: (F.cross_entropy(s.x, s.target), F.cross_entropy(s.x, s.target, reduction="sum")),
    "mse_loss": lambda s: (F.mse_loss(s.x, s.y), F.mse_loss(s.x, s.y, reduction="none")),
}
# compiled first, by one process: every workload sums its results, and the in-place ones clone
CORE = ("sum", "clone")


def _others(s):
    """The functions that are no op of their own: comparisons, indices, logic, composites, and ops without
    a graph."""
    x, y = s.x, s.y
    results = (x.var(1), x.std(), x.norm(), x.argmin(0).to(s.dtype), (x == y).to(s.dtype), (x != y).all().to(s.dtype),
               (x <= y).any().to(s.dtype), (x >= 0).to(s.dtype), F.dropout(x, 0.1),
               F.cross_entropy(x, s.target, label_smoothing=0.1), F.nll_loss(F.log_softmax(x, 1), s.target))
    with nb.no_grad():
        results += (x * y + x / y - x.exp(),)
    return results


def _optimizers(s):
    model = nb.nn.Linear(s.shape[1], 2, dtype=s.dtype)
    for optimizer in (nb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                      nb.optim.Adam(model.parameters()), nb.optim.AdamW(model.parameters())):
        for _ in range(2):
            optimizer.zero_grad()
            model(s.x.detach()).sum().backward()
            optimizer.step()
    return ()


EXTRAS = {"other functions": _others, "optimizers": _optimizers}


def _run_workload(workload, dtype, sizes):
    for shape in sizes:
        results = workload(Inputs(shape, dtype))
        losses = [r.sum() for r in results if r.requires_grad]
        if losses:
            sum(losses[1:], losses[0]).backward()


def _example(dtype):
    """One epoch of the MLP example, with each optimizer: what its first steps compile."""
    from .examples import mlp

    for optimizer in ("adam", "sgd"):
        args = mlp.parse_args(["--epochs", "1", "--optimizer", optimizer, "--dtype", str(dtype).split(".")[-1]])
        mlp.train(args, log=lambda line: None)


def steps(ops=None, dtypes=DTYPES, example=False, parallel=False):
    """``(label, run)`` per step: the core ops first, then one per op and dtype, then the extras.
    ``ops``: only those (and the core); ``example``: only the MLP example's; ``parallel``: at the
    big size too."""
    sizes = (SMALL, BIG) if parallel else (SMALL,)

    def step(workload, dtype):
        return lambda: _run_workload(workload, getattr(nb, dtype), sizes)

    if example:
        return [(f"mlp example {name}", lambda name=name: _example(getattr(nb, name))) for name in dtypes]
    names = list(OPS) if ops is None else [name for name in OPS if name in ops]
    order = [name for name in CORE if name in names or ops is not None] + [n for n in names if n not in CORE]
    found = [(f"{name} {dtype}", step(OP_WORKLOADS[name], dtype)) for name in order for dtype in dtypes]
    if ops is None:
        found += [(f"{name} {dtype}", step(fn, dtype)) for name, fn in EXTRAS.items() for dtype in dtypes]
    return found


class _Bar(numba.core.event.Listener):
    """The progress line: the steps running, and the function Numba is compiling for each now."""

    def __init__(self, total, out):
        self.total, self.out, self.started, self.done, self.labels = total, out, 0, 0, {}
        self.live = getattr(out, "isatty", lambda: False)()  # a log gets one line per step instead
        self.lock = threading.Lock()

    def start(self, label, worker=0):
        with self.lock:
            self.labels[worker] = [label, ""]
            self.started += 1
            if self.live:
                self._draw()
            else:
                self.out.write(f"[{self.started}/{self.total}] {label}\n")
                self.out.flush()

    def compiling(self, name, worker=0):
        with self.lock:
            if worker in self.labels:
                self.labels[worker][1] = name
                if self.live:
                    self._draw()

    def finish(self, worker=0):
        with self.lock:
            self.done += 1
            self.labels.pop(worker, None)
            if self.live:
                self._draw()

    def _draw(self):
        width = 30
        filled = width * self.done // self.total
        running = " | ".join(f"{label} {name}".strip() for label, name in self.labels.values())
        self.out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {running[:90]:<90}")
        self.out.flush()

    def close(self):
        if self.live:
            self.out.write("\n")

    def on_start(self, event):
        self.compiling(f"compiling {getattr(event.data.get('dispatcher'), '__name__', '')}")

    def on_end(self, event):
        pass


def run(found, out=sys.stderr):
    """Run the steps in this process; return ((compiled, loaded) functions, seconds)."""
    started = time.perf_counter()
    bar = _Bar(len(found), out) if out is not None else None
    with numba.core.event.install_listener("numba:compile", bar) if bar else contextlib.nullcontext():
        for label, step in found:
            if bar:
                bar.start(label)
            step()
            if bar:
                bar.finish()
    if bar:
        bar.close()
    return compiled_count(), time.perf_counter() - started


def _worker_command(args):
    command = [sys.executable, "-m", "nbgrad.precompile", "--worker", "--dtype", *args.dtype]
    if args.example:
        command.append("--example")
    if args.parallel:
        command.append("--parallel")
    if args.ops:
        command += ["--ops", *args.ops]
    return command


def run_in_processes(found, jobs, args, out=sys.stderr, profile=None):
    """Run the steps in ``jobs`` worker processes, each taking the next step when done with one (the
    core ops' steps run here first, while the workers start: every later step needs them). Numba's
    cache takes their writes one at a time (see jit.py). Returns ((compiled, loaded), seconds)."""
    started = time.perf_counter()
    bar = _Bar(len(found), out if out is not None else open(os.devnull, "w"))
    first = [step for step in found if step[0].split()[0] in CORE]  # steps() puts them first
    pending = [label for label, _ in found[len(first):]]
    workers = [subprocess.Popen(_worker_command(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                bufsize=1, env=dict(os.environ, NBGRAD_QUIET="1"))
               for _ in range(min(jobs, len(pending)))]
    with numba.core.event.install_listener("numba:compile", bar):
        for label, step in first:
            bar.start(label)
            step()
            bar.finish()
    counts = list(compiled_count())
    lock = threading.Lock()
    failures = []

    def serve(worker, process):
        while True:
            with lock:
                label = pending.pop(0) if pending else None
            if label is None:
                break
            bar.start(label, worker)
            process.stdin.write(label + "\n")
            process.stdin.flush()
            for line in process.stdout:
                kind, _, rest = line.rstrip("\n").partition(" ")
                if kind == "compiling":
                    bar.compiling(f"compiling {rest}", worker)
                elif kind == "done":
                    break
            else:  # the worker died (its traceback is on stderr)
                failures.append(label)
                return
            bar.finish(worker)
        process.stdin.close()
        for line in process.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "counts":
                compiled, loaded, rows = json.loads(rest)
                with lock:
                    counts[0] += compiled
                    counts[1] += loaded
                    if profile is not None:
                        profile.merge(rows)
        if process.wait():
            failures.append(f"worker {worker} (exit status {process.returncode})")

    threads = [threading.Thread(target=serve, args=(w, p)) for w, p in enumerate(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bar.close()
    if failures:
        raise SystemExit(f"precompile: a worker failed at {', '.join(failures)}")
    return tuple(counts), time.perf_counter() - started


def _worker(found):
    """Run the steps named on stdin, one per line; say what compiles, and the counts at the end."""
    by_label = dict(found)

    class Say(numba.core.event.Listener):
        def on_start(self, event):
            print("compiling", getattr(event.data.get("dispatcher"), "__name__", ""), flush=True)

        def on_end(self, event):
            pass

    with CompileProfile() as profile, numba.core.event.install_listener("numba:compile", Say()):
        for line in sys.stdin:
            by_label[line.strip()]()
            print("done", flush=True)
    rows = {name: vars(row) for name, row in profile.rows.items()}
    print("counts", json.dumps([*compiled_count(), rows]), flush=True)


def dispatchers():
    """Every Numba function of nbgrad: the kernels and the glue generated from the op declarations."""
    from numba.core.registry import CPUDispatcher

    found = {}
    for name, module in list(sys.modules.items()):
        if name.startswith(("nbgrad.kernels", "nbgrad._generated_ops")):
            for value in vars(module).values():
                if isinstance(value, CPUDispatcher):  # with the twin that compiled callers call (jit.njit)
                    for dispatcher in (value, getattr(value, "unwrapped", None)):
                        if dispatcher is not None:
                            found[id(dispatcher)] = dispatcher
    return list(found.values())


def compiled_count():
    """(compiled, loaded from the cache): (function, signature) pairs of this process, counting
    the op backwards that the executor calls (C functions, compiled per op and dtype on first use)."""
    found = dispatchers()
    backwards = GENERATED.backwards.compiled.values()
    total = sum(len(d.overloads) for d in found) + len(backwards)
    loaded = sum(sum(d.stats.cache_hits.values()) for d in found) + sum(c.cache_hits for c in backwards)
    return total - loaded, loaded


def _parser():
    parser = argparse.ArgumentParser(prog="python -m nbgrad.precompile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", nargs="+", choices=DTYPES, default=["float32"],
                        help="the float dtypes to compile for (default: float32, nbgrad's default dtype; the "
                             "other compiles on first use)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--ops", nargs="+", metavar="NAME", help=f"only these ops, of: {', '.join(OPS)}")
    which.add_argument("--example", action="store_true", help="only what the MLP example needs")
    which.add_argument("--run", nargs=argparse.REMAINDER, metavar="MODULE ...",
                       help="instead of the workload, run this module with the arguments after it as python -m "
                            "does (what it compiles is cached, and profiled with --profile)")
    parser.add_argument("--parallel", action="store_true",
                        help="also the threaded variants of the kernels, for tensors from "
                             f"{jit.PARALLEL_MIN} elements (else compiled on first use)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: one per core, %(default)s here; with --profile: 1)")
    parser.add_argument("--profile", action="store_true",
                        help="print per compiled function the signatures compiled and their seconds (total: with "
                             "the callees it compiled; self: without), and the loads from the cache")
    parser.add_argument("--top", type=int, default=30, help="rows of the profile (default: %(default)s; 0: all)")
    parser.add_argument("--signatures", action="store_true", help="list each compiled signature in the profile")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    jobs_given = any(a == "--jobs" or a.startswith("--jobs=") for a in (argv if argv is not None else sys.argv[1:]))
    if args.ops:
        unknown = [name for name in args.ops if name not in OPS]
        if unknown:
            parser.error(f"--ops: unknown op{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"(choose from {', '.join(OPS)})")
    if args.run is not None and not args.run:
        parser.error("--run: name the module to run")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    jit.COMPILE_NOTICE.enabled = False  # the bar says what is compiling
    _compile_ahead.ENABLED = False  # no helper process: precompile compiles all, a profile sees every compile
    found = steps(args.ops, args.dtype, args.example, args.parallel)
    if args.worker:
        _worker(found)
        return
    with CompileProfile() if args.profile else contextlib.nullcontext() as profile:
        if args.run:
            _run_module(args.run)
            (compiled, loaded), seconds, what = compiled_count(), None, f"python -m {' '.join(args.run)}"
        else:
            jobs = args.jobs if jobs_given or not args.profile else 1
            if jobs > 1:
                (compiled, loaded), seconds = run_in_processes(found, jobs, args, profile=profile)
            else:
                (compiled, loaded), seconds = run(found)
            what = "the MLP example" if args.example else f"{len(args.ops or OPS)} ops"
    if profile is not None:
        profile.print(top=args.top or None, signatures=args.signatures)
    where = jit.cache_dir() if jit.CACHE else "none (NBGRAD_CACHE=0: compiled code lives in this process only)"
    took = f", in {seconds:.1f} s" if seconds is not None else ""
    print(f"{what}, {', '.join(args.dtype) if args.run is None else 'as it ran'}: {compiled} functions compiled, "
          f"{loaded} loaded from the cache{took}\ncache: {where}")


def _run_module(command):
    import runpy

    argv = sys.argv
    sys.argv = list(command)
    try:
        runpy.run_module(command[0], run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        if exit.code not in (None, 0):
            raise
    finally:
        sys.argv = argv


if __name__ == "__main__":
    main()
