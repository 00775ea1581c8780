"""reduce_window (the pooling primitive) and select_and_scatter_add (max pooling's gradient)."""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType
from . import declare, same_dtype
from .conv import conv_out_size

WINDOW_ATTRS = {"kind": "str", "window": "ints", "stride": "ints", "padding": "int_pairs",
                "base_dilation": "ints", "window_dilation": "ints"}


def window_shape(op, x, window, stride, padding, base_dilation, window_dilation):
    for name, v in (("window", window), ("stride", stride), ("padding", padding),
                    ("base_dilation", base_dilation), ("window_dilation", window_dilation)):
        if len(v) != x.ndim:
            raise ShapeError(f"{op}: {name} needs one entry per dim of {x}, got {list(v)}")
    if any(w < 1 for w in window):
        raise ShapeError(f"{op}: window sizes must be >= 1, got {list(window)}")
    return tuple(conv_out_size(x.shape[d], window[d], stride[d], *padding[d], base_dilation[d],
                               window_dilation[d]) for d in range(x.ndim))


@declare("reduce_window", "window", 1, WINDOW_ATTRS)
def _reduce_window(types, kind, window, stride, padding, base_dilation, window_dilation):
    """Windowed max or sum over every dim (size-1 windows on batch and channel dims)."""
    (x,) = types
    if kind not in ("max", "sum"):
        raise ShapeError(f"reduce_window: kind must be 'max' or 'sum', got {kind!r}")
    shape = window_shape("reduce_window", x, window, stride, padding, base_dilation,
                         window_dilation)
    return [TensorType(shape, x.dtype)]


@declare("select_and_scatter_add", "window", 2,
         {"window": "ints", "stride": "ints", "padding": "int_pairs"})
def _select_and_scatter_add(types, window, stride, padding):
    """Scatter ``source`` (shaped like max pooling's output) onto the argmax of each window of
    ``operand``: the VJP of reduce_window max."""
    source, operand = types
    same_dtype("select_and_scatter_add", types)
    ones = [1] * operand.ndim
    want = window_shape("select_and_scatter_add", operand, window, stride, padding, ones, ones)
    if source.shape != want:
        raise ShapeError(f"select_and_scatter_add: source must have shape {list(want)}, "
                         f"got {source}")
    return [operand]
