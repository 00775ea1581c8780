"""The Distribution base class: shapes, sampling, validation and repr, as torch's.

Note [Validation]
~~~~~~~~~~~~~~~~~
As in torch, a distribution checks its parameters against ``arg_constraints`` when it is made,
and ``log_prob``/``cdf`` check their value's shape and support, unless ``validate_args=False``
(or ``Distribution.set_default_validate_args(False)``, or ``python -O``). A failed check raises
DistributionValueError, a GcompError that is also a ValueError, naming the user's line, the
parameter, the constraint and the bad values.

A check of values needs those values on the host, so it runs eagerly only: inside
gcomp.compile the parameters are traced (known only when the program runs), and the value
checks are skipped, as a compiled program never stops to look at its data. Shape checks run in
both. Validate eagerly (call the function once without compiling) to catch bad parameters.
"""

from __future__ import annotations

import warnings

import gcomp
from gcomp import Tensor

from . import constraints
from .utils import as_size, lazy_property, not_implemented, tracing, value_error

__all__ = ["Distribution"]


class Distribution:
    """The abstract base class of probability distributions.

    Args:
        batch_shape (gcomp.Size): the shape over which parameters are batched.
        event_shape (gcomp.Size): the shape of a single sample (without batching).
        validate_args (bool, optional): whether to validate arguments (Note [Validation]).
            Default: None, which follows ``Distribution.set_default_validate_args``.
    """

    has_rsample = False
    has_enumerate_support = False
    _validate_args = __debug__

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Turn validation on or off for distributions made from now on (default: on, as
        Python's ``assert``: off under ``python -O``)."""
        if value not in (True, False):
            raise value_error(f"set_default_validate_args expects True or False, got {value!r}")
        Distribution._validate_args = value

    def __init__(self, batch_shape=(), event_shape=(), validate_args: bool | None = None):
        self._batch_shape = as_size(batch_shape)
        self._event_shape = as_size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args and not tracing():
            try:
                arg_constraints = self.arg_constraints
            except NotImplementedError:
                arg_constraints = {}
                warnings.warn(f"{self.__class__} does not define `arg_constraints`. Please set "
                              "`arg_constraints = {}` or initialize the distribution with "
                              "`validate_args=False` to turn off validation.", stacklevel=2)
            for param, constraint in arg_constraints.items():
                if constraints.is_dependent(constraint):
                    continue  # no coordinate-wise check
                if param not in self.__dict__ and isinstance(getattr(type(self), param, None),
                                                             lazy_property):
                    continue  # derived from another parameter, which is checked
                value = getattr(self, param)
                with gcomp.no_grad():
                    valid = bool(constraint.check(value).all())
                if not valid:
                    raise value_error(
                        f"Expected parameter {param} ({type(value).__name__} of shape "
                        f"{tuple(value.shape)}) of distribution {self!r} to satisfy the "
                        f"constraint {constraint!r}, but found invalid values:\n{value}")

    def expand(self, batch_shape, _instance=None):
        """A new distribution whose parameters are this one's expanded to ``batch_shape``
        (no new argument checks). Subclasses implement it."""
        raise not_implemented(f"{type(self).__name__} does not implement expand")

    @property
    def batch_shape(self) -> gcomp.Size:
        """The shape over which parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> gcomp.Size:
        """The shape of a single sample (without batching)."""
        return self._event_shape

    @property
    def arg_constraints(self) -> dict:
        """The constraint each tensor argument must satisfy, by argument name."""
        raise NotImplementedError

    @property
    def support(self):
        """The constraint the distribution's values satisfy."""
        raise NotImplementedError

    @property
    def mean(self) -> Tensor:
        raise not_implemented(f"{type(self).__name__} does not implement mean")

    @property
    def mode(self) -> Tensor:
        raise not_implemented(f"{type(self).__name__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise not_implemented(f"{type(self).__name__} does not implement variance")

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def sample(self, sample_shape=()) -> Tensor:
        """A sample of shape ``sample_shape + batch_shape + event_shape``, not differentiated
        (drawn under no_grad) from gcomp's global generator."""
        with gcomp.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        """A reparameterized sample: differentiable with respect to the parameters."""
        raise not_implemented(f"{type(self).__name__} does not support rsample (has_rsample is "
                              f"False); use sample(), which is not differentiated")

    def sample_n(self, n: int) -> Tensor:
        warnings.warn("`sample_n(n)` will be deprecated. Use `sample((n,))` instead.",
                      FutureWarning, stacklevel=2)
        return self.sample((n,))

    def log_prob(self, value: Tensor) -> Tensor:
        """The log of the probability density or mass function at ``value``."""
        raise not_implemented(f"{type(self).__name__} does not implement log_prob")

    def cdf(self, value: Tensor) -> Tensor:
        """The cumulative distribution function at ``value``."""
        raise not_implemented(f"{type(self).__name__} does not implement cdf")

    def icdf(self, value: Tensor) -> Tensor:
        """The inverse cumulative distribution function at ``value``."""
        raise not_implemented(f"{type(self).__name__} does not implement icdf")

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """All values of a discrete distribution, over dimension 0: shape ``(cardinality,) +
        batch_shape + event_shape`` (the batch dimensions of size 1 if not ``expand``)."""
        raise not_implemented(f"{type(self).__name__} does not implement enumerate_support")

    def entropy(self) -> Tensor:
        """The entropy, of shape batch_shape."""
        raise not_implemented(f"{type(self).__name__} does not implement entropy")

    def perplexity(self) -> Tensor:
        """exp(entropy), of shape batch_shape."""
        return gcomp.exp(self.entropy())

    def _extended_shape(self, sample_shape=()) -> gcomp.Size:
        """``sample_shape + batch_shape + event_shape``."""
        return as_size(tuple(as_size(sample_shape)) + tuple(self._batch_shape) +
                       tuple(self._event_shape))

    def _validate_sample(self, value: Tensor) -> None:
        """Check that ``value``'s rightmost dimensions broadcast with batch_shape + event_shape
        and (eagerly) that it lies in the support (Note [Validation])."""
        if not isinstance(value, Tensor):
            raise value_error(f"The value argument to log_prob must be a Tensor, got "
                              f"{type(value).__name__}")
        actual = value.shape
        event_dim_start = len(actual) - len(self._event_shape)
        if tuple(actual[event_dim_start:]) != tuple(self._event_shape):
            raise value_error(f"The right-most size of value must match event_shape: {actual} "
                              f"vs {self._event_shape}.")
        expected = as_size(tuple(self._batch_shape) + tuple(self._event_shape))
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise value_error(f"Value is not broadcastable with batch_shape+event_shape: "
                                  f"{actual} vs {expected}.")
        if tracing():
            return
        try:
            support = self.support
        except NotImplementedError:
            warnings.warn(f"{self.__class__} does not define `support` to enable sample "
                          "validation. Please initialize the distribution with "
                          "`validate_args=False` to turn off validation.", stacklevel=2)
            return
        with gcomp.no_grad():
            valid = bool(support.check(value).all())
        if not valid:
            raise value_error(f"Expected value argument ({type(value).__name__} of shape "
                              f"{tuple(value.shape)}) to be within the support ({support!r}) "
                              f"of the distribution {self!r}, but found invalid values:\n"
                              f"{value}")

    def _expand_params(self, cls, batch_shape, names, _instance=None):
        """``expand`` for a distribution whose parameters ``names`` all have its batch_shape:
        a new ``cls`` with each of them (those this instance holds) expanded."""
        new = self._get_checked_instance(cls, _instance)
        batch_shape = as_size(batch_shape)
        for name in names:
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(tuple(batch_shape)))
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _get_checked_instance(self, cls, _instance=None):
        if _instance is None and type(self).__init__ != cls.__init__:
            raise not_implemented(f"Subclass {self.__class__.__name__} of {cls.__name__} that "
                                  "defines a custom __init__ method must also define a custom "
                                  ".expand() method.")
        return self.__new__(type(self)) if _instance is None else _instance

    def __repr__(self) -> str:
        """Torch's: each parameter held by name, as its value if it has one element (a 0-d
        tensor formats as its number) or else its size: ``Normal(loc: gcomp.Size([2]), ...)``."""
        values = [(k, self.__dict__[k]) for k in self.arg_constraints if k in self.__dict__]
        args = ", ".join(f"{k}: {v if v.numel() == 1 else v.size()}" for k, v in values)
        return f"{self.__class__.__name__}({args})"
