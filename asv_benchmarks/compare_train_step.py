"""The MLP training step (``bench_mlp.build_train_step``, plain SGD) per library, each in its own
process, in three rounds: eager nbgrad, ``nbgrad.compile``, PyTorch, ``jax.jit``, and the same
step written by hand as one ``@njit`` function; and what ``nbgrad.compile``'s capture costs.

    python -m asv_benchmarks.compare_train_step [--rounds 3] [--sizes tiny small medium]
"""
import argparse
import json
import subprocess
import sys
import time

import numpy as np

from .bench_mlp import CLASSES, FEATURES, SIZES, _train_step

LIBRARIES = ["nbgrad", "nbgrad.compile", "torch", "jax.jit", "njit"]


def _hand_written_step(size, seed=0):
    """The step as one compiled function over NumPy arrays: the floor for any Python library."""
    from nbgrad.kernels.jit import njit

    batch, hidden, layers = SIZES[size]
    rng = np.random.default_rng(seed)
    widths = [FEATURES] + [hidden] * layers + [CLASSES]
    ws = [rng.uniform(-n ** -0.5, n ** -0.5, (n, m)).astype(np.float32) for n, m in zip(widths, widths[1:])]
    bs = [rng.uniform(-n ** -0.5, n ** -0.5, m).astype(np.float32) for n, m in zip(widths, widths[1:])]
    x = rng.standard_normal((batch, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, batch)

    @njit
    def step(x, y, w0, b0, w1, b1, w2, b2, n_layers, lr):
        weights = (w0, w1, w2)
        biases = (b0, b1, b2)
        acts = [x]
        h = x
        for i in range(n_layers + 1):  # forward; the last layer gives the logits
            h = h @ weights[i] + biases[i]
            if i < n_layers:
                h = np.maximum(h, np.float32(0))
            acts.append(h)
        logits = acts[-1]
        g = np.empty_like(logits)
        loss = 0.0
        for r in range(logits.shape[0]):  # softmax cross-entropy and its gradient
            m = logits[r].max()
            e = np.exp(logits[r] - m)
            s = e.sum()
            loss += np.log(s) + m - logits[r, y[r]]
            g[r] = e / s / logits.shape[0]
            g[r, y[r]] -= 1.0 / logits.shape[0]
        for i in range(n_layers, -1, -1):  # backward and the SGD update, layer by layer
            a = acts[i]
            gw = np.ascontiguousarray(a.T) @ g
            gb = g.sum(axis=0)
            if i > 0:
                g = g @ np.ascontiguousarray(weights[i].T)
                for r in range(g.shape[0]):
                    for c in range(g.shape[1]):
                        if a[r, c] <= 0:
                            g[r, c] = 0
            weights[i][:] -= lr * gw  # in place: the tuple holds the caller's arrays
            biases[i][:] -= lr * gb
        return loss / logits.shape[0]

    while len(ws) < 3:  # unused layers
        ws.append(np.zeros((1, 1), np.float32))
        bs.append(np.zeros(1, np.float32))
    return lambda: step(x, y, ws[0], bs[0], ws[1], bs[1], ws[2], bs[2], layers, np.float32(0.01))


def _measure(library, size, seconds=1.0):
    """Microseconds per step (the best of 7 runs of ~seconds/7 each) and, for nbgrad.compile, the
    capture call's cost once the kernels are compiled."""
    if library == "njit":
        step = _hand_written_step(size)
    else:
        step = _train_step(library, size, momentum=0)
    result = {}
    if library == "nbgrad.compile":  # fresh models of the same size: their captures compile nothing
        captures = []
        for _ in range(4):
            for _ in range(3):
                step()
            step = _train_step(library, size, momentum=0)
            step()
            start = time.perf_counter()
            step()
            captures.append((time.perf_counter() - start) * 1e3)
        result["capture_ms"] = min(captures[1:])
    for _ in range(20):
        step()
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < 0.2:
        step()
        n += 1
    n = max(10, int(n * seconds / 7 / 0.2))
    runs = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(n):
            step()
        runs.append((time.perf_counter() - start) / n * 1e6)
    result["us"] = min(runs)
    if library.startswith("nbgrad"):
        from nbgrad import ops

        result["blas"] = f"{ops.BLAS.name} {ops.BLAS.kernels}".strip()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--libraries", nargs="+", default=LIBRARIES, choices=LIBRARIES)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)  # library size: measure in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(_measure(*args.one)))
        return
    print(f"{'round':>5} {'size':>7} " + " ".join(f"{lib:>15}" for lib in args.libraries)
          + "   compile/jax   capture (eager steps)")
    blas_said = False
    for r in range(1, args.rounds + 1):
        for size in args.sizes:
            found = {}
            for lib in args.libraries:
                done = subprocess.run([sys.executable, "-m", "asv_benchmarks.compare_train_step", "--one", lib, size],
                                      capture_output=True, text=True)
                lines = done.stdout.strip().splitlines()
                found[lib] = json.loads(lines[-1]) if done.returncode == 0 and lines else None
            cells = [f"{found[lib]['us']:13.1f}us" if found[lib] else f"{'-':>15}" for lib in args.libraries]
            ratio = capture = ""
            compiled, jax = found.get("nbgrad.compile"), found.get("jax.jit")
            if compiled and jax:
                ratio = f"{compiled['us'] / jax['us']:.2f}x"
            if compiled and found.get("nbgrad"):
                ms = compiled["capture_ms"]
                capture = f"{ms:.2f} ms ({ms * 1e3 / found['nbgrad']['us']:.1f})"
            print(f"{r:>5} {size:>7} " + " ".join(cells) + f"   {ratio:>11}   {capture}", flush=True)
            blas = next((found[lib]["blas"] for lib in args.libraries if found[lib] and "blas" in found[lib]), None)
            if blas and not blas_said:  # OPENBLAS_CORETYPE may have chosen the kernels: say which ran
                print(f"      (nbgrad's BLAS: {blas})", flush=True)
                blas_said = True


if __name__ == "__main__":
    main()
