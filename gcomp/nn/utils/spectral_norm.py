"""torch.nn.utils.spectral_norm, the legacy form (https://arxiv.org/abs/1802.05957): the weight
moves to parameter ``<name>_orig``, the power iteration's vectors are buffers ``<name>_u`` and
``<name>_v``, and a forward pre-hook sets the plain attribute ``<name>`` to ``W / sigma(W)``
before each call, advancing the power iteration in training mode. parametrizations.spectral_norm
is the current form.

The vectors are updated in place under no_grad, so inside gcomp.compile they are state written
back after the call. As in torch, ``module.<name>`` is what the last forward computed (inside
gcomp.compile, a traced tensor: see weight_norm.py).
"""

from __future__ import annotations

from typing import Any

import gcomp
from gcomp import GcompError, Tensor
from gcomp.core.dispatch import user_error

from .. import functional as F
from ..functional._common import NNValueError
from ..modules.module import Module
from ..parameter import Parameter
from .parametrizations import _output_dim

__all__ = ["SpectralNorm", "spectral_norm", "remove_spectral_norm"]


class SpectralNorm:
    """The forward pre-hook that recomputes ``module.<name>`` from ``<name>_orig``, ``_u`` and
    ``_v``. Invariant after each training-mode forward: u = normalize(W @ v)."""

    _version: int = 1

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12):
        self.name = name
        self.dim = dim
        if n_power_iterations <= 0:
            raise user_error(NNValueError, "Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        weight_mat = weight
        if self.dim != 0:
            weight_mat = weight_mat.permute(self.dim,
                                            *[d for d in range(weight_mat.ndim) if d != self.dim])
        return weight_mat.reshape(weight_mat.shape[0], -1)

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with gcomp.no_grad():
                for _ in range(self.n_power_iterations):
                    # in place: the buffers stay the module's (and are state in a compiled call)
                    v = F.normalize(gcomp.mv(weight_mat.t(), u), dim=0, eps=self.eps, out=v)
                    u = F.normalize(gcomp.mv(weight_mat, v), dim=0, eps=self.eps, out=u)
                # copies, so that the next update does not change what this result depends on
                u = u.clone()
                v = v.clone()
        sigma = gcomp.dot(u, gcomp.mv(weight_mat, v))
        return weight / sigma

    def remove(self, module: Module) -> None:
        with gcomp.no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, module.training))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int,
              eps: float) -> SpectralNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise user_error(GcompError, "Cannot register two spectral_norm hooks on the same "
                                 f"parameter {name}; call remove_spectral_norm(module, {name!r}) "
                                 "first")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        weight = module._parameters.get(name)
        if weight is None:
            what = "is None" if name in module._parameters else "is not a parameter"
            raise user_error(NNValueError, f"`SpectralNorm` cannot be applied: `{name}` of "
                             f"{type(module).__name__} {what}; pass the name of one of "
                             f"{[k for k, p in module._parameters.items() if p is not None]}")
        if weight.ndim < 1 or not -weight.ndim <= dim < weight.ndim:
            raise user_error(GcompError, f"spectral_norm: dim {dim} is out of range for "
                             f"'{name}' of shape {list(weight.shape)}")
        with gcomp.no_grad():
            weight_mat = fn.reshape_weight_to_matrix(weight)
            h, w = weight_mat.shape
            u = F.normalize(weight.new_empty(h).normal_(0, 1), dim=0, eps=fn.eps)
            v = F.normalize(weight.new_empty(w).normal_(0, 1), dim=0, eps=fn.eps)
        delattr(module, fn.name)
        module.register_parameter(fn.name + "_orig", weight)
        # ``module.<name>`` must exist (initializers read it): the weight's data, as a plain
        # attribute rather than a parameter
        setattr(module, fn.name, weight.data)
        module.register_buffer(fn.name + "_u", u)
        module.register_buffer(fn.name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """Rescale parameter ``name`` by its spectral norm before each forward, estimated by power
    iteration on it reshaped to a matrix with ``dim`` (default 0, or 1 for ConvTranspose) first;
    the iteration advances ``n_power_iterations`` steps at each training-mode forward."""
    dim = _output_dim(module) if dim is None else dim
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Undo spectral_norm: ``name`` is a parameter again, holding the current normalized
    weight (from the vectors as they are: no further power iteration)."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise user_error(NNValueError, f"spectral_norm of '{name}' not found in "
                     f"{type(module).__name__}; apply nn.utils.spectral_norm(module, name) "
                     "before removing it")
