"""Argument checks shared by the optimizers (torch's ValueError messages, as GcompError)."""

from __future__ import annotations

from gcomp import GcompError


def check_common(lr=0.0, eps=0.0, weight_decay=0.0, betas=None, differentiable=False):
    if not 0.0 <= lr:
        raise GcompError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise GcompError(f"Invalid epsilon value: {eps}")
    if betas is not None:
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise GcompError(f"Invalid beta parameter at index {i}: {b}")
    if not 0.0 <= weight_decay:
        raise GcompError(f"Invalid weight_decay value: {weight_decay}")
    if differentiable:
        raise GcompError("differentiable=True is not supported by gcomp optimizers")
