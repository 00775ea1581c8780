"""Loss functions (torch.nn.functional), as compositions of primitives.

Class-index losses (nll_loss, cross_entropy) pick each target's log-probability with one
``take`` on the flattened log-probabilities. Eagerly, concrete targets are checked on the host as
PyTorch checks them; when none is ignored the flat indices are the targets plus per-shape offsets
cached on the device (one add; a host-to-device transfer costs more than several ops). Where
targets are ignored, or inside gcomp.compile, indices and per-target coefficients are computed
with ops, so a compiled graph never bakes in a target's value.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core import prims as P
from gcomp.frontend.autocast import float32 as amp_float32
from gcomp.runtime.compiled import composite

from ._activation import _softplus_neg, log_softmax
from ._common import (
    NNValueError,
    check_reduction,
    expand,
    full,
    host_value,
    legacy_reduction,
    reduce_loss,
    scalar,
    scale,
)

__all__ = ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "cross_entropy", "nll_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div"]


class NNIndexError(GcompError, IndexError):
    """A class index out of range (PyTorch raises IndexError)."""


def _pair(input: Tensor, target: Tensor, name: str):
    """input and target cast and broadcast to one type, warning on differing sizes as PyTorch."""
    if input._type == target._type:
        return input, target
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=3)
    shape = _bshape(input, target)
    dtype = gcomp.promote_types(input.dtype, target.dtype)
    return (expand(input.to(dtype), shape), expand(target.to(dtype), shape))


def _bshape(a, b):
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    out = []
    for x, y in zip(sa, sb, strict=False):
        if x != y and 1 not in (x, y):
            raise GcompError(f"The size of tensor a ({x}) must match the size of tensor b ({y})")
        out.append(max(x, y) if 0 not in (x, y) else 0)
    return tuple(out)


def _weighted(loss: Tensor, weight, reduction: str, mean_by_weight: bool) -> Tensor:
    """The ``weight=`` of mse/l1 (mean divides by the weights' sum) and huber (by numel)."""
    if weight is None:
        return reduce_loss(loss, reduction)
    if tuple(weight.shape) != tuple(loss.shape):
        raise NNValueError("Weights and input must have the same size.")
    loss = P.mul(loss, weight.to(loss.dtype))
    if reduction != "mean" or not mean_by_weight:
        return reduce_loss(loss, reduction)
    all_axes = tuple(range(loss.ndim))
    return P.div(P.reduce_sum(loss, axes=all_axes),
                 P.reduce_sum(weight.to(loss.dtype), axes=all_axes))


@amp_float32
def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    x, y = _pair(input, target, "mse_loss")
    d = P.sub(x, y)
    return _weighted(P.mul(d, d), weight, reduction, True)


@amp_float32
def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    x, y = _pair(input, target, "l1_loss")
    return _weighted(P.abs(P.sub(x, y)), weight, reduction, True)


def _quadratic_below(x, y, limit: float, quad_scale: float, lin_scale: float):
    """|d| < limit: quad_scale * d^2 / 2, else lin_scale * (|d| - limit / 2)."""
    d = P.sub(x, y)
    ad = P.abs(d)
    half = full(d, 0.5 * limit)
    quad = scale(P.mul(P.mul(d, d), full(d, 0.5)), quad_scale)
    lin = scale(P.sub(ad, half), lin_scale)
    return P.select(P.lt(ad, full(d, limit)), quad, lin)


@amp_float32
def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    if beta < 0:
        raise NNValueError("smooth_l1_loss does not support negative values for beta.")
    x, y = _pair(input, target, "smooth_l1_loss")
    if beta == 0:
        return reduce_loss(P.abs(P.sub(x, y)), reduction)
    return reduce_loss(_quadratic_below(x, y, beta, 1.0 / beta, 1.0), reduction)


@amp_float32
def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    check_reduction(reduction)
    x, y = _pair(input, target, "huber_loss")
    return _weighted(_quadratic_below(x, y, delta, 1.0, delta), weight, reduction, False)


@amp_float32
def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """-w (t log x + (1 - t) log(1 - x)), each log clamped at -100 as in PyTorch."""
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    if tuple(target.shape) != tuple(input.shape):
        raise NNValueError(f"Using a target size ({target.shape}) that is different to the "
                           f"input size ({input.shape}) is deprecated. Please ensure they have "
                           "the same size.")
    target = target.to(input.dtype)
    zero, one, floor = full(input, 0.0), full(input, 1.0), full(input, -100.0)

    def clamped_log(inside, f, safe):
        """max(f(x), -100), and -100 where x is at the log's pole; the pole's branch never
        sees x, so a saturated input (a sigmoid's exact 0 or 1) gets no nan gradient."""
        v = P.select(inside, f(P.select(inside, input, safe)), floor)
        return P.select(P.gt(v, floor), v, floor)

    log_x = clamped_log(P.gt(input, zero), P.log, one)
    log_1mx = clamped_log(P.lt(input, one), lambda v: P.log1p(P.neg(v)), zero)
    # (t - 1) log(1 - x) - t log x  ==  -(log(1 - x) + t (log x - log(1 - x)))
    loss = P.neg(P.add(log_1mx, P.mul(target, P.sub(log_x, log_1mx))))
    if weight is not None:
        loss = gcomp.mul(loss, weight.to(input.dtype))
    return reduce_loss(loss, reduction)


@amp_float32
def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    """(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x), stable for large |x|."""
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    if tuple(target.shape) != tuple(input.shape):
        raise NNValueError(f"Target size ({target.shape}) must be the same as input size "
                           f"({input.shape})")
    target = target.to(input.dtype)
    sp = _softplus_neg(input)
    loss = P.mul(P.sub(full(input, 1.0), target), input)
    if pos_weight is not None:
        lw = gcomp.add(gcomp.mul(gcomp.sub(pos_weight.to(input.dtype), 1.0), target), 1.0)
        if tuple(lw.shape) != tuple(input.shape):
            lw = gcomp.broadcast_to(lw, input.shape)
        sp = P.mul(lw, sp)
    loss = P.add(loss, sp)
    if weight is not None:
        loss = gcomp.mul(loss, weight.to(input.dtype))
    return reduce_loss(loss, reduction)


@amp_float32
def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """target (log target - input); 'batchmean' divides the sum by the batch size."""
    if reduction not in ("batchmean", "mean", "sum", "none"):
        raise NNValueError(f"{reduction} is not a valid value for reduction")
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce, reduction)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    x, t = _pair(input, target, "kl_div")
    if log_target:
        loss = P.mul(P.exp(t), P.sub(t, x))
    else:
        zero = full(t, 0.0)
        is_zero = P.eq(t, zero)
        safe = P.select(is_zero, full(t, 1.0), t)
        loss = P.sub(P.mul(t, P.log(safe)), P.mul(t, x))  # xlogy(t, t) - t x
    if reduction == "batchmean":
        total = reduce_loss(loss, "sum")
        return scale(total, 1.0 / input.shape[0]) if input.ndim else total
    return reduce_loss(loss, reduction)


