"""jax rules for reduce_window and select_and_scatter_add."""

from __future__ import annotations

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
    # jax's VJP of a max reduce_window is exactly XLA's select-and-scatter-add.
    def pool(x):
        return lax.reduce_window(x, _init("max", x.dtype), lax.max, tuple(window), tuple(stride),
                                 tuple(tuple(p) for p in padding))

    _, vjp = jax.vjp(pool, operand)
    return vjp(source)[0]
