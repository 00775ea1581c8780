"""The beta distribution on [0, 1]."""

from __future__ import annotations

from numbers import Number

import gcomp
from gcomp import Tensor

from . import constraints
from .distribution import Distribution
from .gamma import standard_gamma
from .utils import broadcast_all, not_implemented

__all__ = ["Beta"]


class Beta(Distribution):
    """A beta distribution with concentrations ``concentration1`` (alpha) and
    ``concentration0`` (beta): density ``x**(a - 1) (1 - x)**(b - 1) / B(a, b)``.

    ``sample`` draws ``X / (X + Y)`` from two gamma samples (Note [Gamma sampling] in
    gamma.py); ``rsample`` is not supported.

    Example::

        >>> m = Beta(gcomp.tensor([0.5]), gcomp.tensor([0.5]))
        >>> m.sample()  # Beta distributed with concentration 0.5 and 0.5

    Args:
        concentration1 (float or Tensor): 1st concentration parameter (alpha), > 0.
        concentration0 (float or Tensor): 2nd concentration parameter (beta), > 0.
    """

    arg_constraints = {"concentration1": constraints.positive,
                       "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = False

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        both_numbers = isinstance(concentration1, Number) and isinstance(concentration0, Number)
        batch_shape = () if both_numbers else self.concentration1.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Beta, batch_shape, ("concentration1", "concentration0"),
                                   _instance)

    @property
    def mean(self) -> Tensor:
        return self.concentration1 / (self.concentration1 + self.concentration0)

    @property
    def mode(self) -> Tensor:
        """``(a - 1) / (a + b - 2)`` with each ``max(., 0)``; as torch, 1 where both
        concentrations are below 1 (the density has modes at 0 and 1)."""
        a1 = (self.concentration1 - 1).clamp(min=0)
        b1 = (self.concentration0 - 1).clamp(min=0)
        both_small = (self.concentration1 < 1) & (self.concentration0 < 1)
        return gcomp.where(both_small, 1.0, a1 / gcomp.where(both_small, 1.0, a1 + b1))

    @property
    def variance(self) -> Tensor:
        total = self.concentration1 + self.concentration0
        return self.concentration1 * self.concentration0 / (total.pow(2) * (total + 1))

    def sample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        with gcomp.no_grad():
            x = standard_gamma(self.concentration1.expand(shape))
            y = standard_gamma(self.concentration0.expand(shape))
            finfo = gcomp.finfo(x.dtype)
            return (x / (x + y)).clamp(min=finfo.tiny, max=1 - finfo.eps)

    def rsample(self, sample_shape=()) -> Tensor:
        raise not_implemented(
            "Beta.rsample is not supported: gcomp has no reparameterized gamma sampler "
            "(Note [Gamma sampling] in gcomp/distributions/gamma.py). Use sample() for draws "
            "without gradient, with a score-function estimator such as "
            "(f(x) * dist.log_prob(x)).mean() for x = dist.sample() if you need gradients")

    def _log_normalizer(self) -> Tensor:
        """log B(a, b)."""
        a, b = self.concentration1, self.concentration0
        return gcomp.lgamma(a) + gcomp.lgamma(b) - gcomp.lgamma(a + b)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return (gcomp.xlogy(self.concentration1 - 1, value) +
                gcomp.xlogy(self.concentration0 - 1, 1 - value) - self._log_normalizer())

    def entropy(self) -> Tensor:
        a, b = self.concentration1, self.concentration0
        return (self._log_normalizer() - (a - 1) * gcomp.digamma(a) -
                (b - 1) * gcomp.digamma(b) + (a + b - 2) * gcomp.digamma(a + b))
