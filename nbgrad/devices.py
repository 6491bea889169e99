"""Devices. nbgrad computes on the CPU: ``device`` is PyTorch's, and every ``device=``
argument goes through ``check``, which accepts the CPU and refuses anything else with one
clear error (``nbgrad.cuda.is_available()`` is False, so a script that asks first runs)."""

# PyTorch's device types, in the order of its error message
DEVICE_TYPES = ("cpu", "cuda", "ipu", "xpu", "mkldnn", "opengl", "opencl", "ideep", "hip", "ve", "fpga", "maia",
                "xla", "lazy", "vulkan", "mps", "meta", "hpu", "mtia", "privateuseone")


class DeviceUnavailable(AssertionError, RuntimeError):
    """A device nbgrad cannot compute on. An AssertionError, as PyTorch built without CUDA
    raises, and a RuntimeError, as one would expect."""


class device:
    """``device("cpu")``, ``device("cuda:0")``, ``device("cuda", 1)``: a device's type and index."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, device):
            self.type, self.index = type.type, type.index
            return
        if isinstance(type, int) and not isinstance(type, bool):  # device(0): the accelerator's first
            raise DeviceUnavailable("Cannot access accelerator device when none is available.")
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string or a device, got {_name(type)}")
        name, colon, number = type.partition(":")
        if name not in DEVICE_TYPES:
            raise RuntimeError(f"Expected one of {', '.join(DEVICE_TYPES)} device type at start of device string: "
                               f"{type}")
        if colon:
            if index is not None:
                raise RuntimeError(f"type (string) must not include an index because index was passed explicitly: "
                                   f"{type}")
            if not number.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(number)
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise TypeError(f"device(): index must be an int, got {_name(index)}")
        if index is not None and index < 0:
            raise RuntimeError(f"Device index must not be negative, got {index}")
        self.type, self.index = name, index

    def __eq__(self, other):
        return isinstance(other, device) and self.type == other.type and self.index == other.index

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __reduce__(self):
        return device, (self.type, self.index)

    def __enter__(self):  # ``with nbgrad.device("cpu"):`` as PyTorch's context manager
        return self

    def __exit__(self, *exc):
        return False


def _name(value):
    return type(value).__name__


CPU = device("cpu")


def check(where, op):
    """The CPU when ``where`` (a device, its name, or None) names it; else ``DeviceUnavailable``."""
    if where is None or where is CPU:
        return CPU
    found = where if isinstance(where, device) else device(where)
    if found.type != "cpu":
        raise DeviceUnavailable(f"{op}: nbgrad computes on the CPU only, and device '{found}' is not available "
                                f"(nbgrad.cuda.is_available() is False): use device='cpu'")
    return CPU


def set_default_device(where):
    """Only the CPU can be the default device (``None`` restores it)."""
    check(where, "set_default_device")


def get_default_device():
    return CPU
