"""Categorical distributions over ``{0, ..., K - 1}``: as indices (Categorical) and as one-hot
vectors (OneHotCategorical)."""

from __future__ import annotations

import gcomp
from gcomp import Tensor
from gcomp.nn.functional import one_hot
from gcomp.runtime.compiled import composite

from . import constraints
from .distribution import Distribution
from .utils import as_size, lazy_property, logits_to_probs, probs_to_logits, value_error

__all__ = ["Categorical", "OneHotCategorical"]


@composite
def _draw_indices(probs_2d: Tensor, num_samples: int) -> Tensor:
    """[num_samples, rows] int64 indices drawn with replacement from each row of probs_2d.

    Eagerly one compiled call (gcomp.runtime.compiled.composite: one executable per shape
    rather than a jitted call per op, which matters in a loop that samples every step); so
    multinomial's own check of the weights is skipped, as inside gcomp.compile: the
    distribution's argument validation checks them (Note [Validation] in distribution.py)."""
    with gcomp.no_grad():
        return gcomp.multinomial(probs_2d, num_samples, True).T


class Categorical(Distribution):
    """A categorical distribution over ``{0, ..., K - 1}``, ``K = probs.size(-1)``, batched
    over the other dimensions of ``probs`` or ``logits`` (give one of them, not both).

    ``probs`` need only be non-negative with a positive sum (it is normalized over the last
    dimension); ``logits`` are unnormalized log probabilities (normalized so that they
    logsumexp to 0). Samples are int64 indices.

    Example::

        >>> m = Categorical(gcomp.tensor([0.25, 0.25, 0.25, 0.25]))
        >>> m.sample()  # equal probability of 0, 1, 2, 3

    Args:
        probs (Tensor): event probabilities.
        logits (Tensor): event log probabilities (unnormalized).
    """

    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise value_error("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if probs.dim() < 1:
                raise value_error("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if logits.dim() < 1:
                raise value_error("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.size()[-1]
        batch_shape = self._param.size()[:-1] if self._param.ndim > 1 else ()
        super().__init__(batch_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Categorical, _instance)
        batch_shape = as_size(batch_shape)
        param_shape = tuple(batch_shape) + (self._num_events,)
        for name in ("probs", "logits"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(param_shape))
                new._param = new.__dict__[name]
        new._num_events = self._num_events
        Distribution.__init__(new, batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self) -> Tensor:
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self) -> Tensor:
        return logits_to_probs(self.logits)

    @property
    def param_shape(self) -> gcomp.Size:
        return self._param.size()

    @property
    def mean(self) -> Tensor:
        return gcomp.full(tuple(self._extended_shape()), float("nan"), dtype=self.probs.dtype)

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(dim=-1)

    @property
    def variance(self) -> Tensor:
        return gcomp.full(tuple(self._extended_shape()), float("nan"), dtype=self.probs.dtype)

    def sample(self, sample_shape=()) -> Tensor:
        """int64 indices of shape ``sample_shape + batch_shape``, drawn with
        gcomp.multinomial (with replacement) from each row of probs."""
        sample_shape = as_size(sample_shape)
        with gcomp.no_grad():
            probs_2d = self.probs.detach().reshape(-1, self._num_events)
            samples_2d = _draw_indices(probs_2d, sample_shape.numel())
            return samples_2d.reshape(tuple(self._extended_shape(sample_shape)))

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        value = value.long().unsqueeze(-1)
        value, log_pmf = gcomp.broadcast_tensors(value, self.logits)
        value = value[..., :1]
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self) -> Tensor:
        min_real = gcomp.finfo(self.logits.dtype).min
        logits = gcomp.clamp(self.logits, min=min_real)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        values = gcomp.arange(self._num_events, dtype=gcomp.int64)
        values = values.reshape((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + tuple(self._batch_shape))
        return values


class OneHotCategorical(Distribution):
    """A categorical distribution whose samples are one-hot vectors of size ``K``: the event
    shape is ``(K,)``. Parameters as :class:`Categorical`'s.

    Example::

        >>> m = OneHotCategorical(gcomp.tensor([0.25, 0.25, 0.25, 0.25]))
        >>> m.sample()  # equal probability of [1, 0, 0, 0], ..., [0, 0, 0, 1]
    """

    arg_constraints = {"probs": constraints.simplex,
                       "logits": constraints.independent(constraints.real, 1)}
    support = constraints.one_hot
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        self._categorical = Categorical(probs, logits)
        batch_shape = self._categorical.batch_shape
        event_shape = self._categorical.param_shape[-1:]
        super().__init__(batch_shape, event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(OneHotCategorical, _instance)
        batch_shape = as_size(batch_shape)
        new._categorical = self._categorical.expand(batch_shape)
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @property
    def _param(self) -> Tensor:
        return self._categorical._param

    @property
    def probs(self) -> Tensor:
        return self._categorical.probs

    @property
    def logits(self) -> Tensor:
        return self._categorical.logits

    @property
    def mean(self) -> Tensor:
        return self._categorical.probs

    @property
    def mode(self) -> Tensor:
        probs = self._categorical.probs
        return one_hot(self._categorical.mode, probs.shape[-1]).to(probs.dtype)

    @property
    def variance(self) -> Tensor:
        probs = self._categorical.probs
        return probs * (1 - probs)

    @property
    def param_shape(self) -> gcomp.Size:
        return self._categorical.param_shape

    def sample(self, sample_shape=()) -> Tensor:
        probs = self._categorical.probs
        indices = self._categorical.sample(sample_shape)
        return one_hot(indices, self._categorical._num_events).to(probs.dtype)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        return self._categorical.log_prob(value.argmax(-1))

    def entropy(self) -> Tensor:
        return self._categorical.entropy()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        n = self.event_shape[0]
        values = gcomp.eye(n, dtype=self._param.dtype)
        values = values.reshape((n,) + (1,) * len(self.batch_shape) + (n,))
        if expand:
            values = values.expand((n,) + tuple(self.batch_shape) + (n,))
        return values

    def __repr__(self) -> str:
        held = self._categorical.__dict__
        names = [k for k in self.arg_constraints if held.get(k) is self._param]  # as given
        args = ", ".join(f"{k}: {held[k].size()}" for k in names)
        return f"{self.__class__.__name__}({args})"
