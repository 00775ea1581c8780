"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize (torch.optim.SGD)."""

from __future__ import annotations

import gcomp
from gcomp import GcompError
from gcomp.frontend.creation import concrete_full

from .optimizer import Optimizer, _set_value

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent; the arithmetic of torch's ``_single_tensor_sgd``.

    torch creates the momentum buffer on the first step as a copy of the gradient. Here it is
    created as zeros before the update (so it exists outside any trace), and the first update
    computes ``momentum * 0 + c * grad`` with ``c = 1`` instead of ``1 - dampening``, which is
    exactly ``grad``. With dampening, ``c`` comes from a 0-d tensor per buffer (1 until the
    buffer's first update, then 0), so the traced program is the same on every step.
    """

    _tensor_keys = {"lr": gcomp.float32, "momentum": gcomp.float64}

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        if lr < 0.0:
            raise GcompError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise GcompError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise GcompError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise GcompError("Nesterov momentum requires a momentum and zero dampening")
        if differentiable:
            raise GcompError("differentiable=True is not supported by gcomp optimizers")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        self._first: dict = {}  # parameter -> 0-d float64: 1 until its buffer's first update
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        if group["momentum"] != 0:
            self.state[p]["momentum_buffer"] = self._new_state(p)
            if dampening_used(group):
                if p in self._first:
                    _set_value(self._first[p], 1.0)
                else:
                    self._first[p] = concrete_full((), 1.0, gcomp.float64)

    def _group_config(self, group):
        return (group["momentum"] != 0, group["dampening"], group["nesterov"],
                group["weight_decay"], group["maximize"])

    def _update_group(self, group, config, pairs):
        has_momentum, dampening, nesterov, weight_decay, maximize = config
        lr = group.tensors["lr"]
        momentum = group.tensors["momentum"]
        for p, grad in pairs:
            dt = p.dtype
            if maximize:
                grad = -grad
            if weight_decay != 0:
                grad = grad + p * weight_decay
            if has_momentum:
                buf = self.state[p]["momentum_buffer"]
                if dampening != 0:
                    first = self._first.get(p)
                    if first is None:  # a buffer made before dampening was set, or loaded
                        first = self._first[p] = concrete_full((), 0.0, gcomp.float64)
                    c = 1 - dampening * (1 - first)  # 1 on the first update, else 1 - dampening
                    first.zero_()
                else:
                    c = 1 - dampening
                buf.mul_(momentum.to(dt)).add_(grad * (c.to(dt) if dampening != 0 else c))
                grad = grad + buf * momentum.to(dt) if nesterov else buf
            p.add_(grad * (-lr).to(dt))

    def state_names(self):
        yield from super().state_names()
        index = self._param_index()
        for p, t in self._first.items():
            if id(p) in index:
                yield f"state.{index[id(p)]}.first_update", t

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        for p, t in self._first.items():  # a loaded buffer has had its first update
            _set_value(t, 0.0 if "momentum_buffer" in self.state.get(p, {}) else 1.0)


def dampening_used(group) -> bool:
    return group["momentum"] != 0 and group["dampening"] != 0
