"""Elementwise kernels over flat contiguous buffers: each ``*_fwd`` then its backward.

Backward kernels accumulate into the input's gradient (``gx += ...``); one that
takes ``fresh`` overwrites it instead when ``fresh`` is true. Binary
kernels see inputs already broadcast to the output's shape; the executor sums
gradients back to each input's shape.
"""
import math

from .jit import njit


@njit
def neg_fwd(x, out):
    """out = -x"""
    for i in range(out.size):
        out[i] = -x[i]


@njit
def neg_bwd(g, fresh, gx):
    """gx -= g"""
    if fresh:
        for i in range(g.size):
            gx[i] = -g[i]
        return
    for i in range(g.size):
        gx[i] -= g[i]


@njit
def identity_bwd(g, fresh, gx):
    """gx += g (add, views, reshape)"""
    if fresh:
        for i in range(g.size):
            gx[i] = g[i]
        return
    for i in range(g.size):
        gx[i] += g[i]


@njit
def zero_bwd(g, gx):
    """gx += 0: the input's values were overwritten (zero_, fill_, copy_)"""


@njit
def exp_fwd(x, out):
    """out = exp(x)"""
    for i in range(out.size):
        out[i] = math.exp(x[i])


@njit
def exp_bwd(g, out, gx):
    """gx += g * exp(x), read from the saved output"""
    for i in range(g.size):
        gx[i] += g[i] * out[i]


@njit
def log_fwd(x, out):
    """out = log(x); log(0) = -inf, log(<0) = nan"""
    for i in range(out.size):
        v = x[i]
        out[i] = math.log(v) if v > 0 else (-math.inf if v == 0 else math.nan)


@njit
def log_bwd(g, x, gx):
    """gx += g / x"""
    for i in range(g.size):
        gx[i] += g[i] / x[i]


@njit
def sqrt_fwd(x, out):
    """out = sqrt(x)"""
    for i in range(out.size):
        v = x[i]
        out[i] = math.sqrt(v) if v >= 0 else math.nan


@njit
def sqrt_bwd(g, out, gx):
    """gx += g / (2 sqrt(x))"""
    for i in range(g.size):
        gx[i] += g[i] / (2 * out[i])


@njit
def tanh_fwd(x, out):
    """out = tanh(x)"""
    for i in range(out.size):
        out[i] = math.tanh(x[i])


@njit
def tanh_bwd(g, out, gx):
    """gx += g (1 - tanh(x)^2)"""
    for i in range(g.size):
        gx[i] += g[i] * (1 - out[i] * out[i])


@njit
def erf_fwd(x, out):
    """out = erf(x)"""
    for i in range(out.size):
        out[i] = math.erf(x[i])


@njit
def erf_bwd(g, x, gx):
    """gx += g 2/sqrt(pi) exp(-x^2)"""
    c = 2 / math.sqrt(math.pi)
    for i in range(g.size):
        v = x[i]
        gx[i] += g[i] * c * math.exp(-v * v)


@njit
def log1p_fwd(x, out):
    """out = log(1 + x), exact for small x; log1p(-1) = -inf, log1p(<-1) = nan"""
    for i in range(out.size):
        v = x[i]
        out[i] = math.log1p(v) if v > -1 else (-math.inf if v == -1 else math.nan)


@njit
def log1p_bwd(g, x, gx):
    """gx += g / (1 + x)"""
    for i in range(g.size):
        gx[i] += g[i] / (x[i] + 1)


@njit
def expm1_fwd(x, out):
    """out = exp(x) - 1, exact for small x"""
    for i in range(out.size):
        out[i] = math.expm1(x[i])


@njit
def expm1_bwd(g, x, gx):
    """gx += g exp(x), from x: out + 1 loses exp(x) to rounding for x below -1 (elu's gradient)"""
    for i in range(g.size):
        gx[i] += g[i] * math.exp(x[i])


@njit
def sigmoid_fwd(x, out):
    """out = 1 / (1 + exp(-x)), without overflow for large |x|"""
    for i in range(out.size):
        v = x[i]
        if v >= 0:
            out[i] = 1 / (1 + math.exp(-v))
        else:
            e = math.exp(v)
            out[i] = e / (1 + e)


@njit
def sigmoid_bwd(g, out, gx):
    """gx += g s (1 - s)"""
    for i in range(g.size):
        gx[i] += g[i] * out[i] * (1 - out[i])


