"""VJPs of pooling: reduce_window sum (a padded window sum) and max (select_and_scatter_add)."""

from __future__ import annotations

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
    raise GcompError("second derivatives through max pooling are not supported")
