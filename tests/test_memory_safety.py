"""Memory safety and bad input: every address a compiled kernel reads is owned by the graph.

Each case runs in a subprocess of its own, so that a crash fails the case instead of
the run. A case is code for a library bound to the name ``torch``; it ends in
``report(fn)``, which prints fn's value or the type of the error it raised. The
expected outcome is written beside each case; where PyTorch is installed, it runs
the same code and must give the same outcome, except in the cases marked as
nbgrad's documented choice.
"""
import json
import math
import os
import random
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))

PRELUDE = """\
import collections, gc, json, sys, threading, time, warnings
import numpy as np
import {lib} as torch
import {lib}.nn.functional as F

def _plain(value):
    if hasattr(value, "detach"):
        return _plain(value.detach().numpy().tolist())
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return value if value == value else "nan"
    return value

def report(fn):
    try:
        value = fn()
    except Exception as error:
        print("ERROR", type(error).__name__, str(error).replace(chr(10), " ")[:400])
    else:
        print("VALUE", json.dumps(_plain(value)))
"""


def run_case(code, lib="nbgrad", env=None, timeout=300):
    """Run a case in a fresh interpreter: ``("VALUE", value)`` or ``("ERROR", type, message)``."""
    environment = dict(os.environ, PYTHONPATH=TESTS + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {}))
    source = PRELUDE.format(lib=lib) + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, timeout=timeout,
                          env=environment)
    assert done.returncode == 0, f"the case crashed (exit {done.returncode}):\n{done.stderr[-3000:]}"
    lines = [line for line in done.stdout.splitlines() if line.startswith(("VALUE ", "ERROR "))]
    assert lines, f"the case reported nothing:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    kind, rest = lines[-1].split(" ", 1)
    if kind == "VALUE":
        return ("VALUE", json.loads(rest))
    name, _, message = rest.partition(" ")
    return ("ERROR", name, message)


def close(a, b):
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if a in ("nan", math.inf, -math.inf) and b in ("nan", math.inf, -math.inf):
        return True  # NaN and inf arise differently in a few places (an optimizer fed NaN)
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-4,
                                                                                              abs_tol=1e-5)
    return a == b


def matches(outcome, expected):
    """``expected``: ``("VALUE", value)`` or ``("ERROR", type name, regex)``."""
    import re

    if outcome[0] != expected[0]:
        return False
    if expected[0] == "VALUE":
        return close(outcome[1], expected[1])
    return outcome[1] == expected[1] and re.search(expected[2], outcome[2]) is not None


def torch_installed():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


MODIFIED = "modified by an inplace operation"
SECOND = "backward through the graph a second time"