@njit
def relu_fwd(x, out):
    """out = max(x, 0); NaN stays NaN"""
    for i in range(out.size):
        v = x[i]
        out[i] = 0 if v < 0 else v


@njit
def relu_bwd(g, out, fresh, gx):
    """gx += g where x > 0 (gx = that, if ``fresh``: gx holds no gradient yet)"""
    if fresh:
        for i in range(g.size):
            gx[i] = g[i] if out[i] > 0 else 0
        return
    for i in range(g.size):
        if out[i] > 0:
            gx[i] += g[i]


@njit
def abs_fwd(x, out):
    """out = |x|"""
    for i in range(out.size):
        out[i] = abs(x[i])


@njit
def abs_bwd(g, x, gx):
    """gx += g sign(x); sign(0) = 0 and NaN stays NaN, as PyTorch"""
    for i in range(g.size):
        v = x[i]
        gx[i] += g[i] * (1 if v > 0 else (-1 if v < 0 else v * 0))


@njit
def sin_fwd(x, out):
    """out = sin(x)"""
    for i in range(out.size):
        out[i] = math.sin(x[i])


@njit
def sin_bwd(g, x, gx):
    """gx += g cos(x)"""
    for i in range(g.size):
        gx[i] += g[i] * math.cos(x[i])


@njit
def cos_fwd(x, out):
    """out = cos(x)"""
    for i in range(out.size):
        out[i] = math.cos(x[i])


@njit
def cos_bwd(g, x, gx):
    """gx -= g sin(x)"""
    for i in range(g.size):
        gx[i] -= g[i] * math.sin(x[i])


@njit
def clamp_fwd(x, low, high, out):
    """out = min(max(x, low), high); NaN stays NaN (absent bounds are -inf and inf)"""
    for i in range(out.size):
        v = x[i]
        if v < low:
            v = low
        if v > high:
            v = high
        out[i] = v


@njit
def clamp_bwd(g, x, low, high, gx):
    """gx += g where low <= x <= high"""
    for i in range(g.size):
        if low <= x[i] <= high:
            gx[i] += g[i]


# Ops with a Python scalar: the scalar is the float parameter ``p``.

@njit
def add_scalar_fwd(x, p, out):
    """out = x + p"""
    for i in range(out.size):
        out[i] = x[i] + p


@njit
def mul_scalar_fwd(x, p, out):
    """out = x * p"""
    for i in range(out.size):
        out[i] = x[i] * p


@njit
def mul_scalar_bwd(g, p, gx):
    """gx += g * p"""
    for i in range(g.size):
        gx[i] += g[i] * p


@njit
def div_scalar_fwd(x, p, out):
    """out = x / p"""
    for i in range(out.size):
        out[i] = x[i] / p


@njit
def div_scalar_bwd(g, p, gx):
    """gx += g / p"""
    for i in range(g.size):
        gx[i] += g[i] / p


@njit
def rsub_scalar_fwd(x, p, out):
    """out = p - x"""
    for i in range(out.size):
        out[i] = p - x[i]


@njit
def pow_scalar_fwd(x, p, out):
    """out = x ** p (x * x for the common square: pow() is ~20x slower)"""
    if p == 2:
        for i in range(out.size):
            out[i] = x[i] * x[i]
        return
    for i in range(out.size):
        out[i] = x[i] ** p


@njit
def pow_scalar_bwd(g, x, p, gx):
    """gx += g p x^(p-1); zero when p == 0, as PyTorch"""
    if p == 0:
        return
    if p == 2:
        for i in range(g.size):
            gx[i] += 2 * g[i] * x[i]
        return
    for i in range(g.size):
        gx[i] += g[i] * p * x[i] ** (p - 1)


@njit
def rpow_scalar_fwd(x, p, out):
    """out = p ** x"""
    for i in range(out.size):
        out[i] = p ** x[i]


@njit
def rpow_scalar_bwd(g, out, p, gx):
    """gx += g p^x log(p)"""
    log_p = math.log(p) if p > 0 else (-math.inf if p == 0 else math.nan)
    for i in range(g.size):
        gx[i] += g[i] * out[i] * log_p


@njit
def rdiv_scalar_fwd(x, p, out):
    """out = p / x"""
    for i in range(out.size):
        out[i] = p / x[i]


