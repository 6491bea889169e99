"""Start-up and the compile cache: nothing compiled at import, the cache's folder and switch,
invalidation by kernel edits, processes sharing an empty cache, precompile, and threads."""
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from nbgrad.kernels import jit
from nbgrad.kernels.executor import TABLE_STRIDE

import nbgrad as nb
import nbgrad.nn.functional as F
from nbgrad import precompile
from nbgrad.autograd import codegen
from nbgrad.autograd.registry import OPS
from nbgrad.ops import GENERATED

# A small MLP loss and its backward; prints the gradient's sum and (compiled, loaded) functions.
MLP_STEP = """
import numpy as np
import nbgrad as nb
from nbgrad import precompile
rng = np.random.default_rng(0)
x = nb.tensor(rng.normal(size=(8, 5)), dtype=nb.float32)
w1 = nb.tensor(rng.normal(size=(5, 6)), dtype=nb.float32, requires_grad=True)
w2 = nb.tensor(rng.normal(size=(6, 1)), dtype=nb.float32, requires_grad=True)
((x @ w1).relu() @ w2).pow(2).mean().backward()
print(round(float(w1.grad.sum()), 4), *precompile.compiled_count())
"""


def run_python(code, **env):
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("NBGRAD_", "NUMBA_CACHE_DIR"))}
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=600)


