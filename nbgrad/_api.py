"""Everything ``nbgrad`` exports, loaded on first use (see ``nbgrad/__init__.py``)."""
from . import accelerator, autograd, backends, cuda, dtypes, nn, optim, random
from ._config import show_config
from ._formatting import set_printoptions
from ._tensor import Size, Tensor
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .compiler import compile
from .devices import device, get_default_device, set_default_device
from .dtypes import bool_ as bool
from .dtypes import dtype, float32, float64, get_default_dtype, int32, int64, set_default_dtype
from .factories import (
    arange,
    as_tensor,
    bernoulli,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    linspace,
    multinomial,
    normal,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    tensor,
    zeros,
    zeros_like,
)
from .ops import WITH_OUT as _WITH_OUT
from .ops import (
    abs,
    abs_,
    add,
    addmm,
    all,
    any,
    argmax,
    argmin,
    bmm,
    cat,
    chunk,
    clamp,
    clamp_,
    clip,
    clone,
    concat,
    concatenate,
    contiguous,
    cos,
    cos_,
    diagonal,
    div,
    divide,
    dot,
    eq,
    equal,
    erf,
    exp,
    exp_,
    expand,
    expm1,
    fill_,
    flatten,
    ge,
    ger,
    gt,
    le,
    log,
    log1p,
    log_,
    log_softmax,
    lt,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mm,
    mul,
    mv,
    narrow,
    ne,
    neg,
    neg_,
    norm,
    outer,
    permute,
    pow,
    pow_,
    relu,
    relu_,
    reshape,
    rsub,
    select,
    sigmoid,
    sigmoid_,
    sin,
    sin_,
    softmax,
    split,
    sqrt,
    sqrt_,
    squeeze,
    stack,
    std,
    sub,
    sum,
    swapaxes,
    swapdims,
    t,
    tanh,
    tanh_,
    transpose,
    true_divide,
    unbind,
    unfold,
    unsqueeze,
    var,
    view,
    where,
    zero_,
)
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state
from .serialization import load, save
from .tensortypes import BoolTensor, DoubleTensor, FloatTensor, IntTensor, LongTensor

globals().update(_WITH_OUT)  # nbgrad.add & co. take out= (the plain forms stay inside nbgrad)

float = float32
double = float64
long = int64
int = int32



def set_num_threads(n):
    """Threads for the parallel kernels, for the calling thread (Numba's setting is per thread);
    ``n`` from 1 to the cores, or ``NUMBA_NUM_THREADS`` when set. Matrix products use BLAS's own threads."""
    import builtins

    import numba

    if isinstance(n, builtins.bool) or not isinstance(n, builtins.int):  # this module's int is int32
        raise TypeError(f"set_num_threads: expected an int, got {type(n).__name__}")
    if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
        raise ValueError(f"set_num_threads: n must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {n}")
    numba.set_num_threads(n)


def get_num_threads():
    """Threads the parallel kernels use in the calling thread."""
    import numba

    return numba.get_num_threads()
