"""Every BLAS nbgrad can use gives NumPy's products: each product family, through the kernels
themselves, with the BLAS's threads and on one thread, for every BLAS installed here."""
import os
import subprocess
import sys

import numpy as np
import pytest
from nbgrad.kernels import blas, jit, linalg

import nbgrad as nb


def available():
    choices = ["openblas", "scipy"]
    if jit.mkl_library() is not None:
        choices.insert(0, "mkl")
    return choices


@pytest.fixture(params=available())
def table(request):
    found = blas.find_blas(request.param)
    assert found.name == request.param
    return found


SHAPES = [  # batch_a, batch_b, m, k, n (the gradients are in the operands' own layout)
    (1, 1, 3, 4, 5), (2, 2, 3, 4, 5), (3, 1, 2, 3, 4), (1, 3, 2, 3, 4),  # 2-D, batched, a shared operand
    (1, 1, 1, 7, 1), (1, 1, 64, 10, 64), (1, 1, 300, 300, 300),  # a dot, skinny, big enough for threads
    (1, 1, 0, 3, 4), (1, 1, 3, 0, 4), (0, 1, 3, 4, 5),  # empty sizes and an empty batch
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_a, batch_b, m, k, n", SHAPES)
@pytest.mark.parametrize("trans_a, trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])  # operands stored transposed
def test_matmul_kernels_match_numpy(table, dtype, batch_a, batch_b, m, k, n, trans_a, trans_b):
    rng = np.random.default_rng(0)
    batch = 0 if 0 in (batch_a, batch_b) else max(batch_a, batch_b)
    a = rng.normal(size=(batch_a, m, k)).astype(dtype)
    b = rng.normal(size=(batch_b, k, n)).astype(dtype)
    g = rng.normal(size=(batch, m, n)).astype(dtype)
    gemm = table.table(dtype)
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    stored_a = np.swapaxes(a, 1, 2).copy() if trans_a else a  # the memory of a transposed view
    stored_b = np.swapaxes(b, 1, 2).copy() if trans_b else b
    layout_a, layout_b = 2 * batch_a + trans_a, 2 * batch_b + trans_b
    out = np.empty(batch * m * n, dtype)
    linalg.matmul_fwd(stored_a.reshape(-1), stored_b.reshape(-1), layout_a, layout_b, m, k, n, gemm, out)
    np.testing.assert_allclose(out.reshape(batch, m, n), np.matmul(a, b)[:batch], **tolerance)
    expected_a = np.matmul(g, np.swapaxes(b, 1, 2))
    expected_b = np.matmul(np.swapaxes(a, 1, 2), g)
    if batch_a == 1:
        expected_a = expected_a.sum(0, keepdims=True)
    if batch_b == 1:
        expected_b = expected_b.sum(0, keepdims=True)
    for fresh, start in ((False, 1.0), (True, np.nan)):  # accumulate, or overwrite stale bytes
        ga = np.full(batch_a * m * k, start, dtype)
        gb = np.full(batch_b * k * n, start, dtype)
        linalg.matmul_bwd_a(g.reshape(-1), stored_b.reshape(-1), layout_a, layout_b, m, k, n, gemm, fresh, ga)
        linalg.matmul_bwd_b(g.reshape(-1), stored_a.reshape(-1), layout_a, layout_b, m, k, n, gemm, fresh, gb)
        base = 0.0 if fresh else 1.0
        np.testing.assert_allclose(ga.reshape(batch_a, m, k), base + expected_a, **tolerance)
        np.testing.assert_allclose(gb.reshape(batch_b, k, n), base + expected_b, **tolerance)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(4, 3, 2), (512, 64, 10), (300, 300, 300), (0, 3, 2), (4, 0, 2)])
def test_linear_kernels_match_numpy(table, dtype, m, k, n):
    rng = np.random.default_rng(1)
    x, w, bias, g = (rng.normal(size=s).astype(dtype) for s in ((m, k), (n, k), (n,), (m, n)))
    gemm = table.table(dtype)
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for threads_from in (0, 1 << 62):  # the bias passes on threads, and serially
        out = np.empty(m * n, dtype)
        linalg.linear_fwd(x.reshape(-1), w.reshape(-1), bias, m, k, n, gemm, threads_from, out)
        np.testing.assert_allclose(out.reshape(m, n), x @ w.T + bias, **tolerance)
        gb = np.ones(n, dtype)
        linalg.linear_bwd_b(g.reshape(-1), m, n, gb)
        np.testing.assert_allclose(gb, 1 + g.sum(0), **tolerance)
        added = np.empty(m * n, dtype)
        linalg.bias_add_fwd(out, bias, m, n, threads_from, added)
        np.testing.assert_allclose(added.reshape(m, n), x @ w.T + 2 * bias, **tolerance)
    gx, gw = np.full(m * k, np.nan, dtype), np.full(n * k, np.nan, dtype)
    linalg.linear_bwd_x(g.reshape(-1), w.reshape(-1), m, k, n, gemm, True, gx)
    linalg.linear_bwd_w(g.reshape(-1), x.reshape(-1), m, k, n, gemm, True, gw)
    np.testing.assert_allclose(gx.reshape(m, k), g @ w, **tolerance)
    np.testing.assert_allclose(gw.reshape(n, k), g.T @ x, **tolerance)


def test_openblas_runs_small_and_skinny_products_on_one_thread():
    table = blas.find_blas("openblas").tables[np.dtype(np.float32)]
    if not table[blas.SET_THREADS]:
        pytest.skip("this OpenBLAS cannot set threads per call (before 0.3.27)")
    assert blas.one_thread(512, 512, 10, table)  # summing over 10 terms: its threads cost more than they give
    assert not blas.one_thread(512, 10, 512, table) and not blas.one_thread(512, 512, 512, table)
    assert not blas.one_thread(32, 32, 10, table)  # OpenBLAS runs it on one thread itself: no call