# -- class-index losses -------------------------------------------------------------------------
@amp_float32
def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    return _nll(input, target, weight, ignore_index, reduction, 0.0)


@amp_float32
def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    reduction = check_reduction(legacy_reduction(size_average, reduce, reduction))
    if not 0.0 <= label_smoothing <= 1.0:
        raise NNValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if not target.dtype.is_floating_point:
        t_host = host_value(target)  # PyTorch's checks of concrete targets, before compiling
        if t_host is not None and input.ndim >= 1:
            _all_valid(t_host, input.shape[0 if input.ndim == 1 else 1], ignore_index)
    return _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


@composite
def _cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing):
    """Eagerly one compiled call forward and one backward (runtime.compiled.composite)."""
    class_dim = 0 if input.ndim == 1 else 1
    logp = log_softmax(input, class_dim)
    if target.dtype.is_floating_point:
        return _soft_cross_entropy(logp, target, weight, reduction, label_smoothing, class_dim)
    return _nll(logp, target, weight, ignore_index, reduction, label_smoothing)


def _soft_cross_entropy(logp, target, weight, reduction, smoothing, class_dim):
    """Class probabilities as targets: -sum_c w_c t_c log p_c; the mean is over the batch."""
    if tuple(target.shape) != tuple(logp.shape):
        raise GcompError(f"cross_entropy: probability targets must have the input's shape "
                         f"{list(logp.shape)}, got {list(target.shape)}")
    C = logp.shape[class_dim]
    t = target.to(logp.dtype)
    if smoothing > 0:
        t = P.add(scale(t, 1.0 - smoothing), full(t, smoothing / C))
    if weight is not None:
        t = P.mul(t, expand(weight.to(logp.dtype), t._type.shape, (class_dim,)))
    if reduction == "none":
        return P.neg(P.reduce_sum(P.mul(logp, t), axes=(class_dim,)))
    total = P.dot_general(logp, t, contract=tuple((i, i) for i in range(logp.ndim)))
    if reduction == "sum":
        return P.neg(total)
    n = logp.numel() // C if C else 0
    return P.mul(total, scalar(-1.0 / n if n else math.nan, total.dtype))


