"""The Laplace (double exponential) distribution."""

from __future__ import annotations

from numbers import Number

import gcomp
from gcomp import Tensor

from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, standard_uniform

__all__ = ["Laplace"]


class Laplace(Distribution):
    """A Laplace distribution with location ``loc`` and scale ``scale`` (density
    ``exp(-|x - loc| / scale) / (2 scale)``).

    Example::

        >>> m = Laplace(gcomp.tensor([0.0]), gcomp.tensor([1.0]))
        >>> m.sample()  # Laplace distributed with loc=0, scale=1

    Args:
        loc (float or Tensor): mean of the distribution.
        scale (float or Tensor): scale of the distribution, > 0.
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
        return self._expand_params(Laplace, batch_shape, ("loc", "scale"), _instance)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        return 2 * self.scale.pow(2)

    @property
    def stddev(self) -> Tensor:
        return (2 ** 0.5) * self.scale

    def rsample(self, sample_shape=()) -> Tensor:
        """The inverse CDF at ``u`` uniform in (-1, 1): differentiable in loc and scale."""
        shape = self._extended_shape(sample_shape)
        eps = gcomp.finfo(self.loc.dtype).eps
        u = standard_uniform(shape, self.loc.dtype, self.loc.device) * (2 - eps) + (eps - 1)
        return self.loc - self.scale * u.sign() * gcomp.log1p(-u.abs())

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return -gcomp.log(2 * self.scale) - gcomp.abs(value - self.loc) / self.scale

    def cdf(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return 0.5 - 0.5 * (value - self.loc).sign() * gcomp.expm1(
            -(value - self.loc).abs() / self.scale)

    def icdf(self, value: Tensor) -> Tensor:
        term = value - 0.5
        return self.loc - self.scale * term.sign() * gcomp.log1p(-2 * term.abs())

    def entropy(self) -> Tensor:
        return 1 + gcomp.log(2 * self.scale)
