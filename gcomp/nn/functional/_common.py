"""Helpers shared by the functional families: scalar constants, loss reductions, and reading a
tensor's value on the host when it is known (eagerly), never while gcomp.compile traces.

Eager gcomp ops cost about 10 µs each, so layers call primitives (``gcomp.core.prims``) directly
where the public functions would add casts and broadcasts that are not needed, and precompute
index arrays on the host when the indices are concrete. Inside a trace every quantity is computed
with ops, so a compiled graph never bakes in the value of a tensor that can change.
"""

from __future__ import annotations

import math

import numpy as np

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core import prims as P
from gcomp.core.dispatch import Mode, TraceInterpreter


class NNValueError(GcompError, ValueError):
    """A bad argument value (PyTorch raises ValueError here)."""


def tracing() -> bool:
    """True while gcomp.compile traces the code that calls this."""
    return isinstance(Mode.stack[-1], TraceInterpreter)


def host_value(t: Tensor):
    """t's value as a numpy array when it is known now, None inside a trace."""
    if tracing():
        return None
    return np.asarray(t)


def uninitialized(*shape, dtype=None, device=None) -> Tensor:
    """Storage for a parameter that an initializer fills next. Eagerly it is a host buffer put
    on the device (no op, so no compile per new shape); inside a trace, gcomp.empty."""
    if tracing():
        return gcomp.empty(*shape, dtype=dtype, device=device)
    return gcomp.tensor(np.zeros(shape, np.float32), dtype=dtype or gcomp.get_default_dtype(), device=device)


def full(x: Tensor, value) -> Tensor:
    """A constant shaped like x, in x's dtype (primitives take operands of one shape)."""
    return P.full(shape=x._type.shape, value=_value(value, x.dtype), dtype=x.dtype)


def scalar(value, dtype) -> Tensor:
    return P.full(shape=(), value=_value(value, dtype), dtype=dtype)


def _value(value, dtype):
    return float(value) if dtype.is_floating_point else int(value)


def expand(x: Tensor, shape, dims=None) -> Tensor:
    """broadcast_in_dim: x's dims map to ``dims`` of ``shape`` (default: the trailing ones)."""
    shape = tuple(shape)
    if x._type.shape == shape:
        return x
    if dims is None:
        dims = tuple(range(len(shape) - x.ndim, len(shape)))
    return P.broadcast(x, shape=shape, dims=tuple(dims))


def scale(x: Tensor, factor: float) -> Tensor:
    """x * factor, as one op when factor is not 1."""
    if factor == 1:
        return x
    return P.mul(x, full(x, factor))


def check_reduction(reduction: str) -> str:
    if reduction not in ("none", "mean", "sum"):
        raise NNValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's deprecated size_average/reduce arguments, mapped to ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Apply a loss reduction: 'none', 'sum', or 'mean' (the sum times 1/numel)."""
    if reduction == "none":
        return loss
    check_reduction(reduction)
    total = P.reduce_sum(loss, axes=tuple(range(loss.ndim))) if loss.ndim else loss
    if reduction == "sum":
        return total
    n = loss.numel()
    return P.mul(total, scalar(1.0 / n if n else math.nan, total.dtype))


def as_float_tensor(x, like: Tensor) -> Tensor:
    """x (a number or tensor) as a tensor of like's dtype."""
    if not isinstance(x, Tensor):
        return gcomp.tensor(x, dtype=like.dtype)
    return x if x.dtype == like.dtype else x.to(like.dtype)
