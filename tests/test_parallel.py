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
