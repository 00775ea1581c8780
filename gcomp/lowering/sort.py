"""jax rules for sorting and cumulative scans (ir/ops/sort.py)."""

from __future__ import annotations

import numpy as np
from jax import lax

from . import lowers


def _sort_keys(x, descending):
    """Keys whose ascending lexicographic order is torch's order of x: NaN last ascending and
    first descending, -0.0 equal to 0.0, ints reversed by bitwise not (no overflow)."""
    dt = x.dtype
    if dt == np.bool_:
        x = x.astype(np.int8)
        return [lax.bitwise_not(x) if descending else x]
    if not np.issubdtype(dt, np.floating) and dt.name != "bfloat16":
        return [lax.bitwise_not(x) if descending else x]
    nan = lax.ne(x, x)
    zero = lax.full_like(x, 0)
    value = lax.select(lax.bitwise_or(nan, lax.eq(x, zero)), zero, x)
    flag = lax.convert_element_type(lax.bitwise_not(nan) if descending else nan, np.int8)
    return [flag, lax.neg(value) if descending else value]


@lowers("argsort")
def _argsort(x, axis, descending, stable):
    if x.ndim == 0:
        return lax.full((), 0, np.int64)
    keys = _sort_keys(x, descending)
    iota = lax.broadcasted_iota(np.int64, x.shape, axis)
    out = lax.sort((*keys, iota), dimension=axis, is_stable=stable, num_keys=len(keys))
    return out[-1]


def _cumarg(which):
    def rule(x, axis):
        if x.ndim == 0:
            return lax.full((), 0, np.int64)
        floating = np.issubdtype(x.dtype, np.floating) or x.dtype.name == "bfloat16"

        def combine(a, b):  # a precedes b: b wins on ties, and a NaN wins unless a is NaN
            (va, ia), (vb, ib) = a, b
            better = lax.ge(vb, va) if which == "max" else lax.le(vb, va)
            if floating:
                better = lax.bitwise_or(lax.bitwise_and(better, lax.eq(va, va)),
                                        lax.ne(vb, vb))
            return lax.select(better, vb, va), lax.select(better, ib, ia)

        iota = lax.broadcasted_iota(np.int64, x.shape, axis)
        from jax.lax import associative_scan

        return associative_scan(combine, (x, iota), axis=axis)[1]

    return rule


@lowers("top_k")
def _top_k(x, k, axis, largest):
    if x.ndim == 0:
        return lax.full((), 0, np.int64)
    dt = x.dtype
    if dt == np.bool_:
        x = x.astype(np.int8)
    if np.issubdtype(dt, np.floating) or dt.name == "bfloat16":
        # lax.top_k orders floats totally (-NaN < -inf, -0 < 0): make every NaN the largest
        # (the smallest for largest=False, then negated) and -0.0 equal to 0.0
        nan = lax.ne(x, x)
        x = lax.select(lax.eq(x, lax.full_like(x, 0)), lax.full_like(x, 0), x)
        if largest:
            x = lax.select(nan, lax.full_like(x, np.nan), x)
        else:
            x = lax.select(nan, lax.full_like(x, -np.nan), lax.neg(x))
    elif not largest:
        x = lax.bitwise_not(x)
    last = x.ndim - 1
    perm = tuple(i for i in range(x.ndim) if i != axis) + (axis,)
    if axis != last:
        x = lax.transpose(x, perm)
    idx = lax.top_k(x, k)[1].astype(np.int64)
    if axis != last:
        idx = lax.transpose(idx, tuple(np.argsort(perm)))
    return idx


lowers("cumargmax")(_cumarg("max"))
lowers("cumargmin")(_cumarg("min"))


@lowers("cumprod")
def _cumprod(x, axis, reverse):
    if x.ndim == 0:
        return x
    return lax.cumprod(x, axis=axis, reverse=reverse)


@lowers("logcumsumexp")
def _logcumsumexp(x, axis, reverse):
    if x.ndim == 0:
        return x
    return lax.cumlogsumexp(x, axis=axis, reverse=reverse)