def test_import_compiles_nothing_and_leaves_scipy_for_later():
    result = run_python(
        "import sys, nbgrad; from nbgrad import precompile; "
        "print(sum(precompile.compiled_count()), 'scipy.linalg' in sys.modules, 'nbgrad.kernels.cuda' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "False", "False"]


def test_import_defers_numba_until_the_first_use_of_the_api():
    result = run_python(
        "import os, sys, nbgrad\n"
        "print(hasattr(nbgrad, '_mock_name'), 'numba' in sys.modules, 'numpy' in sys.modules)\n"
        "print(os.environ['OMP_WAIT_POLICY'])\n"
        "x = nbgrad.ones(2, requires_grad=True)\n"
        "print('numba' in sys.modules, float((x * 3).sum()), nbgrad.Tensor.__name__, nbgrad.nn.Linear.__name__)\n"
        "from nbgrad import *\n"
        "print(callable(no_grad), 'float32' in dir(nbgrad))\n"
        "nbgrad.no_such_name\n"
    )
    assert result.stdout.split() == ["False", "False", "False", "PASSIVE", "True", "6.0", "Tensor", "Linear", "True",
                                     "True"]
    assert "AttributeError: module 'nbgrad' has no attribute 'no_such_name'" in result.stderr


def test_first_uses_from_several_threads_at_once():
    result = run_python(
        "import threading, nbgrad\n"
        "out = []\n"
        "uses = [lambda: float(nbgrad.ones(3).sum()), lambda: nbgrad.nn.Linear(2, 2).out_features,\n"
        "        lambda: float(nbgrad.tensor([1.0, 2.0]).sum()), lambda: nbgrad.optim.SGD.__name__]\n"
        "threads = [threading.Thread(target=lambda f=f: out.append(f())) for f in uses]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(sorted(map(str, out)))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['2', '3.0', '3.0', 'SGD']"


def test_the_first_backward_leaves_scipy_linalg_unimported_and_usable():
    result = run_python(
        "import sys, numpy as np, numba, nbgrad\n"
        "w = nbgrad.ones(3, 2, requires_grad=True)\n"
        "(nbgrad.ones(4, 3) @ w).sum().backward()\n"
        "print('scipy.linalg' in sys.modules, float(w.grad.sum()))\n"
        "import scipy.linalg.cython_blas\n"
        "print(len(scipy.linalg.cython_blas.__pyx_capi__) > 0)\n"
        "print(float(numba.njit(lambda a: np.dot(a, a).sum())(np.ones((2, 2)))))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "24.0", "True", "8.0"]


def test_submodules_import_alone_and_load_as_attributes():
    result = run_python("import nbgrad\nimport nbgrad.nn.functional as F\n"
                        "optimizer = nbgrad.optim.SGD(nbgrad.nn.Linear(2, 1).parameters(), lr=0.1)\n"
                        "print(type(optimizer).__name__, nbgrad.examples.__name__, F.relu.__name__)\n"
                        "print(nbgrad.tensor([1.5]).tolist())")  # the function, as in PyTorch, not a module
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["SGD", "nbgrad.examples", "relu", "[1.5]"]


def test_cache_off_writes_no_compiled_code(tmp_path):
    result = run_python("import nbgrad as nb; print(float((nb.ones(3) * 2).sum()))",
                        NBGRAD_CACHE="0", NBGRAD_CACHE_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "6.0"
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".nbi", ".nbc")]


def test_cache_folder_choice(tmp_path, monkeypatch):
    for name in ("NBGRAD_CACHE_DIR", "NUMBA_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    blocker = tmp_path / "read-only-install"
    blocker.write_text("")  # a file: nothing can be made inside it, as in an unwritable site-packages
    monkeypatch.setattr(jit, "KERNELS_DIR", blocker / "kernels")
    assert jit.cache_root() == tmp_path / "user-cache" / "nbgrad"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert jit.cache_root() == tmp_path / "numba" / "nbgrad"
    monkeypatch.setenv("NBGRAD_CACHE_DIR", str(tmp_path / "mine"))
    assert jit.cache_root() == tmp_path / "mine"


def test_an_edited_kernel_gets_a_new_cache_and_glue(tmp_path, monkeypatch):
    copy = tmp_path / "kernels"
    shutil.copytree(jit.KERNELS_DIR, copy, ignore=shutil.ignore_patterns("__generated__", "__pycache__"))
    assert jit.sources_key(copy) == jit.SOURCES_KEY
    with open(copy / "elementwise.py", "a") as f:
        f.write("\n# an edit\n")
    edited = jit.sources_key(copy)
    assert edited != jit.SOURCES_KEY
    # the generated glue is named by the kernels' key too, so its cache moves with them
    source = codegen.generate(list(OPS.values()))
    before = codegen._source_key(source)
    monkeypatch.setattr(jit, "SOURCES_KEY", edited)
    assert codegen._source_key(source) != before
    # and the folder for the new key replaces the old ones unused for a day (another process may
    # still run a version used since), but never the debug build's
    monkeypatch.setenv("NBGRAD_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("numba-0123456789abcdef", "numba-fedcba9876543210", "numba-debug-0123456789abcdef"):
        (tmp_path / "cache" / name).mkdir(parents=True)
    day_ago = time.time() - 86400 - 60
    for name in ("numba-0123456789abcdef", "numba-debug-0123456789abcdef"):
        os.utime(tmp_path / "cache" / name, (day_ago, day_ago))
    monkeypatch.setattr(jit, "_cache_dir", None)
    assert jit.cache_dir() == tmp_path / "cache" / f"numba-{edited}"
    assert {p.name for p in (tmp_path / "cache").iterdir()} == {
        "numba-debug-0123456789abcdef", f"numba-{edited}", "numba-fedcba9876543210"}


def test_two_processes_fill_an_empty_cache_at_once_then_a_third_loads_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBGRAD_", "NUMBA_CACHE_DIR"))}
    env["NBGRAD_CACHE_DIR"] = str(tmp_path)
    both = [subprocess.Popen([sys.executable, "-c", MLP_STEP], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in both]
    for p, (_, err) in zip(both, outputs):
        assert p.returncode == 0, err
    first, second = (out.split() for out, _ in outputs)
    assert first[0] == second[0]  # the same gradient
    assert int(first[1]) > 0 and int(second[1]) > 0  # each compiled what it needed
    third = run_python(MLP_STEP, NBGRAD_CACHE_DIR=str(tmp_path))
    assert third.returncode == 0, third.stderr
    gradient, compiled, loaded = third.stdout.split()
    assert (gradient, compiled) == (first[0], "0") and int(loaded) > 0


def test_precompile_reaches_every_op_in_the_dtypes_asked(capsys):
    precompile.main(["--dtype", "float64", "--parallel", "--jobs", "1"])
    out = capsys.readouterr().out
    assert f"{len(OPS)} ops, float64:" in out and "cache:" in out
    table = GENERATED.backwards.table
    missing = [(name, big) for name, op in OPS.items() for big in (0, 1)
               if any(op.bwd) and not table[TABLE_STRIDE * op.opcode + 2 + big]]
    assert missing == []
    assert table[-1] != 0  # the float64 broadcast reducer (the workloads broadcast)
    no_forward = [name for name, op in OPS.items() for forward in {op.forward, op.forward_parallel}
                  if op.fwd is not None and not any("float64" in str(s) for s in forward.signatures)]
    assert no_forward == []


def test_set_num_threads():
    before = nb.get_num_threads()
    try:
        nb.set_num_threads(1)
        assert nb.get_num_threads() == 1
    finally:
        nb.set_num_threads(before)
    with pytest.raises(ValueError, match="set_num_threads: n must be between 1 and"):
        nb.set_num_threads(0)
    with pytest.raises(TypeError, match="expected an int"):
        nb.set_num_threads(1.5)


def train(seed, steps=3):
    """A few SGD steps on tensors big enough for the parallel kernels; the final weights."""
    rng = np.random.default_rng(seed)
    x = nb.tensor(rng.normal(size=(256, 128)), dtype=nb.float32)
    y = nb.tensor(rng.integers(0, 128, 256))
    model = nb.nn.Sequential(nb.nn.Linear(128, 128, dtype=nb.float32), nb.nn.Tanh())
    for p in model.parameters():
        p.data = nb.tensor(rng.uniform(-0.1, 0.1, tuple(p.shape)), dtype=nb.float32)
    optimizer = nb.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x).exp() * 2, y) + (model(x) ** 2).mean()
        loss.backward()
        optimizer.step()
    return [p.detach().numpy().copy() for p in model.parameters()]


def test_training_in_two_threads_at_once_matches_one_at_a_time():
    expected = [train(seed) for seed in (1, 2)]
    results = {}

    def worker(seed):
        results[seed] = train(seed)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed, weights in zip((1, 2), expected):
        for got, want in zip(results[seed], weights):
            np.testing.assert_array_equal(got, want)


def test_the_compile_notice_says_when_a_burst_of_compiles_starts_and_ends():
    import io
    import time

    from nbgrad.kernels.jit import CompileNotice

    out = io.StringIO()
    notice = CompileNotice(after=0.05, quiet=0.2, out=out)
    notice.enabled = True  # whatever NBGRAD_QUIET says here
    notice.on_start(None)
    time.sleep(0.3)  # compiling for longer than `after`: announced
    notice.on_start(None)  # nested
    notice.on_end(None)
    notice.on_end(None)
    time.sleep(0.6)  # quiet: the burst is over
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "compiling kernels for first use" in lines[0] and lines[1].startswith(
        "nbgrad: compiled in")
    quick = CompileNotice(after=5.0, quiet=0.05, out=out)
    quick.enabled = True
    quick.on_start(None)
    quick.on_end(None)
    time.sleep(0.3)
    assert out.getvalue().splitlines() == lines  # a short compile says nothing
    silent = CompileNotice(after=0.0, quiet=0.05, out=out)
    silent.enabled = False
    silent.on_start(None)
    time.sleep(0.2)
    silent.on_end(None)
    time.sleep(0.2)
    assert out.getvalue().splitlines() == lines


def test_a_first_use_on_an_empty_cache_says_that_it_compiles(tmp_path):
    code = "import nbgrad as nb; x = nb.ones(3, requires_grad=True); (x * 2).sum().backward(); print(x.grad.sum())"
    env = dict(os.environ, NBGRAD_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NBGRAD_QUIET", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip() == "tensor(6.)", done.stderr
    assert "nbgrad: compiling kernels for first use (once; cached in" in done.stderr
    assert "nbgrad: compiled in" in done.stderr.splitlines()[-1]
    quiet = subprocess.run([sys.executable, "-c", code], env=dict(env, NBGRAD_QUIET="1",
                           NBGRAD_CACHE_DIR=str(tmp_path / "other")), capture_output=True, text=True, timeout=600)
    assert quiet.returncode == 0 and "compiling" not in quiet.stderr


def test_precompile_ops_refuses_unknown_names_listing_the_known(capsys):
    with pytest.raises(SystemExit) as exit:
        precompile.main(["--ops", "exp", "no_such_op", "tanhh"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "--ops: unknown ops no_such_op, tanhh (choose from to, clone," in err and "mse_loss)" in err
    with pytest.raises(SystemExit):
        precompile.main(["--jobs", "0"])
    assert "--jobs must be at least 1" in capsys.readouterr().err


def test_every_op_has_a_precompile_workload_and_steps_name_ops_first():
    assert set(precompile.OP_WORKLOADS) == set(OPS)
    labels = [label for label, _ in precompile.steps(["relu", "exp"], ["float32"])]
    assert labels == ["sum float32", "clone float32", "exp float32", "relu float32"]  # the core, then in OPS order
    assert [label for label, _ in precompile.steps(example=True, dtypes=["float64"])] == ["mlp example float64"]


def _nested_functions():
    import numba

    @numba.njit
    def inner(x):
        return x + 1

    @numba.njit
    def outer(x):
        return inner(x) * 2

    return inner, outer


def test_the_profile_table_gives_each_function_its_self_and_total_time():
    from nbgrad._compile_profile import CompileProfile

    inner, outer = _nested_functions()
    with CompileProfile() as profile:
        assert outer(1) == 4 and outer(1.5) == 5.0
    rows = {name.rsplit(".", 1)[-1]: row for name, row in profile.rows.items()}
    assert rows["outer"].compiled == rows["inner"].compiled == 2
    # outer's compile holds inner's: its total counts both, its self time only its own
    assert rows["outer"].total >= rows["outer"].self + rows["inner"].total * 0.99
    assert rows["inner"].total == pytest.approx(rows["inner"].self)
    lines = profile.table(top=1).splitlines()
    assert lines[0].split() == ["function", "compiled", "total", "s", "self", "s", "cpu", "s", "loaded"]
    # (other functions may compile meanwhile in a long test process: they add rows, not these two)
    assert lines[2].startswith("... ") and " more" in lines[2] and len(lines) == 4
    assert lines[3].startswith("sum: ") and " signatures of " in lines[3]


def _precompile(cache, *args):
    return run_python(f"from nbgrad import precompile; precompile.main({list(args)!r})", NBGRAD_CACHE_DIR=str(cache))


def test_precompile_in_two_processes_then_a_warm_cache_compiles_nothing(tmp_path):
    cold = _precompile(tmp_path, "--ops", "exp", "relu", "--dtype", "float32", "--jobs", "2")
    assert cold.returncode == 0, cold.stderr
    assert "[4/4]" in cold.stderr and "2 ops, float32:" in cold.stdout
    assert int(cold.stdout.split("functions compiled")[0].split()[-1]) > 0
    warm = _precompile(tmp_path, "--ops", "exp", "relu", "--dtype", "float32", "--profile", "--top", "0")
    assert warm.returncode == 0, warm.stderr
    assert "sum: 0 signatures of 0 functions compiled in 0.0 s" in warm.stdout
    rows = [line.split() for line in warm.stdout.splitlines()[1:] if line.startswith(("glue.", "elementwise."))]
    assert ["glue.forward_exp", "0", "0.00", "0.00", "0.00", "1"] in rows
    assert {"glue.backward_relu_float32", "glue.execute"} <= {row[0] for row in rows if row[1] == "0"}


def test_precompile_example_compiles_what_the_example_runs(tmp_path):
    done = _precompile(tmp_path, "--example", "--jobs", "1")
    assert done.returncode == 0, done.stderr
    assert "the MLP example, float32:" in done.stdout
    first_step = _precompile(tmp_path, "--profile", "--run", "nbgrad.examples.mlp", "--epochs", "1")
    assert first_step.returncode == 0, first_step.stderr
    assert "test accuracy" in first_step.stdout
    assert "sum: 0 signatures of 0 functions compiled" in first_step.stdout


def _add_one(x):
    return x + 1


def test_njit_functions_save_to_the_cache_under_its_lock(monkeypatch):
    import contextlib

    held, saved = [], []

    @contextlib.contextmanager
    def recording(folder):
        held.append(folder)
        yield

    monkeypatch.setattr(jit, "_locked", recording)
    monkeypatch.setattr(jit.FunctionCache, "save_overload", lambda self, sig, data: saved.append(sig))
    function = jit.njit(_add_one)
    assert isinstance(function._cache, jit._LockedFunctionCache)
    function._cache.save_overload("signature", None)
    assert held == [function._cache.cache_path] and saved == ["signature"]


def _first_of(values, index):
    return values[index]


def test_a_call_from_compiled_code_compiles_once_for_any_constant_and_prange_index():
    from numba import prange

    callee = jit.njit(cache=False)(_first_of)

    @jit.njit(cache=False)
    def caller(values):
        total = callee(values, 0) + callee(values, 1)
        for i in prange(values.size):  # a uint64 index where parallel
            total += callee(values, i)
        return total

    assert caller(np.arange(3.0)) == 4.0
    assert [tuple(str(t) for t in sig) for sig in callee.unwrapped.signatures] == [("array(float64, 1d, C)", "int64")]
    assert callee.signatures == []  # compiled callers call the twin without the Python wrapper


SMALL_GRAPH = """
import numpy as np
import nbgrad as nb
import nbgrad.nn.functional as F
from nbgrad.kernels import linalg, movement, nn, reduce
x = nb.randn(16, 8, requires_grad=True)
w = nb.randn(4, 8, requires_grad=True)
b = nb.zeros(4, requires_grad=True)
y = F.linear(x, w, b)
loss = F.cross_entropy(y, nb.tensor(np.arange(16) % 4)) + y.softmax(1).sum() + y.max() + (y + b).sum()
loss += y[nb.tensor([0, 0, 1])].sum()
loss.backward()
twins = [linalg._bias_pass_threads, linalg.linear_fwd_threads, linalg.bias_add_fwd_threads, movement.take_bwd_threads,
         nn.softmax_fwd_threads, nn.softmax_bwd_threads, nn.cross_entropy_fwd_threads, reduce.sum_all_fwd_threads,
         reduce.select_fwd_threads]
print(sum(len(twin.signatures) + len(twin.unwrapped.signatures if twin.unwrapped else ()) for twin in twins),
      *x.grad.shape)
"""


def test_a_small_graph_compiles_no_threaded_kernel(tmp_path):
    done = run_python(SMALL_GRAPH, NBGRAD_CACHE_DIR=str(tmp_path), NBGRAD_QUIET="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "16", "8"]


BROADCASTS = """
import numpy as np
import nbgrad as nb
from nbgrad.ops import GENERATED
reducers = GENERATED.backwards.table[-2:]
x = nb.randn(4, 3, requires_grad=True)
(x * 2).sum().backward()
print(*(reducers != 0).astype(int))
b = nb.randn(3, requires_grad=True)
((x + b) * b).sum().backward()  # b broadcast twice: through add (its gradient passes through) and mul
xv, bv = x.detach().numpy(), b.detach().numpy()
print(*(reducers != 0).astype(int), np.allclose(b.grad.numpy(), (xv + 2 * bv).sum(0), atol=1e-5))
c = nb.randn(2, 1, dtype=nb.float64, requires_grad=True)
(c * nb.ones(2, 5, dtype=nb.float64)).sum().backward()
print(*(reducers != 0).astype(int), c.grad.numpy().ravel().tolist())
"""


def test_the_broadcast_reducer_compiles_only_once_a_graph_broadcasts_and_per_dtype(tmp_path):
    done = run_python(BROADCASTS, NBGRAD_CACHE_DIR=str(tmp_path), NBGRAD_QUIET="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["0 0", "1 0 True", "1 1 [5.0, 5.0]"]


AHEAD = """
import os, sys
import numpy as np
import nbgrad as nb
from nbgrad import _compile_ahead
from nbgrad.kernels import optim
from nbgrad.ops import GENERATED
nb.manual_seed(0)
model = nb.nn.Sequential(nb.nn.Linear(5, 8), nb.nn.Tanh(), nb.nn.Linear(8, 3))
never_stepped = nb.optim.Adam(model.parameters())
x, y = nb.randn(16, 5), nb.tensor(np.arange(16) % 3)
loss = nb.nn.functional.cross_entropy(model(x), y)
helper = _compile_ahead._helper.process
if sys.argv[1] == "kill" and helper is not None:
    helper.kill()
loss.backward()
grads = [round(float(p.grad.abs().sum()), 6) for p in model.parameters()]
if helper is not None and sys.argv[1] != "kill":
    _compile_ahead._helper.wait_job("optimizer 1 float32")  # asked when the optimizer was made
print(helper is not None, os.path.exists(optim.adam_step._cache._cache_file._index_path), *grads)
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the helper runs on machines with several cores only")
def test_a_first_run_compiles_ahead_in_a_helper_process_with_the_same_results(tmp_path):
    def run(folder, how, **env):
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("NBGRAD_", "NUMBA_CACHE_DIR"))}
        environment.update(env, NBGRAD_CACHE_DIR=str(tmp_path / folder), NBGRAD_QUIET="1")
        done = subprocess.run([sys.executable, "-c", AHEAD, how], env=environment, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    alone = run("alone", "plain", NBGRAD_COMPILE_AHEAD="0")
    helped = run("helped", "plain")
    assert alone[:2] == ["False", "False"]  # no helper, and nothing compiled the step that never ran
    assert helped[:2] == ["True", "True"]  # the helper compiled it meanwhile
    assert helped[2:] == alone[2:]
    assert run("helped", "plain")[0] == "False"  # the executor is in the cache now: no helper
    killed = run("killed", "kill")  # this process compiles alone what the helper did not
    assert killed[0] == "True" and killed[2:] == alone[2:]


def test_the_helper_reads_every_line_sent_at_once_then_leaves_when_idle_or_closed(monkeypatch):
    from nbgrad import _compile_ahead

    read, write = os.pipe()
    os.write(write, b"execute\noptimizer 1 float32\n")  # two lines in one read
    with os.fdopen(read) as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        assert list(_compile_ahead._lines(0.2)) == ["execute", "optimizer 1 float32"]  # then idle: it ends
        os.write(write, b"backward relu 4 0\n")
        os.close(write)
        assert list(_compile_ahead._lines(60)) == ["backward relu 4 0"]  # then closed: it ends at once


FORKED = """
import os
import numpy as np
import nbgrad as nb
from nbgrad import _compile_ahead
x = nb.randn(4, 3, requires_grad=True)
y = (x * 2).tanh()
started = _compile_ahead._helper.process is not None
pid = os.fork()
if pid == 0:  # the child has no helper: it compiles alone, and must not hang
    code = 0 if _compile_ahead._helper.process is None else 3
    nb.optim.SGD([x], lr=0.1)
    y.sum().backward()
    os._exit(code if x.grad is not None else 4)
_, status = os.waitpid(pid, 0)
y.sum().backward()
print(started, os.waitstatus_to_exitcode(status), round(float(x.grad.sum()), 4) != 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork") or (os.cpu_count() or 1) < 2, reason="fork, and several cores")
def test_a_process_forked_while_the_helper_runs_compiles_alone(tmp_path):
    done = run_python(FORKED, NBGRAD_CACHE_DIR=str(tmp_path), NBGRAD_QUIET="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "0", "True"]
