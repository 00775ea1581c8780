"""Normalization (torch.nn.functional.batch_norm, layer_norm, group_norm, rms_norm).

Written in primitives with statistics computed once per call: a sum for the mean, a sum of
centered squares for the (biased) variance, reused for the output and, in batch norm, for the
running statistics. Half-precision inputs are normalized in float32, as torch accumulates them.
"""

from __future__ import annotations

import math

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core import prims as P
from gcomp.core.dispatch import user_error

__all__ = ["batch_norm", "layer_norm", "group_norm", "rms_norm", "instance_norm",
           "local_response_norm"]

_HALF = ("float16", "bfloat16")


def _full(shape, value, dtype) -> Tensor:
    return P.full(shape=tuple(shape), value=float(value), dtype=dtype)


def _cast(t, dtype):
    return t if t is None or t.dtype == dtype else P.cast(t, dtype=dtype)


def _compute_dtype(x):
    return gcomp.float32 if x.dtype.name in _HALF else x.dtype


def _moments(x, axes):
    """(x - mean, sum of squares of that over axes, 1/n as a tensor of the reduced shape)."""
    shape = tuple(x.shape)
    keep = tuple(d for d in range(len(shape)) if d not in axes)
    red = tuple(shape[d] for d in keep)
    n = math.prod(shape[d] for d in axes)
    inv_n = _full(red, 1.0 / n if n else math.nan, x.dtype)
    mean = P.mul(P.reduce_sum(x, axes=axes, keepdims=False), inv_n)
    xm = P.sub(x, P.broadcast(mean, shape=shape, dims=keep))
    ss = P.reduce_sum(P.mul(xm, xm), axes=axes, keepdims=False)
    return mean, xm, ss, inv_n, keep


def _affine(y, weight, bias, dims):
    """y * weight + bias, the parameters broadcast along ``dims`` of y."""
    shape = tuple(y.shape)
    if weight is not None:
        y = P.mul(y, P.broadcast(_cast(weight, y.dtype), shape=shape, dims=dims))
    if bias is not None:
        y = P.add(y, P.broadcast(_cast(bias, y.dtype), shape=shape, dims=dims))
    return y


def _normalize(x, axes, eps):
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance)."""
    _, xm, ss, inv_n, keep = _moments(x, axes)
    var = P.mul(ss, inv_n)
    invstd = P.rsqrt(P.add(var, _full(var.shape, eps, var.dtype)))
    return P.mul(xm, P.broadcast(invstd, shape=tuple(x.shape), dims=keep))


def _check_param(fn, t, size, what):
    if t is not None and tuple(t.shape) != tuple(size):
        raise user_error(GcompError, f"{fn}(): expected {what} of size {list(size)}, got "
                         f"{list(t.shape)}")


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over dim 1. In training, normalizes with the batch's statistics and,
    where running_mean/running_var are given, updates them in place (unbiased variance)."""
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps,
                num_batches_tracked=None):
    """``momentum=None`` means a cumulative average: factor 1/num_batches_tracked (a tensor, so
    the same code traces)."""
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise user_error(GcompError, f"batch_norm(): expected an input with at least 2 dims "
                         f"(N, C, ...), got size {list(shape)}")
    c = shape[1]
    for t, what in ((running_mean, "running_mean"), (running_var, "running_var"),
                    (weight, "weight"), (bias, "bias")):
        _check_param("batch_norm", t, (c,), what)
    out_dtype, dtype = x.dtype, _compute_dtype(x)
    x = _cast(x, dtype)
    if not training:
        if running_mean is None or running_var is None:
            raise user_error(GcompError, "batch_norm(): running_mean and running_var are needed "
                             "when training=False")
        rv = _cast(running_var, dtype)
        scale = P.rsqrt(P.add(rv, _full((c,), eps, dtype)))
        if weight is not None:
            scale = P.mul(scale, _cast(weight, dtype))
        shift = P.mul(_cast(running_mean, dtype), scale)
        shift = P.neg(shift) if bias is None else P.sub(_cast(bias, dtype), shift)
        y = P.mul(x, P.broadcast(scale, shape=shape, dims=(1,)))
        y = P.add(y, P.broadcast(shift, shape=shape, dims=(1,)))
        return _cast(y, out_dtype)
    axes = (0, *range(2, len(shape)))
    n = math.prod(shape[d] for d in axes)
    if n <= 1:
        raise user_error(GcompError, "batch_norm(): expected more than 1 value per channel when "
                         f"training, got input size {list(shape)}")
    mean, xm, ss, inv_n, _ = _moments(x, axes)
    invstd = P.rsqrt(P.add(P.mul(ss, inv_n), _full((c,), eps, dtype)))
    if running_mean is not None or running_var is not None:
        with gcomp.no_grad():
            _update_running(running_mean, running_var, mean, ss, n, momentum,
                            num_batches_tracked)
    scale = invstd if weight is None else P.mul(invstd, _cast(weight, dtype))
    y = P.mul(xm, P.broadcast(scale, shape=shape, dims=(1,)))
    if bias is not None:
        y = P.add(y, P.broadcast(_cast(bias, dtype), shape=shape, dims=(1,)))
    return _cast(y, out_dtype)


