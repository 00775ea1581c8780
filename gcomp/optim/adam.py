"""Adam and AdamW (torch.optim.Adam, torch.optim.AdamW)."""

from __future__ import annotations

import gcomp
from gcomp import GcompError

from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


def lerp_(a, b, weight, weight_is_small: bool):
    """``a.lerp_(b, weight)`` with torch's formula: which one depends on ``|weight| < 0.5``."""
    if weight_is_small:
        return a.add_(weight * (b - a))
    return a.copy_(b - (b - a) * (1 - weight))


class Adam(Optimizer):
    """Adam; the arithmetic of torch's ``_single_tensor_adam`` (capturable=False).

    torch computes the bias corrections in Python floats (float64) from ``step``; here they are
    float64 0-d tensor arithmetic inside the compiled update, from the float32 ``step`` tensor
    and the float64 ``betas`` tensors, then cast to the parameter's dtype where torch casts.
    """

    _tensor_keys = {"lr": gcomp.float32, "betas": gcomp.float64}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        if lr < 0.0:
            raise GcompError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise GcompError(f"Invalid epsilon value: {eps}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise GcompError(f"Invalid beta parameter at index {i}: {b}")
        if weight_decay < 0.0:
            raise GcompError(f"Invalid weight_decay value: {weight_decay}")
        if differentiable:
            raise GcompError("differentiable=True is not supported by gcomp optimizers")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        st["exp_avg"] = self._new_state(p)
        st["exp_avg_sq"] = self._new_state(p)
        if group["amsgrad"]:
            st["max_exp_avg_sq"] = self._new_state(p)

    def _group_config(self, group):
        return (group["eps"], group["weight_decay"], group["amsgrad"], group["maximize"],
                group["decoupled_weight_decay"], abs(1 - group["betas"][0]) < 0.5)

    def _update_group(self, group, config, pairs):
        eps, weight_decay, amsgrad, maximize, decoupled, small = config
        lr = group.tensors["lr"].to(gcomp.float64)
        beta1, beta2 = group.tensors["betas.0"], group.tensors["betas.1"]
        for p, grad in pairs:
            dt = p.dtype
            st = self.state[p]
            step_t, exp_avg, exp_avg_sq = st["step"], st["exp_avg"], st["exp_avg_sq"]
            if maximize:
                grad = -grad
            step_t.add_(1)
            if weight_decay != 0:
                if decoupled:
                    p.mul_((1 - lr * weight_decay).to(dt))
                else:
                    grad = grad + p * weight_decay
            lerp_(exp_avg, grad, (1 - beta1).to(dt), small)
            exp_avg_sq.mul_(beta2.to(dt)).add_((1 - beta2).to(dt) * grad * grad)
            step = step_t.to(gcomp.float64)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2.sqrt()
            if amsgrad:
                max_sq = st["max_exp_avg_sq"]
                max_sq.copy_(gcomp.maximum(max_sq, exp_avg_sq))
                denom = (max_sq.sqrt() / bias_correction2_sqrt.to(dt)).add_(eps)
            else:
                denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt.to(dt)).add_(eps)
            p.add_((-step_size).to(dt) * exp_avg / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW: Adam with
    ``decoupled_weight_decay=True``, weight_decay 1e-2 by default)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
