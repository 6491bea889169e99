"""Compile and cache every kernel and the backward executor ahead of time.

    python -m nbgrad.precompile [--dtype float32 float64]

Numba compiles a kernel the first time it is called. This runs a small
workload that calls every op forward and backward, at a small size and at the
size where kernels go parallel, and the optimizers, so that later processes
only load machine code from the cache.
"""
import argparse
import contextlib
import sys
import time

import numba.core.event
import numpy as np

import nbgrad as nb
import nbgrad.nn.functional as F

from .autograd.registry import OPS
from .kernels import jit
from .ops import GENERATED

# Rows x columns of the workload's matrices: small, and big enough for every parallel kernel.
SIZES = ((3, 4), (jit.PARALLEL_MIN_LIGHT // 128, 128))


def _leaf(rng, shape, dtype, low=-1.0, high=1.0):
    return nb.tensor(rng.uniform(low, high, shape), dtype=dtype, requires_grad=True)


def _elementwise(rng, shape, dtype):
    x, y = _leaf(rng, shape, dtype), _leaf(rng, shape, dtype, 0.5, 2.0)
    b = _leaf(rng, shape[1:], dtype, 0.5, 2.0)
    unary = (-x).exp() + y.log() + y.sqrt() + x.tanh() + x.sigmoid() + x.relu() + x.abs() + x.sin() + x.cos()
    unary = unary + x.erf() + y.log1p() + x.expm1()
    scalars = x.clamp(-0.5, 0.5) + (x + 1) * 2 / 3 + (1 - x) + 2 / y + y ** 1.5 + 2 ** x
    binary = (x + b) - y * b / y + y ** b + nb.maximum(x, y) + nb.minimum(x, y) + nb.where(x > 0, x, y)
    return (unary + scalars + binary).sum()


def _reductions(rng, shape, dtype):
    x = _leaf(rng, shape, dtype)
    values, _ = x.max(1)
    return (x.sum() + x.mean(0).sum() + x.var(1).sum() + x.std() + x.norm() + values.sum() + x.min()
            + x.argmax().to(dtype) + x.sum((0, 1), keepdim=True).sum())


def _movement(rng, shape, dtype):
    x = _leaf(rng, shape, dtype)
    rows = nb.tensor(np.arange(shape[0])[::-1].copy())
    moved = (x.T.contiguous().t() + x.reshape(-1).view(shape) + x.unsqueeze(0).permute(0, 2, 1).squeeze(0).T
             + x[:, None].flatten(1) + x[:1].expand(shape) + x.clone() + x[rows] + x[::2].sum(0)
             + nb.cat([x[:1], x[1:]]) + nb.stack([x, x]).mean(0) + x.float().double().to(dtype))
    # the transposes of strided reads and take, which create_graph records
    transposed = (nb.ops.strided_scatter(x, 0, shape, (shape[1], 1), x.numel())
                  + nb.ops.index_add(x, rows, shape[1], x.numel())).sum()
    masked = x[x > 0].sum() + transposed
    y = x * 1
    y[0] = x[-1]
    y[y > 0] = 0.0
    y.copy_(y * 2)
    y.mul_(2).add_(1).clamp_(-3, 3)
    return moved.sum() + masked + y.sum()


def _nn(rng, shape, dtype):
    rows, columns = shape
    x = _leaf(rng, shape, dtype)
    w = _leaf(rng, (columns, columns), dtype)
    bias = _leaf(rng, (columns,), dtype)
    target = nb.tensor(rng.integers(0, columns, rows))
    hidden = F.dropout(F.linear(x, w, bias).relu(), 0.1) @ w
    return (F.cross_entropy(hidden, target) + F.cross_entropy(hidden, target, label_smoothing=0.1, reduction="sum")
            + F.nll_loss(F.log_softmax(hidden, 1), target) + hidden.softmax(0).sum()
            + F.mse_loss(hidden, x) + (x @ w[:, 0]).sum() + (x.unsqueeze(0) @ w).sum())


def _optimizers(rng, shape, dtype):
    model = nb.nn.Linear(shape[1], 2, dtype=dtype)
    for optimizer in (nb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                      nb.optim.Adam(model.parameters()), nb.optim.AdamW(model.parameters())):
        for _ in range(2):
            optimizer.zero_grad()
            model(nb.tensor(rng.uniform(-1, 1, shape), dtype=dtype)).sum().backward()
            optimizer.step()
    return None


WORKLOAD = (_elementwise, _reductions, _movement, _nn, _optimizers)


class _Bar(numba.core.event.Listener):
    """The progress line: the step running, and the function Numba is compiling for it now."""

    def __init__(self, total, out):
        self.total, self.out, self.done, self.label = total, out, 0, ""
        self.live = getattr(out, "isatty", lambda: False)()  # a log gets one line per step instead

    def show(self, compiling=""):
        if not self.live:
            if not compiling and self.done < self.total:
                self.out.write(f"[{self.done + 1}/{self.total}] {self.label}\n")
                self.out.flush()
            return
        width = 30
        filled = width * self.done // self.total
        line = f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {self.label:<26}"
        self.out.write(f"{line} {compiling[:40]:<40}")
        self.out.flush()

    def on_start(self, event):
        self.show(f"compiling {getattr(event.data.get('dispatcher'), '__name__', '')}")

    def on_end(self, event):
        pass


def run(dtypes=(nb.float32, nb.float64), out=sys.stderr):
    """Run the workload for ``dtypes``; return ((compiled, loaded) functions, seconds)."""
    steps = [(fn, dtype, shape) for dtype in dtypes for shape in SIZES for fn in WORKLOAD]
    started = time.perf_counter()
    bar = _Bar(len(steps), out) if out is not None else None
    with numba.core.event.install_listener("numba:compile", bar) if bar else contextlib.nullcontext():
        for fn, dtype, shape in steps:
            if bar:
                bar.label = f"{fn.__name__.lstrip('_')} {str(dtype).split('.')[-1]} {shape[0]}x{shape[1]}"
                bar.show()
            rng = np.random.default_rng(0)
            loss = fn(rng, shape, dtype)
            if loss is not None:
                loss.backward()
            if bar:
                bar.done += 1
                if bar.live:
                    bar.show()
    if bar and bar.live:
        out.write("\n")
    return compiled_count(), time.perf_counter() - started


def dispatchers():
    """Every Numba function of nbgrad: the kernels and the glue generated from the op declarations."""
    from numba.core.registry import CPUDispatcher

    found = {}
    for name, module in list(sys.modules.items()):
        if name.startswith(("nbgrad.kernels", "nbgrad._generated_ops")):
            for value in vars(module).values():
                if isinstance(value, CPUDispatcher):
                    found[id(value)] = value
    return list(found.values())


def compiled_count():
    """(compiled, loaded from the cache): (function, signature) pairs of this process, counting
    the op backwards that the executor calls (C functions, compiled per op and dtype on first use)."""
    found = dispatchers()
    backwards = GENERATED.backwards.compiled.values()
    total = sum(len(d.overloads) for d in found) + len(backwards)
    loaded = sum(sum(d.stats.cache_hits.values()) for d in found) + sum(c.cache_hits for c in backwards)
    return total - loaded, loaded


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nbgrad.precompile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", nargs="+", choices=["float32", "float64"], default=["float32", "float64"])
    args = parser.parse_args(argv)
    jit.COMPILE_NOTICE.enabled = False  # the bar says what is compiling
    (compiled, loaded), seconds = run([getattr(nb, name) for name in args.dtype])
    where = jit.cache_dir() if jit.CACHE else "none (NBGRAD_CACHE=0: compiled code lives in this process only)"
    print(f"{len(OPS)} ops, {', '.join(args.dtype)}: {compiled} functions compiled, {loaded} loaded from the cache, "
          f"in {seconds:.1f} s\ncache: {where}")


if __name__ == "__main__":
    main()
