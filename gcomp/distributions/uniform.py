"""The continuous uniform distribution on [low, high)."""

from __future__ import annotations

from numbers import Number

import gcomp
from gcomp import Tensor

from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, standard_uniform, tracing, value_error

__all__ = ["Uniform"]


class Uniform(Distribution):
    """Uniformly distributed samples from the half-open interval ``[low, high)``.

    Example::

        >>> m = Uniform(gcomp.tensor([0.0]), gcomp.tensor([5.0]))
        >>> m.sample()  # uniformly distributed in the range [0.0, 5.0)

    Args:
        low (float or Tensor): lower range (inclusive).
        high (float or Tensor): upper range (exclusive), > low.
    """

    arg_constraints = {"low": constraints.dependent(is_discrete=False, event_dim=0),
                       "high": constraints.dependent(is_discrete=False, event_dim=0)}
    has_rsample = True

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = broadcast_all(low, high)
        both_numbers = isinstance(low, Number) and isinstance(high, Number)
        batch_shape = () if both_numbers else self.low.size()
        super().__init__(batch_shape, validate_args=validate_args)
        if self._validate_args and not tracing():
            with gcomp.no_grad():
                ordered = bool(gcomp.lt(self.low, self.high).all())
            if not ordered:
                raise value_error(f"Uniform is not defined when low >= high (low: {self.low}, "
                                  f"high: {self.high})")

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Uniform, batch_shape, ("low", "high"), _instance)

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    @property
    def mean(self) -> Tensor:
        return (self.high + self.low) / 2

    @property
    def mode(self) -> Tensor:
        return gcomp.full_like(self.high, float("nan"))

    @property
    def stddev(self) -> Tensor:
        return (self.high - self.low) / 12 ** 0.5

    @property
    def variance(self) -> Tensor:
        return (self.high - self.low).pow(2) / 12

    def rsample(self, sample_shape=()) -> Tensor:
        """``low + u * (high - low)`` with ``u`` uniform in [0, 1): differentiable in low and
        high."""
        u = standard_uniform(self._extended_shape(sample_shape), self.low.dtype, self.low.device)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        lb = self.low.le(value).type_as(self.low)
        ub = self.high.gt(value).type_as(self.low)
        return gcomp.log(lb * ub) - gcomp.log(self.high - self.low)

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return ((value - self.low) / (self.high - self.low)).clamp(min=0, max=1)

    def icdf(self, value: Tensor) -> Tensor:
        return value * (self.high - self.low) + self.low

    def entropy(self) -> Tensor:
        return gcomp.log(self.high - self.low)
