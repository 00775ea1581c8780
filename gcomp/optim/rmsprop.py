"""RMSprop (torch.optim.RMSprop)."""

from __future__ import annotations

import gcomp
from gcomp import GcompError

from .adam import lerp_
from .optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop with momentum and the centered variant; the arithmetic of torch's
    ``_single_tensor_rmsprop``."""

    _tensor_keys = {"lr": gcomp.float32, "momentum": gcomp.float64}

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        if lr < 0.0:
            raise GcompError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise GcompError(f"Invalid epsilon value: {eps}")
        if momentum < 0.0:
            raise GcompError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise GcompError(f"Invalid weight_decay value: {weight_decay}")
        if alpha < 0.0:
            raise GcompError(f"Invalid alpha value: {alpha}")
        if differentiable:
            raise GcompError("differentiable=True is not supported by gcomp optimizers")
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        st["square_avg"] = self._new_state(p)
        if group["momentum"] > 0:
            st["momentum_buffer"] = self._new_state(p)
        if group["centered"]:
            st["grad_avg"] = self._new_state(p)

    def _group_config(self, group):
        return (group["alpha"], group["eps"], group["weight_decay"], group["momentum"] > 0,
                group["centered"], group["maximize"])

    def _update_group(self, group, config, pairs):
        alpha, eps, weight_decay, has_momentum, centered, maximize = config
        lr = group.tensors["lr"]
        momentum = group.tensors["momentum"]
        for p, grad in pairs:
            dt = p.dtype
            st = self.state[p]
            if maximize:
                grad = -grad
            square_avg = st["square_avg"]
            st["step"].add_(1)
            if weight_decay != 0:
                grad = grad + p * weight_decay
            square_avg.mul_(alpha).add_((1 - alpha) * grad * grad)
            if centered:
                grad_avg = st["grad_avg"]
                lerp_(grad_avg, grad, 1 - alpha, abs(1 - alpha) < 0.5)
                avg = (square_avg + (-1.0 * grad_avg) * grad_avg).sqrt()
            else:
                avg = square_avg.sqrt()
            avg = avg + eps
            if has_momentum:
                buf = st["momentum_buffer"]
                buf.mul_(momentum.to(dt)).add_(grad / avg)
                p.add_(buf * (-lr).to(dt))
            else:
                p.add_((-lr).to(dt) * grad / avg)
