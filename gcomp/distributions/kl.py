"""kl_divergence(p, q) and register_kl: KL(p || q) in closed form for registered pairs of
distribution types, looked up by the most specific registered match (torch's rule)."""

from __future__ import annotations

import math
import warnings
from functools import total_ordering

import gcomp
from gcomp import Tensor
from gcomp.nn.functional import softplus

from .bernoulli import Bernoulli
from .beta import Beta
from .categorical import Categorical, OneHotCategorical
from .distribution import Distribution
from .exponential import Exponential
from .gamma import Gamma
from .independent import Independent
from .laplace import Laplace
from .multivariate_normal import MultivariateNormal, _batch_mahalanobis, _solve_lower
from .normal import Normal
from .uniform import Uniform
from .utils import not_implemented, sum_rightmost, value_error

__all__ = ["kl_divergence", "register_kl"]

_KL_REGISTRY: dict = {}  # (type_p, type_q) -> function: the registered pairs
_KL_MEMOIZE: dict = {}  # the lookup for each pair of concrete types seen so far


def register_kl(type_p, type_q):
    """A decorator registering ``fun(p, q)`` as KL(p || q) for ``p`` of type ``type_p`` and
    ``q`` of ``type_q`` (or of their subclasses)::

        @register_kl(Normal, Normal)
        def kl_normal_normal(p, q):
            ...

    Lookup returns the most specific match by subclass; an ambiguous one (``(Base, Derived)``
    and ``(Derived, Base)`` both registered) warns: register ``(Derived, Derived)`` to break the
    tie."""
    for name, t in (("type_p", type_p), ("type_q", type_q)):
        if not (isinstance(t, type) and issubclass(t, Distribution)):
            raise value_error(f"Expected {name} to be a Distribution subclass but got {t!r}")

    def decorator(fun):
        _KL_REGISTRY[type_p, type_q] = fun
        _KL_MEMOIZE.clear()  # the lookup order may have changed
        return fun

    return decorator


@total_ordering
class _Match:
    """A registered pair ordered lexicographically by subclass (more specific is smaller)."""

    __slots__ = ["types"]

    def __init__(self, *types):
        self.types = types

    def __eq__(self, other):
        return self.types == other.types

    def __le__(self, other):
        for x, y in zip(self.types, other.types):
            if not issubclass(x, y):
                return False
            if x is not y:
                break
        return True


