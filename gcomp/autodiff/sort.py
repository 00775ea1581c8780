"""VJP rules of cumprod and logcumsumexp (argsort, top_k and cumargmax/cumargmin have none: the
front end gathers their values with take, whose VJP scatters the cotangent back through the
indices)."""

from __future__ import annotations

from ..core import prims as P
from . import defvjp


@defvjp("cumprod")
def _cumprod(cts, inputs, outputs, axis, reverse):
    """Exact with zeros, as torch: before the first zero of a slice the gradient is
    revcumsum(g * out) / x; at the first zero it is the revcumsum of g times the cumprod with
    that zero replaced by one; after it, zero."""
    (g,), (x,), (out,) = cts, inputs, outputs
    if x._type.ndim == 0:
        return [g]
    if reverse:  # the forward rule on reversed operands
        rev = lambda t: P.rev(t, dims=(axis,))  # noqa: E731
        return [rev(_cumprod_grad(rev(g), rev(x), rev(out), axis))]
    return [_cumprod_grad(g, x, out, axis)]


def _cumprod_grad(g, x, out, axis):
    zero, one = P.zeros_like(x), P.full_like(x, 1.0)
    is_zero = P.eq(x, zero)
    zeros_so_far = P.cumsum(P.cast(is_zero, dtype=x._type.dtype), axis=axis)
    before = P.eq(zeros_so_far, zero)
    first = P.logical_and(is_zero, P.eq(zeros_so_far, one))
    tail = P.cumsum(P.mul(g, out), axis=axis, reverse=True)
    a = P.select(before, P.div(tail, P.select(before, x, one)), zero)
    out1 = P.cumprod(P.select(first, one, x), axis=axis)
    b = P.select(first, P.cumsum(P.mul(g, out1), axis=axis, reverse=True), zero)
    return P.add(a, b)


@defvjp("logcumsumexp")
def _logcumsumexp(cts, inputs, outputs, axis, reverse):
    """sum over later j of g_j exp(x_i - out_j), in log space with the positive and negative
    parts of g apart (torch's formula), so that it neither overflows nor underflows."""
    (g,), (x,), (out,) = cts, inputs, outputs
    if x._type.ndim == 0:
        return [g]
    zero = P.zeros_like(g)

    def part(gp):
        s = P.logcumsumexp(P.sub(P.log(gp), out), axis=axis, reverse=not reverse)
        return P.exp(P.add(x, s))

    return [P.sub(part(P.maximum(g, zero)), part(P.maximum(P.neg(g), zero)))]
