"""Adadelta (torch.optim.Adadelta)."""

from __future__ import annotations

from gcomp import GcompError

from ._checks import check_common
from .optimizer import Optimizer

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta; the arithmetic of torch's ``_single_tensor_adadelta``."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        if not 0.0 <= rho <= 1.0:
            raise GcompError(f"Invalid rho value: {rho}")
        check_common(lr, eps, weight_decay, None, differentiable)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        st["square_avg"] = self._new_state(p)
        st["acc_delta"] = self._new_state(p)

    def _group_config(self, group):
        return (group["rho"], group["eps"], group["weight_decay"], group["maximize"])

    def _update_group(self, group, config, pairs):
        rho, eps, weight_decay, maximize = config
        lr = group.tensors["lr"]
        for p, grad in pairs:
            dt = p.dtype
            st = self.state[p]
            square_avg, acc_delta = st["square_avg"], st["acc_delta"]
            st["step"].add_(1)
            if maximize:
                grad = -grad
            if weight_decay != 0:
                grad = grad + p * weight_decay
            square_avg.mul_(rho).add_((1 - rho) * grad * grad)
            std = (square_avg + eps).sqrt()
            delta = (acc_delta + eps).sqrt() / std * grad
            acc_delta.mul_(rho).add_((1 - rho) * delta * delta)
            p.add_(delta * (-lr).to(dt))