# (name, code, expected outcome, whether PyTorch gives the same one)
CASES = [
    # 1. integer arrays that backward kernels index
    ("cross_entropy target changed through numpy after the forward", """
        buf = np.zeros(4, np.int64); logits = torch.zeros(4, 3, requires_grad=True)
        loss = F.cross_entropy(logits, torch.from_numpy(buf)); buf[:] = 10**12
        report(lambda: (loss.backward(), logits.grad)[1])
    """, ("VALUE", [[-1 / 6, 1 / 12, 1 / 12]] * 4), False),  # PyTorch: IndexError; nbgrad's copy is unchanged
    ("nll_loss target changed through numpy after the forward", """
        buf = np.array([0, 1], np.int64); x = torch.zeros(2, 3, requires_grad=True)
        loss = F.nll_loss(x, torch.from_numpy(buf), reduction="sum"); buf[:] = -(10**12)
        report(lambda: (loss.backward(), x.grad)[1])
    """, ("VALUE", [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]), False),
    ("cross_entropy target changed in place", """
        t = torch.zeros(4, dtype=torch.int64); logits = torch.zeros(4, 3, requires_grad=True)
        loss = F.cross_entropy(logits, t); t.fill_(2)
        report(lambda: loss.backward())
    """, ("ERROR", "RuntimeError", MODIFIED + r".*LongTensor \[4\]\] is at version 1"), True),
    ("nll_loss target changed in place", """
        t = torch.tensor([[0, 1], [1, 0]]); x = torch.zeros(2, 3, 2, requires_grad=True)
        loss = F.nll_loss(x, t); t.add_(5)
        report(lambda: loss.backward())
    """, ("ERROR", "RuntimeError", MODIFIED), True),
    ("max(dim) indices changed through numpy", """
        x = torch.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
        v, i = x.max(1); i.numpy()[:] = 10**12
        report(lambda: (v.sum().backward(), x.grad)[1])
    """, ("VALUE", [[0.0, 1.0], [1.0, 0.0]]), False),  # PyTorch: RuntimeError index out of bounds
    ("min(dim) indices changed in place", """
        x = torch.tensor([[1.0, 5.0], [7.0, 2.0]], requires_grad=True)
        v, i = x.min(0); i.fill_(1)
        report(lambda: v.sum().backward())
    """, ("ERROR", "RuntimeError", MODIFIED), True),
    ("an index tensor changed through numpy after x[index]", """
        idx = torch.tensor([0, 2, 2]); x = torch.ones(3, requires_grad=True)
        y = x[idx]; idx.numpy()[:] = 10**12
        report(lambda: (y.sum().backward(), x.grad)[1])
    """, ("VALUE", [1.0, 0.0, 2.0]), False),  # PyTorch reads the changed indices
    ("x[index] = v with the index changed afterwards", """
        idx = torch.tensor([1, 1]); x = torch.zeros(3, requires_grad=True); v = torch.ones(2, requires_grad=True)
        y = x * 1; y[idx] = v; idx.numpy()[:] = -(10**9)
        report(lambda: (y.sum().backward(), x.grad, v.grad)[1:])
    """, ("VALUE", [[1.0, 0.0, 1.0], [1.0, 1.0]]), False),  # PyTorch reads the changed index
    # 2. .data replaced between forward and backward
    ("a non-leaf given bigger .data", """
        x = torch.ones(10, requires_grad=True); y = x * 2
        y.data = torch.ones(100000)
        report(lambda: (y * 3).sum().backward())
    """, ("ERROR", "RuntimeError", r"Function MulBackward0 returned an invalid gradient at index 0 - got \[100000\] "
                                   r"but expected shape compatible with \[10\]"), True),
    ("a non-leaf given .data of another dtype", """
        x = torch.ones(3, requires_grad=True); y = x * 2
        y.data = torch.ones(3, dtype=torch.float64)
        report(lambda: ((y * 3).sum().backward(), x.grad, y.dtype)[1])
    """, ("VALUE", [6.0, 6.0, 6.0]), True),
    ("a non-leaf given .data its old shape broadcasts to", """
        x = torch.ones(1, requires_grad=True); y = x * 2
        y.data = torch.ones(2, 5)
        report(lambda: ((y * 3).sum().backward(), x.grad)[1])
    """, ("VALUE", [60.0]), True),
    ("a non-leaf given .data of the same size, another shape", """
        x = torch.ones(10, requires_grad=True); y = x * 2
        y.data = torch.ones(2, 5)
        report(lambda: (y * 3).sum().backward())
    """, ("ERROR", "RuntimeError", "invalid gradient"), True),
    ("a consumer recorded before the .data change is unaffected", """
        x = torch.ones(4, requires_grad=True); y = x * 2; z = y * 3
        y.data = torch.ones(100)
        report(lambda: (z.sum().backward(), x.grad)[1])
    """, ("VALUE", [6.0] * 4), True),
    ("a saved input reads its new values (leaf)", """
        x = torch.ones(3, requires_grad=True); y = (x * x).sum()
        x.data = torch.full((3,), 3.0)
        report(lambda: (y.backward(), x.grad)[1])
    """, ("VALUE", [6.0] * 3), True),
    ("a saved input reads its new values (non-leaf, matmul)", """
        w = torch.ones(2, 2, requires_grad=True); h = torch.ones(3, 2) * 1; h.requires_grad_(False)
        h = torch.ones(3, 2, requires_grad=True) * 1; y = (h @ w).sum()
        h.data = torch.full((3, 2), 2.0)
        report(lambda: (y.backward(), w.grad)[1])
    """, ("VALUE", [[6.0, 6.0], [6.0, 6.0]]), True),
    ("a saved output keeps its old values", """
        x = torch.zeros(3, requires_grad=True); e = x.exp(); y = e.sum()
        e.data = torch.full((3,), 5.0)
        report(lambda: (y.backward(), x.grad)[1])
    """, ("VALUE", [1.0] * 3), True),
    ("a leaf given .data of another dtype accumulates into its .grad", """
        x = torch.ones(3, requires_grad=True); y = (x * 2).sum()
        x.data = torch.ones(3, dtype=torch.float64)
        report(lambda: (y.backward(), x.grad.tolist())[1])
    """, ("VALUE", [2.0] * 3), True),
    ("a saved leaf given bigger .data", """
        x = torch.ones(10, requires_grad=True); w = torch.ones(10, requires_grad=True); y = (x * w).sum()
        x.data = torch.ones(100)
        report(lambda: y.backward())
    """, ("ERROR", "RuntimeError", r"size of tensor a \(10\) must match the size of tensor b \(100\)"), True),
    ("a leaf given bigger .data under a graph that only passes through it", """
        x = torch.ones(10, requires_grad=True); y = (x * 2).sum()
        x.data = torch.ones(100)
        report(lambda: y.backward())
    """, ("ERROR", "RuntimeError", "invalid gradient"), False),  # PyTorch: a .grad of shape [10] on a [100] tensor
    ("a leaf given bigger .data before the forward", """
        x = torch.ones(10, requires_grad=True); x.data = torch.ones(100)
        report(lambda: ((x * 2).sum().backward(), list(x.grad.shape))[1])
    """, ("VALUE", [100]), True),
    ("x.grad.data replaced: the next backward accumulates there", """
        x = torch.ones(3, requires_grad=True); (x * 2).sum().backward()
        x.grad.data = torch.full((3,), 10.0)
        (x * 2).sum().backward()
        report(lambda: x.grad)
    """, ("VALUE", [12.0] * 3), True),
    ("huge .data under a graph, then many ops", """
        x = torch.ones(8, requires_grad=True); y = x * 2
        for _ in range(3):
            y.data = torch.ones(1 << 18)
            z = y * 3
        report(lambda: z.sum().backward())
    """, ("ERROR", "RuntimeError", "invalid gradient"), True),
    # 3. optimizers
    ("optimizer state reset with a defaultdict", """
        p = torch.nn.Parameter(torch.ones(1000)); opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        for i in range(3):
            opt.zero_grad(); (p * p).sum().backward(); opt.step()
            if i == 0:
                opt.state = collections.defaultdict(dict)
        junk = [np.full(1000, 7.0, np.float32) for _ in range(100)]
        report(lambda: p.sum())
    """, ("VALUE", 368.0), True),
    ("optimizer state popped", """
        p = torch.nn.Parameter(torch.ones(5)); opt = torch.optim.Adam([p], lr=0.1)
        for i in range(3):
            opt.zero_grad(); (p * p).sum().backward(); opt.step()
            if i == 0:
                opt.state.pop(p)
        report(lambda: p)
    """, ("VALUE", [0.700479] * 5), True),
    ("a parameter appended to a group", """
        p = torch.nn.Parameter(torch.ones(3)); q = torch.nn.Parameter(torch.ones(3))
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.5)
        (p * p).sum().backward(); opt.step()
        opt.param_groups[0]["params"].append(q)
        opt.zero_grad(); (p * p + q * q).sum().backward(); opt.step()
        report(lambda: (p, q))
    """, ("VALUE", [[0.54] * 3, [0.8] * 3]), True),
    ("parameters popped and replaced", """
        p = torch.nn.Parameter(torch.ones(3)); q = torch.nn.Parameter(torch.ones(4))
        opt = torch.optim.SGD([p, q], lr=0.1, momentum=0.9)
        ((p * p).sum() + (q * q).sum()).backward(); opt.step()
        opt.param_groups[0]["params"].pop(0); del p
        opt.zero_grad(); (q * q).sum().backward(); opt.step()
        r = torch.nn.Parameter(torch.ones(2)); opt.param_groups[0]["params"] = [r]
        opt.zero_grad(); (r * r).sum().backward(); opt.step()
        report(lambda: (q, r))
    """, ("VALUE", [[0.46] * 4, [0.8] * 2]), True),
    ("a group appended to param_groups by hand", """
        p = torch.nn.Parameter(torch.ones(3)); q = torch.nn.Parameter(torch.ones(3))
        opt = torch.optim.SGD([p], lr=0.1)
        opt.param_groups.append({"params": [q], "lr": 0.5, "momentum": 0, "dampening": 0, "weight_decay": 0,
                                 "nesterov": False, "maximize": False, "foreach": None, "differentiable": False,
                                 "fused": None})
        (p * p + q * q).sum().backward(); opt.step()
        report(lambda: (p, q))
    """, ("VALUE", [[0.8] * 3, [0.0] * 3]), True),
    ("a momentum buffer of the wrong shape from load_state_dict", """
        p = torch.nn.Parameter(torch.ones(10)); opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        (p * p).sum().backward(); opt.step()
        state = opt.state_dict(); state["state"][0]["momentum_buffer"] = torch.ones(3)
        opt.load_state_dict(state)
        report(lambda: opt.step())
    """, ("ERROR", "RuntimeError", r"size of tensor a \(3\) must match the size of tensor b \(10\)"), True),
    ("a momentum buffer set to None restarts momentum", """
        p = torch.nn.Parameter(torch.ones(3)); opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5)
        for i in range(3):
            opt.zero_grad(); (p * p).sum().backward(); opt.step()
            if i == 0:
                opt.state[p]["momentum_buffer"] = None
        report(lambda: p)
    """, ("VALUE", [0.432] * 3), True),
    ("a parameter given new .data between steps", """
        p = torch.nn.Parameter(torch.ones(3)); opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        (p * p).sum().backward(); opt.step()
        p.data = torch.full((3,), 2.0)
        opt.zero_grad(); (p * p).sum().backward(); opt.step()
        report(lambda: p)
    """, ("VALUE", [1.42] * 3), True),
    ("Adam's step count is read and written through its state", """
        p = torch.nn.Parameter(torch.ones(3)); opt = torch.optim.Adam([p], lr=0.1)
        for _ in range(2):
            opt.zero_grad(); (p * p).sum().backward(); opt.step()
        seen = int(opt.state[p]["step"])
        opt.state[p]["step"] = 100 if isinstance(opt.state[p]["step"], int) else torch.tensor(100.0)
        opt.zero_grad(); (p * p).sum().backward(); opt.step()
        report(lambda: [seen, int(opt.state[p]["step"]), p])
    """, ("VALUE", [2, 101, [0.648743] * 3]), True),
    ("an SGD state given by hand keeps its momentum buffer", """
        p = torch.nn.Parameter(torch.ones(3)); opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        opt.state[p] = {"momentum_buffer": torch.full((3,), 5.0)}
        (p * p).sum().backward(); opt.step()
        report(lambda: p)
    """, ("VALUE", [0.35] * 3), True),
    ("a hyper-parameter set to None", """
        p = torch.nn.Parameter(torch.ones(3)); opt = torch.optim.SGD([p], lr=0.1)
        opt.param_groups[0]["lr"] = None; (p * p).sum().backward()
        report(lambda: opt.step())
    """, ("ERROR", "TypeError", ""), True),
    # 4. Python code inside a backward changes rows the backward still needs
    ("a hook runs a backward over shared rows", """
        x = torch.ones(3, requires_grad=True); h = x.exp(); y = h * 2
        def hook(g):
            with torch.enable_grad():
                h.sum().backward()
            return g
        y.register_hook(hook)
        report(lambda: y.sum().backward())
    """, ("ERROR", "RuntimeError", SECOND), True),
    ("a hook runs a backward that retains the graph", """
        x = torch.ones(3, requires_grad=True); h = x.exp(); y = h * 2
        def hook(g):
            with torch.enable_grad():
                h.sum().backward(retain_graph=True)
            return g
        y.register_hook(hook)
        report(lambda: (y.sum().backward(), x.grad)[1])
    """, ("VALUE", [3 * math.e] * 3), True),
    ("a hook changes a saved tensor in place", """
        w = torch.ones(3, requires_grad=True); x = torch.ones(3, requires_grad=True)
        z = (x * w) * 2
        def hook(g):
            with torch.no_grad():
                w.mul_(100)
            return g
        z.register_hook(hook)
        report(lambda: z.sum().backward())
    """, ("ERROR", "RuntimeError", MODIFIED), True),
    ("a hook steps an optimizer over a saved parameter", """
        w = torch.nn.Parameter(torch.ones(3)); opt = torch.optim.SGD([w], lr=0.1)
        x = torch.ones(3, requires_grad=True); w.grad = torch.ones(3)
        z = (x * w).sin()
        z.register_hook(lambda g: opt.step())
        report(lambda: z.sum().backward())
    """, ("ERROR", "RuntimeError", MODIFIED), True),
    ("a Function's backward runs autograd.grad over shared rows", """
        class Twice(torch.autograd.Function):
            @staticmethod
            def forward(ctx, a):
                return a * 2
            @staticmethod
            def backward(ctx, g):
                with torch.enable_grad():
                    torch.autograd.grad(shared.sum(), x)
                return g * 2
        x = torch.ones(3, requires_grad=True); shared = x.sin()
        report(lambda: (Twice.apply(shared) * 1).sum().backward())
    """, ("ERROR", "RuntimeError", SECOND), True),
    ("a hook gives a saved tensor bigger .data", """
        x = torch.ones(3, requires_grad=True); h = x * 1; z = (h * h) * 2
        def hook(g):
            h.data = torch.ones(300)
            return g
        z.register_hook(hook)
        report(lambda: z.sum().backward())
    """, ("ERROR", "RuntimeError", r"size of tensor a \(3\) must match the size of tensor b \(300\)"), True),
    ("a hook runs a backward that frees the hooked row's saved buffers", """
        n = 200000
        x = torch.ones(n, requires_grad=True)
        h = (x * 2) * (x * 3)  # its saved buffers are held only by the graph
        y1, y2 = h.sum(), (h * 1).sum()
        def hook(g):
            hook.calls = getattr(hook, "calls", 0) + 1
            if hook.calls == 1:
                with torch.enable_grad():
                    y2.backward()
                gc.collect()
                hook.junk = [torch.full((n,), 1000.0) * 1 for _ in range(20)]
        h.register_hook(hook)
        report(lambda: y1.backward())
    """, ("ERROR", "RuntimeError", SECOND), True),
    ("a hook changes in place what its own row saved", """
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True); h = x * x; y = (h * 2).sum()
        def hook(g):
            with torch.no_grad():
                x.mul_(10)
        h.register_hook(hook)
        report(lambda: y.backward())
    """, ("ERROR", "RuntimeError", MODIFIED), True),
    ("a hook backpropagates through the graph that is running", """
        x = torch.ones(3, requires_grad=True); h = x.exp(); y = (h * 2).sum()
        def hook(g):
            with torch.enable_grad():
                y.backward()
        h.register_hook(hook)
        report(lambda: y.backward())
    """, ("ERROR", "RuntimeError", SECOND), True),
    ("a hook gives a leaf .data of another dtype", """
        x = torch.ones(5, requires_grad=True); w = torch.ones(5, requires_grad=True); h = x * w
        def hook(g):
            x.data = torch.ones(5, dtype=torch.float64)
        h.register_hook(hook)
        report(lambda: (h * 3).sum().backward())
    """, ("ERROR", "RuntimeError", "another dtype while a backward"), False),  # PyTorch: x.grad [3.] * 5
    ("a detached alias given new .data leaves the original's rows alone", """
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True); c = torch.ones(3, requires_grad=True)
        d = x.detach(); y = (x * c).sum(); d.data = torch.zeros(3)
        report(lambda: (y.backward(), c.grad)[1])
    """, ("VALUE", [1.0, 2.0, 3.0]), True),
    ("two tensors over one numpy array: new .data for one", """
        a = np.ones(3, np.float32); t1 = torch.from_numpy(a); t2 = torch.from_numpy(a)
        c = torch.ones(3, requires_grad=True); y = (t2 * c).sum(); t1.data = torch.zeros(3)
        report(lambda: (y.backward(), c.grad)[1])
    """, ("VALUE", [1.0, 1.0, 1.0]), True),
    ("a leaf's hooks survive .data of another dtype", """
        x = torch.arange(3.0).requires_grad_(); x.register_hook(lambda g: g * 100)
        seen = []
        x.register_post_accumulate_grad_hook(lambda t: seen.append(1))
        x.data = torch.ones(3, dtype=torch.float64)
        report(lambda: ((x * 5).sum().backward(), x.grad, len(seen))[1:])
    """, ("VALUE", [[500.0] * 3, 1]), True),
    ("retain_grad survives an in-place op", """
        x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
        h = x * 2; h.retain_grad(); h.add_(1); (h * h).sum().backward()
        report(lambda: h.grad)
    """, ("VALUE", [6.0, 10.0, 14.0]), True),
    # 5. a forward that fails inside compiled code
    ("a failed compiled forward hides no later in-place change", """
        import probe_kernels
        if hasattr(torch.autograd, "register_op"):
            op = torch.autograd.register_op("copy_or_raise", probe_kernels.copy_or_raise, probe_kernels.add_grad)
        x = torch.ones(3, requires_grad=True); kept = []
        for _ in range(3):
            try:
                op(x * 1000)
            except Exception:
                kept.append(sys.exc_info())  # the traceback keeps the failed call's frame alive
        a = x * 1; b = a.sin()
        with torch.no_grad():
            a.mul_(5)
        report(lambda: b.sum().backward())
    """, ("ERROR", "RuntimeError", MODIFIED), None),  # register_op is nbgrad's
    # 6. the tape follows the live graph
    ("the tape shrinks after a big graph dies", """
        from nbgrad.autograd import tape
        x = torch.ones(1, requires_grad=True); y = x
        for _ in range(100000):
            y = y * 1.0
        peak = len(tape.chunks)
        del y
        p = torch.nn.Parameter(torch.ones(10)); opt = torch.optim.SGD([p], lr=0.1)
        (p * p).sum().backward(); opt.step()
        report(lambda: [peak >= 20, len(tape.chunks) <= 1, tape.rows_in_use < 2000, len(tape.saved) <= 4096])
    """, ("VALUE", [True, True, True, True]), None),
    ("the tape shrinks although a row made while a big graph lived stays", """
        from nbgrad.autograd import tape
        s = torch.ones(1, requires_grad=True); y = s
        for _ in range(60000):
            y = y * 1.0
        p = torch.randn(64, 64, requires_grad=True); opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        y.sum().backward(); del y
        for _ in range(3):
            opt.zero_grad(); (p * p).sum().backward(); opt.step()
        report(lambda: [sum(c is not None for c in tape.chunks) <= 3, len(tape.free_rows) < 2 * tape.CHUNK_ROWS])
    """, ("VALUE", [True, True]), None),
    # 7. threads
    ("a hook waits for another thread's backward", """
        x = torch.ones(3, requires_grad=True); y = x * 2; finished = threading.Event()
        def other():
            a = torch.ones(3, requires_grad=True); (a * 3).sum().backward(); finished.set()
        def hook(g):
            t = threading.Thread(target=other); t.start(); t.join(timeout=60)
            return g
        y.register_hook(hook)
        report(lambda: (y.sum().backward(), finished.is_set(), x.grad)[1:])
    """, ("VALUE", [True, [2.0] * 3]), True),
    ("a post-accumulate hook waits for another thread's backward", """
        w = torch.ones(3, requires_grad=True); finished = threading.Event()
        def other():
            a = torch.ones(3, requires_grad=True); (a * 3).sum().backward(); finished.set()
        def hook(tensor):
            t = threading.Thread(target=other); t.start(); t.join(timeout=60)
        w.register_post_accumulate_grad_hook(hook)
        report(lambda: ((w * 2).sum().backward(), finished.is_set())[1])
    """, ("VALUE", True), True),
    ("one thread zeroes grads while another runs backward", """
        w = torch.ones(256, requires_grad=True); stop = threading.Event()
        def zeroer():
            while not stop.is_set():
                w.grad = None
                time.sleep(0)
        t = threading.Thread(target=zeroer); t.start()
        for _ in range(300):
            (w * 2).exp().sum().backward()
        stop.set(); t.join()
        report(lambda: True)
    """, ("VALUE", True), None),
    # 9. leaks
    ("Function subclasses made in a loop are freed", """
        import weakref
        refs = []
        for i in range(20):
            class Square(torch.autograd.Function):
                @staticmethod
                def forward(ctx, x):
                    ctx.save_for_backward(x)
                    return x * x
                @staticmethod
                def backward(ctx, g):
                    (x,) = ctx.saved_tensors
                    return 2 * x * g
            x = torch.ones(3, requires_grad=True); Square.apply(x).sum().backward()
            refs.append(weakref.ref(Square)); del Square
        gc.collect()
        report(lambda: sum(r() is not None for r in refs))
    """, ("VALUE", 0), True),
    # 10. unclear errors
    ("read-only memory from numpy is never written", """
        a = np.ones(3, np.float32); a.flags.writeable = False
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t = torch.from_numpy(a)
        errors = []
        for attempt in (lambda: t.add_(1), lambda: t.__setitem__(0, 5.0)):
            try:
                attempt()
            except Exception as error:
                errors.append(type(error).__name__)
        x = torch.ones(3, requires_grad=True); x.grad = torch.from_numpy(a); (x * 2).sum().backward()
        report(lambda: [len(caught), errors, a.tolist()])
    """, ("VALUE", [1, ["RuntimeError", "RuntimeError"], [1.0, 1.0, 1.0]]), False),  # PyTorch writes into it
]

