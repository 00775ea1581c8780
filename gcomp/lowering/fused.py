"""jax rules of the fused ops (ir/ops/fused.py).

scaled_dot_product_attention lowers to ``jax.nn.dot_product_attention`` (implementation=None:
XLA's, or cuDNN's where it fits) when q, k and v share their feature size and are at most 32-bit
floats; otherwise (a value feature size of its own; float64, which jax's softmax would compute in
float32) to the same math in lax. jax's layout is (B, T, N, H): the batch dims flatten into B and
N is 1, which is a reshape, not a transpose. Two differences from the op's definition are undone:

- jax fills disallowed scores with a large finite negative, not -inf, so a row that allows
  nothing is the mean of v there, where the op (and its pattern) gives NaN: those rows are set to
  NaN after the call.
- jax's contractions use the default matmul precision (TF32 for float32 on recent GPUs), gcomp's
  dot_general the highest: the call runs under ``jax.default_matmul_precision("highest")``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import lowers

_JAX_DTYPES = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(jnp.bfloat16))


@lowers("scaled_dot_product_attention")
def _attention(q, k, v, *rest, scale, mask):
    m, mask_kind = (rest[0] if rest else None), mask
    batch, (L, E), S, Ev = q.shape[:-2], q.shape[-2:], k.shape[-2], v.shape[-1]
    if Ev != E or np.dtype(q.dtype) not in _JAX_DTYPES:
        return _attention_lax(q, k, v, m, scale, mask_kind)
    B = math.prod(batch)
    q4, k4, v4 = (lax.reshape(x, (B, x.shape[-2], 1, x.shape[-1])) for x in (q, k, v))
    m4 = None if m is None else lax.reshape(m, (B, 1, L, S))
    with jax.default_matmul_precision("highest"):
        out = jax.nn.dot_product_attention(
            q4, k4, v4, bias=m4 if mask_kind == "add" else None,
            mask=m4 if mask_kind == "allow" else None, scale=float(scale), implementation=None)
    out = lax.reshape(out, batch + (L, Ev))
    if mask_kind == "allow":
        some = lax.reduce_or(m, (m.ndim - 1,))
        some = lax.broadcast_in_dim(some, out.shape, tuple(range(out.ndim - 1)))
        out = lax.select(some, out, lax.full_like(out, np.nan))
    return out


def _attention_lax(q, k, v, m, scale, mask_kind):
    """The op's definition in lax (the fallback, and the reference of the rule above)."""
    nb = q.ndim - 2
    batch = (tuple(range(nb)), tuple(range(nb)))
    hi = lax.Precision.HIGHEST
    s = lax.dot_general(q, k, (((nb + 1,), (nb + 1,)), batch), precision=hi,
                        preferred_element_type=q.dtype)
    s = s * lax.full_like(s, scale)
    if mask_kind == "add":
        s = s + m
    elif mask_kind == "allow":
        s = lax.select(m, s, lax.full_like(s, -np.inf))
    mx = lax.stop_gradient(lax.reduce_max(s, (nb + 1,)))
    e = lax.exp(s - lax.broadcast_in_dim(mx, s.shape, tuple(range(nb + 1))))
    p = e / lax.broadcast_in_dim(lax.reduce_sum(e, (nb + 1,)), s.shape, tuple(range(nb + 1)))
    return lax.dot_general(p, v, (((nb + 1,), (nb,)), batch), precision=hi,
                           preferred_element_type=q.dtype)


@lowers("cross_entropy")
def _cross_entropy(x, t, *weight, ignore_index, reduction, label_smoothing, weighted):
    """loss_i = (1 - s) w_t (lse - x_t) + (s / C) sum_c w_c (lse - x_c) over targets that are not
    ignored, x the logits less their max over classes and lse their log-sum-exp (the shift keeps
    exp finite and the differences exact, as log_softmax's); mean divides by sum w_t."""
    C = x.shape[1]
    red = (1,)
    kept = tuple(i for i in range(x.ndim) if i != 1)
    mx = lax.stop_gradient(lax.reduce_max(x, red))
    shifted = x - lax.broadcast_in_dim(mx, x.shape, kept)
    lse = lax.log(lax.reduce_sum(lax.exp(shifted), red))  # of the shifted logits
    valid = t != lax.full_like(t, ignore_index)
    safe = lax.select(valid, t, lax.full_like(t, 0))
    x_t = _pick(shifted, safe)
    validf = valid.astype(x.dtype)
    if weighted:
        (w,) = weight
        coef = w[safe] * validf
    else:
        coef = validf
    loss = coef * (lse - x_t)
    if label_smoothing > 0:
        if weighted:
            wb = lax.broadcast_in_dim(w, x.shape, (1,))
            smooth = lax.reduce_sum(wb, red) * lse - lax.reduce_sum(wb * shifted, red)
        else:
            smooth = C * lse - lax.reduce_sum(shifted, red)
        loss = (1.0 - label_smoothing) * loss + (label_smoothing / C) * (validf * smooth)
    loss = loss.astype(x.dtype)
    if reduction == "none":
        return loss
    total = lax.reduce_sum(loss, tuple(range(loss.ndim)))
    if reduction == "sum":
        return total
    return total / lax.reduce_sum(coef, tuple(range(coef.ndim)))


def _pick(x, index):
    """x[n, index[n, ...], ...]: each position's value at its class."""
    idx = lax.broadcast_in_dim(index, index.shape[:1] + (1,) + index.shape[1:],
                               (0,) + tuple(range(2, index.ndim + 1)))
    return jnp.take_along_axis(x, idx, axis=1, mode="clip")[:, 0]
