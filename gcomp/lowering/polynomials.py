"""The jax rule of ``orthogonal_polynomial(x, n, kind)``: torch.special's Chebyshev (T, U, V, W
and their shifted forms), Hermite (H, He), Laguerre and Legendre polynomials of degree n (an
elementwise operand, truncated to an integer), with torch's special cases, closed forms and
three-term recurrences (aten/src/ATen/native/Math.h), so that the values are torch's. The kinds
are listed in gcomp/ir/ops/elementwise.py (POLYNOMIALS).

The recurrence runs in one ``while_loop`` over the whole array, up to the largest degree that
needs it; each element stops at its own degree (torch stops at a NaN too, which a recurrence
keeps anyway). The registration is in elementwise.py.
"""

from __future__ import annotations

import numpy as np
from jax import lax


def _c(x, v):
    return lax.full_like(x, v)


def _sel(*pairs_and_default):
    """The value of the first condition that holds (torch's chain of early returns)."""
    *pairs, out = pairs_and_default
    for cond, value in reversed(pairs):
        out = lax.select(cond, value, out)
    return out


def _first_two(x, kind):
    """(P_0, P_1) and the recurrence's multiplier of q, in torch's arithmetic."""
    one = _c(x, 1.0)
    two_x = lax.add(x, x)
    if kind.startswith("shifted"):
        y = lax.sub(two_x, one)
        factor = lax.add(y, y)
        q = {"t": y, "u": factor, "v": lax.sub(factor, one), "w": lax.add(factor, one)}[kind[-1]]
        return q, factor
    if kind.startswith("chebyshev"):
        q = {"t": x, "u": two_x, "v": lax.sub(two_x, one), "w": lax.add(two_x, one)}[kind[-1]]
        return q, two_x
    return {"hermite_h": two_x, "hermite_he": x, "laguerre_l": lax.sub(one, x),
            "legendre_p": x}[kind], None


def _step(kind, x, p, q, k, factor):
    """P_{k+1} (Chebyshev: P_k) from p = P_{k-1} and q = P_k, k a float counter."""
    if factor is not None:  # Chebyshev, shifted or not: r = factor q - p
        return lax.sub(lax.mul(factor, q), p)
    one = _c(x, 1.0)
    if kind == "hermite_h":  # torch's k runs over 2, 4, ...: r = 2x q - 2k p
        return lax.sub(lax.mul(lax.add(x, x), q), lax.mul(lax.add(k, k), p))
    if kind == "hermite_he":
        return lax.sub(lax.mul(x, q), lax.mul(k, p))
    if kind == "laguerre_l":
        return lax.div(lax.sub(lax.mul(lax.add(lax.add(k, k), lax.sub(one, x)), q),
                               lax.mul(k, p)), lax.add(k, one))
    return lax.div(lax.sub(lax.mul(lax.mul(lax.add(lax.add(k, k), one), x), q), lax.mul(k, p)),
                   lax.add(k, one))  # legendre_p


def _all_axes(a):
    return tuple(range(a.ndim))


def _recurrence(kind, x, n, needs):
    """P_n by the three-term recurrence where ``needs`` (anything elsewhere)."""
    q0, factor = _first_two(x, kind)
    # Chebyshev: k = 2 .. n makes P_k; the others: k = 1 .. n - 1 make P_{k+1}
    first, last = (2, n) if factor is not None else (1, lax.sub(n, lax.full_like(n, 1)))
    bound = lax.reduce_max(lax.select(needs, last, lax.full_like(last, 0)), _all_axes(last))

    def moving(k):
        return lax.bitwise_and(needs, lax.le(lax.broadcast_in_dim(k, last.shape, ()), last))

    def cond(state):
        k, _, q = state
        going = lax.bitwise_and(moving(k), lax.eq(q, q))  # torch stops at a NaN
        return lax.bitwise_and(lax.le(k, bound), lax.reduce_or(going, _all_axes(going)))

    def body(state):
        k, p, q = state
        kf = lax.broadcast_in_dim(lax.convert_element_type(k, x.dtype), x.shape, ())
        r = _step(kind, x, p, q, kf, factor)
        move = moving(k)
        return k + 1, lax.select(move, q, p), lax.select(move, r, q)

    return lax.while_loop(cond, body, (np.int64(first), _c(x, 1.0), q0))[2]


