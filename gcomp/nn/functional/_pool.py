"""Pooling (torch.nn.functional.max_pool*, avg_pool*, adaptive_avg_pool*).

Max and average pooling are one ``reduce_window`` over every dim (windows of 1 on the batch and
channel dims); ceil_mode becomes extra padding on the high side. Two cases walk the window
offsets with strided slices instead: dilated max pooling (whose reduce_window has no gradient
rule) and ``return_indices``, both keeping the first maximum on ties as torch does.
"""

from __future__ import annotations

import math

import numpy as np

import gcomp
from gcomp import GcompError
from gcomp.core import prims as P
from gcomp.core.dispatch import user_error
from gcomp.frontend.autocast import float32 as amp_float32

from ._conv import _tuple

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
           "max_pool2d_with_indices", "max_pool3d_with_indices", "avg_pool1d", "avg_pool2d",
           "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
           "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool1d_with_indices",
           "adaptive_max_pool2d_with_indices", "adaptive_max_pool3d",
           "adaptive_max_pool3d_with_indices", "lp_pool1d", "lp_pool2d"]


def pool_out_size(n, k, s, p, d, ceil_mode) -> int:
    """torch's pooling_output_shape."""
    ek = d * (k - 1) + 1
    out = (n + 2 * p - ek + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


class _Window:
    """A pooling's geometry over all dims of the input (batch and channel dims get windows of 1)."""

    def __init__(self, x, nsp, kernel_size, stride, padding, dilation, ceil_mode, fn, is_max):
        shape = tuple(x.shape)
        if len(shape) not in (nsp + 1, nsp + 2):
            raise user_error(GcompError, f"{fn}(): expected {nsp + 1}D or {nsp + 2}D input, but "
                             f"got input of size {list(shape)}")
        k = _tuple(kernel_size, nsp, "kernel_size")
        s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) \
            else _tuple(stride, nsp, "stride")
        p = _tuple(padding, nsp, "padding")
        d = _tuple(dilation, nsp, "dilation")
        if min(k) <= 0 or min(s) <= 0 or min(d) <= 0 or min(p) < 0:
            raise user_error(GcompError, f"{fn}(): kernel_size, stride and dilation must be "
                             f"positive and padding non-negative, got kernel_size={k}, "
                             f"stride={s}, padding={p}, dilation={d}")
        for kk, pp, dd in zip(k, p, d, strict=True):
            limit = ((kk - 1) * dd + 1) // 2 if is_max else kk // 2
            if pp > limit:
                raise user_error(GcompError, f"{fn}(): pad should be at most half of "
                                 f"{'effective ' if is_max else ''}kernel size, but got "
                                 f"pad={pp}, kernel_size={kk}" +
                                 (f" and dilation={dd}" if is_max else ""))
        lead = len(shape) - nsp
        spatial = shape[lead:]
        out = tuple(pool_out_size(n, kk, ss, pp, dd, ceil_mode)
                    for n, kk, ss, pp, dd in zip(spatial, k, s, p, d, strict=True))
        if min(out) <= 0:
            raise user_error(GcompError, f"{fn}(): given input size {list(shape)}, the "
                             f"calculated output size {list(shape[:lead] + out)} is too small")
        # High padding that makes reduce_window produce exactly `out` windows (ceil_mode adds).
        hi = tuple(max(0, (o - 1) * ss + dd * (kk - 1) + 1 - n - pp)
                   for o, n, kk, ss, pp, dd in zip(out, spatial, k, s, p, d, strict=True))
        self.k, self.s, self.p, self.d, self.hi, self.out = k, s, p, d, hi, out
        self.lead, self.spatial, self.shape = lead, spatial, shape
        one = (1,) * lead
        self.attrs = dict(window=one + k, stride=one + s,
                          padding=((0, 0),) * lead + tuple(zip(p, hi, strict=True)),
                          base_dilation=(1,) * len(shape), window_dilation=one + d)

    def reduce(self, x, kind):
        return P.reduce_window(x, kind=kind, **self.attrs)


