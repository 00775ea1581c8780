"""ASGD (torch.optim.ASGD)."""

from __future__ import annotations

import gcomp
from gcomp.frontend.creation import concrete_full

from ._checks import check_common
from .optimizer import Optimizer

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """Averaged SGD; the arithmetic of torch's ``_single_tensor_asgd`` (capturable=False).
    ``eta`` and ``mu`` are float32 0-d state tensors, as torch's; torch's Python
    ``if mu.item() != 1`` (copy the parameter into ``ax`` or average it in) is a ``where``."""

    _scalar_state = ("step", "eta", "mu")

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        check_common(lr, 0.0, weight_decay, None, differentiable)
        defaults = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay,
                        foreach=foreach, maximize=maximize, differentiable=differentiable,
                        capturable=capturable)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        st["eta"] = concrete_full((), float(group["lr"]), gcomp.float32)
        st["mu"] = concrete_full((), 1.0, gcomp.float32)
        st["ax"] = self._new_state(p)

    def _group_config(self, group):
        return (group["lambd"], group["alpha"], group["t0"], group["weight_decay"],
                group["maximize"])

    def _update_group(self, group, config, pairs):
        lambd, alpha, t0, weight_decay, maximize = config
        f64 = gcomp.float64
        lr = group.tensors["lr"].to(f64)
        for p, grad in pairs:
            dt = p.dtype
            st = self.state[p]
            step_t, eta, mu, ax = st["step"], st["eta"], st["mu"], st["ax"]
            if maximize:
                grad = -grad
            step_t.add_(1)
            if weight_decay != 0:
                grad = grad + p * weight_decay
            eta_value = eta.to(f64)
            p.mul_((1 - lambd * eta_value).to(dt))
            p.add_(grad * (-eta_value).to(dt))
            ax.copy_(gcomp.where(mu == 1, p, ax + (p - ax) * mu.to(dt)))
            step = step_t.to(f64)
            eta.copy_((lr / ((1 + lambd * lr * step) ** alpha)).to(eta.dtype))
            mu.copy_((1 / (step - t0).clamp(min=1)).to(mu.dtype))
