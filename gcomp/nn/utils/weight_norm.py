"""torch.nn.utils.weight_norm, the legacy form (https://arxiv.org/abs/1602.07868): parameters
``<name>_g`` and ``<name>_v``, and a forward pre-hook that sets the plain attribute ``<name>`` to
``v * g / ||v||`` before each call. parametrizations.weight_norm is the current form.

As in torch, ``module.<name>`` is what the last forward computed. Inside gcomp.compile that is a
traced tensor: read the weight inside the compiled function, or call the module eagerly (or use
parametrizations.weight_norm, whose weight is computed on each read) to see it afterwards.
"""

from __future__ import annotations

import warnings
from typing import Any

from gcomp import GcompError
from gcomp.core.dispatch import user_error

from ..functional._common import NNValueError
from ..modules.module import Module
from ..parameter import Parameter
from .parametrizations import _norm_except_dim, _weight_norm

__all__ = ["WeightNorm", "weight_norm", "remove_weight_norm"]


class WeightNorm:
    """The forward pre-hook that recomputes ``module.<name>`` from ``<name>_g`` and
    ``<name>_v``."""

    name: str
    dim: int

    def __init__(self, name: str, dim: int | None):
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module) -> Any:
        g = getattr(module, self.name + "_g")
        v = getattr(module, self.name + "_v")
        return _weight_norm(v, g, self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                      "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning,
                      stacklevel=3)
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise user_error(GcompError, "Cannot register two weight_norm hooks on the same "
                                 f"parameter {name}; call remove_weight_norm(module, {name!r}) "
                                 "first")
        weight = module._parameters.get(name)
        if weight is None:
            raise user_error(GcompError, f"weight_norm: {type(module).__name__} has no parameter "
                             f"named {name!r}; pass the name of one of "
                             f"{[k for k, p in module._parameters.items() if p is not None]}")
        fn = WeightNorm(name, dim)
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(_norm_except_dim(weight, 2, fn.dim).data))
        module.register_parameter(name + "_v", Parameter(weight.data))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module)
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight.data))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Replace parameter ``name`` by ``<name>_g`` (its norm over every dim but ``dim``; over all
    of it for ``dim=None``) and ``<name>_v`` (its direction), recombined before each forward.
    Deprecated in torch in favor of parametrizations.weight_norm."""
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Undo weight_norm: ``name`` is a parameter again, holding the current weight."""
    for k, hook in module._forward_pre_hooks.items():
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[k]
            return module
    raise user_error(NNValueError, f"weight_norm of '{name}' not found in {type(module).__name__}; "
                     "apply nn.utils.weight_norm(module, name) before removing it")