IDS = [case[0] for case in CASES]


@pytest.mark.parametrize("name, code, expected, like_torch", CASES, ids=IDS)
def test_case(name, code, expected, like_torch):
    outcome = run_case(code)
    assert matches(outcome, expected), f"nbgrad gave {outcome}, expected {expected}"
    if like_torch is not None and torch_installed():
        theirs = run_case(code, lib="torch")
        if like_torch:
            assert matches(theirs, expected), f"PyTorch gives {theirs}: the expectation is not PyTorch's"
        else:
            assert not matches(theirs, expected), "PyTorch now agrees: mark the case as PyTorch's behaviour"


# --- NBGRAD_DEBUG=1 -------------------------------------------------------------

DEBUG_CASE = """
    torch.ones(1)  # nbgrad loads first: the kernels below then compile with bounds checks, cached apart
    import probe_kernels
    past = torch.autograd.register_op("past_the_end", probe_kernels.copy_or_raise, probe_kernels.add_grad_past_the_end)
    half = torch.autograd.register_op("write_half", probe_kernels.copy_or_raise, probe_kernels.write_half)
    x = torch.ones(4, requires_grad=True)
    half(x).sum().backward()
    nans = [v != v for v in x.grad.tolist()]
    try:
        past(x * 1).sum().backward()
        error = None
    except RuntimeError as e:
        error = str(e)
    report(lambda: [nans, error])
"""