def _update_running(running_mean, running_var, mean, ss, n, momentum, num_batches_tracked):
    """running = running + factor * (batch - running), the batch variance unbiased."""
    stats = running_mean if running_mean is not None else running_var
    dtype, c = stats.dtype, tuple(stats.shape)
    if momentum is None:
        if num_batches_tracked is None:
            raise user_error(GcompError, "batch_norm(): momentum=None (a cumulative average) "
                             "needs num_batches_tracked")
        count = P.cast(num_batches_tracked, dtype=dtype)
        factor = P.broadcast(P.div(_full((), 1.0, dtype), count), shape=c, dims=())
    else:
        factor = _full(c, momentum, dtype)
    if running_mean is not None:
        m = _cast(mean, dtype)
        running_mean.copy_(P.add(running_mean, P.mul(factor, P.sub(m, running_mean))))
    if running_var is not None:
        v = _cast(P.mul(ss, _full(ss.shape, 1.0 / (n - 1), ss.dtype)), dtype)
        running_var.copy_(P.add(running_var, P.mul(factor, P.sub(v, running_var))))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalize over the trailing dims given by ``normalized_shape``."""
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    shape = tuple(input.shape)
    k = len(ns)
    if k == 0 or len(shape) < k or shape[len(shape) - k:] != ns:
        raise user_error(GcompError, f"layer_norm(): given normalized_shape={list(ns)}, expected "
                         f"input with shape [*, {', '.join(map(str, ns))}], but got input of "
                         f"size {list(shape)}")
    _check_param("layer_norm", weight, ns, "weight")
    _check_param("layer_norm", bias, ns, "bias")
    out_dtype = input.dtype
    x = _cast(input, _compute_dtype(input))
    axes = tuple(range(len(shape) - k, len(shape)))
    y = _affine(_normalize(x, axes, eps), weight, bias, axes)
    return _cast(y, out_dtype)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalize each of ``num_groups`` groups of channels (dim 1) over the group's channels and
    all spatial positions, then scale and shift per channel."""
    shape = tuple(input.shape)
    if len(shape) < 2 or shape[1] % num_groups:
        raise user_error(GcompError, f"group_norm(): expected an input (N, C, *) with C "
                         f"divisible by num_groups={num_groups}, got size {list(shape)}")
    _check_param("group_norm", weight, shape[1:2], "weight")
    _check_param("group_norm", bias, shape[1:2], "bias")
    out_dtype = input.dtype
    x = _cast(input, _compute_dtype(input))
    grouped = P.reshape(x, shape=(shape[0], num_groups, math.prod(shape[1:]) // num_groups))
    y = P.reshape(_normalize(grouped, (2,), eps), shape=shape)
    return _cast(_affine(y, weight, bias, (1,)), out_dtype)


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """x / sqrt(mean(x^2) + eps) over the trailing dims; eps defaults to the dtype's epsilon."""
    ns = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    shape = tuple(input.shape)
    k = len(ns)
    if k == 0 or len(shape) < k or shape[len(shape) - k:] != ns:
        raise user_error(GcompError, f"rms_norm(): given normalized_shape={list(ns)}, expected "
                         f"input with shape [*, {', '.join(map(str, ns))}], but got input of "
                         f"size {list(shape)}")
    _check_param("rms_norm", weight, ns, "weight")
    out_dtype = input.dtype
    x = _cast(input, _compute_dtype(input))
    if eps is None:
        eps = {"float64": 2.220446049250313e-16, "float16": 0.0009765625,
               "bfloat16": 0.0078125}.get(out_dtype.name, 1.1920928955078125e-07)
    axes = tuple(range(len(shape) - k, len(shape)))
    keep = tuple(range(len(shape) - k))
    red = shape[:len(shape) - k]
    ms = P.mul(P.reduce_sum(P.mul(x, x), axes=axes, keepdims=False),
               _full(red, 1.0 / math.prod(ns), x.dtype))
    inv = P.rsqrt(P.add(ms, _full(red, eps, x.dtype)))
    y = P.mul(x, P.broadcast(inv, shape=shape, dims=keep))
    return _cast(_affine(y, weight, None, axes), out_dtype)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalize each (sample, channel) over its spatial positions. With use_input_stats and
    running stats given, these move toward the batch average of the instance statistics
    (unbiased variance); without use_input_stats, the running stats normalize, as batch_norm
    in eval."""
    shape = tuple(input.shape)
    if len(shape) < 3:
        raise user_error(GcompError, f"instance_norm(): expected an input (N, C, *) with at "
                         f"least one spatial dim, got size {list(shape)}")
    c = shape[1]
    for t, what in ((running_mean, "running_mean"), (running_var, "running_var"),
                    (weight, "weight"), (bias, "bias")):
        _check_param("instance_norm", t, (c,), what)
    if not use_input_stats:
        return _batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    axes = tuple(range(2, len(shape)))
    n = math.prod(shape[2:])
    if n <= 1:
        raise user_error(GcompError, f"instance_norm(): expected more than 1 spatial element "
                         f"when training, got input size {list(shape)}")
    out_dtype = input.dtype
    x = _cast(input, _compute_dtype(input))
    mean, xm, ss, inv_n, keep = _moments(x, axes)
    invstd = P.rsqrt(P.add(P.mul(ss, inv_n), _full(ss.shape, eps, ss.dtype)))
    y = P.mul(xm, P.broadcast(invstd, shape=shape, dims=keep))
    if running_mean is not None or running_var is not None:
        with gcomp.no_grad():
            inv_b = _full((c,), 1.0 / shape[0], mean.dtype)
            bmean = P.mul(P.reduce_sum(mean, axes=(0,)), inv_b)
            bss = P.mul(P.reduce_sum(ss, axes=(0,)), inv_b)  # mean over the batch of ss
            _update_running(running_mean, running_var, bmean, bss, n, momentum, None)
    return _cast(_affine(y, weight, bias, (1,)), out_dtype)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """input / (k + alpha * mean of squares over ``size`` neighbouring channels) ** beta, the
    window zero-padded by size // 2 before and (size - 1) // 2 after, as torch."""
    shape = tuple(input.shape)
    if len(shape) < 3:
        raise user_error(GcompError, f"Expected 3D or higher dimensionality input (got "
                         f"{len(shape)} dimensions)")
    if input.numel() == 0:
        return input
    c = shape[1]
    sq = P.mul(input, input)
    lo, hi = size // 2, (size - 1) // 2
    padded = P.pad(sq, low=(0, lo) + (0,) * (len(shape) - 2),
                   high=(0, hi) + (0,) * (len(shape) - 2), interior=(0,) * len(shape), value=0.0)
    total = None
    for j in range(size):
        start = (0, j) + (0,) * (len(shape) - 2)
        limit = (shape[0], j + c) + shape[2:]
        piece = P.slice(padded, start=start, limit=limit, stride=(1,) * len(shape))
        total = piece if total is None else P.add(total, piece)
    div = P.add(P.mul(total, _full(shape, alpha / size, input.dtype)), _full(shape, k, input.dtype))
    return P.div(input, P.pow(div, _full(shape, beta, input.dtype)))
