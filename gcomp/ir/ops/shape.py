"""Shape primitives: reshape, broadcast, transpose, slice, pad, concatenate, rev, take and
scatter_add."""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType
from . import check_axis, declare, same_dtype


@declare("reshape", "shape", 1, {"shape": "shape"})
def _reshape(types, shape):
    (x,) = types
    out = TensorType(tuple(shape), x.dtype)
    if out.size != x.size:
        raise ShapeError(f"reshape: cannot reshape {x} ({x.size} elements) to {list(shape)}")
    return [out]


@declare("broadcast", "shape", 1, {"shape": "shape", "dims": "ints"})
def _broadcast(types, shape, dims):
    """broadcast_in_dim: operand dim i becomes result dim dims[i] (of size 1 or equal)."""
    (x,) = types
    if len(dims) != x.ndim or sorted(set(dims)) != list(dims):
        raise ShapeError(f"broadcast: dims {list(dims)} must be increasing, one per operand dim")
    for i, d in enumerate(dims):
        if not 0 <= d < len(shape) or x.shape[i] not in (1, shape[d]):
            raise ShapeError(f"broadcast: cannot broadcast {x} to {list(shape)} with dims "
                             f"{list(dims)}")
    return [TensorType(tuple(shape), x.dtype)]


@declare("transpose", "shape", 1, {"perm": "ints"})
def _transpose(types, perm):
    (x,) = types
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"transpose: {list(perm)} is not a permutation of {x.ndim} dims")
    return [TensorType(tuple(x.shape[p] for p in perm), x.dtype)]


@declare("slice", "shape", 1, {"start": "ints", "limit": "ints", "stride": "ints"})
def _slice(types, start, limit, stride):
    (x,) = types
    if not len(start) == len(limit) == len(stride) == x.ndim:
        raise ShapeError(f"slice: start/limit/stride need {x.ndim} entries each")
    out = []
    for d, s, e, st in zip(x.shape, start, limit, stride, strict=True):
        if st < 1 or not 0 <= s <= e <= d:
            raise ShapeError(f"slice: bad range {s}:{e}:{st} for a dim of size {d}")
        out.append(max(0, -(-(e - s) // st)))
    return [TensorType(tuple(out), x.dtype)]


@declare("pad", "shape", 1, {"low": "ints", "high": "ints", "interior": "ints", "value": "float"},
         {"value": 0.0})
def _pad(types, low, high, interior, value):
    """lax.pad: low/high may be negative (crop); interior inserts value between elements."""
    (x,) = types
    if not len(low) == len(high) == len(interior) == x.ndim:
        raise ShapeError(f"pad: low/high/interior need {x.ndim} entries each")
    out = []
    for d, lo, hi, it in zip(x.shape, low, high, interior, strict=True):
        if it < 0:
            raise ShapeError("pad: interior padding must be >= 0")
        n = lo + hi + d + max(0, d - 1) * it
        if n < 0:
            raise ShapeError(f"pad: negative result size for {x}")
        out.append(n)
    return [TensorType(tuple(out), x.dtype)]


@declare("concatenate", "shape", None, {"axis": "int"})
def _concatenate(types, axis):
    if not types:
        raise ShapeError("concatenate needs at least one operand")
    dtype = same_dtype("concatenate", types)
    first = types[0]
    if not 0 <= axis < first.ndim:
        raise ShapeError(f"concatenate: axis {axis} out of range for {first} (zero-dim operands "
                         "cannot be concatenated; reshape them to [1] first)")
    for t in types:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(
                zip(t.shape, first.shape, strict=True)) if i != axis):
            raise ShapeError(f"concatenate: {t} does not match {first} outside axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(t.shape[axis] for t in types)
    return [TensorType(tuple(shape), dtype)]


@declare("rev", "shape", 1, {"dims": "ints"})
def _rev(types, dims):
    (x,) = types
    for d in dims:
        check_axis("rev", d, x.ndim)
    return [x]


def _check_indices(op, idx):
    if not idx.dtype.is_integer:
        raise ShapeError(f"{op}: indices must be integers, got {idx}")


@declare("take", "shape", 2, {"axis": "int"})
def _take(types, axis):
    """np.take: result shape x.shape[:axis] + indices.shape + x.shape[axis+1:]. Indices are
    clamped into range (the front end checks them eagerly and wraps negatives)."""
    x, idx = types
    _check_indices("take", idx)
    check_axis("take", axis, x.ndim)
    return [TensorType(x.shape[:axis] + idx.shape + x.shape[axis + 1:], x.dtype)]


@declare("scatter_add", "shape", 3, {"axis": "int"})
def _scatter_add(types, axis):
    """x with ``updates`` added at ``indices`` along axis (np.add.at); the transpose of take."""
    x, idx, upd = types
    _check_indices("scatter_add", idx)
    check_axis("scatter_add", axis, x.ndim)
    want = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    if upd.shape != want or upd.dtype != x.dtype:
        raise ShapeError(f"scatter_add: updates must be {TensorType(want, x.dtype)}, got {upd}")
    return [x]


SCATTER_MODES = ("set", "mul", "max", "min")


@declare("scatter", "shape", 3, {"axis": "int", "mode": "str"})
def _scatter(types, axis, mode):
    """x with ``updates`` combined into it at ``indices`` along axis (the operands as in
    scatter_add): ``set`` replaces (one of several updates to an element wins), ``mul``, ``max``
    and ``min`` combine the element with every update to it (lax.scatter_mul/max/min)."""
    x, idx, upd = types
    if mode not in SCATTER_MODES:
        raise ShapeError(f"scatter: mode {mode!r} is not one of {', '.join(SCATTER_MODES)}")
    _check_indices("scatter", idx)
    check_axis("scatter", axis, x.ndim)
    want = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    if upd.shape != want or upd.dtype != x.dtype:
        raise ShapeError(f"scatter: updates must be {TensorType(want, x.dtype)}, got {upd}")
    return [x]
