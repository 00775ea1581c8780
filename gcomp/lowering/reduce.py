"""jax rules for reductions."""

from __future__ import annotations

import numpy as np
from jax import lax

from . import lowers, to_jax_dtype


def _keep(x, out, axes, keepdims):
    if not keepdims:
        return out
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return lax.reshape(out, shape)


@lowers("reduce_sum")
def _sum(x, axes, keepdims):
    return _keep(x, lax.reduce_sum(x, tuple(axes)) if axes else x, axes, keepdims)


@lowers("reduce_prod")
def _prod(x, axes, keepdims):
    return _keep(x, lax.reduce_prod(x, tuple(axes)) if axes else x, axes, keepdims)


@lowers("reduce_max")
def _max(x, axes, keepdims):
    return _keep(x, lax.reduce_max(x, tuple(axes)) if axes else x, axes, keepdims)


@lowers("reduce_min")
def _min(x, axes, keepdims):
    return _keep(x, lax.reduce_min(x, tuple(axes)) if axes else x, axes, keepdims)


def _arg(which):
    def rule(x, axis, keepdims, dtype):
        idx_dtype = to_jax_dtype(dtype)
        if x.ndim == 0:
            return lax.full((), 0, idx_dtype)
        f = lax.argmax if which == "max" else lax.argmin
        out = f(x, axis, idx_dtype)  # first occurrence on ties; NaN wins, as in torch
        return _keep(x, out, (axis,), keepdims)

    return rule


lowers("argmax")(_arg("max"))
lowers("argmin")(_arg("min"))


@lowers("cumsum")
def _cumsum(x, axis, reverse):
    if x.ndim == 0:
        return x
    return lax.cumsum(x, axis=axis, reverse=reverse)


_ = np
