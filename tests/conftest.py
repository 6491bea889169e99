import numpy as np
import pytest

import nbgrad


@pytest.fixture(autouse=True)
def _seed():
    nbgrad.manual_seed(0)
    np.random.seed(0)


def torch_or_skip():
    return pytest.importorskip("torch")
