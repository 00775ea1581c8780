"""VJP rules of the shape family."""

from __future__ import annotations

from ..core import prims as P
from . import defvjp


@defvjp("reshape")
def _reshape(cts, inputs, outputs, shape):
    return [P.reshape(cts[0], shape=inputs[0]._type.shape)]


@defvjp("broadcast")
def _broadcast(cts, inputs, outputs, shape, dims):
    return [P.sum_to_shape(cts[0], inputs[0]._type.shape, dims)]


@defvjp("transpose")
def _transpose(cts, inputs, outputs, perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return [P.transpose(cts[0], perm=tuple(inv))]


@defvjp("slice")
def _slice(cts, inputs, outputs, start, limit, stride):
    (g,), (x,) = cts, inputs
    low, high, interior = [], [], []
    for d, s, st, n in zip(x._type.shape, start, stride, g._type.shape):
        used = n + max(0, n - 1) * (st - 1)
        low.append(s)
        interior.append(st - 1 if n > 1 else 0)
        high.append(d - s - used)
    return [P.pad(g, low=tuple(low), high=tuple(high), interior=tuple(interior))]


@defvjp("pad")
def _pad(cts, inputs, outputs, low, high, interior, value):
    (g,) = cts
    unpadded = P.pad(g, low=tuple(-lo for lo in low), high=tuple(-h for h in high),
                     interior=(0,) * len(low))
    shape = unpadded._type.shape
    return [P.slice(unpadded, start=(0,) * len(shape), limit=shape,
                    stride=tuple(i + 1 for i in interior))]


@defvjp("concatenate")
def _concatenate(cts, inputs, outputs, axis):
    (g,) = cts
    out, offset = [], 0
    shape = g._type.shape
    for x in inputs:
        n = x._type.shape[axis]
        start = tuple(offset if i == axis else 0 for i in range(len(shape)))
        limit = tuple(offset + n if i == axis else d for i, d in enumerate(shape))
        out.append(P.slice(g, start=start, limit=limit, stride=(1,) * len(shape)))
        offset += n
    return out


@defvjp("rev")
def _rev(cts, inputs, outputs, dims):
    return [P.rev(cts[0], dims=dims)]


@defvjp("take")
def _take(cts, inputs, outputs, axis):
    (g,), (x, idx) = cts, inputs
    return [P.scatter_add(P.zeros_like(x), idx, g, axis=axis), None]


@defvjp("scatter_add")
def _scatter_add(cts, inputs, outputs, axis):
    (g,), (x, idx, upd) = cts, inputs
    return [g, None, P.take(g, idx, axis=axis)]


@defvjp("scatter")
def _scatter(cts, inputs, outputs, axis, mode):
    """set: the replaced elements of x get nothing, every update the cotangent where it went
    (torch.scatter). max/min: ties between x and the updates share the cotangent evenly
    (torch.scatter_reduce amax/amin). mul: out / x and out / update, so a zero operand gets a
    nan or inf gradient (torch special-cases single zeros)."""
    (g,), (x, idx, upd), (out,) = cts, inputs, outputs
    zero = P.zeros_like(x)
    if mode == "set":
        hit = P.scatter_add(zero, idx, P.full_like(upd, 1.0), axis=axis)
        return [P.select(P.gt(hit, zero), zero, g), None, P.take(g, idx, axis=axis)]
    if mode == "mul":
        return [P.div(P.mul(g, out), x), None, P.div(P.take(P.mul(g, out), idx, axis=axis), upd)]
    dtype = x._type.dtype
    mask_x = P.cast(P.eq(x, out), dtype=dtype)
    mask_u = P.cast(P.eq(upd, P.take(out, idx, axis=axis)), dtype=dtype)
    count = P.add(mask_x, P.scatter_add(zero, idx, mask_u, axis=axis))
    share = P.div(g, P.select(P.gt(count, zero), count, P.full_like(x, 1.0)))
    return [P.mul(share, mask_x), None, P.mul(P.take(share, idx, axis=axis), mask_u)]
