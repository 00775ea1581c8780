"""Adafactor (torch.optim.Adafactor)."""

from __future__ import annotations

import gcomp
from gcomp import GcompError

from .optimizer import Optimizer

__all__ = ["Adafactor"]


def _lerp_any(a, b, w):
    """``a.lerp_(b, w)`` for a 0-d weight tensor whose size is not known when tracing: torch's
    two formulas (by ``|w| < 0.5``), chosen with a ``where``."""
    small = a + w * (b - a)
    large = b - (b - a) * (1 - w)
    return a.copy_(gcomp.where(w.abs() < 0.5, small, large))


class Adafactor(Optimizer):
    """Adafactor; the arithmetic of torch's ``_single_tensor_adafactor``. torch reads the step,
    the parameter's norm and the update's norm on the host (``.item()``) and takes Python
    ``min``/``max`` of them; here they are float64 0-d tensors in the compiled update, so one
    program serves every step. Matrices (dim > 1) keep factored row/column variances."""

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, *, foreach=None, maximize=False):
        if not 0.0 <= lr:
            raise GcompError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 >= beta2_decay:
            raise GcompError(f"beta2_decay should be <= 0 but is: {beta2_decay}")
        if eps[0] is not None and not 0.0 <= eps[0]:
            raise GcompError(f"epsilon1 should be >= 0 but is: {eps[0]}")
        if not 0.0 <= eps[1]:
            raise GcompError(f"epsilon2 should be >= 0 but is: {eps[1]}")
        if not 1.0 <= d:
            raise GcompError(f"Clipping threshold d should be >= 1 but is: {d}")
        if not 0.0 <= weight_decay:
            raise GcompError(f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps), d=d,
                        weight_decay=weight_decay, foreach=foreach, maximize=maximize)
        super().__init__(params, defaults)

    def _init_state(self, p, group):
        st = self.state[p]
        st["step"] = self._new_step()
        if p.dim() > 1:
            st["row_var"] = self._new_state(p, shape=self._state_shape(p, "row_var"))
            st["col_var"] = self._new_state(p, shape=self._state_shape(p, "col_var"))
        else:
            st["variance"] = self._new_state(p)

    def _state_shape(self, p, name):
        shape = list(p.shape)
        if name in ("row_var", "col_var"):
            shape[-1 if name == "row_var" else -2] = 1
        return tuple(shape)

    def _group_config(self, group):
        return (group["beta2_decay"], tuple(group["eps"]), group["d"], group["weight_decay"],
                group["maximize"])

    def _update_group(self, group, config, pairs):
        beta2_decay, (eps1, eps2), d, weight_decay, maximize = config
        f64 = gcomp.float64
        lr = group.tensors["lr"].to(f64)
        for p, grad in pairs:
            dt = p.dtype
            st = self.state[p]
            if maximize:
                grad = -grad
            e1 = gcomp.finfo(dt).eps if eps1 is None else eps1
            step_t = st["step"]
            step_t.add_(1)
            step = step_t.to(f64)
            one_minus_beta2_t = step ** beta2_decay
            rho_t = gcomp.minimum(lr, 1 / step ** 0.5)
            alpha = gcomp.maximum(p.norm(2).to(f64) / (p.numel() ** 0.5),
                                  gcomp.tensor(eps2, dtype=f64)) * rho_t
            if weight_decay != 0:
                p.mul_((1 - lr * weight_decay).to(dt))
            w = one_minus_beta2_t.to(dt)
            if grad.dim() > 1:
                row_var, col_var = st["row_var"], st["col_var"]
                row_mean = gcomp.norm(grad, dim=-1, keepdim=True).square() / grad.size(-1)
                _lerp_any(row_var, row_mean, w)
                col_mean = gcomp.norm(grad, dim=-2, keepdim=True).square() / grad.size(-2)
                _lerp_any(col_var, col_mean, w)
                var_estimate = row_var @ col_var
                var_estimate = var_estimate / row_var.mean(dim=-2, keepdim=True).clamp(min=e1)
            else:
                variance = st["variance"]
                _lerp_any(variance, grad * grad, w)
                var_estimate = variance
            update = var_estimate.clamp(min=e1 * e1).rsqrt() * grad
            denom = gcomp.maximum(update.norm(2).to(f64) / ((update.numel() ** 0.5) * d),
                                  gcomp.tensor(1.0, dtype=f64))
            p.add_(update * (-alpha / denom).to(dt))

