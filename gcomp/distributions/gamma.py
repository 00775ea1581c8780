"""The gamma distribution, and gcomp's gamma sampler (Note [Gamma sampling]).

Note [Gamma sampling]
~~~~~~~~~~~~~~~~~~~~~
gcomp has no gamma primitive, so ``standard_gamma`` is a composite of gcomp ops: Marsaglia and
Tsang's method (ACM TOMS 26(3), 2000). For concentration ``a >= 1``, with ``d = a - 1/3`` and
``c = 1 / sqrt(9 d)``, a candidate ``d * (1 + c x)**3`` from a standard normal ``x`` is accepted
when ``log(u) < x**2 / 2 + d - d v + d log(v)`` (``v = (1 + c x)**3 > 0``, ``u`` uniform); the
accepted candidate is exactly gamma distributed. For ``a < 1`` it draws with ``a + 1`` and
multiplies by ``u ** (1 / a)`` (the same paper's boost). The normals are ``sqrt(2) erfinv(2u - 1)``
of uniforms from the same draw as the other uniforms (``gcomp.randn``'s construction), so that
the sampler is one draw and about 30 ops. Eagerly those run as one compiled call
(``gcomp.runtime.compiled.composite``: one XLA executable per shape, 0.4 s to build instead of
2.3 s for the ops one by one, then 0.1 ms a call); under a trace they are inlined.

A loop until acceptance is data-dependent control flow, which a compiled program cannot stop
to decide, so every element draws ``ROUNDS`` candidates at once and keeps the first accepted.
A candidate is accepted with probability above 0.95 for every ``a >= 1``, so all ``ROUNDS = 8``
fail with probability below 0.05**8 (about 4e-11) per element; then the first candidate is
used, clamped to the smallest positive float. The draws come from gcomp's generator, so
``gcomp.manual_seed`` reproduces them, eagerly and compiled alike.

The sample is not differentiated (torch's Gamma.rsample differentiates through the
concentration by implicit reparameterization, which needs the derivative of the incomplete
gamma function, an op gcomp does not have): Gamma and Beta have ``sample`` but not ``rsample``.
"""

from __future__ import annotations

import math
from numbers import Number

import gcomp
from gcomp import Tensor
from gcomp.runtime.compiled import composite

from . import constraints
from .distribution import Distribution
from .utils import broadcast_all, not_implemented, standard_uniform

__all__ = ["Gamma"]

ROUNDS = 8


@composite
def standard_gamma(concentration: Tensor) -> Tensor:
    """Gamma(concentration, 1) samples of concentration's shape and dtype, not differentiated
    (Note [Gamma sampling])."""
    with gcomp.no_grad():
        alpha = concentration.detach()
        dtype, shape = alpha.dtype, tuple(alpha.shape)
        small = alpha < 1
        d = alpha + (small.to(dtype) - 1.0 / 3.0)  # a - 1/3, a = alpha + 1 where boosted
        c = gcomp.rsqrt(9 * d)
        # one draw for everything (fewer ops: each op compiles once per shape eagerly): ROUNDS
        # uniforms for normals (u = 0 gives -inf, a rejected candidate), ROUNDS for acceptance
        # and one for the boost
        u = standard_uniform((2 * ROUNDS + 1,) + shape, dtype)
        x = gcomp.erfinv(2 * u[:ROUNDS] - 1) * math.sqrt(2)
        v = (1 + c * x) ** 3
        positive = v > 0
        log_v = gcomp.log(gcomp.where(positive, v, 1.0))
        accept = positive & (gcomp.log(u[ROUNDS:2 * ROUNDS]) < 0.5 * x * x + d * (1 - v + log_v))
        first = accept.to(gcomp.int32).argmax(0, keepdim=True)  # the first True (or 0)
        sample = (d * v).gather(0, first).squeeze(0)
        boost = gcomp.exp(gcomp.log1p(-u[2 * ROUNDS]) / alpha)
        sample = gcomp.where(small, sample * boost, sample)
        return sample.clamp(min=gcomp.finfo(dtype).tiny)


class Gamma(Distribution):
    """A gamma distribution with shape ``concentration`` and ``rate`` (density
    ``rate**c x**(c - 1) exp(-rate x) / Gamma(c)``).

    ``sample`` draws with gcomp's composite sampler (Note [Gamma sampling]); ``rsample`` and
    ``cdf`` are not supported (they need incomplete gamma functions gcomp lacks).

    Example::

        >>> m = Gamma(gcomp.tensor([1.0]), gcomp.tensor([1.0]))
        >>> m.sample()  # Gamma distributed with concentration=1 and rate=1

    Args:
        concentration (float or Tensor): shape parameter of the distribution (alpha), > 0.
        rate (float or Tensor): rate parameter (beta, 1 / scale), > 0.
    """

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = False

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        both_numbers = isinstance(concentration, Number) and isinstance(rate, Number)
        batch_shape = () if both_numbers else self.concentration.size()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Gamma, batch_shape, ("concentration", "rate"), _instance)

    @property
    def mean(self) -> Tensor:
        return self.concentration / self.rate

    @property
    def mode(self) -> Tensor:
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self) -> Tensor:
        return self.concentration / self.rate.pow(2)

    def sample(self, sample_shape=()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        with gcomp.no_grad():
            value = standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
            return value.clamp(min=gcomp.finfo(value.dtype).tiny)

    def rsample(self, sample_shape=()) -> Tensor:
        raise not_implemented(
            "Gamma.rsample is not supported: gcomp has no reparameterized gamma sampler "
            "(Note [Gamma sampling] in gcomp/distributions/gamma.py). Use sample() for draws "
            "without gradient, with a score-function estimator such as "
            "(f(x) * dist.log_prob(x)).mean() for x = dist.sample() if you need gradients")

    def cdf(self, value: Tensor) -> Tensor:
        raise not_implemented(
            "Gamma.cdf is not supported: it is the regularized incomplete gamma function "
            "(torch.special.gammainc), which gcomp does not have")

    def log_prob(self, value: Tensor) -> Tensor:
        value = gcomp.as_tensor(value, dtype=self.rate.dtype)
        if self._validate_args:
            self._validate_sample(value)
        return (gcomp.xlogy(self.concentration, self.rate) +
                gcomp.xlogy(self.concentration - 1, value) - self.rate * value -
                gcomp.lgamma(self.concentration))

    def entropy(self) -> Tensor:
        return (self.concentration - gcomp.log(self.rate) + gcomp.lgamma(self.concentration) +
                (1.0 - self.concentration) * gcomp.digamma(self.concentration))
