"""jax rules for the elementwise family."""

from __future__ import annotations

import numpy as np
from jax import lax
from jax import numpy as jnp
from jax.scipy import special as jsp

from . import cephes, lowers, polynomials, to_jax_dtype

_UNARY = {
    "neg": lax.neg, "abs": lax.abs, "exp": lax.exp, "expm1": lax.expm1,
    "log": lax.log, "log1p": lax.log1p, "sqrt": lax.sqrt, "rsqrt": lax.rsqrt, "sin": lax.sin,
    "cos": lax.cos, "tan": lax.tan, "tanh": lax.tanh, "logistic": lax.logistic, "erf": lax.erf,
    "erf_inv": lax.erf_inv, "floor": lax.floor, "ceil": lax.ceil,
    "logical_not": lax.bitwise_not, "bitwise_not": lax.bitwise_not,
    "stop_gradient": lambda x: x,
    "asin": lax.asin, "acos": lax.acos, "atan": lax.atan, "sinh": lax.sinh, "cosh": lax.cosh,
    "asinh": lax.asinh, "acosh": lax.acosh, "atanh": lax.atanh, "erfc": lax.erfc,
    "lgamma": lax.lgamma, "bessel_i0e": lax.bessel_i0e, "bessel_i1e": lax.bessel_i1e,
    "erfcx": jsp.erfcx, "ndtri": jsp.ndtri,
    # torch's Cephes approximations, which lax lacks (cephes.py)
    "bessel_j0": cephes.bessel_j0, "bessel_j1": cephes.bessel_j1, "bessel_y0": cephes.bessel_y0,
    "bessel_y1": cephes.bessel_y1, "bessel_k0": cephes.bessel_k0, "bessel_k1": cephes.bessel_k1,
    "bessel_k0e": cephes.bessel_k0e, "bessel_k1e": cephes.bessel_k1e, "airy_ai": cephes.airy_ai,
}
_BINARY = {
    "add": lax.add, "sub": lax.sub, "mul": lax.mul, "maximum": lax.max, "minimum": lax.min,
    "atan2": lax.atan2, "eq": lax.eq, "ne": lax.ne, "lt": lax.lt, "le": lax.le, "gt": lax.gt,
    "ge": lax.ge, "logical_and": lax.bitwise_and, "logical_or": lax.bitwise_or,
    "logical_xor": lax.bitwise_xor, "bitwise_and": lax.bitwise_and,
    "bitwise_or": lax.bitwise_or, "bitwise_xor": lax.bitwise_xor,
    "shift_right_logical": lax.shift_right_logical,
}

for _name, _f in _UNARY.items():
    lowers(_name)(lambda x, _f=_f: _f(x))
for _name, _f in _BINARY.items():
    lowers(_name)(lambda x, y, _f=_f: _f(x, y))


@lowers("sign")
def _sign(x):
    if not _is_float(x):
        return lax.sign(x)
    # torch: (x > 0) - (x < 0), so sign(NaN) and sign(-0.0) are 0.0 (lax gives NaN and -0.0)
    one, zero = lax.full_like(x, 1), lax.full_like(x, 0)
    return lax.sub(lax.select(lax.gt(x, zero), one, zero), lax.select(lax.lt(x, zero), one, zero))


@lowers("digamma")
def _digamma(x):
    # torch: digamma(+-0) is -+inf (lax gives nan)
    inf = lax.full_like(x, np.inf)
    pole = lax.select(jnp.signbit(x), inf, lax.neg(inf))
    return lax.select(lax.eq(x, lax.full_like(x, 0)), pole, lax.digamma(x))


@lowers("polygamma")
def _polygamma(x, n):
    # trigamma(+inf) is 0, as torch (lax gives nan); for n >= 2 torch gives nan there too
    out = lax.polygamma(lax.full_like(x, n), x)
    if n != 1:
        return out
    return lax.select(lax.eq(x, lax.full_like(x, np.inf)), lax.full_like(x, 0), out)


