"""Random sampling beyond rand/randn/randint: torch.normal, multinomial, randperm and the
in-place samplers (``random_``, ``exponential_``, ``geometric_``, ``log_normal_``, ``cauchy_``,
``bernoulli_``).

``out=`` comes from the torch namespace's wrapper (frontend/out.py). Every draw goes through
gcomp's generator (``creation._uniform_bits``), so inside gcomp.compile
the key is state like a parameter and a compiled step draws what the eager step would. As in
torch, samples are not differentiated through: ``normal(mean, std)`` gives no gradient to mean
or std (use ``mean + std * randn_like(std)`` for a reparameterized draw).
"""

from __future__ import annotations

import math

import numpy as np

from ..core.dispatch import user_error
from ..ir import types as T
from ..ir.errors import GcompError
from . import creation, ops
from .autograd import no_grad
from .inplace import assign
from .tensor import Tensor


def _check_generator(generator):
    if generator is not None and not isinstance(generator, creation.Generator):
        raise user_error(GcompError, f"generator must be a gcomp.Generator or None, got "
                         f"{type(generator).__name__}")


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None,
           requires_grad=False) -> Tensor:
    """torch.normal: ``normal(mean, std)`` with either a tensor (the result has the broadcast
    shape), or ``normal(mean: float, std: float, size)``."""
    _check_generator(generator)
    tensors = [a for a in (mean, std) if isinstance(a, Tensor)]
    if size is None and not tensors:
        raise user_error(GcompError, "normal(mean, std) with two numbers needs a size, e.g. "
                         "gcomp.normal(0.0, 1.0, size=(3,))")
    if size is not None and tensors:
        raise user_error(GcompError, "normal: size is only for numbers mean and std; with a "
                         "tensor the result has its shape")
    if any(not t.dtype.is_floating_point for t in tensors):
        raise user_error(GcompError, "normal expects floating point mean and std tensors")
    if isinstance(std, Tensor):
        with no_grad():
            bad = bool(ops.any(ops.lt(std, 0.0)).item()) if not std.is_traced else False
        if bad:
            raise user_error(GcompError, "normal expects all elements of std >= 0.0")
    elif std < 0:
        raise user_error(GcompError, f"normal expects std >= 0.0, but found std {std}")
    with no_grad():
        if tensors:
            shape = np.broadcast_shapes(*[tuple(t.shape) for t in tensors])
            dt = T.float64 if any(t.dtype == T.float64 for t in tensors) else tensors[0].dtype
        else:
            shape = tuple(size)
            dt = dtype or T.DEFAULT_FLOAT
        z = creation.randn(shape, generator=generator, dtype=dt)
        m = mean.detach() if isinstance(mean, Tensor) else mean
        s = std.detach() if isinstance(std, Tensor) else std
        result = ops.add(ops.mul(z, s), m)
    return creation._finish(creation._on(result, device), requires_grad)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator=None) -> Tensor:
    """Indices drawn from the rows of ``input`` (non-negative weights, 1-d or 2-d), int64.

    With replacement, each sample is one inverse-CDF lookup of a uniform number; without, the
    ``num_samples`` draws are made one after another, each from the weights with those already
    drawn zeroed (``num_samples`` is usually small: one token, a few classes)."""
    _check_generator(generator)
    if not isinstance(input, Tensor) or not input.dtype.is_floating_point:
        raise user_error(GcompError, "multinomial expects a floating point tensor of weights")
    if input.ndim not in (1, 2):
        raise user_error(GcompError, f"prob_dist must be 1 or 2 dim, got {input.ndim}")
    n = input.shape[-1]
    if not isinstance(num_samples, int) or num_samples <= 0:
        raise user_error(GcompError, f"cannot sample n_sample <= 0 samples (got {num_samples})")
    if not replacement and num_samples > n:
        raise user_error(GcompError, f"cannot sample n_sample > prob_dist.size(-1) samples "
                         f"without replacement ({num_samples} > {n})")
    if not input.is_traced:
        with no_grad():
            w = input.detach()
            bad = bool(ops.any(ops.logical_or(ops.lt(w, 0.0), ops.logical_not(ops.isfinite(w))))
                       .item())
            empty = bool(ops.any(ops.le(ops.sum(w, -1), 0.0)).item())
        if bad:
            raise user_error(GcompError, "probability tensor contains either inf, nan or "
                             "element < 0")
        if empty:
            raise user_error(GcompError, "invalid multinomial distribution (sum of "
                             "probabilities <= 0)")
    with no_grad():
        w = ops.cast(input.detach(), T.float64)
        rows = w if w.ndim == 2 else w.reshape(1, n)
        if replacement:
            result = _inverse_cdf(rows, num_samples, generator)
        else:
            picks = []
            for _ in range(num_samples):
                i = _inverse_cdf(rows, 1, generator)  # [rows, 1]
                picks.append(i)
                hit = ops.eq(creation.arange(n).reshape(1, n), i)
                rows = ops.where(hit, 0.0, rows)
            result = picks[0] if len(picks) == 1 else _cat(picks)
        if input.ndim == 1:
            result = result.reshape(num_samples)
    return result


def _cat(parts):
    from .shape_ops import cat

    return cat(parts, dim=1)


