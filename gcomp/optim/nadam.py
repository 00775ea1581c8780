"""NAdam (torch.optim.NAdam)."""

from __future__ import annotations

import gcomp
from gcomp import GcompError
from gcomp.frontend.creation import concrete_full

from ._checks import check_common
from .adam import lerp_
from .optimizer import Optimizer

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """Adam with Nesterov momentum; the arithmetic of torch's ``_single_tensor_nadam``
    (capturable=False). ``mu_product`` is a float32 0-d state tensor, as torch's; the step
    coefficients are float64 0-d arithmetic from it, the ``step`` tensor and the ``betas``."""

    _tensor_keys = {"lr": gcomp.float32, "betas": gcomp.float64}
    _scalar_state = ("step", "mu_product")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        check_common(lr, eps, weight_decay, betas, differentiable)
        if not 0.0 <= momentum_decay:
            raise GcompError(f"Invalid momentum_decay value: {momentum_decay}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
                        foreach=foreach, capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        st["mu_product"] = concrete_full((), 1.0, gcomp.float32)
        st["exp_avg"] = self._new_state(p)
        st["exp_avg_sq"] = self._new_state(p)

    def _group_config(self, group):
        return (group["eps"], group["weight_decay"], group["momentum_decay"],
                group["decoupled_weight_decay"], group["maximize"],
                abs(1 - group["betas"][0]) < 0.5)

    def _update_group(self, group, config, pairs):
        eps, weight_decay, momentum_decay, decoupled, maximize, small = config
        f64 = gcomp.float64
        lr = group.tensors["lr"].to(f64)
        beta1, beta2 = group.tensors["betas.0"], group.tensors["betas.1"]
        for p, grad in pairs:
            dt = p.dtype
            st = self.state[p]
            step_t, mu_product = st["step"], st["mu_product"]
            exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
            if maximize:
                grad = -grad
            step_t.add_(1)
            step = step_t.to(f64)
            bias_correction2 = 1 - beta2 ** step
            if weight_decay != 0:
                if decoupled:
                    p.mul_((1 - lr * weight_decay).to(dt))
                else:
                    grad = grad + p * weight_decay
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
            mu_product.mul_(mu.to(mu_product.dtype))
            lerp_(exp_avg, grad, (1 - beta1).to(dt), small)
            exp_avg_sq.mul_(beta2.to(dt)).add_((1 - beta2).to(dt) * grad * grad)
            denom = (exp_avg_sq / bias_correction2.to(dt)).sqrt() + eps
            mp = mu_product.to(f64)
            mu_product_next = mp * mu_next
            p.add_((-lr * (1.0 - mu) / (1.0 - mp)).to(dt) * grad / denom)
            p.add_(((-lr * mu_next) / (1.0 - mu_product_next)).to(dt) * exp_avg / denom)