# The incomplete gamma functions and Hurwitz's zeta take torch's values (its Cephes code) at the
# edges of their domains, where lax's differ (mostly NaN), in torch's order of the cases.
@lowers("igamma")
def _igamma(a, x):
    return _incomplete_gamma(a, x, lax.igamma, lower=True)


@lowers("igammac")
def _igammac(a, x):
    return _incomplete_gamma(a, x, lax.igammac, lower=False)


def _incomplete_gamma(a, x, f, lower):
    # lax's series loses accuracy in float32 as a grows (5e-6 near a = 10, 1e-3 near a = 1000,
    # where torch's asymptotic expansion keeps 1e-7): narrower floats are computed in float64
    if a.dtype != np.float64:
        wide = lax.convert_element_type
        out = wide(f(wide(a, np.float64), wide(x, np.float64)), a.dtype)
    else:
        out = f(a, x)
    lo, hi = (0.0, 1.0) if lower else (1.0, 0.0)  # the values at x = 0 and at x = inf
    nan, zero, inf = lax.full_like(a, np.nan), lax.full_like(a, 0), lax.full_like(a, np.inf)
    out = lax.select(lax.eq(x, inf), lax.full_like(a, hi), out)
    out = lax.select(lax.eq(a, inf), lax.select(lax.eq(x, inf), nan, lax.full_like(a, lo)), out)
    out = lax.select(lax.eq(x, zero), lax.full_like(a, lo), out)
    out = lax.select(lax.eq(a, zero), lax.select(lax.gt(x, zero), lax.full_like(a, hi), nan), out)
    return lax.select(lax.bitwise_or(lax.lt(x, zero), lax.lt(a, zero)), nan, out)


@lowers("zeta")
def _zeta(s, q):
    # torch: s = 1 is inf, s < 1 NaN, q a non-positive integer inf (a pole); and its series at
    # s = inf gives 1 for q = 1, NaN for q > 1 and inf below (lax: NaN for the last two)
    out = lax.zeta(s, q)
    zero, one, inf = lax.full_like(s, 0), lax.full_like(s, 1), lax.full_like(s, np.inf)
    nan = lax.full_like(s, np.nan)
    at_inf = lax.select(lax.eq(q, one), one, lax.select(lax.lt(q, one), inf, nan))
    out = lax.select(lax.eq(s, inf), at_inf, out)
    pole = lax.bitwise_and(lax.le(q, zero), lax.eq(q, lax.floor(q)))
    out = lax.select(pole, inf, out)
    out = lax.select(lax.lt(s, one), nan, out)
    return lax.select(lax.eq(s, one), inf, out)


lowers("orthogonal_polynomial")(polynomials.orthogonal_polynomial)


@lowers("round")
def _round(x):
    return lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN)  # torch.round: half to even


def _is_float(x) -> bool:
    # jnp's issubdtype: numpy's does not count ml_dtypes' bfloat16 as inexact (bf16 division,
    # remainder and power took the integer paths)
    return jnp.issubdtype(x.dtype, jnp.inexact)


# Integer division by zero and INT_MIN / -1 have values in XLA (x / 0 is all ones, x % 0 is x,
# INT_MIN / -1 is INT_MIN and its remainder 0), and compiled code computes them. But XLA's
# constant folding evaluates a division of constants with the machine's instruction, which traps:
# the process dies of SIGFPE. So integer division never sees such a divisor: it is replaced by 1
# and the defined value selected afterwards (XLA fuses it; floats are untouched).
def _int_divisor(x, y):
    """(y with 0, and -1 under INT_MIN, replaced by 1; the mask y == 0)."""
    zero = lax.full_like(y, 0)
    by_zero = lax.eq(y, zero)
    bad = by_zero
    if np.issubdtype(x.dtype, np.signedinteger):
        low = lax.full_like(x, np.iinfo(x.dtype).min)
        bad = lax.bitwise_or(bad, lax.bitwise_and(lax.eq(x, low), lax.eq(y, lax.full_like(y, -1))))
    return lax.select(bad, lax.full_like(y, 1), y), by_zero


