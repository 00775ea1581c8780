"""Sorting, selection and cumulative ops with PyTorch's semantics: sort, argsort, msort, topk,
kthvalue, median, nanmedian, mode, quantile, nanquantile, cumprod, cummax, cummin, logcumsumexp,
searchsorted, bucketize, unique, unique_consecutive, bincount and histc.

One primitive sorts (``argsort``, int64 indices), one selects (``top_k``); values are gathered
from the input with one ``take`` (:func:`take_along`), so every selection is differentiable
through take's VJP (a scatter_add of the cotangent back through the indices), eagerly and inside
``gcomp.compile``.
Selections at data-dependent positions (medians ignoring NaN, quantiles) gather at index tensors,
so they compile too. ``unique``, ``unique_consecutive`` and ``bincount`` without ``minlength``
have shapes that depend on the data: they run eagerly only.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from ..core.dispatch import bind, user_error
from ..ir import types as T
from ..ir.errors import GcompError
from . import ops
from .ops import as_tensor, cast, full
from .tensor import Tensor, _concrete_error, _dim


def _result(name):
    return namedtuple(name, ["values", "indices"])


_SORT, _TOPK, _KTHVALUE = _result("sort"), _result("topk"), _result("kthvalue")
_MEDIAN, _NANMEDIAN, _MODE = _result("median"), _result("nanmedian"), _result("mode")
_CUMMAX, _CUMMIN = _result("cummax"), _result("cummin")


# -- helpers ---------------------------------------------------------------------------------
def take_along(x: Tensor, idx: Tensor, axis: int) -> Tensor:
    """``x``'s elements at ``idx`` along ``axis`` (idx has x's rank, its size along the other
    axes equal to x's); one take on the flattened x. Indices must be in range (they come from
    a sort or a clamp here, so nothing is checked)."""
    if x.ndim == 0:
        return x
    shape = idx._type.shape
    strides = [math.prod(x._type.shape[i + 1:]) for i in range(x.ndim)]
    lin = None
    for i in range(x.ndim):
        part = idx if i == axis else bind("iota", shape=shape, dim=i, dtype=T.int64)
        if strides[i] != 1:
            part = ops.mul(part, strides[i])
        lin = part if lin is None else ops.add(lin, part)
    return bind("take", bind("reshape", x, shape=(x.numel(),)), lin, axis=0)


def _argsort(x: Tensor, axis: int, descending: bool = False) -> Tensor:
    # always stable: ties keep their order on every backend, so indices match torch's stable sort
    return bind("argsort", x, axis=axis, descending=bool(descending), stable=True)


def _slice(x: Tensor, axis: int, start: int, stop: int) -> Tensor:
    n = x.ndim
    return bind("slice", x, start=tuple(start if i == axis else 0 for i in range(n)),
                limit=tuple(stop if i == axis else d for i, d in enumerate(x._type.shape)),
                stride=(1,) * n)


def _squeeze(x: Tensor, axis: int) -> Tensor:
    shape = x._type.shape
    return bind("reshape", x, shape=shape[:axis] + shape[axis + 1:])


def _unsqueeze(x: Tensor, axis: int) -> Tensor:
    shape = x._type.shape
    return bind("reshape", x, shape=shape[:axis] + (1,) + shape[axis:])


def _movedim(x: Tensor, src: int, dst: int) -> Tensor:
    if src == dst:
        return x
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    return bind("transpose", x, perm=tuple(perm))


def _size(x: Tensor, d: int) -> int:
    return x._type.shape[d] if x.ndim else 1


def _is_float(x: Tensor) -> bool:
    return x._type.dtype.is_floating_point


def _out(out, result):
    """Write ``result`` into ``out=`` (a tensor, or a (values, indices) pair) and return it.
    gcomp cannot resize ``out``: its shape must be the result's."""
    if out is None:
        return result
    from .inplace import assign

    pairs = list(zip(out, result, strict=True)) if isinstance(result, tuple) else [(out, result)]
    for o, r in pairs:
        if not isinstance(o, Tensor) or o._type.shape != r._type.shape:
            raise user_error(GcompError, f"out= must be a tensor of the result's shape "
                             f"{list(r.shape)} (gcomp cannot resize it), got "
                             f"{list(o.shape) if isinstance(o, Tensor) else type(o).__name__}")
        assign(o, r)
    return type(result)(*(o for o, _ in pairs)) if isinstance(result, tuple) else out