def _inverse_cdf(rows: Tensor, k: int, generator) -> Tensor:
    """[r, k] int64 indices: for each of k uniform numbers per row, the first index whose
    cumulative weight exceeds it (zero-weight entries are never chosen)."""
    r, n = rows.shape
    cdf = ops.cumsum(rows, -1)
    total = cdf[:, n - 1:n]  # [r, 1]
    u = ops.mul(ops.cast(creation._uniform_bits((r, k), generator), T.float64), total)
    # count of entries whose cdf <= u: the index of the first entry above u
    below = ops.le(cdf.reshape(r, 1, n), u.reshape(r, k, 1))
    idx = ops.sum(ops.cast(below, T.int64), -1)
    return ops.minimum(idx, n - 1)  # u within rounding of the total


def randperm(n: int, *, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A random permutation of 0..n-1 (int64): the order that sorts n random 32-bit keys."""
    from .sorting import argsort

    _check_generator(generator)
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise user_error(GcompError, f"randperm: n must be a non-negative int, got {n!r}")
    gen = generator or creation.default_generator
    with no_grad():
        from ..core.dispatch import bind

        keys = bind("random_bits", gen.next_key(), shape=(n,))
        result = argsort(keys, stable=True)
        if dtype is not None:
            result = ops.cast(result, dtype)
    return creation._finish(creation._on(result, device), requires_grad)


# -- in-place samplers ------------------------------------------------------------------------
def _fill(self: Tensor, value: Tensor) -> Tensor:
    """Write a sample into ``self`` (a leaf that requires grad may be filled: init functions)."""
    return assign(self, ops.cast(value, self.dtype), check=not self.requires_grad)


def _uniform(self, generator, open_interval=False):
    return ops.cast(creation._uniform_bits(tuple(self.shape), generator, open_interval),
                    T.float64)


def random_(self: Tensor, from_=0, to=None, *, generator=None) -> Tensor:
    """Integers drawn uniformly from [from, to - 1] (``random_(to)`` means [0, to - 1]; with no
    bound, up to the largest integer the dtype holds exactly)."""
    _check_generator(generator)
    if to is None and from_ != 0:
        from_, to = 0, from_
    if to is None:
        if self.dtype.is_floating_point:
            to = 2 ** {T.float16: 11, T.bfloat16: 8, T.float32: 24}.get(self.dtype, 53) + 1
        elif self.dtype == T.bool_:
            to = 2
        else:
            to = min(2 ** (8 * self.dtype.itemsize - (0 if self.dtype == T.uint8 else 1)),
                     2 ** 53)
    if to <= from_:
        raise user_error(GcompError, f"random_ expects 'from' to be less than 'to', but got "
                         f"from={from_} >= to={to}")
    with no_grad():
        u = _uniform(self, generator)
        v = ops.add(ops.floor(ops.mul(u, float(to - from_))), float(from_))
        return _fill(self, v)


def exponential_(self: Tensor, lambd: float = 1.0, *, generator=None) -> Tensor:
    _check_generator(generator)
    if not lambd > 0:
        raise user_error(GcompError, f"exponential_ expects lambda > 0.0, but found "
                         f"lambda={lambd}")
    with no_grad():
        u = _uniform(self, generator, open_interval=True)
        return _fill(self, ops.div(ops.neg(ops.log(u)), lambd))


def geometric_(self: Tensor, p: float, *, generator=None) -> Tensor:
    _check_generator(generator)
    if not 0 < p < 1:
        raise user_error(GcompError, f"geometric_ expects p to be in (0, 1), but got p={p}")
    with no_grad():
        u = _uniform(self, generator, open_interval=True)
        return _fill(self, ops.ceil(ops.div(ops.log(u), math.log1p(-p))))


def log_normal_(self: Tensor, mean: float = 1.0, std: float = 2.0, *, generator=None) -> Tensor:
    _check_generator(generator)
    if not std > 0:
        raise user_error(GcompError, f"log_normal_ expects std > 0.0, but found std={std}")
    with no_grad():
        z = creation.randn(tuple(self.shape), generator=generator, dtype=T.float64)
        return _fill(self, ops.exp(ops.add(ops.mul(z, std), mean)))


def cauchy_(self: Tensor, median: float = 0.0, sigma: float = 1.0, *, generator=None) -> Tensor:
    _check_generator(generator)
    with no_grad():
        u = _uniform(self, generator, open_interval=True)
        return _fill(self, ops.add(ops.mul(ops.tan(ops.mul(ops.sub(u, 0.5), math.pi)), sigma),
                                   median))


def bernoulli_(self: Tensor, p=0.5, *, generator=None) -> Tensor:
    _check_generator(generator)
    if not isinstance(p, Tensor) and not 0 <= p <= 1:
        raise user_error(GcompError, f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    with no_grad():
        u = _uniform(self, generator)
        prob = ops.cast(p.detach(), T.float64) if isinstance(p, Tensor) else p
        return _fill(self, ops.cast(ops.lt(u, prob), T.float64))


for _fn in (random_, exponential_, geometric_, log_normal_, cauchy_, bernoulli_):
    setattr(Tensor, _fn.__name__, _fn)
Tensor.random_.__doc__ = random_.__doc__
Tensor.multinomial = multinomial
