"""torch.nn.utils: gradient clipping, flattening parameters to one vector, and weight
reparametrizations (parametrize, parametrizations, the legacy weight_norm and spectral_norm)."""

from __future__ import annotations

import math

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core import prims as P

from . import parametrizations, parametrize, rnn  # noqa: F401  (torch.nn.utils.<name>)
from .spectral_norm import remove_spectral_norm, spectral_norm
from .weight_norm import remove_weight_norm, weight_norm

__all__ = ["clip_grad_norm_", "clip_grad_norm", "clip_grad_value_", "get_total_norm",
           "clip_grads_with_norm_", "parameters_to_vector", "vector_to_parameters",
           "parametrizations", "parametrize", "rnn", "remove_spectral_norm", "remove_weight_norm",
           "spectral_norm", "weight_norm"]


def _tensors(parameters) -> list:
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


def _grads(parameters) -> list:
    return [p.grad for p in _tensors(parameters) if p.grad is not None]


def _norm(g: Tensor, norm_type: float) -> Tensor:
    """The p-norm of all of g's elements, as a 0-d tensor (2-norm: one dot_general)."""
    if norm_type == 2:
        axes = tuple((i, i) for i in range(g.ndim))
        return gcomp.sqrt(P.dot_general(g, g, contract=axes)) if g.ndim else gcomp.abs(g)
    return gcomp.norm(g.reshape(-1), norm_type)


def get_total_norm(tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                   foreach=None) -> Tensor:
    """The norm of the norms of ``tensors`` (as if all were concatenated into one vector)."""
    tensors = _tensors(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return gcomp.tensor(0.0)
    if norm_type == math.inf:
        norms = [gcomp.amax(gcomp.abs(t)) for t in tensors]
        total = norms[0] if len(norms) == 1 else gcomp.amax(gcomp.stack(norms))
    elif norm_type == 2:
        # one sum of squares over everything: sqrt(sum_i |g_i|^2) is the norm of the norms
        sq = None
        for t in tensors:
            s = P.dot_general(t, t, contract=tuple((i, i) for i in range(t.ndim))) if t.ndim \
                else P.mul(t, t)
            s = s.to(tensors[0].dtype)
            sq = s if sq is None else P.add(sq, s)
        total = gcomp.sqrt(sq)
    else:
        norms = [_norm(t, norm_type).to(tensors[0].dtype) for t in tensors]
        total = gcomp.norm(gcomp.stack(norms), norm_type)
    if error_if_nonfinite and not total.is_traced and not bool(gcomp.isfinite(total)):
        raise GcompError(f"The total norm of order {norm_type} for gradients from `parameters` "
                         "is non-finite, so it cannot be clipped. To disable this error and "
                         "scale the gradients by the non-finite norm anyway, set "
                         "`error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scale every gradient by min(1, max_norm / (total_norm + 1e-6)), in place."""
    grads = _grads(parameters)
    if not grads:
        return
    with gcomp.no_grad():
        coef = gcomp.clamp(gcomp.div(float(max_norm), gcomp.add(total_norm, 1e-6)), max=1.0)
        for g in grads:
            g.mul_(coef.to(g.dtype))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Clip the gradients' total norm to max_norm in place; returns the norm before clipping."""
    params = _tensors(parameters)
    grads = _grads(params)
    with gcomp.no_grad():
        total = get_total_norm(grads, norm_type, error_if_nonfinite)
        clip_grads_with_norm_(params, max_norm, total)
    return total


def clip_grad_norm(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """Deprecated alias of clip_grad_norm_."""
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite, foreach)


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient into [-clip_value, clip_value] in place."""
    clip_value = float(clip_value)
    with gcomp.no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)


def parameters_to_vector(parameters) -> Tensor:
    """All parameters flattened and concatenated, in order."""
    return gcomp.cat([p.reshape(-1) for p in _tensors(parameters)])


def vector_to_parameters(vec: Tensor, parameters) -> None:
    """Copy consecutive slices of ``vec`` into the parameters' data."""
    if not isinstance(vec, Tensor):
        raise GcompError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    pointer = 0
    for p in _tensors(parameters):
        n = p.numel()
        p.data = vec[pointer:pointer + n].view_as(p).data
        pointer += n
