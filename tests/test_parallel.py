"""Big kernels run on several threads; their results must not depend on how many."""
import numba
import numpy as np
import pytest
from nbgrad.kernels.jit import PARALLEL_MIN, PARALLEL_MIN_LIGHT

import nbgrad as nb
import nbgrad.nn.functional as F

pytestmark = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one thread only")


def big_graph():
    nb.manual_seed(0)
    x = nb.randn(200, PARALLEL_MIN_LIGHT // 100, requires_grad=True)  # above both thresholds
    y = x.exp() * x.sigmoid() + x.sin() / (x * x + 1)
    s = y.softmax(1) + F.log_softmax(y, 0) + y.max(1, keepdim=True).values
    rows = nb.tensor(np.arange(400) % 200)
    loss = s.sum() + (s[rows] * 2).mean() + F.cross_entropy(s, nb.tensor(np.arange(200) % 300))
    loss.backward()
    return loss.item(), x.grad.numpy().copy()


def test_results_do_not_depend_on_the_number_of_threads():
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = big_graph()
        numba.set_num_threads(2)
        two = big_graph()
    finally:
        numba.set_num_threads(before)
    assert one[0] == two[0]
    np.testing.assert_array_equal(one[1], two[1])


def test_big_and_small_kernels_agree():
    values = np.random.default_rng(0).standard_normal(PARALLEL_MIN * 3)
    big = nb.tensor(values, requires_grad=True)
    y = (big.exp() * 0.5).sum()
    y.backward()
    np.testing.assert_allclose(y.item(), 0.5 * np.exp(values).sum(), rtol=1e-12)
    np.testing.assert_allclose(big.grad.numpy(), 0.5 * np.exp(values), rtol=1e-15)


def test_a_kernel_and_its_threaded_twin_give_the_same_result():
    from nbgrad.kernels import nn, reduce

    values = np.random.default_rng(1).standard_normal(PARALLEL_MIN_LIGHT + 7).astype(np.float32)
    serial, threaded = np.zeros(1, np.float32), np.zeros(1, np.float32)
    reduce.sum_all_fwd(values, 0.5, serial)
    reduce.sum_all_fwd_threads(values, 0.5, threaded)
    assert serial[0] == threaded[0]
    logits = values[:PARALLEL_MIN * 10].reshape(-1, 10)
    target = np.arange(logits.shape[0]) % 10
    results = []
    for kernel in (nn.cross_entropy_fwd, nn.cross_entropy_fwd_threads):
        prob, out = np.empty(logits.size, np.float32), np.empty(1, np.float32)
        kernel(logits.reshape(-1), target, 10, -100, 1, prob, out)
        results.append((prob, out))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    assert results[0][1][0] == results[1][1][0]