# -- sorting ---------------------------------------------------------------------------------
def sort(input, dim=-1, descending=False, stable=False, *, out=None):  # noqa: A002
    """torch.sort: (values, indices). NaN sorts as the largest value; the sort is always stable
    (torch's stable=True order), so ``stable`` is accepted and changes nothing."""
    x = as_tensor(input)
    d = _dim(dim, x.ndim)
    idx = _argsort(x, d, descending)
    return _out(out, _SORT(take_along(x, idx, d), idx))


def argsort(input, dim=-1, descending=False, stable=False):  # noqa: A002
    x = as_tensor(input)
    return _argsort(x, _dim(dim, x.ndim), descending)


def msort(input):  # noqa: A002
    return sort(input, 0).values


def topk(input, k, dim=-1, largest=True, sorted=True, *, out=None):  # noqa: A002
    """torch.topk with lax.top_k (the ``top_k`` primitive): NaN counts as the largest value;
    ties come out lowest index first (torch leaves their order unspecified); always sorted."""
    x = as_tensor(input)
    d = _dim(dim, x.ndim)
    n = _size(x, d)
    if not 0 <= int(k) <= n:
        raise user_error(GcompError, f"topk(): selected index k={k} out of range for a dimension "
                         f"of size {n}")
    idx = bind("top_k", x, k=int(k), axis=d, largest=bool(largest))
    return _out(out, _TOPK(take_along(x, idx, d), idx))


def kthvalue(input, k, dim=-1, keepdim=False, *, out=None):  # noqa: A002
    x = as_tensor(input)
    d = _dim(dim, x.ndim)
    n = _size(x, d)
    if not 1 <= int(k) <= n:
        raise user_error(GcompError, f"kthvalue(): selected number k={k} out of range for a "
                         f"dimension of size {n}")
    if x.ndim == 0:
        return _out(out, _KTHVALUE(x, full((), 0, T.int64)))
    idx = _slice(_argsort(x, d), d, int(k) - 1, int(k))
    return _out(out, _finish(_KTHVALUE, take_along(x, idx, d), idx, d, keepdim))


def _finish(cls, values, idx, d, keepdim):
    if not keepdim:
        values, idx = _squeeze(values, d), _squeeze(idx, d)
    return cls(values, idx)


def _nan_count(x: Tensor, d: int) -> Tensor:
    return ops.sum(ops.isnan(x), d, keepdim=True)


