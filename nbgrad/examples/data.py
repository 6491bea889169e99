"""The 8x8 handwritten digits bundled with nbgrad, for the examples.

1,797 images of 10 classes from the UCI "Optical Recognition of Handwritten
Digits" data set (E. Alpaydin, C. Kaynak, 1998; CC BY 4.0, see DIGITS_LICENSE.md
beside this file).
"""
import gzip
from pathlib import Path

import numpy as np

from .. import dtypes, factories

DIGITS = Path(__file__).with_name("digits.csv.gz")


def load_digits(dtype=dtypes.float32, test_fraction=0.2, seed=0):
    """``(x_train, y_train, x_test, y_test)``: pixels scaled to [0, 1] in ``dtype``, labels int64,
    split by a permutation drawn from ``seed`` (the same split on every call)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_digits: test_fraction must be between 0 and 1, got {test_fraction}")
    with gzip.open(DIGITS, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    order = np.random.default_rng(seed).permutation(len(table))
    n_test = int(round(len(table) * test_fraction))
    pixels = (table[:, :-1] / 16.0).astype(dtypes.as_dtype(dtype).numpy)
    labels = np.ascontiguousarray(table[:, -1])
    test, train = order[:n_test], order[n_test:]
    return tuple(factories.from_numpy(np.ascontiguousarray(a)) for a in
                 (pixels[train], labels[train], pixels[test], labels[test]))