def _max_pool(x, nsp, kernel_size, stride, padding, dilation, ceil_mode, return_indices, fn):
    w = _Window(x, nsp, kernel_size, stride, padding, dilation, ceil_mode, fn, True)
    if not return_indices and all(d == 1 for d in w.d):
        return w.reduce(x, "max")
    return _max_pool_by_offsets(x, w, return_indices)


def _max_pool_by_offsets(x, w: _Window, return_indices: bool):
    """The maximum over the window's offsets, one strided slice each; the first maximum wins
    (torch's scan order), and its flat index into the input's spatial dims when asked."""
    nd, lead = len(w.shape), w.lead
    low = (0,) * lead + w.p
    high = (0,) * lead + w.hi
    padded = any(low) or any(high)
    xp = P.pad(x, low=low, high=high, interior=(0,) * nd, value=-math.inf) if padded else x
    idx = None
    if return_indices:
        with gcomp.no_grad():
            flat = P.iota(shape=(math.prod(w.spatial),), dim=0, dtype=gcomp.int64)
            flat = P.reshape(flat, shape=w.spatial)
            if padded:
                flat = P.pad(flat, low=w.p, high=w.hi, interior=(0,) * len(w.spatial),
                             value=-1.0)
            idx = P.broadcast(flat, shape=tuple(xp.shape), dims=tuple(range(lead, nd)))
    stride = (1,) * lead + w.s
    best = best_idx = None
    for offset in np.ndindex(*w.k):
        start = (0,) * lead + tuple(o * d for o, d in zip(offset, w.d, strict=True))
        limit = tuple(st + (n - 1) * s + 1 for st, n, s in
                      zip(start, w.shape[:lead] + w.out, stride, strict=True))
        xs = P.slice(xp, start=start, limit=limit, stride=stride)
        ids = P.slice(idx, start=start, limit=limit, stride=stride) if idx is not None else None
        if best is None:
            best, best_idx = xs, ids
            continue
        wins = P.logical_or(P.gt(xs, best), P.ne(xs, xs))  # torch: val > max or isnan(val)
        best = P.select(wins, xs, best)
        if ids is not None:
            with gcomp.no_grad():
                best_idx = P.select(wins, ids, best_idx)
    return (best, best_idx) if return_indices else best


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, "max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    return _max_pool(input, 3, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices, "max_pool3d")


def max_pool1d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool2d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def max_pool3d_with_indices(input, kernel_size, stride=None, padding=0, dilation=1,
                            ceil_mode=False, return_indices=True):
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, True)


def _avg_divisor(w: _Window, count_include_pad: bool):
    """torch's divide_factor per output position: the window clipped to [-pad, n + pad), and to
    [0, n) as well unless count_include_pad. A number when it is the same everywhere."""
    if count_include_pad and all(h <= p for h, p in zip(w.hi, w.p, strict=True)):
        return math.prod(w.k)
    factors = []
    for n, k, s, p, o in zip(w.spatial, w.k, w.s, w.p, w.out, strict=True):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        size = end - start
        if not count_include_pad:
            size = np.minimum(end, n) - np.maximum(start, 0)
        factors.append(size)
    div = factors[0]
    for f in factors[1:]:
        div = np.multiply.outer(div, f)
    return div


def _avg_pool(x, nsp, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, fn):
    w = _Window(x, nsp, kernel_size, stride, padding, 1, ceil_mode, fn, False)
    if w.s == w.k and not any(w.p) and not any(w.hi):
        summed = window_sums(x, w.lead, w.k)
    else:
        summed = w.reduce(x, "sum")
    shape = tuple(summed.shape)
    if divisor_override is not None:
        if divisor_override == 0:
            raise user_error(GcompError, f"{fn}(): divisor must be not zero")
        divisor = divisor_override
    else:
        divisor = _avg_divisor(w, count_include_pad)
    if isinstance(divisor, np.ndarray):
        d = gcomp.tensor(divisor, dtype=x.dtype)
        return P.div(summed, P.broadcast(d, shape=shape, dims=tuple(range(w.lead, len(shape)))))
    return _scale(summed, 1.0 / divisor)


def _scale(x, factor):
    return P.mul(x, P.full(shape=tuple(x.shape), value=float(factor), dtype=x.dtype))