def orthogonal_polynomial(x, n, kind):
    # torch truncates n to an integer; an infinite or NaN n acts as a negative one (value 0)
    finite = lax.eq(lax.sub(n, n), lax.full_like(n, 0))
    n = lax.convert_element_type(lax.select(finite, n, lax.full_like(n, -1)), np.int64)
    nf = lax.convert_element_type(n, x.dtype)
    one, zero = _c(x, 1.0), _c(x, 0.0)
    even = lax.eq(lax.rem(n, lax.full_like(n, 2)), lax.full_like(n, 0))
    q1, _ = _first_two(x, kind)
    np1, two_np1 = lax.add(nf, one), lax.add(lax.add(nf, nf), one)

    def sign(v):  # v for even n, -v for odd
        return lax.select(even, v, lax.neg(v))

    def n_is(v):
        return lax.eq(n, lax.full_like(n, v))

    def n_over(v):
        return lax.gt(n, lax.full_like(n, v))

    cases = [(lax.lt(n, lax.full_like(n, 0)), zero)]
    if kind.startswith(("chebyshev", "shifted")):
        cases += _chebyshev_cases(x, kind, nf, np1, two_np1, sign, n_over)
    elif kind.startswith("hermite"):
        limit = {np.dtype(np.float32): 128, np.dtype(np.float64): 512}.get(x.dtype, 1024)
        cases += [(n_is(0), one), (n_is(1), q1), (n_over(limit), _c(x, np.nan))]
    elif kind == "laguerre_l":
        cases += [(lax.eq(x, zero), one)]
    else:  # legendre_p
        ends = lax.select(lax.bitwise_or(lax.gt(x, zero), even), one, lax.neg(one))
        cases += [(lax.eq(lax.abs(x), one), ends)]
    cases += [(n_is(0), one), (n_is(1), q1)]
    special = cases[0][0]
    for cond, _ in cases[1:]:
        special = lax.bitwise_or(special, cond)
    return _sel(*cases, _recurrence(kind, x, n, lax.bitwise_not(special)))


def _chebyshev_cases(x, kind, nf, np1, two_np1, sign, n_over):
    """The ends of the interval, then the trigonometric closed form inside it for large n."""
    one, zero = _c(x, 1.0), _c(x, 0.0)
    letter, shifted = kind[-1], kind.startswith("shifted")
    y = lax.sub(lax.add(x, x), one) if shifted else x
    if shifted:  # the ends are x = 1 and x = 0
        top, bottom = lax.eq(x, one), lax.eq(x, zero)
    else:
        end = lax.eq(lax.abs(x), one)
        top = lax.bitwise_and(end, lax.gt(x, zero))
        bottom = lax.bitwise_and(end, lax.bitwise_not(lax.gt(x, zero)))
    at_top, at_bottom = {"t": (one, sign(one)), "u": (np1, sign(np1)),
                         "v": (one, sign(two_np1)), "w": (two_np1, sign(one))}[letter]
    theta = lax.acos(y)
    half = lax.div(theta, _c(x, 2.0))
    n_half = lax.mul(lax.add(nf, _c(x, 0.5)), theta)
    if letter == "t":
        closed = lax.cos(lax.mul(nf, theta))
    elif letter == "u":
        s = lax.sin(theta)
        closed = lax.select(lax.ne(s, zero), lax.div(lax.sin(lax.mul(np1, theta)), s),
                            lax.div(lax.mul(np1, lax.cos(lax.mul(np1, theta))), y))
    elif letter == "v":
        closed = lax.select(lax.ne(lax.sin(half), one),
                            lax.div(lax.cos(n_half), lax.cos(half)), sign(two_np1))
    else:
        degenerate = sign(one) if shifted else lax.select(lax.gt(x, zero), two_np1, sign(one))
        closed = lax.select(lax.ne(lax.cos(half), one), lax.div(lax.sin(n_half), lax.sin(half)),
                            degenerate)
    limit = {"t": 6, "u": 6, "v": 6, "w": 4}[letter] if shifted else \
        {"t": 6, "u": 8, "v": 8, "w": 8}[letter]
    inside = lax.bitwise_and(n_over(limit), lax.lt(lax.abs(y), one))
    return [(top, at_top), (bottom, at_bottom), (inside, closed)]
