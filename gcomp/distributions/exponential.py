"""The exponential distribution."""

from __future__ import annotations

from numbers import Number

import gcomp
from gcomp import Tensor

from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, standard_uniform

__all__ = ["Exponential"]


class Exponential(Distribution):
    """An exponential distribution with rate ``rate`` (density ``rate * exp(-rate * x)``).

    Example::

        >>> m = Exponential(gcomp.tensor([1.0]))
        >>> m.sample()  # exponentially distributed with rate=1

    Args:
        rate (float or Tensor): rate = 1 / scale of the distribution, > 0.
    """

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        batch_shape = () if isinstance(rate, Number) else self.rate.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Exponential, batch_shape, ("rate",), _instance)

    @property
    def mean(self) -> Tensor:
        return self.rate.reciprocal()

    @property
    def mode(self) -> Tensor:
        return gcomp.zeros_like(self.rate)

    @property
    def stddev(self) -> Tensor:
        return self.rate.reciprocal()

    @property
    def variance(self) -> Tensor:
        return self.rate.pow(-2)

    def rsample(self, sample_shape=()) -> Tensor:
        """``e / rate`` with standard exponential ``e = -log(1 - u)``: differentiable in
        rate."""
        u = standard_uniform(self._extended_shape(sample_shape), self.rate.dtype,
                             self.rate.device)
        return -gcomp.log1p(-u) / self.rate

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return self.rate.log() - self.rate * value

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return 1 - gcomp.exp(-self.rate * value)

    def icdf(self, value: Tensor) -> Tensor:
        return -gcomp.log1p(-value) / self.rate

    def entropy(self) -> Tensor:
        return 1.0 - gcomp.log(self.rate)
