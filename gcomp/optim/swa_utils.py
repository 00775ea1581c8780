"""Stochastic weight averaging (torch.optim.swa_utils): AveragedModel, update_bn, SWALR and the
averaging functions.

``AveragedModel.update_parameters`` reads ``n_averaged`` on the host (as torch does), so it runs
eagerly, after the (possibly compiled) training step. Without ``avg_fn``/``multi_avg_fn`` it
averages with ``get_swa_avg_fn``, the formula torch uses for CPU tensors.
"""

from __future__ import annotations

import itertools
import math
from copy import deepcopy

import gcomp
from gcomp import GcompError
from gcomp.nn import Module
from gcomp.nn.modules.batchnorm import _BatchNorm

from .adam import lerp_
from .lr_scheduler import LRScheduler, _per_group

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(decay):
    if decay < 0.0 or decay > 1.0:
        raise GcompError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")


def get_ema_multi_avg_fn(decay=0.999):
    """In place: ``ema = ema.lerp(current, 1 - decay)`` for every tensor of the lists."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _):
        with gcomp.no_grad():
            if ema_param_list[0].dtype.is_floating_point:
                w = 1 - decay
                for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
                    lerp_(p_ema, p_model, w, abs(w) < 0.5)
            else:
                for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
                    p_ema.copy_(p_ema * decay + p_model * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn():
    """In place: the running mean ``avg += (current - avg) / (n + 1)`` for every tensor."""

    def swa_update(averaged_param_list, current_param_list, num_averaged):
        n = int(num_averaged.item()) if hasattr(num_averaged, "item") else num_averaged
        with gcomp.no_grad():
            if averaged_param_list[0].dtype.is_floating_point:
                w = 1 / (n + 1)  # a 0-d tensor: an eager op compiles per Python scalar
                for a, c in zip(averaged_param_list, current_param_list, strict=True):
                    lerp_(a, c, gcomp.tensor(w, dtype=a.dtype), abs(w) < 0.5)
            else:
                for a, c in zip(averaged_param_list, current_param_list, strict=True):
                    a.add_((c - a) * (1.0 / (n + 1)))

    return swa_update


def get_ema_avg_fn(decay=0.999):
    """``decay * ema + (1 - decay) * current`` (returns the new value)."""
    _check_decay(decay)

    def ema_update(ema_param, current_param, num_averaged):
        with gcomp.no_grad():
            return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    """``avg + (current - avg) / (n + 1)`` (returns the new value)."""

    def swa_update(averaged_param, current_param, num_averaged):
        with gcomp.no_grad():
            return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose parameters (and, with ``use_buffers``, buffers) are the
    running average (SWA) or another average (``avg_fn``/``multi_avg_fn``, e.g. EMA) of the
    model's, updated by ``update_parameters(model)``."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise GcompError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", gcomp.tensor(0, dtype=gcomp.int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model) -> None:
        if self.use_buffers:
            mine = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            mine, theirs = list(self.parameters()), list(model.parameters())
        n = int(self.n_averaged.item())
        with gcomp.no_grad():
            pairs = [(a.detach(), m.detach().to(a.device)) for a, m in zip(mine, theirs)]
            if n == 0:
                for a, m in pairs:
                    a.copy_(m)
            else:
                if self.multi_avg_fn is not None:
                    groups: dict = {}
                    for a, m in pairs:
                        groups.setdefault((str(a.device), a.dtype), []).append((a, m))
                    for group in groups.values():
                        self.multi_avg_fn([a for a, _ in group], [m for _, m in group],
                                          self.n_averaged)
                else:
                    avg_fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
                    for a, m in pairs:
                        a.copy_(avg_fn(a, m, self.n_averaged))
            if not self.use_buffers:
                for b_swa, b_model in zip(self.module.buffers(), model.buffers(), strict=True):
                    b_swa.detach().copy_(b_model.detach().to(b_swa.device))
            self.n_averaged.add_(1)


def update_bn(loader, model, device=None) -> None:
    """Recompute the BatchNorm running statistics of ``model`` with one pass over ``loader``
    (cumulative averages: momentum None during the pass)."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with gcomp.no_grad():
        for inp in loader:
            if isinstance(inp, (list, tuple)):
                inp = inp[0]
            if device is not None:
                inp = inp.to(device)
            model(inp)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` ('cos' or 'linear'), then
    hold it."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos",
                 last_epoch=-1):
        swa_lrs = _per_group("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise GcompError("anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise GcompError(f"anneal_epochs must be equal or greater than 0, got "
                             f"{anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t):
        return t

    @staticmethod
    def _cosine_anneal(t):
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha)
                    for group in self.optimizer.param_groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [group["swa_lr"] * alpha + lr * (1 - alpha)
                for group, lr in zip(self.optimizer.param_groups, prev_lrs, strict=True)]

    def _set_anneal_func(self, anneal_strategy):
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else \
            self._linear_anneal

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
