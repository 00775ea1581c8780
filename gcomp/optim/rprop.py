"""Rprop (torch.optim.Rprop)."""

from __future__ import annotations

import gcomp
from gcomp import GcompError

from ._checks import check_common
from .optimizer import Optimizer

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """Resilient backpropagation; the arithmetic of torch's ``_single_tensor_rprop``. torch
    writes etaplus/etaminus/1 into ``sign`` with masked assignments; here they are ``where``s on
    the sign of ``grad * prev`` (the same masks, as the etas are checked to differ from 1 and
    from each other). ``step_size`` starts at the lr the group has when the state is made."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        check_common(lr, 0.0, 0.0, None, differentiable)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise GcompError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        st["prev"] = self._new_state(p)
        st["step_size"] = self._new_state(p, float(group["lr"]))

    def _group_config(self, group):
        return (tuple(group["etas"]), tuple(group["step_sizes"]), group["maximize"])

    def _update_group(self, group, config, pairs):
        (etaminus, etaplus), (step_size_min, step_size_max), maximize = config
        for p, grad in pairs:
            st = self.state[p]
            prev, step_size = st["prev"], st["step_size"]
            st["step"].add_(1)
            if maximize:
                grad = -grad
            sign = (grad * prev).sign()
            negative = sign < 0
            factor = gcomp.where(sign > 0, gcomp.full_like(grad, etaplus),
                                 gcomp.where(negative, gcomp.full_like(grad, etaminus),
                                             gcomp.ones_like(grad)))
            step_size.copy_((step_size * factor).clamp(step_size_min, step_size_max))
            grad = gcomp.where(negative, gcomp.zeros_like(grad), grad)
            p.sub_(grad.sign() * step_size)
            prev.copy_(grad)
