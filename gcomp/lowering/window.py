"""jax rules for reduce_window and select_and_scatter_add.

Note [Max pooling's gradient as a reshape]
------------------------------------------
XLA's select-and-scatter (jax's VJP of a max reduce_window) walks every window with a scalar
loop on CPU: 0.87 ms for the 2x2 pooling of a (32, 6, 28, 28) image, a sixth of the CNN
workload's training step. gcomp lowers select_and_scatter_add itself, in one of two ways:

- Tiling windows (stride == window, the 2x2/2 pooling of nearly every CNN) share no element, so
  the scatter is a reshape. Split each dimension into (out, window), move the window axes last
  and flatten them, and take argmax of each window. Put the cotangent where the one-hot of that
  index is, undo the reshape, and pad back the rows a floor-mode pooling left out. XLA fuses
  this into two loops: 0.14-0.30 ms for the example above (benchmarks/conv.py).
- Overlapping windows (3x3/2), up to 64 elements each, use one strided slice of the operand per
  window offset. A running compare over them gives the offset each window picks, whose flat
  index in the operand takes the window's cotangent by a scatter-add. This is 4-10x faster
  than select-and-scatter (benchmarks/conv.py, section c). Larger windows keep
  select-and-scatter, to keep the graph small.

Both pick by torch's rule, ``later > best or isnan(later)``: ties go to the first maximum in
row-major window order, and a NaN wins, the last NaN when there are several. For argmax, the
tiled form orders by integer keys (``_order_key``) to get this. XLA's select keeps an element
only while it is ``>=`` the next one, so it hands a NaN's gradient to the element after it.
The VJP of select_and_scatter_add (autodiff/window.py) picks by the same rule. On GPU the
scatter-add of overlapping windows adds in no fixed order, as torch's CUDA max_pool backward does.
"""

from __future__ import annotations

import itertools
import math

import jax
import numpy as np
from jax import lax

from . import lowers


def _init(kind, dtype):
    if kind == "sum":
        return np.array(0, dtype)
    if jax.numpy.issubdtype(dtype, jax.numpy.inexact):  # numpy's misses bfloat16
        return np.array(-np.inf, dtype)
    return np.array(np.iinfo(dtype).min, dtype)


@lowers("reduce_window")
def _reduce_window(x, kind, window, stride, padding, base_dilation, window_dilation):
    op = lax.add if kind == "sum" else lax.max
    return lax.reduce_window(x, _init(kind, x.dtype), op, tuple(window), tuple(stride),
                             tuple(tuple(p) for p in padding), tuple(base_dilation),
                             tuple(window_dilation))


@lowers("select_and_scatter_add")
def _select_and_scatter_add(source, operand, window, stride, padding):
    if tuple(window) == tuple(stride):
        return tiled_select_and_scatter_add(source, operand, window, padding)
    if math.prod(window) <= _UNROLL_LIMIT:
        return unrolled_select_and_scatter_add(source, operand, window, stride, padding)
    return xla_select_and_scatter_add(source, operand, window, stride, padding)


def xla_select_and_scatter_add(source, operand, window, stride, padding):
    """jax's VJP of a max reduce_window: XLA's select-and-scatter."""
    def pool(x):
        return lax.reduce_window(x, _init("max", x.dtype), lax.max, tuple(window), tuple(stride),
                                 tuple(tuple(p) for p in padding))

    _, vjp = jax.vjp(pool, operand)
    return vjp(source)[0]


_UNROLL_LIMIT = 64  # window elements; beyond, the unrolled graph costs more than it saves