def _dispatch_kl(type_p, type_q):
    """The most specific registered function for (type_p, type_q), or NotImplemented."""
    matches = [(super_p, super_q) for super_p, super_q in _KL_REGISTRY
               if issubclass(type_p, super_p) and issubclass(type_q, super_q)]
    if not matches:
        return NotImplemented
    left_p, left_q = min(_Match(*m) for m in matches).types
    right_q, right_p = min(_Match(*reversed(m)) for m in matches).types
    left_fun = _KL_REGISTRY[left_p, left_q]
    if left_fun is not _KL_REGISTRY[right_p, right_q]:
        warnings.warn(f"Ambiguous kl_divergence({type_p.__name__}, {type_q.__name__}). "
                      f"Please register_kl({left_p.__name__}, {right_q.__name__})",
                      RuntimeWarning, stacklevel=2)
    return left_fun


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p || q) = integral of p(x) log(p(x) / q(x)) dx, of shape batch_shape.

    Raises DistributionNotImplementedError (a NotImplementedError) when no function is
    registered for the pair of types (see register_kl)."""
    try:
        fun = _KL_MEMOIZE[type(p), type(q)]
    except KeyError:
        fun = _KL_MEMOIZE[type(p), type(q)] = _dispatch_kl(type(p), type(q))
    if fun is NotImplemented:
        raise not_implemented(f"No KL(p || q) is implemented for p type {type(p).__name__} and "
                              f"q type {type(q).__name__}; register one with "
                              f"@gcomp.distributions.register_kl({type(p).__name__}, "
                              f"{type(q).__name__})")
    return fun(p, q)


# -- the registered pairs ----------------------------------------------------------------------
@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli_bernoulli(p, q):
    inf = math.inf
    t1 = p.probs * (softplus(-q.logits) - softplus(-p.logits))
    t1 = gcomp.where(p.probs == 0, 0.0, gcomp.where(q.probs == 0, inf, t1))
    t2 = (1 - p.probs) * (softplus(q.logits) - softplus(p.logits))
    t2 = gcomp.where(p.probs == 1, 0.0, gcomp.where(q.probs == 1, inf, t2))
    return t1 + t2


@register_kl(Categorical, Categorical)
def _kl_categorical_categorical(p, q):
    t = p.probs * (p.logits - q.logits)
    t = gcomp.where(q.probs == 0, math.inf, t)
    t = gcomp.where(p.probs == 0, 0.0, t)
    return t.sum(-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehotcategorical_onehotcategorical(p, q):
    return _kl_categorical_categorical(p._categorical, q._categorical)


@register_kl(Normal, Normal)
def _kl_normal_normal(p, q):
    var_ratio = (p.scale / q.scale).pow(2)
    t1 = ((p.loc - q.loc) / q.scale).pow(2)
    return 0.5 * (var_ratio + t1 - 1 - var_ratio.log())


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_multivariatenormal_multivariatenormal(p, q):
    if p.event_shape != q.event_shape:
        raise value_error("KL-divergence between two Multivariate Normals with different "
                          f"event shapes cannot be computed ({p.event_shape} vs "
                          f"{q.event_shape})")
    half_term1 = (q._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) -
                  p._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1))
    batch = tuple(gcomp.broadcast_shapes(tuple(q._unbroadcasted_scale_tril.shape[:-2]),
                                         tuple(p._unbroadcasted_scale_tril.shape[:-2])))
    n = p.event_shape[0]
    q_scale_tril = q._unbroadcasted_scale_tril.expand(batch + (n, n))
    p_scale_tril = p._unbroadcasted_scale_tril.expand(batch + (n, n))
    term2 = _solve_lower(q_scale_tril, p_scale_tril).pow(2).sum((-2, -1))  # tr(X X^T)
    term3 = _batch_mahalanobis(q._unbroadcasted_scale_tril, q.loc - p.loc)
    return half_term1 + 0.5 * (term2 + term3 - n)


@register_kl(Independent, Independent)
def _kl_independent_independent(p, q):
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise not_implemented("KL between Independent distributions with different "
                              "reinterpreted_batch_ndims is not implemented")
    return sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)


@register_kl(Exponential, Exponential)
def _kl_exponential_exponential(p, q):
    rate_ratio = q.rate / p.rate
    return -rate_ratio.log() + rate_ratio - 1


@register_kl(Laplace, Laplace)
def _kl_laplace_laplace(p, q):
    scale_ratio = p.scale / q.scale
    loc_abs_diff = (p.loc - q.loc).abs()
    return (-scale_ratio.log() + loc_abs_diff / q.scale +
            scale_ratio * gcomp.exp(-loc_abs_diff / p.scale) - 1)


@register_kl(Uniform, Uniform)
def _kl_uniform_uniform(p, q):
    result = ((q.high - q.low) / (p.high - p.low)).log()
    return gcomp.where((q.low > p.low) | (q.high < p.high), math.inf, result)


@register_kl(Gamma, Gamma)
def _kl_gamma_gamma(p, q):
    t1 = q.concentration * gcomp.log(p.rate / q.rate)
    t2 = gcomp.lgamma(q.concentration) - gcomp.lgamma(p.concentration)
    t3 = (p.concentration - q.concentration) * gcomp.digamma(p.concentration)
    t4 = (q.rate - p.rate) * (p.concentration / p.rate)
    return t1 + t2 + t3 + t4


@register_kl(Beta, Beta)
def _kl_beta_beta(p, q):
    p_total = p.concentration1 + p.concentration0
    q_total = q.concentration1 + q.concentration0
    t1 = q._log_normalizer() - p._log_normalizer()
    t2 = (p.concentration1 - q.concentration1) * gcomp.digamma(p.concentration1)
    t3 = (p.concentration0 - q.concentration0) * gcomp.digamma(p.concentration0)
    t4 = (q_total - p_total) * gcomp.digamma(p_total)
    return t1 + t2 + t3 + t4
