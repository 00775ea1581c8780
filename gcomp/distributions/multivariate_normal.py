"""The multivariate normal distribution, parameterized by a covariance matrix, a precision
matrix or the lower Cholesky factor of the covariance (all computations use that factor)."""

from __future__ import annotations

import math

import gcomp
from gcomp import Tensor

from . import constraints
from .distribution import Distribution
from .utils import as_size, lazy_property, standard_normal, value_error

__all__ = ["MultivariateNormal"]


def _batch_mv(bmat: Tensor, bvec: Tensor) -> Tensor:
    """Matrix-vector products over broadcast batch dimensions: ``bmat @ bvec``."""
    return gcomp.matmul(bmat, bvec.unsqueeze(-1)).squeeze(-1)


def _solve_lower(L: Tensor, B: Tensor) -> Tensor:
    """X with L X = B for lower-triangular L (gcomp has a general solve, no triangular one)."""
    return gcomp.linalg.solve(L, B)


def _batch_mahalanobis(bL: Tensor, bx: Tensor) -> Tensor:
    """The squared Mahalanobis distance ``x^T (L L^T)^-1 x`` for batches of factors ``bL`` and
    of vectors ``bx`` whose batch shape ``bL``'s broadcasts to.

    As torch's: ``bx`` is arranged as one ``[b, n, c]`` block per factor, so the solve runs
    once per factor rather than once per (sample, factor) pair."""
    n = bx.shape[-1]
    bx_batch_shape = tuple(bx.shape[:-1])
    bx_batch_dims = len(bx_batch_shape)
    bL_batch_dims = bL.dim() - 2
    outer_batch_dims = bx_batch_dims - bL_batch_dims
    old_batch_dims = outer_batch_dims + bL_batch_dims
    new_batch_dims = outer_batch_dims + 2 * bL_batch_dims
    # reshape bx to (..., 1, j, i, 1, n) so that it broadcasts with bL's (j, i)
    bx_new_shape = tuple(bx.shape[:outer_batch_dims])
    for sL, sx in zip(bL.shape[:-2], bx.shape[outer_batch_dims:-1]):
        bx_new_shape += (sx // sL, sL)
    bx_new_shape += (n,)
    bx = bx.reshape(bx_new_shape)
    permute_dims = (list(range(outer_batch_dims)) +
                    list(range(outer_batch_dims, new_batch_dims, 2)) +
                    list(range(outer_batch_dims + 1, new_batch_dims, 2)) + [new_batch_dims])
    bx = bx.permute(permute_dims)
    flat_L = bL.reshape(-1, n, n)  # b x n x n
    flat_x = bx.reshape(-1, flat_L.shape[0], n)  # c x b x n
    flat_x_swap = flat_x.permute(1, 2, 0)  # b x n x c
    M_swap = _solve_lower(flat_L, flat_x_swap).pow(2).sum(-2)  # b x c
    M = M_swap.t()  # c x b
    permuted_M = M.reshape(tuple(bx.shape[:-1]))
    permute_inv_dims = list(range(outer_batch_dims))
    for i in range(bL_batch_dims):
        permute_inv_dims += [outer_batch_dims + i, old_batch_dims + i]
    return permuted_M.permute(permute_inv_dims).reshape(bx_batch_shape)


def _eye(n: int, like: Tensor) -> Tensor:
    return gcomp.eye(n, dtype=like.dtype)


def _precision_to_scale_tril(P: Tensor) -> Tensor:
    """The lower Cholesky factor of ``P^-1``, from the Cholesky factor of P with its rows and
    columns reversed (torch's construction: no explicit inverse of P)."""
    Lf = gcomp.linalg.cholesky(gcomp.flip(P, (-2, -1)))
    L_inv = gcomp.transpose(gcomp.flip(Lf, (-2, -1)), -2, -1)
    return _solve_lower(L_inv, _eye(P.shape[-1], P).expand(tuple(L_inv.shape)))


class MultivariateNormal(Distribution):
    """A multivariate normal (Gaussian) distribution with mean vector ``loc`` and a
    covariance given by exactly one of ``covariance_matrix`` (positive definite),
    ``precision_matrix`` (its inverse, positive definite) or ``scale_tril`` (lower triangular
    with a positive diagonal, ``covariance = scale_tril @ scale_tril.mT``).

    ``scale_tril`` is the most efficient: every computation uses it, and a covariance or
    precision matrix is first factored with a Cholesky decomposition.

    Example::

        >>> m = MultivariateNormal(gcomp.zeros(2), gcomp.eye(2))
        >>> m.sample()  # normally distributed with mean=[0, 0] and covariance_matrix=I

    Args:
        loc (Tensor): mean of the distribution, at least one-dimensional.
        covariance_matrix (Tensor): positive-definite covariance matrix.
        precision_matrix (Tensor): positive-definite precision matrix.
        scale_tril (Tensor): lower-triangular factor of covariance, with positive diagonal.
    """

    arg_constraints = {"loc": constraints.real_vector,
                       "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite,
                       "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None,
                 validate_args=None):
        if loc.dim() < 1:
            raise value_error("loc must be at least one-dimensional.")
        given = [(name, m) for name, m in (("covariance_matrix", covariance_matrix),
                                          ("precision_matrix", precision_matrix),
                                          ("scale_tril", scale_tril)) if m is not None]
        if len(given) != 1:
            raise value_error("Exactly one of covariance_matrix or precision_matrix or "
                              "scale_tril may be specified.")
        name, matrix = given[0]
        if matrix.dim() < 2:
            what = "scale_tril matrix" if name == "scale_tril" else name
            raise value_error(f"{what} must be at least two-dimensional, with optional leading "
                              "batch dimensions")
        batch_shape = gcomp.broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1]))
        setattr(self, name, matrix.expand(tuple(batch_shape) + (-1, -1)))
        self.loc = loc.expand(tuple(batch_shape) + (-1,))
        super().__init__(batch_shape, self.loc.shape[-1:], validate_args=validate_args)
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = matrix
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = gcomp.linalg.cholesky(matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(matrix)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(MultivariateNormal, _instance)
        batch_shape = as_size(batch_shape)
        loc_shape = tuple(batch_shape) + tuple(self.event_shape)
        cov_shape = loc_shape + tuple(self.event_shape)
        new.loc = self.loc.expand(loc_shape)
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        for name in ("covariance_matrix", "scale_tril", "precision_matrix"):
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(cov_shape))
        Distribution.__init__(new, batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _matrix_shape(self) -> tuple:
        return tuple(self._batch_shape) + tuple(self._event_shape) * 2

    @lazy_property
    def scale_tril(self) -> Tensor:
        return self._unbroadcasted_scale_tril.expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril
        return gcomp.matmul(L, L.mT).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self) -> Tensor:
        L = self._unbroadcasted_scale_tril
        L_inv = _solve_lower(L, _eye(L.shape[-1], L).expand(tuple(L.shape)))
        return gcomp.matmul(L_inv.mT, L_inv).expand(self._matrix_shape())

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def variance(self) -> Tensor:
        shape = tuple(self._batch_shape) + tuple(self._event_shape)
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(shape)

    def rsample(self, sample_shape=()) -> Tensor:
        """``loc + scale_tril @ eps`` with standard normal ``eps``: differentiable in loc and
        the covariance parameter."""
        eps = standard_normal(self._extended_shape(sample_shape), self.loc.dtype,
                              self.loc.device)
        return self.loc + _batch_mv(self._unbroadcasted_scale_tril, eps)

    def _half_log_det(self) -> Tensor:
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value: Tensor) -> Tensor:
        if self._validate_args:
            self._validate_sample(value)
        diff = value - self.loc
        M = _batch_mahalanobis(self._unbroadcasted_scale_tril, diff)
        return (-0.5 * (self._event_shape[0] * math.log(2 * math.pi) + M) -
                self._half_log_det())

    def entropy(self) -> Tensor:
        H = 0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        if len(self._batch_shape) == 0:
            return H
        return H.expand(tuple(self._batch_shape))
