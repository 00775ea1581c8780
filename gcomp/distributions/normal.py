"""The normal (Gaussian) distribution."""

from __future__ import annotations

import math
from numbers import Number

import gcomp
from gcomp import Tensor

from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, standard_normal

__all__ = ["Normal"]


class Normal(Distribution):
    """A normal (Gaussian) distribution with mean ``loc`` and standard deviation ``scale``.

    Example::

        >>> m = Normal(gcomp.tensor([0.0]), gcomp.tensor([1.0]))
        >>> m.sample()  # normally distributed with loc=0 and scale=1

    Args:
        loc (float or Tensor): mean of the distribution (often referred to as mu).
        scale (float or Tensor): standard deviation of the distribution (sigma), > 0.
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        both_numbers = isinstance(loc, Number) and isinstance(scale, Number)
        batch_shape = () if both_numbers else self.loc.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Normal, batch_shape, ("loc", "scale"), _instance)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.stddev.pow(2)

    def rsample(self, sample_shape=()) -> Tensor:
        """``loc + eps * scale`` with standard normal ``eps``: differentiable in loc and
        scale."""
        eps = standard_normal(self._extended_shape(sample_shape), self.loc.dtype,
                              self.loc.device)
        return self.loc + eps * self.scale

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        var = self.scale ** 2
        return (-((value - self.loc) ** 2) / (2 * var) - self.scale.log() -
                math.log(math.sqrt(2 * math.pi)))

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 * (1 + gcomp.erf((value - self.loc) * self.scale.reciprocal() /
                                    math.sqrt(2)))

    def icdf(self, value: Tensor) -> Tensor:
        return self.loc + self.scale * gcomp.erfinv(2 * value - 1) * math.sqrt(2)

    def entropy(self) -> Tensor:
        return 0.5 + 0.5 * math.log(2 * math.pi) + gcomp.log(self.scale)
