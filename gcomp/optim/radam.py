"""RAdam (torch.optim.RAdam)."""

from __future__ import annotations

import gcomp

from ._checks import check_common
from .adam import lerp_
from .optimizer import Optimizer

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """Rectified Adam; the arithmetic of torch's ``_single_tensor_radam`` (capturable=False).
    torch picks the rectified or the plain update with a Python ``if rho_t > 5``; here the
    choice is a ``where`` on the float64 0-d ``rho_t``, so one traced program serves every step
    (the branch not taken may compute a NaN that is never used)."""

    _tensor_keys = {"lr": gcomp.float32, "betas": gcomp.float64}

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False,
                 capturable=False, differentiable=False):
        check_common(lr, eps, weight_decay, betas, differentiable)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        decoupled_weight_decay=decoupled_weight_decay,
                        differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        st["exp_avg"] = self._new_state(p)
        st["exp_avg_sq"] = self._new_state(p)

    def _group_config(self, group):
        return (group["eps"], group["weight_decay"], group["decoupled_weight_decay"],
                group["maximize"], abs(1 - group["betas"][0]) < 0.5)

    def _update_group(self, group, config, pairs):
        eps, weight_decay, decoupled, maximize, small = config
        f64 = gcomp.float64
        lr = group.tensors["lr"].to(f64)
        beta1, beta2 = group.tensors["betas.0"], group.tensors["betas.1"]
        for p, grad in pairs:
            dt = p.dtype
            st = self.state[p]
            step_t, exp_avg, exp_avg_sq = st["step"], st["exp_avg"], st["exp_avg_sq"]
            if maximize:
                grad = -grad
            step_t.add_(1)
            step = step_t.to(f64)
            if weight_decay != 0:
                if decoupled:
                    p.mul_((1 - lr * weight_decay).to(dt))
                else:
                    grad = grad + p * weight_decay
            lerp_(exp_avg, grad, (1 - beta1).to(dt), small)
            exp_avg_sq.mul_(beta2.to(dt)).add_((1 - beta2).to(dt) * grad * grad)
            bias_correction1 = 1 - beta1 ** step
            bias_correction2 = 1 - beta2 ** step
            corrected = exp_avg / bias_correction1.to(dt)
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * step * (beta2 ** step) / bias_correction2
            rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                    / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            adaptive = (bias_correction2 ** 0.5).to(dt) / (exp_avg_sq.sqrt() + eps)
            plain = corrected * lr.to(dt)
            rectified = plain * adaptive * rect.to(dt)
            p.sub_(gcomp.where(rho_t > 5.0, rectified, plain))
