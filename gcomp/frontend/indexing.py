"""``tensor[key]`` and ``tensor[key] = value`` with PyTorch's (NumPy's) indexing rules.

Basic indices (ints, slices, None, Ellipsis) become one ``slice`` and a reshape; advanced indices
(integer tensors, and boolean masks when their values are known) become one ``take`` on a
flattened operand. Assignment scatters into a mask and selects, so it is exact and differentiable.
"""

from __future__ import annotations

import math

import numpy as np

from ..core.dispatch import bind, user_error
from ..ir import types as T
from ..ir.errors import GcompError
from .tensor import Tensor


class GcompIndexError(GcompError, IndexError):
    pass


def _normalize_key(x: Tensor, key):
    from .creation import tensor

    if not isinstance(key, tuple):
        key = (key,)
    key = [tensor(np.asarray(k)) if isinstance(k, (list, range, np.ndarray)) or (
        isinstance(k, np.generic) and k.dtype == bool) else k for k in key]
    out = []
    for j, k in enumerate(key):
        if isinstance(k, bool):
            raise user_error(GcompError, "indexing with a Python bool is not supported; use a "
                             "boolean tensor")
        if isinstance(k, Tensor) and k.dtype == T.bool_:
            if k.is_traced:
                from .tensor import _concrete_error

                raise _concrete_error("boolean-mask indexing (its result's shape depends on the "
                                      "data; use gcomp.where(mask, x, 0) instead)")
            _check_mask_shape(x, key, j)
            idx = np.nonzero(np.asarray(k._storage.data))
            out.extend(tensor(i.astype(np.int64)) for i in idx)
            if k.ndim == 0:
                raise user_error(GcompError, "indexing with a 0-d boolean tensor is not supported")
            continue
        if isinstance(k, Tensor) and k.dtype.is_floating_point:
            raise user_error(GcompError, "tensors used as indices must be long, int or bool")
        out.append(k)
    n_ell = sum(1 for k in out if k is Ellipsis)
    if n_ell > 1:
        raise user_error(GcompIndexError, "an index can only have a single ellipsis ('...')")
    consumed = sum(1 for k in out if k is not None and k is not Ellipsis)
    if consumed > x.ndim:
        raise user_error(GcompIndexError, f"too many indices for tensor of dimension {x.ndim}")
    if n_ell:
        i = out.index(Ellipsis)
        out[i:i + 1] = [slice(None)] * (x.ndim - consumed)
    else:
        out += [slice(None)] * (x.ndim - consumed)
    return out


def _dims_used(k) -> int:
    """How many of the indexed tensor's dims one entry of an index consumes."""
    if k is None or k is Ellipsis:
        return 0
    if isinstance(k, Tensor) and k.dtype == T.bool_:
        return k.ndim
    return 1


def _check_mask_shape(x: Tensor, key, j: int) -> None:
    """A boolean mask must match the dims it indexes (numpy and torch refuse anything else)."""
    mask = key[j]
    if any(k is Ellipsis for k in key[:j]):
        start = x.ndim - sum(_dims_used(k) for k in key[j:])
    else:
        start = sum(_dims_used(k) for k in key[:j])
    if start < 0 or x._type.shape[start:start + mask.ndim] != mask._type.shape:
        raise user_error(GcompIndexError, f"the shape of the mask {list(mask.shape)} at index "
                         f"{start} does not match the shape of the indexed tensor "
                         f"{list(x.shape)}")


