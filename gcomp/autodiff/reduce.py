"""VJP rules of reductions and cumsum."""

from __future__ import annotations

from ..core import prims as P
from . import defvjp


def _expand(g, x, axes, keepdims):
    """Broadcast a reduction's cotangent back to the operand's shape."""
    shape = x._type.shape
    kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
    if g._type.shape != kept:
        g = P.reshape(g, shape=kept)
    return P.broadcast(g, shape=shape, dims=tuple(range(len(shape))))


@defvjp("reduce_sum")
def _sum(cts, inputs, outputs, axes, keepdims):
    return [_expand(cts[0], inputs[0], axes, keepdims)]


@defvjp("reduce_prod")
def _prod(cts, inputs, outputs, axes, keepdims):
    """out / x, with the product of the others where x is zero (one zero in a slice)."""
    (g,), (x,), (out,) = cts, inputs, outputs
    zero = P.zeros_like(x)
    is_zero = P.eq(x, zero)
    safe = P.select(is_zero, P.full_like(x, 1.0), x)
    prod_others = P.reduce_prod(safe, axes=axes, keepdims=keepdims)
    n_zero = P.reduce_sum(P.cast(is_zero, dtype=x._type.dtype), axes=axes, keepdims=keepdims)
    out_e = _expand(out, x, axes, keepdims)
    others_e = _expand(prod_others, x, axes, keepdims)
    nz_e = _expand(n_zero, x, axes, keepdims)
    one = P.full_like(x, 1.0)
    grad = P.select(is_zero, P.select(P.eq(nz_e, one), others_e, zero), P.div(out_e, safe))
    return [P.mul(_expand(g, x, axes, keepdims), grad)]


def _extreme(cts, inputs, outputs, axes, keepdims):
    """Ties share the gradient evenly (torch.amax/amin)."""
    (g,), (x,), (out,) = cts, inputs, outputs
    mask = P.cast(P.eq(x, _expand(out, x, axes, keepdims)), dtype=x._type.dtype)
    count = _expand(P.reduce_sum(mask, axes=axes, keepdims=keepdims), x, axes, keepdims)
    return [P.mul(_expand(g, x, axes, keepdims), P.div(mask, count))]


defvjp("reduce_max", "reduce_min")(_extreme)


@defvjp("cumsum")
def _cumsum(cts, inputs, outputs, axis, reverse):
    return [P.cumsum(cts[0], axis=axis, reverse=not reverse)]
