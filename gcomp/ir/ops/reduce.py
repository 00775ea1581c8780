"""Reductions over axes, arg-reductions and cumulative sums."""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType, bool_
from . import check_axis, declare


def reduced_shape(op, shape, axes, keepdims):
    ndim = len(shape)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: repeated axis in {list(axes)}")
    for a in axes:
        if not 0 <= a < ndim:
            raise ShapeError(f"{op}: axis {a} out of range for rank {ndim}")
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _reduce(name):
    def rule(types, axes, keepdims):
        (x,) = types
        if name in ("reduce_sum", "reduce_prod") and x.dtype == bool_:
            raise ShapeError(f"{name} of bool: cast to an integer dtype first")
        return [TensorType(reduced_shape(name, x.shape, axes, keepdims), x.dtype)]

    return rule


for _n in ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min"):
    declare(_n, "reduce", 1, {"axes": "ints", "keepdims": "bool"}, {"keepdims": False})(_reduce(_n))


def _arg(name):
    def rule(types, axis, keepdims, dtype):
        (x,) = types
        if x.ndim == 0:
            return [TensorType((), dtype)]
        return [TensorType(reduced_shape(name, x.shape, (axis,), keepdims), dtype)]

    return rule


for _n in ("argmax", "argmin"):
    declare(_n, "reduce", 1, {"axis": "int", "keepdims": "bool", "dtype": "dtype"},
            differentiable=False)(_arg(_n))


@declare("cumsum", "reduce", 1, {"axis": "int", "reverse": "bool"}, {"reverse": False})
def _cumsum(types, axis, reverse):
    (x,) = types
    check_axis("cumsum", axis, x.ndim)
    return [x]
