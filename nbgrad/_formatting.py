"""PyTorch-style ``repr`` of tensors: ``tensor([1.0000, 2.5000], requires_grad=True)``."""
import numpy as np

from . import dtypes

THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80


def _float_formatter(values):
    """One format for all elements, chosen like PyTorch's _Formatter."""
    finite = values[np.isfinite(values)]
    nonzero = np.abs(finite[finite != 0])
    if finite.size and np.all(finite == np.round(finite)):  # integral values print as "3."
        sci = nonzero.size and nonzero.max() > 1e8
        return _pad((lambda v: f"{v:.4e}") if sci else (lambda v: f"{v:.0f}."), values)
    sci = nonzero.size and (nonzero.max() / nonzero.min() > 1000 or nonzero.max() > 1e8 or nonzero.min() < 1e-4)
    return _pad((lambda v: f"{v:.4e}") if sci else (lambda v: f"{v:.4f}"), values)


def _pad(fmt, values):
    def text(v):
        return fmt(v) if np.isfinite(v) else f"{v}"

    width = max((len(text(v)) for v in values.flat), default=0)
    return lambda v: text(v).rjust(width)


def _sample(array):
    """The elements that will be shown (edges only, for a summarized tensor)."""
    if array.size <= THRESHOLD:
        return array
    index = tuple(np.r_[0:EDGEITEMS, -EDGEITEMS:0] if n > 2 * EDGEITEMS else slice(None) for n in array.shape)
    return array[np.ix_(*[np.atleast_1d(np.arange(n)[i]) for n, i in zip(array.shape, index)])]


def format_tensor(array, dtype, suffixes):
    """``tensor(...)`` text for ``array``; ``suffixes`` like ``["requires_grad=True"]``."""
    prefix = "tensor("
    if array.size == 0:
        body = "[]"
        if array.ndim != 1:
            suffixes = [f"size={tuple(array.shape)}"] + suffixes
    else:
        if dtype.is_floating_point:
            formatter = {"float_kind": _float_formatter(_sample(array).astype(np.float64))}
        elif dtype is dtypes.bool_:
            formatter = {"bool": lambda v: "True" if v else "False"}
        else:
            width = max(len(str(v)) for v in _sample(array).flat)
            formatter = {"int": lambda v: str(v).rjust(width)}
        body = np.array2string(
            array, separator=", ", prefix=prefix, formatter=formatter,
            threshold=THRESHOLD, edgeitems=EDGEITEMS, max_line_width=LINEWIDTH,
        )
    if dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
        suffixes = suffixes + [f"dtype={dtype!r}"]
    return prefix + ", ".join([body] + suffixes) + ")"
