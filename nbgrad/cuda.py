"""``nbgrad.cuda``: what a script asks before it chooses a GPU. nbgrad has none: ``is_available()``
is False and ``device_count()`` 0; seeding does nothing (as PyTorch without a GPU); anything that
needs a GPU raises the devices' error."""
from .devices import DeviceUnavailable


def _unavailable(name):
    def unavailable(*args, **kwargs):
        raise DeviceUnavailable(f"nbgrad.cuda.{name}: nbgrad computes on the CPU only; no CUDA device is "
                                f"available (nbgrad.cuda.is_available() is False)")

    unavailable.__name__ = name
    return unavailable


def is_available():
    return False


def device_count():
    return 0


def is_initialized():
    return False


def is_bf16_supported(including_emulation=True):
    return False


def manual_seed(seed):
    """Nothing to seed: there is no GPU (nbgrad.manual_seed seeds the CPU generator)."""


manual_seed_all = manual_seed


def seed():
    pass


seed_all = seed


def empty_cache():
    pass


def memory_allocated(device=None):
    return 0


max_memory_allocated = memory_reserved = max_memory_reserved = memory_allocated

current_device = _unavailable("current_device")
set_device = _unavailable("set_device")
get_device_name = _unavailable("get_device_name")
get_device_properties = _unavailable("get_device_properties")
get_device_capability = _unavailable("get_device_capability")
synchronize = _unavailable("synchronize")
init = _unavailable("init")