def test_the_choice_follows_nbgrad_blas():
    code = "import nbgrad as nb; nb.ones(1); from nbgrad import ops; print(ops.BLAS.name)"
    for choice in available():
        done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, NBGRAD_BLAS=choice),
                              capture_output=True, text=True, timeout=300)
        assert done.stdout.strip() == choice, done.stderr
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, NBGRAD_BLAS="atlas"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "NBGRAD_BLAS='atlas'" in done.stderr


@pytest.mark.parametrize("vendor, expected", [("GenuineIntel", "mkl"), ("", "mkl"), ("AuthenticAMD", "openblas")])
def test_mkl_is_the_default_on_intel_cpus_only(monkeypatch, vendor, expected):
    monkeypatch.delenv("NBGRAD_BLAS", raising=False)
    monkeypatch.setattr(jit, "mkl_library", lambda: "/site-packages/lib/libmkl_rt.so.2")
    monkeypatch.setattr(jit, "cpu_vendor", lambda: vendor)
    assert jit.blas_choice() == expected
    monkeypatch.setattr(jit, "mkl_library", lambda: None)
    assert jit.blas_choice() == "openblas"
    monkeypatch.setenv("NBGRAD_BLAS", "mkl")
    assert jit.blas_choice() == "mkl"


def test_the_cpu_vendor_is_read():
    assert isinstance(jit.cpu_vendor(), str)
    if os.path.exists("/proc/cpuinfo") and "vendor_id" in open("/proc/cpuinfo").read():
        assert jit.cpu_vendor()


def test_show_config_says_what_chose_openblas_kernels(monkeypatch):
    # The variable is only read here: OpenBLAS loaded long before (tests must not change its kernels).
    from nbgrad import _config

    class Used:
        kernels = "Haswell"

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    said = _config._kernels(Used)
    assert said.startswith("Haswell (OPENBLAS_CORETYPE=Haswell chose them")
    assert ("AVX-512" in said) == blas.cpu_has_avx512()
    Used.kernels = "SkylakeX"
    monkeypatch.setenv("OPENBLAS_CORETYPE", "SkylakeX")
    assert "AVX-512" not in _config._kernels(Used)
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert _config._kernels(Used) == "SkylakeX (OpenBLAS's choice for this CPU)"


def test_show_config_names_openblas_kernels(capsys):
    from nbgrad import ops

    nb.show_config()
    kernels = [line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("kernels:")]
    assert len(kernels) == (1 if ops.BLAS.kernels else 0)
    if kernels:
        assert ops.BLAS.kernels in kernels[0]


def test_show_config_says_what_is_in_use(capsys):
    nb.show_config()
    printed = capsys.readouterr().out
    from nbgrad import ops

    for expected in ("nbgrad", "NumPy", "Numba", "BLAS", ops.BLAS.name, "layer", "cache"):
        assert expected in printed


def test_nbgrad_blas_mkl_without_the_wheel_says_how_to_install(monkeypatch):
    monkeypatch.setattr(jit, "mkl_library", lambda: None)
    with pytest.raises(RuntimeError, match=r'pip install -e "\.\[mkl\]"'):
        blas.find_blas("mkl")


COEXIST = """
import threading
import numpy as np
{first}
{second}
rng = np.random.default_rng(0)
a, b = (rng.standard_normal((300, 300)).astype(np.float32) for _ in range(2))
expected = a.astype(np.float64) @ b
def nb_products(results):
    for _ in range(5):
        x, w = nb.tensor(a, requires_grad=True), nb.tensor(b, requires_grad=True)
        y = x @ w
        y.sum().backward()
        results.append(np.abs(y.detach().numpy() - expected).max() < 1e-3
                       and np.allclose(x.grad.numpy(), b.sum(1), rtol=1e-4, atol=1e-3))
results = []
workers = [threading.Thread(target=nb_products, args=(results,)) for _ in range(2)]
for worker in workers:
    worker.start()
for _ in range(5):  # PyTorch's products at the same time, on its own threads
    results.append(np.abs((torch.from_numpy(a) @ torch.from_numpy(b)).numpy() - expected).max() < 1e-3)
for worker in workers:
    worker.join()
print(len(results), all(results))
"""


@pytest.mark.parametrize("torch_first", [True, False])
def test_the_blas_threads_coexist_with_pytorch_in_one_process(torch_first):
    pytest.importorskip("torch")
    imports = ["import torch", "import nbgrad as nb; nb.ones(1)"]
    first, second = imports if torch_first else imports[::-1]
    for choice in available():
        done = subprocess.run([sys.executable, "-c", COEXIST.format(first=first, second=second)],
                              env=dict(os.environ, NBGRAD_BLAS=choice), capture_output=True, text=True, timeout=300)
        assert done.stdout.split() == ["15", "True"], (choice, done.stderr[-2000:])


def test_an_mkl_that_fails_to_load_falls_back_to_openblas_unless_asked_for(monkeypatch):
    def broken():
        raise OSError("libmkl_rt.so.2: cannot open shared object file")

    monkeypatch.setattr(blas, "_mkl", broken)
    monkeypatch.setattr(jit, "BLAS", "mkl")
    monkeypatch.delenv("NBGRAD_BLAS", raising=False)
    with pytest.warns(UserWarning, match="MKL could not be loaded"):
        assert blas.find_blas().name in ("openblas", "scipy")
    with pytest.raises(RuntimeError, match="NBGRAD_BLAS=mkl, but MKL could not be loaded"):
        blas.find_blas("mkl")
