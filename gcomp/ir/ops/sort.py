"""Sorting, selection and cumulative scans whose results are indices or running products.

``argsort``, ``top_k`` and ``cumargmax``/``cumargmin`` return int64 indices only: the front end
gathers the values with ``take`` (one sort, selection or scan, then an O(n) gather), so their
gradients are the gather's and every primitive here has one result. ``cumprod`` and
``logcumsumexp`` follow ``cumsum``.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType, bool_, int64
from . import check_axis, declare


@declare("argsort", "sort", 1, {"axis": "int", "descending": "bool", "stable": "bool"},
         {"descending": False, "stable": True}, differentiable=False)
def _argsort(types, axis, descending, stable):
    """The permutation that sorts x along axis (int64). NaN sorts as the largest value, -0.0
    equals 0.0; with stable ties keep their order (torch.sort)."""
    (x,) = types
    check_axis("argsort", axis, x.ndim)
    return [TensorType(x.shape, int64)]


def _cumarg(name):
    def rule(types, axis):
        (x,) = types
        check_axis(name, axis, x.ndim)
        return [TensorType(x.shape, int64)]

    rule.__doc__ = (f"Index of the running {name[6:]} along axis: the latest one on ties, and the "
                    "latest NaN once one appears (torch.cum" + name[6:] + ").")
    return rule


for _n in ("cumargmax", "cumargmin"):
    declare(_n, "sort", 1, {"axis": "int"}, differentiable=False)(_cumarg(_n))


def _scan(name):
    def rule(types, axis, reverse):
        (x,) = types
        check_axis(name, axis, x.ndim)
        if x.dtype == bool_ or (name == "logcumsumexp" and not x.dtype.is_floating_point):
            raise ShapeError(f"{name} of {x.dtype.name}: cast to "
                             f"{'a floating' if name == 'logcumsumexp' else 'an integer'} "
                             "dtype first")
        return [x]

    return rule


for _n in ("cumprod", "logcumsumexp"):
    declare(_n, "sort", 1, {"axis": "int", "reverse": "bool"}, {"reverse": False})(_scan(_n))


@declare("top_k", "sort", 1, {"k": "int", "axis": "int", "largest": "bool"}, {"largest": True},
         differentiable=False)
def _top_k(types, k, axis, largest):
    """Indices (int64) of the k largest (or smallest) elements along axis, in order; NaN is the
    largest value, ties come lowest index first (torch.topk)."""
    (x,) = types
    check_axis("top_k", axis, x.ndim)
    n = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= n:
        raise ShapeError(f"top_k: k={k} out of range for a dimension of size {n}")
    shape = tuple(k if i == axis else d for i, d in enumerate(x.shape))
    return [TensorType(shape, int64)]