def _median(name, input, dim, keepdim, ignore_nan):  # noqa: A002
    """The lower median (torch's): sorted position (n - 1) // 2, or the first NaN when a slice
    has one (median), or among the non-NaN values only (nanmedian)."""
    x = as_tensor(input)
    if dim is None:
        if x.numel() == 0:
            return full((), math.nan, x.dtype if _is_float(x) else T.float32)
        flat = bind("reshape", x, shape=(x.numel(),))
        value = _median(name, flat.detach(), 0, False, ignore_nan).values
        return _evenly(flat, value) if x.requires_grad else value
    d = _dim(dim, x.ndim)
    cls = _MEDIAN if name == "median" else _NANMEDIAN
    if x.ndim == 0:
        return cls(x, full((), 0, T.int64))
    n = x._type.shape[d]
    if n == 0:
        raise user_error(GcompError, f"{name}(): cannot compute the median of a dimension of "
                         "size 0")
    idx = _argsort(x, d)
    kept = tuple(1 if i == d else s for i, s in enumerate(x._type.shape))
    if _is_float(x):
        nans = _nan_count(x, d)
        valid = ops.sub(n, nans)
        if ignore_nan:
            pos = ops.floor_divide(ops.clamp(ops.sub(valid, 1), min=0), 2)
        else:
            pos = ops.where(ops.gt(nans, 0), valid, (n - 1) // 2)
        pos = cast(ops.clamp(pos, max=n - 1), T.int64)
    else:
        pos = full(kept, (n - 1) // 2, T.int64)
    where_in_x = take_along(idx, pos, d)
    return _finish(cls, take_along(x, where_in_x, d), where_in_x, d, keepdim)


def _evenly(flat: Tensor, value: Tensor) -> Tensor:
    """``value`` (a 0-d selection from flat), with torch's gradient of a full reduction: shared
    evenly by all the elements equal to it (NaN equal to NaN)."""
    hit = ops.logical_or(ops.eq(flat, value), ops.logical_and(ops.isnan(flat), ops.isnan(value)))
    zero = ops.where(hit, ops.sub(flat, flat.detach()), 0.0)  # 0, with the gradient of flat
    return ops.add(value, ops.div(ops.sum(zero), ops.sum(cast(hit, flat.dtype))))


def median(input, dim=None, keepdim=False):  # noqa: A002
    return _median("median", input, dim, keepdim, ignore_nan=False)


def nanmedian(input, dim=None, keepdim=False):  # noqa: A002
    return _median("nanmedian", input, dim, keepdim, ignore_nan=True)


def mode(input, dim=-1, keepdim=False):  # noqa: A002
    """The most frequent value along dim (the smallest of equally frequent ones) and the index
    of its last occurrence, as torch. Counts compare all pairs of a slice (n^2 work)."""
    x = as_tensor(input)
    d = _dim(dim, x.ndim)
    if x.ndim == 0:
        return _MODE(x, full((), 0, T.int64))
    xm = _movedim(x, d, x.ndim - 1)
    last = x.ndim - 1
    shape = xm._type.shape
    idx = _argsort(xm, last)
    s = take_along(xm.detach(), idx, last)
    counts = ops.sum(ops.eq(_unsqueeze(s, last + 1), _unsqueeze(s, last)), last + 1)
    p = ops.argmax(counts, last, keepdim=True)  # first of the most frequent: the smallest value
    value = take_along(s, p, last)
    iota = bind("iota", shape=shape, dim=last, dtype=T.int64)
    where_in_x = ops.amax(ops.where(ops.eq(xm.detach(), value), iota, -1), last, keepdim=True)
    where_in_x = ops.where(ops.lt(where_in_x, 0), take_along(idx, p, last), where_in_x)
    values = take_along(xm, where_in_x, last)
    if keepdim:
        return _MODE(_movedim(values, last, d), _movedim(where_in_x, last, d))
    return _MODE(_squeeze(values, last), _squeeze(where_in_x, last))


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(name, input, q, dim, keepdim, interpolation, ignore_nan):  # noqa: A002
    x = as_tensor(input)
    if not _is_float(x):
        raise user_error(GcompError, f"{name}() input tensor must be either float or double "
                         f"dtype, got {x.dtype.name}")
    if interpolation not in _INTERPOLATIONS:
        raise user_error(GcompError, f"{name}() interpolation must be one of "
                         f"{', '.join(_INTERPOLATIONS)}; got '{interpolation}'")
    scalar_q = not isinstance(q, Tensor)
    qt = full((), float(q), x.dtype) if scalar_q else cast(as_tensor(q), x.dtype)
    if qt.ndim > 1:
        raise user_error(GcompError, f"{name}() q must be a scalar or 1D tensor")
    if not qt.is_traced:
        qa = np.asarray(qt.detach()._storage.data)
        if ((qa < 0) | (qa > 1)).any() or np.isnan(qa).any():
            raise user_error(GcompError, f"{name}() q values must be in the range [0, 1], got "
                             f"{qa.tolist()}")
    ndim = x.ndim
    if x.numel() == 0:
        raise user_error(GcompError, f"{name}() input tensor must be non-empty")
    if dim is None:
        xm, d = bind("reshape", x, shape=(x.numel(),)), None
    else:
        d = _dim(dim, ndim)
        xm = _movedim(x, d, ndim - 1) if ndim else bind("reshape", x, shape=(1,))
    last = xm.ndim - 1
    n = xm._type.shape[last]
    s = take_along(xm, _argsort(xm, last), last)  # [B..., n], NaN last
    nq = 1 if qt.ndim == 0 else qt._type.shape[0]
    batch = xm._type.shape[:-1]
    qb = bind("reshape", qt, shape=(nq,) + (1,) * (len(batch) + 1))
    nans = _nan_count(xm.detach(), last)  # [B..., 1]
    if ignore_nan:  # rank is differentiable in q (the weight of linear interpolation is)
        rank = ops.clamp(ops.mul(qb, cast(ops.sub(n - 1, nans), x.dtype)), min=0)
    else:
        rank = ops.where(ops.gt(nans, 0), float(n - 1), ops.mul(qb, float(n - 1)))
    with _no_grad():
        lo = cast(ops.floor(rank), T.int64)
        hi = cast(ops.ceil(rank), T.int64)
        near = cast(ops.round(rank), T.int64)
    sb = ops.broadcast_to(s, (nq,) + s._type.shape)

    def at(i):
        i = ops.broadcast_to(ops.clamp(i, 0, n - 1), (nq,) + batch + (1,))
        return take_along(sb, i, last + 1)

    if interpolation == "lower":
        out = at(lo)
    elif interpolation == "higher":
        out = at(hi)
    elif interpolation == "nearest":
        out = at(near)
    else:
        a, b = at(lo), at(hi)
        w = 0.5 if interpolation == "midpoint" else ops.sub(rank, cast(lo, x.dtype))
        if not isinstance(w, float):
            w = ops.broadcast_to(w, a._type.shape)
        out = _lerp(a, b, w)
    # out: [Q, B..., 1]
    if dim is None:
        out = bind("reshape", out, shape=(nq,) + ((1,) * ndim if keepdim else ()))
    elif keepdim:
        out = _movedim(out, out.ndim - 1, d + 1) if ndim else bind("reshape", out, shape=(nq,))
    else:
        out = _squeeze(out, out.ndim - 1) if ndim else bind("reshape", out, shape=(nq,))
    if qt.ndim == 0:
        out = bind("reshape", out, shape=out._type.shape[1:])
    return out


def _lerp(a, b, w):
    """torch.lerp's formula (exact at both ends): a + w (b - a) below w = 0.5, else
    b - (b - a)(1 - w)."""
    diff = ops.sub(b, a)
    if isinstance(w, float):
        return ops.add(a, ops.mul(diff, w)) if w < 0.5 else ops.sub(b, ops.mul(diff, 1 - w))
    return ops.where(ops.lt(w, 0.5), ops.add(a, ops.mul(w, diff)),
                     ops.sub(b, ops.mul(diff, ops.sub(1.0, w))))


def _no_grad():
    from .autograd import no_grad

    return no_grad()


def quantile(input, q, dim=None, keepdim=False, *, interpolation="linear", out=None):  # noqa: A002
    return _out(out, _quantile("quantile", input, q, dim, keepdim, interpolation, False))


def nanquantile(input, q, dim=None, keepdim=False, *, interpolation="linear",  # noqa: A002
                out=None):
    return _out(out, _quantile("nanquantile", input, q, dim, keepdim, interpolation, True))


# -- cumulative ops --------------------------------------------------------------------------
def cumprod(input, dim, *, dtype=None, out=None):  # noqa: A002
    x = as_tensor(input)
    if dtype is not None:
        x = cast(x, dtype)
    elif not _is_float(x):
        x = cast(x, T.int64)
    return _out(out, bind("cumprod", x, axis=_dim(dim, x.ndim)))


def _cumextreme(op, cls, input, dim, out):  # noqa: A002
    x = as_tensor(input)
    d = _dim(dim, x.ndim)
    idx = bind(op, x, axis=d)
    return _out(out, cls(take_along(x, idx, d), idx))


def cummax(input, dim, *, out=None):  # noqa: A002
    return _cumextreme("cumargmax", _CUMMAX, input, dim, out)


def cummin(input, dim, *, out=None):  # noqa: A002
    return _cumextreme("cumargmin", _CUMMIN, input, dim, out)


def logcumsumexp(input, dim, *, out=None):  # noqa: A002
    x = as_tensor(input)
    if not _is_float(x):
        x = cast(x, T.DEFAULT_FLOAT)
    return _out(out, bind("logcumsumexp", x, axis=_dim(dim, x.ndim)))


# -- searching and counting ------------------------------------------------------------------
def searchsorted(sorted_sequence, input, *, out_int32=False, right=False, side=None,  # noqa: A002
                 sorter=None, out=None):
    """torch.searchsorted by counting, per value, the boundaries below it (n * m comparisons:
    meant for the short sequences of bucketing, not for millions of boundaries)."""
    seq = as_tensor(sorted_sequence)
    if side is not None:
        if side not in ("left", "right"):
            raise user_error(GcompError, f"searchsorted(): side can only be 'left' or 'right', "
                             f"got '{side}'")
        if right and side == "left":
            raise user_error(GcompError, "searchsorted(): side and right can't be set to opposites"
                             ", got side of left while right was True")
        right = side == "right"
    if seq.ndim == 0:
        raise user_error(GcompError, "searchsorted(): boundaries tensor should have 1 or more "
                         "dimensions")
    if sorter is not None:
        seq = take_along(seq, as_tensor(sorter), seq.ndim - 1)
    scalar = not isinstance(input, Tensor)
    v = as_tensor(input)
    if seq.ndim > 1 and (v.ndim != seq.ndim or v._type.shape[:-1] != seq._type.shape[:-1]):
        raise user_error(GcompError, "searchsorted(): boundaries tensor should be 1 dimension or "
                         "the first N-1 dimensions of boundaries tensor and input value tensor "
                         f"must match, but we got boundaries tensor {list(seq.shape)} and input "
                         f"value tensor {list(v.shape)}")
    if seq.ndim == 1:
        b = seq  # compare v[..., None] with seq[None, ..., :]
    else:
        b = _unsqueeze(seq, seq.ndim - 1)  # [B..., 1, n]
    vu = _unsqueeze(v, v.ndim)
    below = ops.le(b, vu) if right else ops.lt(b, vu)
    if _is_float(v):  # a NaN value goes after every boundary, as in torch
        below = ops.logical_or(below, ops.isnan(vu))
    res = cast(ops.sum(below, -1), T.int32 if out_int32 else T.int64)
    return _out(out, res if not scalar else bind("reshape", res, shape=()))


def bucketize(input, boundaries, *, out_int32=False, right=False, out=None):  # noqa: A002
    b = as_tensor(boundaries)
    if b.ndim != 1:
        raise user_error(GcompError, f"bucketize(): boundaries tensor must be 1 dimension, but "
                         f"got dim({b.ndim})")
    return searchsorted(b, input, out_int32=out_int32, right=right, out=out)


def _eager(x: Tensor, what: str) -> np.ndarray:
    if x.is_traced:
        raise _concrete_error(f"{what} (its result's shape depends on the data)")
    return np.asarray(x.detach()._storage.data)


def unique(input, sorted=True, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    """torch.unique, eagerly (sorted whatever ``sorted`` says, as torch on CPU)."""
    from .creation import tensor

    x = as_tensor(input)
    a = _eager(x, "unique()")
    if dim is not None:
        d = _dim(dim, x.ndim)
        vals, inv, counts = np.unique(a, return_inverse=True, return_counts=True, axis=d)
        inv = inv.reshape(-1)
    else:
        vals, inv, counts = np.unique(a.reshape(-1), return_inverse=True, return_counts=True)
        inv = inv.reshape(a.shape)
    return _unique_result(tensor(vals, dtype=x.dtype), inv, counts, return_inverse,
                          return_counts)


def _unique_result(vals, inv, counts, return_inverse, return_counts):
    from .creation import tensor

    res = [vals]
    if return_inverse:
        res.append(tensor(np.asarray(inv, np.int64)))
    if return_counts:
        res.append(tensor(np.asarray(counts, np.int64)))
    return res[0] if len(res) == 1 else tuple(res)


def unique_consecutive(input, return_inverse=False, return_counts=False, dim=None):  # noqa: A002
    from .creation import tensor

    x = as_tensor(input)
    a = _eager(x, "unique_consecutive()")
    if dim is None:
        a, shape, d = a.reshape(-1), a.shape, 0
    else:
        d = _dim(dim, x.ndim)
        shape = None
    n = a.shape[d] if a.ndim else 1
    if n == 0:
        return _unique_result(tensor(a, dtype=x.dtype), np.zeros(shape or (0,), np.int64),
                              np.zeros(0, np.int64), return_inverse, return_counts)
    m = np.moveaxis(a, d, 0).reshape(n, -1)
    new = np.ones(n, bool)
    new[1:] = (m[1:] != m[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    vals = np.take(a, starts, axis=d)
    inv = np.cumsum(new) - 1
    counts = np.diff(np.append(starts, n))
    if shape is not None:
        inv = inv.reshape(shape)
    return _unique_result(tensor(vals, dtype=x.dtype), inv, counts, return_inverse,
                          return_counts)


def bincount(input, weights=None, minlength=0):  # noqa: A002
    """torch.bincount. Eagerly the length is max(input) + 1 (at least minlength); inside
    gcomp.compile it can only be ``minlength``, so minlength is required there and values at or
    above it are dropped."""
    x = as_tensor(input)
    if x.ndim != 1 or _is_float(x) or x.dtype == T.bool_:
        raise user_error(GcompError, "bincount() only supports 1-d non-negative integral inputs")
    if minlength < 0:
        raise user_error(GcompError, "bincount(): minlength should be >= 0")
    if x.is_traced:
        if minlength <= 0:
            raise _concrete_error("bincount() without minlength (its result's length is "
                                  "max(input) + 1); pass minlength=<number of bins>")
        length = int(minlength)
    else:
        a = np.asarray(x._storage.data)
        if a.size and a.min() < 0:
            raise user_error(GcompError, "bincount(): input should contain only non-negative "
                             "values")
        length = max(int(a.max()) + 1 if a.size else 0, int(minlength))
    if weights is None:
        dtype, w = T.int64, full(x._type.shape, 1, T.int64)
    else:
        w = as_tensor(weights)
        if w._type.shape != x._type.shape:
            raise user_error(GcompError, "bincount(): weights should be 1-d and have the same "
                             "length as input")
        dtype = w.dtype if _is_float(w) else T.float64
        w = cast(w, dtype)
    idx = cast(x, T.int64)
    w = ops.where(ops.lt(idx, length), w, full((), 0, dtype))
    return bind("scatter_add", full((length,), 0, dtype), idx, w, axis=0)


def histc(input, bins=100, min=0, max=0, *, out=None):  # noqa: A002
    """torch.histc: ``bins`` equal bins over [min, max] (the data's range when min == max);
    elements outside are ignored, the maximum falls into the last bin."""
    x = as_tensor(input)
    if not _is_float(x):
        raise user_error(GcompError, f"histc() is not implemented for {x.dtype.name} inputs; "
                         "convert the input to a floating-point dtype first")
    if bins <= 0:
        raise user_error(GcompError, f"histc(): bins must be > 0, but got {bins}")
    if min > max:
        raise user_error(GcompError, f"histc(): max must be larger than min, got min={min}, "
                         f"max={max}")
    flat = bind("reshape", x.detach(), shape=(x.numel(),))
    if min == max and x.numel():
        lo, hi = ops.amin(flat), ops.amax(flat)
    else:
        lo, hi = full((), min, x.dtype), full((), max, x.dtype)
    same = ops.eq(lo, hi)
    lo, hi = ops.where(same, ops.sub(lo, 1), lo), ops.where(same, ops.add(hi, 1), hi)
    pos = ops.div(ops.mul(ops.sub(flat, lo), float(bins)), ops.sub(hi, lo))
    b = ops.clamp(cast(ops.floor(ops.where(ops.isnan(pos), 0.0, pos)), T.int64), 0, bins - 1)
    inside = ops.logical_and(ops.ge(flat, lo), ops.le(flat, hi))
    w = cast(inside, x.dtype)
    return _out(out, bind("scatter_add", full((bins,), 0, x.dtype), b, w, axis=0))


__all__ = ["sort", "argsort", "msort", "topk", "kthvalue", "median", "nanmedian", "mode",
           "quantile", "nanquantile", "cumprod", "cummax", "cummin", "logcumsumexp",
           "searchsorted", "bucketize", "unique", "unique_consecutive", "bincount", "histc",
           "take_along"]
