"""jax rules for the elementwise family."""

from __future__ import annotations

import numpy as np
from jax import lax
from jax import numpy as jnp

from . import lowers, to_jax_dtype

_UNARY = {
    "neg": lax.neg, "abs": lax.abs, "exp": lax.exp, "expm1": lax.expm1,
    "log": lax.log, "log1p": lax.log1p, "sqrt": lax.sqrt, "rsqrt": lax.rsqrt, "sin": lax.sin,
    "cos": lax.cos, "tan": lax.tan, "tanh": lax.tanh, "logistic": lax.logistic, "erf": lax.erf,
    "erf_inv": lax.erf_inv, "floor": lax.floor, "ceil": lax.ceil,
    "logical_not": lax.bitwise_not, "bitwise_not": lax.bitwise_not,
    "stop_gradient": lambda x: x,
    "asin": lax.asin, "acos": lax.acos, "atan": lax.atan, "sinh": lax.sinh, "cosh": lax.cosh,
    "asinh": lax.asinh, "acosh": lax.acosh, "atanh": lax.atanh, "erfc": lax.erfc,
    "lgamma": lax.lgamma,
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
    # polygamma(n, +inf) is 0 for n >= 1, as torch (lax gives nan)
    out = lax.polygamma(lax.full_like(x, n), x)
    return lax.select(lax.eq(x, lax.full_like(x, np.inf)), lax.full_like(x, 0), out)


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