def test_debug_mode_checks_bounds_and_poisons_fresh_buffers():
    outcome = run_case(DEBUG_CASE, env={"NBGRAD_DEBUG": "1"}, timeout=1200)
    assert outcome[0] == "VALUE", outcome
    nans, error = outcome[1]
    assert nans == [False, False, True, True]  # what the kernel failed to write shows as NaN
    assert error is not None and "NBGRAD_DEBUG" in error and "out of bounds" in error and "PastTheEnd" in error


# --- load of untrusted files --------------------------------------------------------

def _npz(path, members):
    """Write ``members`` (name -> bytes of an .npy file, or a callable writing them) into a zip."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            with archive.open(name + ".npy", "w", force_zip64=True) as f:
                content(f) if callable(content) else f.write(content)


def _npy(array):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def _structure(description):
    return _npy(np.frombuffer(json.dumps(description).encode(), np.uint8))


def _zeros_member(nbytes):
    def write(f):
        header = np.lib.format.header_data_from_array_1_0(np.zeros(0, np.float32))
        header["shape"] = (nbytes // 4,)
        np.lib.format.write_array_header_1_0(f, header)
        chunk = bytes(1 << 20)
        for _ in range(nbytes >> 20):
            f.write(chunk)
    return write


STRUCTURE = "__nbgrad_structure__"


def test_load_reads_only_what_the_structure_refers_to(tmp_path):
    import nbgrad as nb

    path = tmp_path / "bomb.npz"
    _npz(path, {STRUCTURE: _structure({"tensor": 0}), "t0": _npy(np.arange(3.0)), "t1": _zeros_member(1 << 30)})
    assert path.stat().st_size < 4 << 20  # a gigabyte of zeros, a few MB on disk, never decompressed
    assert nb.load(path).tolist() == [0.0, 1.0, 2.0]


def test_load_bounds_what_a_file_may_decompress_to(tmp_path):
    import nbgrad as nb

    path = tmp_path / "bomb.npz"
    _npz(path, {STRUCTURE: _structure({"tensor": 0}), "t0": _zeros_member(512 << 20)})
    with pytest.raises(ValueError, match=f"{path.name}.*max_bytes"):
        nb.load(path)
    assert nb.load(path, max_bytes=None).numel() == 128 << 20


@pytest.mark.parametrize("name, members", [
    ("deep nesting", {STRUCTURE: _npy(np.frombuffer(('{"list": [' * 100000 + ']}' * 100000).encode(), np.uint8))}),
    ("lying header", {STRUCTURE: _structure({"tensor": 0}),
                      "t0": _npy(np.ones(4))[:-16].replace(b"(4,)", b"(9,)")}),
    ("missing member", {STRUCTURE: _structure({"tensor": 3})}),
    ("twice referenced", {STRUCTURE: _structure({"list": [{"tensor": 0}, {"tensor": 0}]}), "t0": _npy(np.ones(2))}),
    ("unknown kind", {STRUCTURE: _structure({"code": "print(1)"})}),
    ("not a structure", {STRUCTURE: _npy(np.frombuffer(b"\xff\xfe", np.uint8))}),
    ("object dtype", {STRUCTURE: _structure({"tensor": 0}),
                      "t0": _npy(np.ones(2)).replace(b"'<f8'", b"'|O' ")}),
    ("complex values", {STRUCTURE: _structure({"tensor": 0}), "t0": _npy(np.ones(2, np.complex64))}),
    ("a huge header length", {STRUCTURE: _structure({"tensor": 0}),
                              "t0": b"\x93NUMPY\x02\x00" + (1 << 31).to_bytes(4, "little") + b" " * 1000}),
    ("nine dimensions", {STRUCTURE: _structure({"tensor": 0}), "t0": _npy(np.ones((1,) * 9))}),
])
def test_load_refuses_malformed_files_with_a_value_error(tmp_path, name, members):
    import nbgrad as nb

    path = tmp_path / "bad.npz"
    _npz(path, members)
    with pytest.raises(ValueError, match="bad.npz"):
        nb.load(path)


def test_load_refuses_an_encrypted_member(tmp_path):
    import nbgrad as nb

    good = tmp_path / "good.npz"
    nb.save(nb.ones(3), good)
    data = bytearray(good.read_bytes())
    for signature in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag of each header
        at = data.index(signature)
        flags_at = at + (6 if signature == b"PK\x03\x04" else 8)
        data[flags_at] |= 1
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad.npz"):
        nb.load(bad)


def test_load_refuses_corrupt_compressed_data(tmp_path):
    import nbgrad as nb

    good = tmp_path / "good.npz"
    nb.save({"w": nb.ones(1000)}, good)
    data = bytearray(good.read_bytes())
    start = data.index(b"t0.npy") + 200  # inside the compressed member
    data[start:start + 64] = bytes(range(64))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="bad.npz"):
        nb.load(bad)


# --- clear errors for bad input ----------------------------------------------------------

BAD_INPUT = [
    ("data = ndarray", lambda nb: setattr(nb.ones(3), "data", np.ones(3)), TypeError, "data has to be a tensor"),
    ("grad = ndarray", lambda nb: setattr(nb.ones(3, requires_grad=True), "grad", np.ones(3)), TypeError,
     "Tensor or None"),
    ("grad = str", lambda nb: setattr(nb.ones(3, requires_grad=True), "grad", "abc"), TypeError, "Tensor or None"),
    ("hook returns ndarray", lambda nb: _hooked(nb, lambda g: np.ones(3)), TypeError, "expected a Tensor or None"),
    ("hook is not callable", lambda nb: nb.ones(3, requires_grad=True).register_hook(3), TypeError, "callable"),
    ("sum of a list", lambda nb: nb.sum([nb.ones(2)]), TypeError, r"sum\(\): argument 'input'.*not list"),
    ("reshape of a list", lambda nb: nb.reshape([1, 2], (2,)), TypeError, "reshape"),
    ("cross_entropy weight", lambda nb: nb.nn.functional.cross_entropy(nb.ones(4, 3), nb.tensor([0, 1, 2, 0]),
                                                                       weight=nb.ones(2)), RuntimeError,
     r"weight tensor should be defined either for all 3 classes.*\[2\]"),
    ("nll_loss weight", lambda nb: nb.nn.functional.nll_loss(nb.ones(4, 3), nb.tensor([0, 1, 2, 0]),
                                                             weight=nb.ones(4)), RuntimeError, "weight tensor"),
    ("zeros(2.5)", lambda nb: nb.zeros(2.5), TypeError, r"zeros\(\).*tuple of ints.*float"),
    ("randn(2, 1.5)", lambda nb: nb.randn(2, 1.5), TypeError, "randn"),
    ("reshape(2.5, 2)", lambda nb: nb.ones(4).reshape(2.5, 2), TypeError, r"reshape\(\).*float"),
    ("view float", lambda nb: nb.ones(4).view(4.0), TypeError, "float"),
    ("expand float", lambda nb: nb.ones(1).expand(2.0), TypeError, "float"),
    ("int .data on a grad tensor", lambda nb: setattr(nb.ones(3, requires_grad=True), "data",
                                                      nb.ones(3, dtype=nb.int64)), RuntimeError, "floating point"),
    ("optimizer of a read-only parameter", lambda nb: _read_only_step(nb), RuntimeError, "read-only"),
    ("a tensor as its own grad", lambda nb: _own_grad(nb), RuntimeError, "own grad"),
    ("iterating a 0-d tensor", lambda nb: list(nb.tensor(1.0)), TypeError, "0-d tensor"),
    ("arange with step 0", lambda nb: nb.arange(0, 1, 0), RuntimeError, "step must be nonzero"),
    ("arange the wrong way", lambda nb: nb.arange(5, 0), RuntimeError, "inconsistent with step sign"),
    ("bool minus bool", lambda nb: nb.tensor([True]) - nb.tensor([False]), RuntimeError, "Subtraction"),
    ("var of integers", lambda nb: nb.tensor([1, 2]).var(), RuntimeError, "floating point"),
    ("a scheduler of a number", lambda nb: nb.optim.lr_scheduler.StepLR(5, step_size=1), TypeError,
     "not an Optimizer"),
    ("a non-tensor among an optimizer's params", lambda nb: _bad_param_step(nb), TypeError, "Tensors"),
]


def _hooked(nb, hook):
    x = nb.ones(3, requires_grad=True)
    y = x * 2
    y.register_hook(hook)
    y.sum().backward()


def _own_grad(nb):
    x = nb.ones(3, requires_grad=True)
    x.grad = x


def _read_only_step(nb):
    import warnings

    a = np.ones(3, np.float32)
    a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = nb.from_numpy(a).requires_grad_()
    p.grad = nb.ones(3)
    nb.optim.SGD([p], lr=1.0).step()


def _bad_param_step(nb):
    p = nb.ones(3, requires_grad=True)
    opt = nb.optim.SGD([p], lr=1.0)
    opt.param_groups[0]["params"].append(3)
    opt.step()


@pytest.mark.parametrize("name, call, kind, pattern", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_gives_a_clear_error(name, call, kind, pattern):
    import nbgrad as nb

    with pytest.raises(kind, match=pattern):
        call(nb)


# --- a randomized stress test against PyTorch ---------------------------------------

def _program(seed):
    """A random sequence of forward ops, in-place changes, .data and .grad replacements, hooks and
    optimizer edits on a few tensors, then a backward; every step reports its outcome."""
    rng = random.Random(seed)
    optimizer = rng.choice(["torch.optim.SGD([w, b], lr=0.1, momentum=0.9)", "torch.optim.Adam([w, b], lr=0.1)"])
    lines = [
        f"rng = np.random.default_rng({seed})",
        "w = torch.nn.Parameter(torch.tensor(rng.standard_normal((3, 3)), dtype=torch.float64))",
        "b = torch.nn.Parameter(torch.tensor(rng.standard_normal(3), dtype=torch.float64))",
        "x = torch.tensor(rng.standard_normal((4, 3)), dtype=torch.float64)",
        "target = torch.tensor([0, 2, 1, 2])",
        f"opt = {optimizer}",
        "events = []",
        "def step(name, fn):",
        "    try:",
        "        value = fn()",
        "        events.append([name, _plain(value) if value is not None else None])",
        "    except Exception as error:",
        "        events.append([name, type(error).__name__])",
        "        print(name, repr(error)[:300], file=sys.stderr)",
        "def no_grad_call(fn):",
        "    with torch.no_grad():",
        "        fn()",
    ]
    changes = [
        "step('h.data same shape', lambda: setattr(h, 'data', h.detach() * 0.5))",
        "step('h.data other shape', lambda: setattr(h, 'data', torch.zeros(2, 3, dtype=torch.float64)))",
        "step('h.data float32', lambda: setattr(h, 'data', h.detach().float()))",
        "step('s in place', lambda: s.mul_(2))",
        "step('t in place no_grad', lambda: no_grad_call(lambda: t.add_(1)))",
        "step('x in place', lambda: x.add_(0.1))",
        "step('target in place', lambda: target.fill_(1))",
        "step('w.data', lambda: setattr(w, 'data', w.detach() * 1.1))",
        "step('w.grad none', lambda: setattr(w, 'grad', None))",
        "step('w.grad ones', lambda: setattr(w, 'grad', torch.ones(3, 3, dtype=torch.float64)))",
        "step('w.grad.data', lambda: w.grad is not None and setattr(w.grad, 'data', torch.full((3, 3), 0.5, "
        "dtype=torch.float64)))",
        "step('hook scale', lambda: t.register_hook(lambda g: g * 2) and None)",
        "step('hook in place', lambda: s.register_hook(lambda g: no_grad_call(lambda: w.mul_(1.0))) and None)",
        "step('hook backward', lambda: s.register_hook(lambda g: (h * 1).sum().backward()) and None)",
        "step('state reset', lambda: setattr(opt, 'state', collections.defaultdict(dict)))",
        "step('state pop', lambda: opt.state.pop(w, None) and None)",
        "step('params pop', lambda: opt.param_groups[0]['params'].pop() and None)",
        "step('opt step', lambda: opt.step())",
        "step('grad', lambda: torch.autograd.grad(loss, [w], retain_graph=True))",
    ]
    for _ in range(rng.randint(3, 7)):
        lines += [
            "h = x @ w + b",
            "s = h.sigmoid(); t = s * h; u = t.exp().sum(1)",
            "v, i = h.max(1)",
            "loss = (u * u).mean() + F.cross_entropy(h, target) + v.sum()",
        ]
        lines += [rng.choice(changes) for _ in range(rng.randint(0, 3))]
        retain = rng.random() < 0.3
        lines += [
            "torch.set_grad_enabled(True)",
            f"step('backward', lambda: loss.backward(retain_graph={retain}))",
            "step('grads', lambda: [w.grad, b.grad])",
        ]
        if retain:
            lines.append("step('backward again', lambda: loss.backward())")
        lines += [
            "step('opt step', lambda: opt.step())",
            "step('params', lambda: [w, b])",
            "opt.zero_grad()",
        ]
    lines.append("report(lambda: events)")
    return "\n".join(lines)


@pytest.mark.parametrize("seed", range(6))
def test_random_programs_match_pytorch(seed):
    if not torch_installed():
        pytest.skip("PyTorch is not installed")
    program = _program(seed)
    ours, theirs = run_case(program), run_case(program, lib="torch")
    assert ours[0] == theirs[0] == "VALUE", (ours, theirs)
    for mine, reference in zip(ours[1], theirs[1]):
        assert mine[0] == reference[0]
        assert close(mine[1], reference[1]), f"step {mine[0]}: nbgrad {mine[1]}, PyTorch {reference[1]}\n{program}"
    assert len(ours[1]) == len(theirs[1])