def _nll(logp, target, weight, ignore_index, reduction, smoothing):
    """-(1 - s) w_t log p_t - (s / C) sum_c w_c log p_c over targets that are not ignored;
    the mean divides by the sum of w_t over them (PyTorch's nll_loss and cross_entropy)."""
    if target.dtype.is_floating_point or target.dtype == gcomp.bool:
        raise GcompError(f"nll_loss/cross_entropy: class-index targets must be an integer "
                         f"tensor, got {target.dtype.name}")
    unbatched = logp.ndim == 1
    if unbatched:
        logp = P.reshape(logp, shape=(1,) + tuple(logp.shape))
        target = P.reshape(target, shape=(1,) + tuple(target.shape))
    if logp.ndim < 2:
        raise GcompError(f"nll_loss: expected an input of 1 or more dims, got {logp.ndim}")
    N, C = logp.shape[0], logp.shape[1]
    rest = tuple(logp.shape[2:])
    if tuple(target.shape) != (N,) + rest:
        if target.ndim >= 1 and target.shape[0] != N:
            raise GcompError(f"Expected input batch_size ({N}) to match target batch_size "
                             f"({target.shape[0]}).")
        raise GcompError(f"Expected target size {[N, *rest]}, got {list(target.shape)}")
    if weight is not None and tuple(weight.shape) != (C,):
        raise GcompError(f"weight tensor should be defined either for all {C} classes or no "
                         f"classes but got weight tensor of shape: {list(weight.shape)}")
    D = math.prod(rest)
    t_host = host_value(target)
    if t_host is not None and _all_valid(t_host, C, ignore_index):
        lin, coef, valid, denom = _valid_targets(target, weight, C, D, logp)
    else:
        lin, coef, valid, denom = _masked_targets(target, weight, N, C, D, ignore_index, logp)

    picked = P.take(P.reshape(logp, shape=(logp.numel(),)), lin, axis=0)
    if coef is not None:
        picked = P.mul(picked, coef)
    if smoothing > 0:
        if weight is not None:
            smooth = P.dot_general(logp, weight.to(logp.dtype), contract=((1, 0),))
        else:
            smooth = P.reduce_sum(logp, axes=(1,))
        if valid is not None:
            smooth = P.mul(smooth, valid)
        picked = P.add(scale(picked, 1.0 - smoothing), scale(smooth, smoothing / C))
    if reduction == "none":
        out = P.neg(picked)
        return P.reshape(out, shape=()) if unbatched else out
    total = P.reduce_sum(picked, axes=tuple(range(picked.ndim)))
    if reduction == "sum":
        return P.neg(total)
    if isinstance(denom, Tensor):
        return P.neg(P.div(total, denom))
    return P.mul(total, scalar(-1.0 / denom if denom else math.nan, total.dtype))


def _all_valid(t: np.ndarray, C: int, ignore_index: int) -> bool:
    """Check concrete targets as PyTorch does; True when none is ignored."""
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= C))
    if bad.any():
        raise NNIndexError(f"Target {int(t[bad].flat[0])} is out of bounds.")
    return bool(valid.all())


_OFFSETS: dict = {}


def _flat_offsets(shape, C: int, D: int, dtype) -> Tensor:
    """n*C*D + d for each target position (n, d): the flat index of class 0 there. Cached per
    shape, so picking costs one add instead of a transfer or four ops a step (eager only)."""
    key = (tuple(shape), C, D, dtype)
    hit = _OFFSETS.get(key)
    if hit is None:
        N = shape[0]
        off = np.arange(N, dtype=np.int64)[:, None] * (C * D) + np.arange(D, dtype=np.int64)
        hit = gcomp.tensor(off.reshape(shape), dtype=dtype)
        if len(_OFFSETS) >= 64:
            _OFFSETS.clear()
        _OFFSETS[key] = hit
    return hit


def _valid_targets(target, weight, C, D, logp):
    """Flat indices, per-element coefficients (None: all 1), the not-ignored mask (None) and
    the mean's denominator, when no target is ignored (checked on the host)."""
    t = target if target.dtype == gcomp.int64 else P.cast(target, dtype=gcomp.int64)
    scaled = t if D == 1 else P.mul(t, full(t, D))
    lin = P.add(scaled, _flat_offsets(t._type.shape, C, D, t.dtype))
    if weight is None:
        return lin, None, None, float(t.numel())
    coef = P.take(weight.to(logp.dtype), t, axis=0)
    return lin, coef, None, P.reduce_sum(coef, axes=tuple(range(coef.ndim)))


def _masked_targets(target, weight, N, C, D, ignore_index, logp):
    """The same quantities as _valid_targets where targets may be ignored or are not known
    (inside gcomp.compile), with ops: ignored targets get coefficient 0."""
    i64 = gcomp.int64
    t = target if target.dtype == i64 else P.cast(target, dtype=i64)
    valid = P.ne(t, full(t, ignore_index))
    safe = P.select(valid, t, full(t, 0))
    shape = (N, D)
    rows = P.iota(shape=shape, dim=0, dtype=i64)
    cols = P.iota(shape=shape, dim=1, dtype=i64)
    lin = P.add(P.add(P.mul(rows, P.full(shape=shape, value=C * D, dtype=i64)),
                      P.mul(P.reshape(safe, shape=shape), P.full(shape=shape, value=D, dtype=i64))),
                cols)
    lin = P.reshape(lin, shape=t._type.shape)
    validf = P.cast(valid, dtype=logp.dtype)
    coef = validf
    if weight is not None:
        coef = P.mul(P.take(weight.to(logp.dtype), safe, axis=0), validf)
    denom = P.reduce_sum(coef, axes=tuple(range(coef.ndim)))
    return lin, coef, validf, denom
