"""VJP rules of the fused ops (ir/ops/fused.py), in primitives.

Attention saves nothing but its operands: the backward recomputes the scores and probabilities
(one more contraction, as FlashAttention's backward does) instead of keeping the (L, S)
probabilities of every head alive from the forward to the backward. With p the probabilities,
g the output's cotangent and ds = p * (g v^T - rowsum(p * g v^T)):
dq = scale ds k, dk = scale ds^T q, dv = p^T g, and an added mask gets ds.

Cross entropy's gradient is closed-form: with p = softmax(logits), h the one-hot target, a_i the
coefficient of position i (its weight, 0 when ignored; the mean also divides by sum a_i) and s the
label smoothing, d/dx = a (1 - s) (p - h) + valid s / C (p sum_c w_c - w), and a weight operand
gets sum_i g_i valid_i (-log p ((1 - s) h + s / C) - [mean] out h).
"""

from __future__ import annotations

import math

from ..core import prims as P
from ..core.autograd import needs_input_grad
from . import defvjp


def _c(t, value):
    return P.full_like(t, value)


def _keep(x, shape):
    """x, reduced with keepdims, broadcast back to ``shape``."""
    return P.broadcast(x, shape=shape, dims=tuple(range(len(shape))))


def _softmax(s, axis):
    """(probabilities, shifted scores, their exp-sum kept) over ``axis``."""
    shape = s._type.shape
    mx = P.reduce_max(s, axes=(axis,), keepdims=True)
    shifted = P.sub(s, _keep(mx, shape))
    e = P.exp(shifted)
    z = P.reduce_sum(e, axes=(axis,), keepdims=True)
    return P.div(e, _keep(z, shape)), shifted, z


@defvjp("scaled_dot_product_attention")
def _attention(cts, inputs, outputs, scale, mask):
    g = cts[0] if cts[0] is not None else P.zeros_like(outputs[0])
    q, k, v = inputs[:3]
    nb = len(q._type.shape) - 2
    batch = tuple((i, i) for i in range(nb))
    s = P.dot_general(q, k, contract=((nb + 1, nb + 1),), batch=batch)
    s = P.mul(s, _c(s, scale))
    if mask == "add":
        s = P.add(s, inputs[3])
    elif mask == "allow":
        s = P.select(inputs[3], s, _c(s, -math.inf))
    p, _, _ = _softmax(s, nb + 1)
    dv = P.dot_general(p, g, contract=((nb, nb),), batch=batch) if needs_input_grad(2) else None
    dp = P.dot_general(g, v, contract=((nb + 1, nb + 1),), batch=batch)
    row = P.reduce_sum(P.mul(dp, p), axes=(nb + 1,), keepdims=True)
    ds = P.mul(p, P.sub(dp, _keep(row, s._type.shape)))
    dsc = P.mul(ds, _c(ds, scale))
    dq = P.dot_general(dsc, k, contract=((nb + 1, nb),), batch=batch) \
        if needs_input_grad(0) else None
    dk = P.dot_general(dsc, q, contract=((nb, nb),), batch=batch) \
        if needs_input_grad(1) else None
    grads = [dq, dk, dv]
    if mask != "none":
        grads.append(ds if mask == "add" and needs_input_grad(3) else None)
    return grads


@defvjp("cross_entropy")
def _cross_entropy(cts, inputs, outputs, ignore_index, reduction, label_smoothing, weighted):
    (out,), x, t = outputs, inputs[0], inputs[1]
    g = cts[0] if cts[0] is not None else P.zeros_like(out)
    w = inputs[2] if weighted else None
    xs, ts = x._type.shape, t._type.shape
    dt, C, s = x._type.dtype, xs[1], label_smoothing
    kept = tuple(i for i in range(len(xs)) if i != 1)

    def spread(a):  # (N, *rest) -> the logits' shape
        return P.broadcast(a, shape=xs, dims=kept)

    p, shifted, z = _softmax(x, 1)
    valid = P.ne(t, _c(t, ignore_index))
    safe = P.select(valid, t, _c(t, 0))
    validf = P.cast(valid, dtype=dt)
    hot = P.cast(P.eq(P.iota(shape=xs, dim=1, dtype=t._type.dtype), spread(safe)), dtype=dt)
    coef = P.mul(P.take(w, safe, axis=0), validf) if weighted else validf
    if reduction == "none":
        gi = g
    else:
        if reduction == "mean":
            g = P.div(g, P.reduce_sum(coef, axes=tuple(range(len(ts)))))
        gi = P.broadcast(g, shape=ts, dims=())
    dx = None
    if needs_input_grad(0):
        dx = P.mul(spread(P.mul(P.mul(gi, coef), _c(coef, 1.0 - s))), P.sub(p, hot))
        if s > 0:
            gv = spread(P.mul(P.mul(gi, validf), _c(validf, s / C)))
            if weighted:
                total = P.broadcast(P.reduce_sum(w, axes=(0,)), shape=xs, dims=())
                wide = P.broadcast(w, shape=xs, dims=(1,))
                dx = P.add(dx, P.mul(gv, P.sub(P.mul(p, total), wide)))
            else:
                dx = P.add(dx, P.mul(gv, P.sub(P.mul(p, _c(p, float(C))), _c(p, 1.0))))
    dw = None
    if weighted and needs_input_grad(2):
        logp = P.sub(shifted, _keep(P.log(z), xs))
        term = P.neg(P.mul(logp, P.add(P.mul(hot, _c(hot, 1.0 - s)), _c(hot, s / C))))
        if reduction == "mean":
            term = P.sub(term, P.mul(P.broadcast(out, shape=xs, dims=()), hot))
        dw = P.reduce_sum(P.mul(spread(P.mul(gi, validf)), term), axes=kept)
    return [dx, None, dw] if weighted else [dx, None]