def unrolled_select_and_scatter_add(source, operand, window, stride, padding):
    """select_and_scatter_add for overlapping windows (3x3/2): one strided slice of the operand
    per window offset and a running compare give the offset each window picks by torch's rule;
    its flat index in the padded operand takes the cotangent by a scatter-add (Note [Max
    pooling's gradient as a reshape])."""
    jnp = jax.numpy
    padded = lax.pad(operand, _init("max", operand.dtype), [(lo, hi, 0) for lo, hi in padding])
    outs = source.shape
    best = pick = None
    for k, start in enumerate(itertools.product(*(range(w) for w in window))):  # row-major
        later = lax.slice(padded, start, tuple(st + (o - 1) * s + 1 for st, o, s in
                                               zip(start, outs, stride, strict=True)), stride)
        if best is None:
            best, pick = later, jnp.zeros(outs, jnp.int32)
            continue
        wins = (later > best) | jnp.isnan(later)
        best, pick = jnp.where(wins, later, best), jnp.where(wins, np.int32(k), pick)
    # the picked element's flat index: per dimension, window start plus offset, times its stride
    index_t = jnp.int32 if padded.size < 2 ** 31 else jnp.int64
    flat, rest = jnp.zeros(outs, index_t), pick.astype(index_t)
    elems = np.cumprod((*padded.shape[1:], 1)[::-1])[::-1]
    for d in range(len(window)):
        inner = math.prod(window[d + 1:])
        at = lax.broadcasted_iota(index_t, outs, d) * stride[d] + rest // inner
        flat, rest = flat + at * int(elems[d]), rest % inner
    out = jnp.zeros(padded.size, source.dtype).at[flat.reshape(-1)].add(
        source.reshape(-1), mode="promise_in_bounds").reshape(padded.shape)
    return lax.slice(out, tuple(lo for lo, _ in padding),
                     tuple(p - hi for p, (_, hi) in zip(padded.shape, padding, strict=True)))


def _order_key(flat, axis):
    """Integers in the order torch's max pooling picks (``later > best or isnan(later)``) along
    ``axis``, for argmax's first maximum: a float's bits made monotone (negative floats
    flipped), every NaN above +inf and a later NaN above an earlier one."""
    if not jax.numpy.issubdtype(flat.dtype, jax.numpy.floating):
        return flat
    bits = flat.dtype.itemsize * 8
    int_t = jax.numpy.dtype(f"int{bits}")
    i = lax.bitcast_convert_type(flat, int_t)
    key = i ^ ((i >> (bits - 1)) & np.array(2 ** (bits - 1) - 1, int_t))
    top = np.array(2 ** (bits - 1) - 1 - flat.shape[axis], int_t)
    return jax.numpy.where(jax.numpy.isnan(flat),
                           top + lax.broadcasted_iota(int_t, flat.shape, axis), key)


def tiled_select_and_scatter_add(source, operand, window, padding):
    """select_and_scatter_add when the windows tile the operand (stride == window, the usual 2x2
    max pooling): Note [Max pooling's gradient as a reshape]."""
    nd = len(window)
    padded = lax.pad(operand, _init("max", operand.dtype),
                     [(lo, hi, 0) for lo, hi in padding])
    outs = source.shape
    tiles = lax.slice(padded, (0,) * nd, tuple(o * w for o, w in zip(outs, window, strict=True)))
    split = tiles.reshape([d for o, w in zip(outs, window, strict=True) for d in (o, w)])
    # (o0, w0, o1, w1, ...) -> (o0, o1, ..., w0, w1, ...) -> (o0, o1, ..., w0*w1*...)
    to_end = [2 * i for i in range(nd)] + [2 * i + 1 for i in range(nd)]
    flat = split.transpose(to_end).reshape(outs + (-1,))
    pick = jax.numpy.argmax(_order_key(flat, nd), axis=-1)
    hit = lax.broadcasted_iota(pick.dtype, flat.shape, nd) == pick[..., None]
    spread = jax.numpy.where(hit, source[..., None], jax.numpy.zeros((), source.dtype))
    back = spread.reshape(outs + tuple(window)).transpose(np.argsort(to_end))
    back = back.reshape(tiles.shape)
    # the rows a floor-mode pooling leaves out get nothing; then drop the padding again
    grown = lax.pad(back, np.array(0, source.dtype),
                    [(0, p - t, 0) for p, t in zip(padded.shape, tiles.shape, strict=True)])
    return lax.slice(grown, tuple(lo for lo, _ in padding),
                     tuple(p - hi for p, (_, hi) in zip(padded.shape, padding, strict=True)))