@njit
def rdiv_scalar_bwd(g, x, p, gx):
    """gx -= g p / x^2"""
    for i in range(g.size):
        gx[i] -= g[i] * p / (x[i] * x[i])


# Tensor-tensor ops; inputs have the output's shape.

@njit
def add_fwd(a, b, out):
    """out = a + b"""
    for i in range(out.size):
        out[i] = a[i] + b[i]


@njit
def sub_fwd(a, b, out):
    """out = a - b"""
    for i in range(out.size):
        out[i] = a[i] - b[i]


@njit
def mul_fwd(a, b, out):
    """out = a * b"""
    for i in range(out.size):
        out[i] = a[i] * b[i]


@njit
def mul_bwd(g, a, b, ga):
    """ga += g b (and, swapped, gb += g a)"""
    for i in range(g.size):
        ga[i] += g[i] * b[i]


@njit
def div_fwd(a, b, out):
    """out = a / b"""
    for i in range(out.size):
        out[i] = a[i] / b[i]


@njit
def div_bwd_a(g, a, b, ga):
    """ga += g / b"""
    for i in range(g.size):
        ga[i] += g[i] / b[i]


@njit
def div_bwd_b(g, a, b, gb):
    """gb -= g a / b^2"""
    for i in range(g.size):
        gb[i] -= g[i] * a[i] / (b[i] * b[i])


@njit
def pow_fwd(a, b, out):
    """out = a ** b"""
    for i in range(out.size):
        out[i] = a[i] ** b[i]


@njit
def pow_bwd_a(g, a, b, out, ga):
    """ga += g b a^(b-1); zero where b == 0"""
    for i in range(g.size):
        if b[i] != 0:
            ga[i] += g[i] * b[i] * a[i] ** (b[i] - 1)


@njit
def pow_bwd_b(g, a, b, out, gb):
    """gb += g a^b log(a); zero where a == 0 and b >= 0, as PyTorch"""
    for i in range(g.size):
        if a[i] == 0 and b[i] >= 0:
            continue
        gb[i] += g[i] * out[i] * math.log(a[i]) if a[i] > 0 else g[i] * math.nan


@njit
def maximum_fwd(a, b, out):
    """out = max(a, b); NaN when either is NaN"""
    for i in range(out.size):
        x, y = a[i], b[i]
        out[i] = x if x > y or x != x else y


@njit
def minimum_fwd(a, b, out):
    """out = min(a, b); NaN when either is NaN"""
    for i in range(out.size):
        x, y = a[i], b[i]
        out[i] = x if x < y or x != x else y


@njit
def chosen_bwd(g, a, b, out, ga):
    """maximum/minimum: ga += g where a was chosen (a == out), half of it on a tie, as PyTorch"""
    for i in range(g.size):
        if a[i] == b[i]:
            ga[i] += g[i] / 2
        elif a[i] == out[i] or a[i] != a[i]:
            ga[i] += g[i]


@njit
def where_fwd(condition, a, b, out):
    """out = a where condition else b"""
    for i in range(out.size):
        out[i] = a[i] if condition[i] else b[i]


@njit
def where_bwd_a(g, condition, ga):
    """ga += g where condition"""
    for i in range(g.size):
        if condition[i]:
            ga[i] += g[i]


@njit
def where_bwd_b(g, condition, gb):
    """gb += g where not condition"""
    for i in range(g.size):
        if not condition[i]:
            gb[i] += g[i]


@njit
def cast(x, out):
    """out = x converted to out's dtype"""
    for i in range(out.size):
        out[i] = x[i]


@njit
def cast_add(g, gx):
    """gx += g converted to gx's dtype (gradient of a dtype conversion)"""
    for i in range(g.size):
        gx[i] += g[i]


# Not differentiable.

@njit
def _compare_one(code, x, y):
    if code == 0:
        return x == y
    if code == 1:
        return x != y
    if code == 2:
        return x < y
    if code == 3:
        return x <= y
    if code == 4:
        return x > y
    return x >= y


@njit
def compare(a, b, code, out):
    """out = a (==, !=, <, <=, >, >=)[code] b"""
    for i in range(out.size):
        out[i] = _compare_one(code, a[i], b[i])


@njit
def all_nonzero(x):
    """True when no element is zero"""
    for i in range(x.size):
        if x[i] == 0:
            return False
    return True


@njit
def any_nonzero(x):
    """True when some element is nonzero"""
    for i in range(x.size):
        if x[i] != 0:
            return True
    return False
