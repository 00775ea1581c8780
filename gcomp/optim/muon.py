"""Muon (torch.optim.Muon): momentum, then the update orthogonalized by Newton-Schulz
iterations in bfloat16, for 2-D parameters."""

from __future__ import annotations

import math

import gcomp
from gcomp import GcompError

from .adam import lerp_
from .optimizer import Optimizer

__all__ = ["Muon"]

EPS = 1e-7
DEFAULT_A = 3.4445
DEFAULT_B = -4.7750
DEFAULT_C = 2.0315
DEFAULT_NS_STEPS = 5


def _zeropower_via_newtonschulz(grad, ns_coefficients, ns_steps, eps):
    """torch's quintic Newton-Schulz iteration, in bfloat16 (as torch's)."""
    if ns_steps >= 100:
        raise GcompError("Number of steps must be less than 100 for computational efficiency")
    if len(grad.shape) != 2:
        raise GcompError("Input tensor gradient must be a 2D matrix")
    if len(ns_coefficients) != 3:
        raise GcompError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = ns_coefficients
    x = grad.bfloat16()
    tall = grad.size(0) > grad.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)
    # each matmul (and addmm) takes bfloat16 operands, accumulates in float32 and rounds its
    # result to bfloat16 once, as torch's bfloat16 gemm does
    f32, bf16 = gcomp.float32, gcomp.bfloat16
    for _ in range(ns_steps):
        x32 = x.to(f32)
        gram = (x32 @ x32.T).to(bf16).to(f32)
        gram_update = (b * gram + c * (gram @ gram)).to(bf16).to(f32)
        x = (a * x32 + gram_update @ x32).to(bf16)
    return x.T if tall else x


def _adjust_lr(lr, adjust_lr_fn, param_shape):
    rows, cols = param_shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


class Muon(Optimizer):
    """Muon; the arithmetic of torch's ``_single_tensor_muon``. The Newton-Schulz iteration
    runs in bfloat16 as torch's does; run op by op it rounds exactly as torch's, but inside the
    compiled update XLA may keep some bfloat16 intermediates at float32 precision (its
    ``xla_allow_excess_precision``), so the updates agree with torch's only to about bfloat16
    rounding amplified by the iteration (a few percent of the step), not to float32 rounding."""

    _tensor_keys = {"lr": gcomp.float32, "momentum": gcomp.float64}

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=(DEFAULT_A, DEFAULT_B, DEFAULT_C), eps=EPS,
                 ns_steps=DEFAULT_NS_STEPS, adjust_lr_fn=None):
        if not 0.0 <= lr:
            raise GcompError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise GcompError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise GcompError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ("original", "match_rms_adamw"):
            raise GcompError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps,
                        adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise GcompError("Muon only supports 2D parameters whereas we found a "
                                     f"parameter with size: {p.size()}")

    def _init_state(self, p, group):
        self.state[p]["momentum_buffer"] = self._new_state(p)

    def _group_config(self, group):
        return (group["weight_decay"], group["nesterov"], tuple(group["ns_coefficients"]),
                group["eps"], group["ns_steps"], group["adjust_lr_fn"],
                abs(1 - group["momentum"]) < 0.5, abs(group["momentum"]) < 0.5)

    def _update_group(self, group, config, pairs):
        weight_decay, nesterov, coefficients, eps, ns_steps, adjust_lr_fn, small, small_m = \
            config
        lr = group.tensors["lr"].to(gcomp.float64)
        momentum = group.tensors["momentum"]
        for p, grad in pairs:
            dt = p.dtype
            buf = self.state[p]["momentum_buffer"]
            lerp_(buf, grad, (1 - momentum).to(dt), small)
            if nesterov:
                update = lerp_(grad.clone(), buf, momentum.to(dt), small_m)
            else:
                update = buf
            update = _zeropower_via_newtonschulz(update, coefficients, ns_steps, eps)
            adjusted_lr = _adjust_lr(lr, adjust_lr_fn, tuple(p.shape))
            p.mul_((1 - lr * weight_decay).to(dt))
            p.add_(update.to(dt) * (-adjusted_lr).to(dt))
