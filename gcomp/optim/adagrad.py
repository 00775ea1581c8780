"""Adagrad (torch.optim.Adagrad)."""

from __future__ import annotations

import gcomp
from gcomp import GcompError

from .optimizer import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad; the arithmetic of torch's ``_single_tensor_adagrad``. As in torch, the state
    (``step`` and ``sum``) is created when the optimizer is."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        if lr < 0.0:
            raise GcompError(f"Invalid learning rate: {lr}")
        if lr_decay < 0.0:
            raise GcompError(f"Invalid lr_decay value: {lr_decay}")
        if weight_decay < 0.0:
            raise GcompError(f"Invalid weight_decay value: {weight_decay}")
        if initial_accumulator_value < 0.0:
            raise GcompError(f"Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if eps < 0.0:
            raise GcompError(f"Invalid epsilon value: {eps}")
        if differentiable:
            raise GcompError("differentiable=True is not supported by gcomp optimizers")
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        st["sum"] = self._new_state(p, group["initial_accumulator_value"])

    def _group_config(self, group):
        return (group["lr_decay"], group["weight_decay"], group["eps"], group["maximize"])

    def _update_group(self, group, config, pairs):
        lr_decay, weight_decay, eps, maximize = config
        lr = group.tensors["lr"].to(gcomp.float64)
        for p, grad in pairs:
            dt = p.dtype
            st = self.state[p]
            step_t, state_sum = st["step"], st["sum"]
            step_t.add_(1)
            if maximize:
                grad = -grad
            if weight_decay != 0:
                grad = grad + p * weight_decay
            clr = lr / (1 + (step_t.to(gcomp.float64) - 1) * lr_decay)
            state_sum.add_(grad * grad)
            std = state_sum.sqrt().add_(eps)
            p.add_((-clr).to(dt) * grad / std)
