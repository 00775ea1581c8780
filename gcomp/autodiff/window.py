"""VJPs of pooling: reduce_window sum (a padded window sum) and max (select_and_scatter_add)."""

from __future__ import annotations

import itertools
import math

from ..core import prims as P
from ..ir.errors import GcompError
from . import defvjp
from .conv import _lhs_padding


@defvjp("reduce_window")
def _reduce_window(cts, inputs, outputs, kind, window, stride, padding, base_dilation,
                   window_dilation):
    (g,), (x,) = cts, inputs
    ones = (1,) * len(window)
    if kind == "max":
        if tuple(base_dilation) != ones or tuple(window_dilation) != ones:
            raise GcompError("the gradient of a dilated max pooling is not supported")
        return [P.select_and_scatter_add(g, x, window=window, stride=stride, padding=padding)]
    pads = _lhs_padding(x._type.shape, window, stride, g._type.shape, padding, base_dilation,
                        window_dilation)
    padded = P.pad(g, low=tuple(lo for lo, _ in pads), high=tuple(hi for _, hi in pads),
                   interior=tuple(s - 1 for s in stride))
    out = P.reduce_window(padded, kind="sum", window=window, stride=tuple(base_dilation),
                          padding=((0, 0),) * len(window), base_dilation=ones,
                          window_dilation=window_dilation)
    return [out]


@defvjp("select_and_scatter_add")
def _select_and_scatter_add(cts, inputs, outputs, window, stride, padding):
    """Linear in ``source``: each window takes the cotangent at the element its lowering picks
    (the first maximum, or the last NaN: Note [Max pooling's gradient as a reshape] in
    lowering/window.py). Zero for ``operand``."""
    (g,), (source, operand) = cts, inputs
    nd = len(window)
    low, high = tuple(lo for lo, _ in padding), tuple(hi for _, hi in padding)
    if any(low) or any(high):
        operand = P.pad(operand, low=low, high=high, interior=(0,) * nd, value=-math.inf)
        g = P.pad(g, low=low, high=high, interior=(0,) * nd)
    out_shape, best, picked = source._type.shape, None, None
    for start in itertools.product(*(range(w) for w in window)):  # row-major, as XLA walks
        limit = tuple(o + (n - 1) * s + 1 for o, n, s in zip(start, out_shape, stride, strict=True))
        x = P.slice(operand, start=start, limit=limit, stride=stride)
        ct = P.slice(g, start=start, limit=limit, stride=stride)
        if best is None:
            best, picked = x, ct
            continue
        later_wins = P.logical_or(P.gt(x, best), P.ne(x, x))  # torch's rule: a NaN wins
        best = P.select(later_wins, x, best)
        picked = P.select(later_wins, ct, picked)
    return [picked, None]
