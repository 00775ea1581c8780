"""Thin functions over ``bind`` for writing VJP rules and composites in primitives.

``P.mul(a, b)`` is ``bind("mul", a, b)``; helpers build constants shaped like a tensor.
"""

from __future__ import annotations

from ..ir.ops import OPS
from .dispatch import bind


def __getattr__(name):
    if name in OPS:
        def f(*args, **attrs):
            return bind(name, *args, **attrs)

        f.__name__ = name
        globals()[name] = f
        return f
    raise AttributeError(name)


def full_like(t, value, dtype=None):
    return bind("full", shape=t._type.shape, value=value, dtype=dtype or t._type.dtype)


def zeros_like(t):
    return full_like(t, 0.0)


def scalar_like(t, value):
    """A constant with t's shape and dtype (primitives take operands of one shape)."""
    return full_like(t, value)


def sum_to_shape(g, shape, dims=None):
    """Sum g (shaped like a broadcast result) back to ``shape`` given the broadcast ``dims``."""
    gshape = g._type.shape
    if dims is None:
        dims = tuple(range(len(gshape) - len(shape), len(gshape)))
    dims = tuple(dims)
    axes = [i for i in range(len(gshape)) if i not in dims]
    axes += [d for i, d in enumerate(dims) if shape[i] == 1 and gshape[d] != 1]
    out = bind("reduce_sum", g, axes=tuple(sorted(axes))) if axes else g
    if out._type.shape != tuple(shape):
        out = bind("reshape", out, shape=tuple(shape))
    return out
