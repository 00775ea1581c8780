"""Adamax (torch.optim.Adamax)."""

from __future__ import annotations

import gcomp

from ._checks import check_common
from .adam import lerp_
from .optimizer import Optimizer

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm); the arithmetic of torch's ``_single_tensor_adamax``
    (capturable=False). The bias correction is float64 0-d arithmetic from the float32 ``step``
    tensor and the float64 ``betas`` tensors, as in Adam."""

    _tensor_keys = {"lr": gcomp.float32, "betas": gcomp.float64}

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        check_common(lr, eps, weight_decay, betas, differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        st["exp_avg"] = self._new_state(p)
        st["exp_inf"] = self._new_state(p)

    def _group_config(self, group):
        return (group["eps"], group["weight_decay"], group["maximize"],
                abs(1 - group["betas"][0]) < 0.5)

    def _update_group(self, group, config, pairs):
        eps, weight_decay, maximize, small = config
        lr = group.tensors["lr"].to(gcomp.float64)
        beta1, beta2 = group.tensors["betas.0"], group.tensors["betas.1"]
        for p, grad in pairs:
            dt = p.dtype
            st = self.state[p]
            step_t, exp_avg, exp_inf = st["step"], st["exp_avg"], st["exp_inf"]
            if maximize:
                grad = -grad
            step_t.add_(1)
            if weight_decay != 0:
                grad = grad + p * weight_decay
            lerp_(exp_avg, grad, (1 - beta1).to(dt), small)
            exp_inf.copy_(gcomp.maximum(exp_inf * beta2.to(dt), grad.abs() + eps))
            clr = lr / (1 - beta1 ** step_t.to(gcomp.float64))
            p.add_((-clr).to(dt) * exp_avg / exp_inf)