def window_sums(x, lead, k):
    """Sums over non-overlapping windows k (stride k, trailing rows that fill no window
    dropped): a reshape and a reduce_sum, whose gradient is a cheap broadcast (reduce_window's
    is a padded windowed sum)."""
    shape = tuple(x.shape)
    spatial = shape[lead:]
    out = tuple(n // kk for n, kk in zip(spatial, k, strict=True))
    if any(o * kk != n for o, kk, n in zip(out, k, spatial, strict=True)):
        x = P.slice(x, start=(0,) * len(shape),
                    limit=shape[:lead] + tuple(o * kk for o, kk in zip(out, k, strict=True)),
                    stride=(1,) * len(shape))
    if all(o == 1 for o in out):
        return P.reduce_sum(x, axes=tuple(range(lead, len(shape))), keepdims=True)
    tiled = shape[:lead] + tuple(v for o, kk in zip(out, k, strict=True) for v in (o, kk))
    axes = tuple(lead + 2 * i + 1 for i in range(len(k)))
    return P.reduce_sum(P.reshape(x, shape=tiled), axes=axes, keepdims=False)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    return _avg_pool(input, 1, kernel_size, stride, padding, ceil_mode, count_include_pad, None,
                     "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(input, 2, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, "avg_pool2d")


@amp_float32
def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    return _avg_pool(input, 3, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, "avg_pool3d")


def adaptive_pool_matrix(n: int, o: int) -> np.ndarray:
    """(o, n) averaging weights of torch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o))."""
    m = np.zeros((o, n))
    for i in range(o):
        start, end = (i * n) // o, -((-(i + 1) * n) // o)
        m[i, start:end] = 1.0 / (end - start)
    return m


def _adaptive_avg_pool(x, nsp, output_size, fn):
    shape = tuple(x.shape)
    if len(shape) not in (nsp + 1, nsp + 2):
        raise user_error(GcompError, f"{fn}(): expected {nsp + 1}D or {nsp + 2}D input, but got "
                         f"input of size {list(shape)}")
    lead = len(shape) - nsp
    spatial = shape[lead:]
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size,) * nsp
    output_size = tuple(output_size)
    out = tuple(n if o is None else int(o) for n, o in zip(spatial, output_size, strict=False))
    if len(output_size) != nsp or min(out) <= 0 or min(spatial) <= 0:
        raise user_error(GcompError, f"{fn}(): bad output_size {output_size} for input of size "
                         f"{list(shape)}")
    if all(n % o == 0 for n, o in zip(spatial, out, strict=True)):
        k = tuple(n // o for n, o in zip(spatial, out, strict=True))
        return _scale(window_sums(x, lead, k), 1.0 / math.prod(k))
    # Windows of different sizes: one contraction with an averaging matrix per spatial dim.
    # Contracting the first spatial dim appends the pooled one last, so nsp steps keep the order.
    y = x
    for n, o in zip(spatial, out, strict=True):
        m = gcomp.tensor(adaptive_pool_matrix(n, o), dtype=x.dtype)
        y = P.dot_general(y, m, contract=((lead, 1),), batch=())
    return y


def adaptive_avg_pool1d(input, output_size):
    return _adaptive_avg_pool(input, 1, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    return _adaptive_avg_pool(input, 2, output_size, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size):
    return _adaptive_avg_pool(input, 3, output_size, "adaptive_avg_pool3d")


def _adaptive_windows(n: int, o: int) -> np.ndarray:
    """(o, K) input rows of torch's adaptive windows [floor(i*n/o), ceil((i+1)*n/o)), short
    windows padded by repeating their last row (which changes neither max nor first argmax)."""
    starts = [(i * n) // o for i in range(o)]
    ends = [-((-(i + 1) * n) // o) for i in range(o)]
    k = max(e - s for s, e in zip(starts, ends, strict=True))
    return np.array([[min(s + j, e - 1) for j in range(k)] for s, e in zip(starts, ends,
                                                                            strict=True)])


def _adaptive_max_pool(x, nsp, output_size, return_indices, fn):
    shape = tuple(x.shape)
    if len(shape) not in (nsp + 1, nsp + 2):
        raise user_error(GcompError, f"{fn}(): Expected {nsp + 1}D or {nsp + 2}D tensor, but got "
                         f"{list(shape)}")
    lead = len(shape) - nsp
    spatial = shape[lead:]
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size,) * nsp
    output_size = tuple(output_size)
    out = tuple(n if o is None else int(o) for n, o in zip(spatial, output_size, strict=False))
    if len(output_size) != nsp or min(out) <= 0 or min(spatial) <= 0:
        raise user_error(GcompError, f"{fn}(): bad output_size {output_size} for input of size "
                         f"{list(shape)}")
    wins = [_adaptive_windows(n, o) for n, o in zip(spatial, out, strict=True)]
    # Gather every window: spatial dim i of size n becomes (o_i, K_i), then the K's go last.
    y = x
    for i, w in enumerate(wins):
        d = lead + 2 * i
        y = P.take(y, gcomp.tensor(w.reshape(-1)), axis=d)
        cur = tuple(y.shape)
        y = P.reshape(y, shape=cur[:d] + w.shape + cur[d + 1:])
    perm = tuple(range(lead)) + tuple(lead + 2 * i for i in range(nsp)) + \
        tuple(lead + 2 * i + 1 for i in range(nsp))
    y = P.transpose(y, perm=perm)
    ksize = math.prod(w.shape[1] for w in wins)
    y = P.reshape(y, shape=shape[:lead] + out + (ksize,))
    values = P.reduce_max(y, axes=(len(shape),), keepdims=False)
    if not return_indices:
        return values
    with gcomp.no_grad():
        arg = y.detach().argmax(len(shape))
        # flat input index of each window element: (o_1, .., o_nsp, K_1 .. K_nsp) -> (.., K)
        flat = np.zeros((1,) * (2 * nsp), np.int64)
        for i, w in enumerate(wins):
            shape_i = [1] * (2 * nsp)
            shape_i[i], shape_i[nsp + i] = w.shape
            flat = flat + w.reshape(shape_i) * math.prod(spatial[i + 1:])
        flat = flat.reshape(out + (ksize,))
        table = gcomp.tensor(flat).expand(*shape[:lead], *out, ksize)
        idx = gcomp.take_along_dim(table, arg.unsqueeze(-1), dim=len(shape)).squeeze(-1)
    return values, idx


def adaptive_max_pool1d(input, output_size, return_indices=False):
    return _adaptive_max_pool(input, 1, output_size, return_indices, "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    return _adaptive_max_pool(input, 2, output_size, return_indices, "adaptive_max_pool2d")


def adaptive_max_pool1d_with_indices(input, output_size, return_indices=True):
    return _adaptive_max_pool(input, 1, output_size, True, "adaptive_max_pool1d")


def adaptive_max_pool2d_with_indices(input, output_size, return_indices=True):
    return _adaptive_max_pool(input, 2, output_size, True, "adaptive_max_pool2d")


def adaptive_max_pool3d(input, output_size, return_indices=False):
    return _adaptive_max_pool(input, 3, output_size, return_indices, "adaptive_max_pool3d")


def adaptive_max_pool3d_with_indices(input, output_size, return_indices=True):
    return _adaptive_max_pool(input, 3, output_size, True, "adaptive_max_pool3d")


def _lp_pool(x, nsp, norm_type, kernel_size, stride, ceil_mode, fn):
    """(sum of x^p over each window)^(1/p), as torch: an average pool of x^p times the window
    size, negative sums clamped to 0."""
    k = _tuple(kernel_size, nsp, "kernel_size")
    if stride is not None:
        stride = _tuple(stride, nsp, "stride")
    p = float(norm_type)
    powered = gcomp.pow(x, p)
    avg = _avg_pool(powered, nsp, k, stride, 0, ceil_mode, True, None, fn)
    total = gcomp.sign(avg) * gcomp.relu(gcomp.abs(avg)) * math.prod(k)
    return gcomp.pow(total, 1.0 / p)


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, 1, norm_type, kernel_size, stride, ceil_mode, "lp_pool1d")


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    return _lp_pool(input, 2, norm_type, kernel_size, stride, ceil_mode, "lp_pool2d")