def getitem(x: Tensor, key) -> Tensor:
    from .shape_ops import _view_of, reshape

    keys = _normalize_key(x, key)
    shape = x._type.shape
    start, limit, stride = [], [], []
    result_shape = []  # shape after basic indexing (ints squeezed, None inserted)
    advanced = []  # (position in result_shape, index tensor)
    d = 0
    for k in keys:
        if k is None:
            result_shape.append(1)
            continue
        n = shape[d]
        if isinstance(k, slice):
            if k.step is not None and k.step <= 0:
                raise user_error(GcompError, "step must be greater than zero")
            s, e, st = k.indices(n)
            e = max(e, s)
            start.append(s), limit.append(e), stride.append(st)
            result_shape.append(-(-(e - s) // st))
        elif isinstance(k, Tensor):
            start.append(0), limit.append(n), stride.append(1)
            advanced.append((len(result_shape), k))
            result_shape.append(n)
        else:
            try:
                i = int(k.__index__())
            except (AttributeError, TypeError):
                raise user_error(GcompError, f"unsupported index {k!r}: use ints, slices, None, "
                                 "..., or integer/boolean tensors") from None
            if not -n <= i < n:
                raise user_error(GcompIndexError, f"index {i} is out of bounds for dimension {d} "
                                 f"with size {n}")
            i %= n
            start.append(i), limit.append(i + 1), stride.append(1)
        d += 1
    out = x
    if (tuple(start), tuple(limit), tuple(stride)) != ((0,) * x.ndim, shape, (1,) * x.ndim):
        out = bind("slice", x, start=tuple(start), limit=tuple(limit), stride=tuple(stride))
    out = reshape(out, tuple(result_shape)) if tuple(result_shape) != out._type.shape else out
    if not advanced:
        if out is x:
            out = reshape(x, shape)
        return _view_of(out, x, lambda b: getitem(b, key), strides=_basic_strides(x, keys))
    return _advanced(out, advanced)


def _basic_strides(x: Tensor, keys) -> tuple[int, ...]:
    """The strides PyTorch gives the result of basic indexing (ints drop a dim, slices scale
    it, None inserts one)."""
    from .shape_ops import strides_of

    old, out, d = strides_of(x), [], 0
    for k in keys:
        if k is None:
            out.append(0)
            continue
        if isinstance(k, slice):
            out.append(old[d] * (k.step or 1))
        d += 1
    return tuple(out)


def _advanced(x: Tensor, advanced) -> Tensor:
    from .ops import add, broadcast_shapes, broadcast_to, mul
    from .shape_ops import _wrap_index, permute, reshape

    positions = [p for p, _ in advanced]
    idx_shape = broadcast_shapes(*[t._type.shape for _, t in advanced])
    # move the indexed dims to the front, in order, and flatten them into one
    rest = [i for i in range(x.ndim) if i not in positions]
    xt = permute(x, positions + rest)
    sizes = [x._type.shape[p] for p in positions]
    flat = reshape(xt, (math.prod(sizes),) + tuple(x._type.shape[i] for i in rest))
    lin = None
    for (p, t), size, k in zip(advanced, sizes, range(len(sizes))):
        stride = math.prod(sizes[k + 1:])
        part = broadcast_to(_wrap_index(t, size), idx_shape)
        part = mul(part, stride) if stride != 1 else part
        lin = part if lin is None else add(lin, part)
    out = bind("take", flat, lin, axis=0)
    consecutive = positions == list(range(positions[0], positions[0] + len(positions)))
    if consecutive and positions[0] > 0:
        k, p0 = len(idx_shape), positions[0]
        order = list(range(k, k + p0)) + list(range(k)) + list(range(k + p0, out.ndim))
        out = permute(out, order)
    return out


def setitem(x: Tensor, key, value) -> None:
    from .creation import arange
    from .shape_ops import reshape

    write_at(x, getitem(reshape(arange(x.numel()), x._type.shape), key), value)


def write_at(x: Tensor, ids: Tensor, value, check: bool = True) -> Tensor:
    """x with the elements whose flat indices are ``ids`` set to ``value`` (broadcast to ids'
    shape), in place. A mask and a scatter, so it is exact and differentiable in x and value."""
    from .inplace import assign
    from .ops import as_tensor, broadcast_to, cast, full, gt, where
    from .shape_ops import reshape

    value = as_tensor(value) if not isinstance(value, (int, float, bool)) else value
    if isinstance(value, Tensor):
        vals = broadcast_to(cast(value, x.dtype), ids._type.shape)
    else:
        vals = full(ids._type.shape, value, x.dtype)
    flat_ids = reshape(ids, (-1,))
    n = x.numel()
    hit = bind("scatter_add", full((n,), 0, T.int32), flat_ids,
               full(flat_ids._type.shape, 1, T.int32), axis=0)
    carrier = vals if x.dtype != T.bool_ else cast(vals, T.int32)
    spread = bind("scatter_add", full((n,), 0, carrier.dtype), flat_ids, reshape(carrier, (-1,)),
                  axis=0)
    spread = cast(reshape(spread, x._type.shape), x.dtype)
    mask = reshape(gt(hit, 0), x._type.shape)
    return assign(x, where(mask, spread, x), check=check)