def _idiv(x, y):
    """lax.div of integers (truncating), safe for constant folding."""
    safe, by_zero = _int_divisor(x, y)
    ones = -1 if np.issubdtype(x.dtype, np.signedinteger) else np.iinfo(x.dtype).max
    return lax.select(by_zero, lax.full_like(x, ones), lax.div(x, safe))


def _irem(x, y):
    """lax.rem of integers, safe for constant folding."""
    safe, by_zero = _int_divisor(x, y)
    return lax.select(by_zero, x, lax.rem(x, safe))


@lowers("div")
def _div(x, y):
    # floats: true division; integers: truncation, as C and lax
    return lax.div(x, y) if _is_float(x) else _idiv(x, y)


@lowers("pow")
def _pow(x, y):
    if _is_float(x):
        return lax.pow(x, y)
    from jax import numpy as jnp  # integer power by repeated squaring

    if np.issubdtype(y.dtype, np.unsignedinteger):
        return jnp.power(x, y).astype(x.dtype)
    # jnp gives garbage for negative exponents (2 ** -1 was INT64_MIN); torch refuses them, a
    # compiled op cannot, so take 1 / x ** |y| truncated toward zero, as integer div does.
    p = jnp.power(x, lax.abs(y)).astype(x.dtype)
    return lax.select(lax.lt(y, lax.full_like(y, 0)), _idiv(lax.full_like(p, 1), p), p)


@lowers("remainder")
def _remainder(x, y):
    """Python's (and torch.remainder's) sign convention: the result has the divisor's sign."""
    r = lax.rem(x, y) if _is_float(x) else _irem(x, y)
    zero = lax.full_like(r, 0)
    fix = lax.bitwise_and(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(y, lax.full_like(y, 0))))
    return lax.select(fix, lax.add(r, y), r)


@lowers("floor_divide")
def _floor_divide(x, y):
    if _is_float(x):
        # CPython's float_floor_div (torch's too): (x - fmod(x, y)) / y is an integer up to
        # rounding, so round it rather than floor it, else 2.1651 // -0.8830 gives -4.
        mod = lax.rem(x, y)
        zero, one = lax.full_like(x, 0), lax.full_like(x, 1)
        div = lax.div(lax.sub(x, mod), y)
        fix = lax.bitwise_and(lax.ne(mod, zero), lax.ne(lax.lt(y, zero), lax.lt(mod, zero)))
        div = lax.select(fix, lax.sub(div, one), div)
        floordiv = lax.floor(div)
        up = lax.gt(lax.sub(div, floordiv), lax.full_like(x, 0.5))
        floordiv = lax.select(up, lax.add(floordiv, one), floordiv)
        quotient = lax.div(x, y)
        floordiv = lax.select(lax.eq(div, zero), lax.mul(zero, quotient), floordiv)  # signed 0
        return lax.select(lax.eq(y, zero), quotient, floordiv)
    q = _idiv(x, y)
    zero = lax.full_like(x, 0)
    fix = lax.bitwise_and(lax.ne(_irem(x, y), zero), lax.ne(lax.lt(x, zero), lax.lt(y, zero)))
    return lax.select(fix, lax.sub(q, lax.full_like(q, 1)), q)


@lowers("select")
def _select(pred, a, b):
    return lax.select(pred, a, b)


@lowers("cast")
def _cast(x, dtype):
    target = to_jax_dtype(dtype)
    if target == np.bool_:
        return lax.ne(x, lax.full_like(x, 0))
    return lax.convert_element_type(x, target)


@lowers("bitcast")
def _bitcast(x, dtype):
    return lax.bitcast_convert_type(x, to_jax_dtype(dtype))


@lowers("iota")
def _iota(shape, dim, dtype):
    return lax.broadcasted_iota(to_jax_dtype(dtype), tuple(shape), dim)


@lowers("full")
def _full(shape, value, dtype):
    return lax.full(tuple(shape), value, to_jax_dtype(dtype))


@lowers("constant")
def _constant(value, dtype):
    return np.asarray(value, dtype=to_jax_dtype(dtype))
