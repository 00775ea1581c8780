"""torch.distributions.utils: broadcasting parameters, probabilities and logits, lazy
properties, and the errors the distributions raise."""

from __future__ import annotations

from functools import update_wrapper
from numbers import Number

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core.dispatch import Mode, TraceInterpreter, user_error

__all__ = ["DistributionNotImplementedError", "DistributionValueError", "broadcast_all",
           "clamp_probs", "euler_constant", "lazy_property", "logits_to_probs",
           "probs_to_logits"]

euler_constant = 0.57721566490153286060  # Euler-Mascheroni constant


class DistributionValueError(GcompError, ValueError):
    """A bad parameter or value of a distribution (torch raises ValueError here)."""


class DistributionNotImplementedError(GcompError, NotImplementedError):
    """A method a distribution does not have, or a KL pair nobody registered (torch raises
    NotImplementedError)."""


def value_error(message: str) -> DistributionValueError:
    """A DistributionValueError whose message starts with the user's file and line."""
    return user_error(DistributionValueError, message)


def not_implemented(message: str) -> DistributionNotImplementedError:
    return user_error(DistributionNotImplementedError, message)


def tracing() -> bool:
    """True while gcomp.compile traces the calling code (values are not known then)."""
    return isinstance(Mode.stack[-1], TraceInterpreter)


def broadcast_all(*values):
    """``values`` (tensors and numbers) broadcast to one shape, numbers made tensors of the
    first tensor's dtype (the default dtype if all are numbers)."""
    if not all(isinstance(v, (Tensor, Number)) for v in values):
        raise value_error("Input arguments must all be instances of Number or gcomp.Tensor.")
    if not all(isinstance(v, Tensor) for v in values):
        dtype = next((v.dtype for v in values if isinstance(v, Tensor)),
                     gcomp.get_default_dtype())
        values = [v if isinstance(v, Tensor) else gcomp.tensor(float(v), dtype=dtype)
                  for v in values]
    return gcomp.broadcast_tensors(*values)


def standard_normal(shape, dtype, device=None) -> Tensor:
    """Standard normal noise of ``shape`` from gcomp's global generator, not differentiated."""
    with gcomp.no_grad():
        return gcomp.randn(tuple(shape), dtype=dtype, device=device)


def standard_uniform(shape, dtype, device=None) -> Tensor:
    """Uniform noise in [0, 1) of ``shape`` from gcomp's global generator."""
    with gcomp.no_grad():
        return gcomp.rand(tuple(shape), dtype=dtype, device=device)


def sum_rightmost(value: Tensor, dim: int) -> Tensor:
    """``value`` with its ``dim`` rightmost dimensions summed out."""
    if dim == 0:
        return value
    return value.reshape(tuple(value.shape[:-dim]) + (-1,)).sum(-1)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Probabilities from logits: log-odds (``is_binary``) or unnormalized log probabilities
    over the last dimension."""
    if is_binary:
        return gcomp.sigmoid(logits)
    return gcomp.softmax(logits, dim=-1)


def clamp_probs(probs: Tensor) -> Tensor:
    """``probs`` clamped to [eps, 1 - eps] with eps the dtype's machine epsilon."""
    eps = gcomp.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Logits from probabilities: log-odds (``is_binary``) or log probabilities."""
    ps_clamped = clamp_probs(probs)
    if is_binary:
        return gcomp.log(ps_clamped) - gcomp.log1p(-ps_clamped)
    return gcomp.log(ps_clamped)


class lazy_property:
    """A property computed on first access (with grad enabled, so a parameter derived from
    another keeps its gradient) and then stored on the instance."""

    def __init__(self, wrapped):
        self.wrapped = wrapped
        update_wrapper(self, wrapped)

    def __get__(self, instance, obj_type=None):
        if instance is None:
            return self
        with gcomp.enable_grad():
            value = self.wrapped(instance)
        setattr(instance, self.wrapped.__name__, value)
        return value


def as_size(shape) -> gcomp.Size:
    """A gcomp.Size from a Size, tuple, list or int (gcomp.Size + tuple is a tuple)."""
    if isinstance(shape, int):
        return gcomp.Size((shape,))
    return gcomp.Size(tuple(int(s) for s in shape))

