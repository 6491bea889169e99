"""Tensor printing exactly as PyTorch's ``torch/_tensor_str.py``: ``tensor([1.0000, 2.5000],
requires_grad=True)``, with its print options (``set_printoptions``), summarisation, line
wrapping and suffixes, and ``Tensor.__format__``.

Each function mirrors the PyTorch function of the same name, on the tensor's NumPy array.
"""
import contextlib
import dataclasses
import math
import sys

import numpy as np

from . import dtypes


@dataclasses.dataclass
class _PrinterOptions:
    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: object = None  # None: chosen per tensor; True or False: forced


PRINT_OPTS = _PrinterOptions()


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None, profile=None,
                     sci_mode=None):
    """Set the options for printing tensors, as ``torch.set_printoptions``.

    ``precision``: digits after the point (4); ``threshold``: element count above which a tensor
    is summarised (1000); ``edgeitems``: items kept at each end of each dimension when
    summarised (3); ``linewidth``: characters per line (80); ``profile``: ``"default"``,
    ``"short"`` or ``"full"`` presets, overridden by the other arguments; ``sci_mode``: True or
    False forces scientific notation on or off, None (the default, and what any call that does
    not give it sets) chooses per tensor.
    """
    if profile is not None:
        if profile == "default":
            PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems = 4, 1000, 3
            PRINT_OPTS.linewidth = 80
        elif profile == "short":
            PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems = 2, 1000, 2
            PRINT_OPTS.linewidth = 80
        elif profile == "full":
            PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems = 4, math.inf, 3
            PRINT_OPTS.linewidth = 80
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions():
    """The current print options, as a dict that ``set_printoptions(**options)`` accepts."""
    return dataclasses.asdict(PRINT_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs):
    """Context manager: ``set_printoptions(**kwargs)`` inside, the previous options after."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


class _Formatter:
    """One format and width for every element of a tensor (PyTorch's ``_Formatter``): widths
    come from the nonzero finite values; integral floats print as ``3.``; scientific notation
    when the magnitudes span more than 1000, exceed 1e8 or go below 1e-4."""

    def __init__(self, array, floating):
        self.floating_dtype = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = array.reshape(-1)
        if not floating:
            for value in flat.tolist():
                self.max_width = max(self.max_width, len(f"{value}"))
            return
        values = flat[np.isfinite(flat) & (flat != 0)]
        if values.size == 0:
            return
        magnitudes = np.abs(values.astype(np.float64))
        smallest, largest = magnitudes.min(), magnitudes.max()
        self.int_mode = bool(np.all(values == np.ceil(values)))
        if PRINT_OPTS.sci_mode is None:
            with np.errstate(over="ignore"):  # 1e300 / 5e-324 is inf, as in PyTorch
                ratio = largest / smallest
            self.sci_mode = bool(ratio > 1000.0 or largest > 1.0e8 or smallest < 1.0e-4)
        else:
            self.sci_mode = PRINT_OPTS.sci_mode
        precision = PRINT_OPTS.precision
        if self.sci_mode:
            widths = (len(f"{value:.{precision}e}") for value in values.tolist())
        elif self.int_mode:  # the point appended to integral floats counts in the width
            widths = (len(f"{value:.0f}") + 1 for value in values.tolist())
        else:
            widths = (len(f"{value:.{precision}f}") for value in values.tolist())
        self.max_width = max(self.max_width, max(widths))

    def width(self):
        return self.max_width

    def format(self, value):
        if self.floating_dtype:
            if self.sci_mode:
                text = f"{value:{self.max_width}.{PRINT_OPTS.precision}e}"
            elif self.int_mode:
                text = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    text += "."
            else:
                text = f"{value:.{PRINT_OPTS.precision}f}"
        else:
            text = f"{value}"
        return (self.max_width - len(text)) * " " + text


def _vector_str(array, indent, summarize, formatter):
    element_length = formatter.width() + 2  # the element with its ", "
    elements_per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / element_length))
    edge = PRINT_OPTS.edgeitems
    if summarize and not edge:
        data = ["..."]
    elif summarize and array.shape[0] > 2 * edge:
        data = ([formatter.format(v) for v in array[:edge].tolist()] + [" ..."]
                + [formatter.format(v) for v in array[-edge:].tolist()])
    else:
        data = [formatter.format(v) for v in array.tolist()]
    lines = [", ".join(data[i:i + elements_per_line]) for i in range(0, len(data), elements_per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str_with_formatter(array, indent, summarize, formatter):
    dim = array.ndim
    if dim == 0:
        return formatter.format(array.item())
    if dim == 1:
        return _vector_str(array, indent, summarize, formatter)
    edge = PRINT_OPTS.edgeitems
    if summarize and array.shape[0] > 2 * edge:
        slices = ([_tensor_str_with_formatter(array[i], indent + 1, summarize, formatter) for i in range(edge)]
                  + ["..."]
                  + [_tensor_str_with_formatter(array[i], indent + 1, summarize, formatter)
                     for i in range(len(array) - edge, len(array))])
    else:
        slices = [_tensor_str_with_formatter(array[i], indent + 1, summarize, formatter)
                  for i in range(array.shape[0])]
    return "[" + ("," + "\n" * (dim - 1) + " " * (indent + 1)).join(slices) + "]"


def _get_summarized_data(array):
    """The elements a summarised tensor shows (those its widths are chosen from)."""
    edge = PRINT_OPTS.edgeitems
    if array.ndim == 0:
        return array
    if array.ndim == 1:
        if array.shape[0] > 2 * edge:
            return np.concatenate((array[:edge], array[-edge:]))  # all of it when edge is 0, as PyTorch
        return array
    if not edge:
        return np.empty([0] * array.ndim, array.dtype)
    rows = range(array.shape[0])
    if array.shape[0] > 2 * edge:
        rows = list(range(edge)) + list(range(len(array) - edge, len(array)))
    return np.stack([_get_summarized_data(array[i]) for i in rows])


def _tensor_str(array, dtype, indent):
    if array.size == 0:
        return "[]"
    summarize = array.size > PRINT_OPTS.threshold
    formatter = _Formatter(_get_summarized_data(array) if summarize else array, dtype.is_floating_point)
    return _tensor_str_with_formatter(array, indent, summarize, formatter)


def _add_suffixes(tensor_str, suffixes, indent, force_newline):
    """``, suffix`` each, on a line of its own (indented) where the line would pass linewidth."""
    tensor_strs = [tensor_str]
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1  # PyTorch's count, off by 2 on line 1
    for suffix in suffixes:
        # "dtype=nbgrad.float64" breaks where PyTorch's "dtype=torch.float64" does (PyTorch's
        # count is 2 long, so the line still ends by column 79)
        suffix_len = len(suffix.replace("nbgrad.", "torch."))
        if force_newline or last_line_len + suffix_len + 2 > PRINT_OPTS.linewidth:
            tensor_strs.append(",\n" + " " * indent + suffix)
            last_line_len = indent + suffix_len
            force_newline = False
        else:
            tensor_strs.append(", " + suffix)
            last_line_len += suffix_len + 2
    tensor_strs.append(")")
    return "".join(tensor_strs)


def _is_plain(tensor):
    """A Tensor or Parameter prints as ``tensor(``, another subclass with its class name."""
    from ._tensor import Tensor

    modules = sys.modules.get("nbgrad.nn.modules")
    return type(tensor) is Tensor or (modules is not None and type(tensor) is modules.Parameter)


def tensor_repr(tensor):
    """``repr(tensor)``, as PyTorch's ``torch._tensor_str._str``."""
    prefix = "tensor(" if _is_plain(tensor) else f"{type(tensor).__name__}("
    indent = len(prefix)
    suffixes = []
    device = tensor.device
    if device.type != "cpu":
        suffixes.append(f"device='{device}'")
    array = tensor._data
    dtype = tensor.dtype
    if array.size == 0:
        if array.ndim != 1:  # the shape is shown unless (0,), as NumPy
            suffixes.append(f"size={tuple(array.shape)}")
        if dtype is not dtypes.get_default_dtype():  # no element tells an empty tensor's dtype
            suffixes.append(f"dtype={dtype}")
        tensor_str = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={tuple(array.shape)}")
        if dtype not in (dtypes.get_default_dtype(), dtypes.int64, dtypes.bool_):
            suffixes.append(f"dtype={dtype}")
        tensor_str = _tensor_str(array, dtype, indent)
    grad_fn = tensor.grad_fn
    if grad_fn is not None:
        suffixes.append(f"grad_fn=<{type(grad_fn).__name__}>")
    elif tensor.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + tensor_str, suffixes, indent, force_newline=False)


def tensor_format(tensor, format_spec):
    """``format(tensor, spec)``, as PyTorch's ``Tensor.__format__``: a 0-d Tensor formats as its
    Python number; otherwise an empty spec gives ``str(tensor)`` and any other is a TypeError."""
    from ._tensor import Tensor

    if tensor._data.ndim == 0 and type(tensor) is Tensor:
        return tensor._data.item().__format__(format_spec)
    return object.__format__(tensor, format_spec)

