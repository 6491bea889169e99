"""PyTorch-style ``repr`` of tensors: ``tensor([1.0000, 2.5000], requires_grad=True)``."""
import numpy as np

from . import dtypes

THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80


def _float_formatter(values):
    """One format for all elements, chosen like PyTorch's _Formatter: widths come from the
    nonzero finite values, and nan, inf and zeros are padded to them."""
    finite = values[np.isfinite(values)]
    nonzero = np.abs(finite[finite != 0])
    ratio_large = nonzero.size and (nonzero.max() / nonzero.min() > 1000 or nonzero.max() > 1e8)
    if finite.size and np.all(finite == np.round(finite)):  # integral values print as "3."
        fmt = (lambda v: f"{v:.4e}") if ratio_large else (lambda v: f"{v:.0f}.")
    else:
        sci = ratio_large or (nonzero.size and nonzero.min() < 1e-4)
        fmt = (lambda v: f"{v:.4e}") if sci else (lambda v: f"{v:.4f}")
    width = max((len(fmt(v)) for v in finite[finite != 0]), default=1)

    def text(v):
        return (fmt(v) if np.isfinite(v) else f"{v}").rjust(width)

    return text


def _sample(array):
    """The elements that will be shown (edges only, for a summarized tensor)."""
    if array.size <= THRESHOLD:
        return array
    index = tuple(np.r_[0:EDGEITEMS, -EDGEITEMS:0] if n > 2 * EDGEITEMS else slice(None) for n in array.shape)
    return array[np.ix_(*[np.atleast_1d(np.arange(n)[i]) for n, i in zip(array.shape, index)])]


def format_tensor(array, dtype, suffixes):
    """``tensor(...)`` text for ``array``; ``suffixes`` like ``["requires_grad=True"]``."""
    prefix = "tensor("
    extra = []
    if array.size == 0:
        body = "[]"
        if array.ndim != 1:
            extra.append(f"size={tuple(array.shape)}")
    else:
        if dtype.is_floating_point:
            formatter = {"float_kind": _float_formatter(_sample(array).astype(np.float64))}
        elif dtype is dtypes.bool_:
            width = 4 if _sample(array).all() else 5  # "False" sets the width when present
            formatter = {"bool": lambda v: ("True" if v else "False").rjust(width)}
        else:
            width = max(len(str(v)) for v in _sample(array).flat)
            formatter = {"int": lambda v: str(v).rjust(width)}
        body = np.array2string(
            array, separator=", ", prefix=prefix, formatter=formatter,
            threshold=THRESHOLD, edgeitems=EDGEITEMS, max_line_width=LINEWIDTH,
        )
    if dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
        extra.append(f"dtype={dtype!r}")
    return prefix + ", ".join([body] + extra + suffixes) + ")"
