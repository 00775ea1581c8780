"""GradScaler: torch.amp.GradScaler's dynamic loss scaling, over gcomp tensors.

``scale(loss)`` multiplies by the scale (a float32 0-d tensor), ``unscale_(optimizer)`` divides
the gradients by it and records whether any is inf or NaN, ``step(optimizer)`` skips the update
when one was, and ``update()`` halves the scale after a skipped step and doubles it after
``growth_interval`` good ones: the arithmetic of torch's ``_amp_foreach_non_finite_check_and_
unscale_`` and ``_amp_update_scale_``, so scales, skipped steps and gradients match torch's.

Note [GradScaler inside gcomp.compile]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
Eagerly, ``step`` reads the inf flag (``item()``, the sync torch makes too) and calls
``optimizer.step()`` or not. A traced step cannot branch on a value, so there ``step`` always
runs the update and then selects, for every parameter and optimizer state tensor, the old value
where an inf was found (``where(found_inf, old, new)``): the same result, as one program. That
needs the optimizer's state to be tensors that exist before the update, which gcomp.optim's
optimizers guarantee (their state is created before the update, Note [The compiled optimizer
step]); other optimizers are refused with a GcompError. The scaler's scale and growth tracker are
real tensors even when created inside a trace, so the compiled function captures them as state
and writes them back. The stage bookkeeping (unscaled, stepped) is Python and runs only while
tracing, so ``unscale_``, ``step`` and ``update`` of one iteration must all be in the compiled
function or all outside it; mixing them is refused. Differences from torch: a skipped compiled
step leaves optimizer state created (zeros), where torch's optimizer has none yet.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from enum import Enum
from typing import Any

import gcomp
from gcomp import GcompError, Tensor
from gcomp.frontend.creation import concrete_full

__all__ = ["GradScaler", "OptState"]


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _refresh_per_optimizer_state() -> dict[str, Any]:
    return {"stage": OptState.READY, "found_inf_per_device": {}}


def _unscale(scale, found_inf, *grads):
    """Each gradient times 1 / scale (computed in float64, as torch), in place; 1.0 in the
    result if any value is not finite. One compiled call for an optimizer's gradients (of one
    device), as the update below: a few calls per iteration, not a few ops per parameter."""
    inv_scale = scale.double().reciprocal().float()
    for g in grads:
        found_inf = gcomp.where(gcomp.isfinite(g).all(), found_inf, 1.0)
        g.mul_(inv_scale)
    return found_inf


_unscale_compiled = gcomp.compile(_unscale, name="GradScaler_unscale")


def _update_scale(scale, growth_tracker, found_inf, growth_factor, backoff_factor,
                  growth_interval):
    """torch's _amp_update_scale_, in place: the products in float64, rounded to float32."""
    found = found_inf != 0
    wide = scale.double()
    backed_off = (wide * backoff_factor).float()
    grown = (wide * growth_factor).float()
    successful = growth_tracker + 1
    grow = successful == growth_interval
    grown = gcomp.where(gcomp.isfinite(grown), grown, scale)
    new_scale = gcomp.where(found, backed_off, gcomp.where(grow, grown, scale))
    new_tracker = gcomp.where(found | grow, gcomp.zeros_like(growth_tracker), successful)
    scale.copy_(new_scale)
    growth_tracker.copy_(new_tracker)


# (the factors are Python numbers: part of the cache key, baked into the program)
_update_scale_compiled = gcomp.compile(_update_scale, name="GradScaler_update")


def _on(t: Tensor, like: Tensor) -> Tensor:
    """t on like's device (inside a trace, where devices are the compiled function's, as is)."""
    return t if like.is_traced else t.to(like.device)


class GradScaler:
    """torch.amp.GradScaler: ``scale(loss).backward()``, ``step(optimizer)``, ``update()``.

    ``enabled=False`` makes every method a pass-through (``step`` calls ``optimizer.step()``).
    Works eagerly and inside gcomp.compile (Note [GradScaler inside gcomp.compile]).
    """

    def __init__(self, device: str = "cpu", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = device
        self._enabled = enabled
        if device == "cuda" and enabled and not gcomp.cuda.is_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  "
                          "Disabling.", stacklevel=2)
            self._enabled = False
        if self._enabled:
            if growth_factor <= 1.0:
                raise GcompError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise GcompError("The backoff factor must be < 1.0.")
            self._init_scale = init_scale
            self._scale: Tensor | None = None  # created by the first scale()
            self._growth_factor = growth_factor
            self._backoff_factor = backoff_factor
            self._growth_interval = growth_interval
            self._init_growth_tracker = 0
            self._growth_tracker: Tensor | None = None
            self._per_optimizer_states: dict[int, dict[str, Any]] = defaultdict(
                _refresh_per_optimizer_state)

    def _check_scale_growth_tracker(self, funcname: str) -> tuple[Tensor, Tensor]:
        if self._scale is None or self._growth_tracker is None:
            raise GcompError(f"Attempted {funcname} but _scale is None.  This may indicate your "
                             "script did not use scaler.scale(loss or outputs) earlier in the "
                             "iteration.")
        return self._scale, self._growth_tracker

    def _lazy_init_scale_growth_tracker(self, like: Tensor) -> None:
        # real tensors even inside a trace, which then captures them as state; on the default
        # device uncommitted, as the optimizers' state
        device = None if like.is_traced else like.device
        if device == concrete_full((), 0, gcomp.float32).device:
            device = None
        self._scale = concrete_full((), self._init_scale, gcomp.float32, device)
        self._growth_tracker = concrete_full((), self._init_growth_tracker, gcomp.int32, device)

    def state_names(self):
        """Names of the scaler's tensors in a compiled function's graph."""
        if getattr(self, "_scale", None) is not None:
            yield "scale", self._scale
            yield "growth_tracker", self._growth_tracker

    # -- the iteration ------------------------------------------------------------------------
    def scale(self, outputs):
        """``outputs`` (a tensor, or nested lists/tuples of them) times the scale."""
        if not self._enabled:
            return outputs

        def apply(val):
            if isinstance(val, Tensor):
                if self._scale is None:
                    self._lazy_init_scale_growth_tracker(val)
                return val * self._scale
            if isinstance(val, (list, tuple)):
                return type(val)(apply(v) for v in val)
            if hasattr(val, "__iter__"):
                return map(apply, val)
            raise GcompError("outputs must be a Tensor or an iterable of Tensors")

        return apply(outputs)

    def _unscale_grads_(self, optimizer, scale: Tensor, allow_fp16: bool) -> dict:
        per_device: dict = defaultdict(list)
        for group in optimizer.param_groups:
            for param in group["params"]:
                if not isinstance(param, Tensor):
                    raise GcompError(f"expected param to be a Tensor, got "
                                     f"{type(param).__name__}")
                if param.grad is None:
                    continue
                if not allow_fp16 and param.grad.dtype == gcomp.float16:
                    raise GcompError("Attempting to unscale FP16 gradients.")
                per_device[str(param.grad.device)].append(param.grad)
        found = {}
        with gcomp.no_grad():
            for device, grads in per_device.items():
                found_inf = _on(gcomp.zeros((), dtype=gcomp.float32), grads[0])
                found[device] = _unscale_compiled(_on(scale, grads[0]), found_inf, *grads)
        return found

    def unscale_(self, optimizer) -> None:
        """Divide the optimizer's gradients by the scale, in place, and note infs/NaNs. At most
        once per optimizer between update() calls."""
        if not self._enabled:
            return
        scale, _ = self._check_scale_growth_tracker("unscale_")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise GcompError("unscale_() has already been called on this optimizer since the "
                             "last update().")
        if state["stage"] is OptState.STEPPED:
            raise GcompError("unscale_() is being called after step().")
        state["found_inf_per_device"] = self._unscale_grads_(optimizer, scale, False)
        state["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args, **kwargs):
        """unscale_(optimizer) unless done already, then optimizer.step(*args, **kwargs) unless a
        gradient had an inf or NaN. Returns what optimizer.step returned (None when skipped)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise GcompError("Closure use is not currently supported if GradScaler is enabled.")
        scale, _ = self._check_scale_growth_tracker("step")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise GcompError("step() has already been called since the last update().")
        traced = scale.is_traced or gcomp.compiler.is_compiling()
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        found = list(state["found_inf_per_device"].values())
        if not found:
            raise GcompError("No inf checks were recorded for this optimizer.")
        _check_same_side(found, traced, "scaler.unscale_()", "scaler.step()")
        if traced:
            retval = self._traced_step(optimizer, found, args, kwargs)
        elif not sum(v.item() for v in found):
            retval = optimizer.step(*args, **kwargs)
        else:
            retval = None
        state["stage"] = OptState.STEPPED
        return retval

    def _traced_step(self, optimizer, found, args, kwargs):
        """The step as a select between updated and old values (Note [GradScaler inside
        gcomp.compile])."""
        from gcomp.optim import Optimizer

        if not isinstance(optimizer, Optimizer):
            raise GcompError(
                "GradScaler.step inside gcomp.compile cannot skip the step of a "
                f"{type(optimizer).__name__} (it keeps the old values with gcomp.where, which "
                "needs a gcomp.optim optimizer, whose state is tensors); call the scaler "
                "outside the compiled function, or use a gcomp.optim optimizer")
        with gcomp.no_grad():
            touched = []
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if not optimizer.state.get(p):
                        optimizer._init_state(p, group)  # what step() would do first
                    touched.append(p)
                    touched += [v for v in optimizer.state[p].values() if isinstance(v, Tensor)]
            old = [t.clone() for t in touched]
        retval = optimizer.step(*args, **kwargs)
        with gcomp.no_grad():
            skip = found[0] != 0
            for f in found[1:]:
                skip = skip | (_on(f, found[0]) != 0)
            for t, o in zip(touched, old, strict=True):
                t.copy_(gcomp.where(skip, o, t))
        return retval

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """The next iteration's scale: ``new_scale`` if given; else backoff_factor times the
        scale if a step this iteration found an inf or NaN, growth_factor times it after
        growth_interval iterations without one."""
        if not self._enabled:
            return
        scale, tracker = self._check_scale_growth_tracker("update")
        with gcomp.no_grad():
            if new_scale is not None:
                if isinstance(new_scale, (int, float)) and not isinstance(new_scale, bool):
                    scale.fill_(float(new_scale))
                else:
                    reason = ("new_scale should be a float or a 1-element gcomp.Tensor with "
                              "requires_grad=False.")
                    if not isinstance(new_scale, Tensor) or new_scale.numel() != 1 \
                            or new_scale.requires_grad:
                        raise GcompError(reason)
                    scale.copy_(_on(new_scale.reshape(()), scale).float())
            else:
                found = [f for state in self._per_optimizer_states.values()
                         for f in state["found_inf_per_device"].values()]
                if not found:
                    raise GcompError("No inf checks were recorded prior to update.")
                traced = scale.is_traced or gcomp.compiler.is_compiling()
                _check_same_side(found, traced, "scaler.step()", "scaler.update()")
                combined = _on(found[0], scale)
                for f in found[1:]:
                    combined = combined + _on(f, scale)
                _update_scale_compiled(scale, tracker, combined, float(self._growth_factor),
                                       float(self._backoff_factor), int(self._growth_interval))
        self._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    # -- queries and state --------------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale as a Python float (1.0 when disabled); reads the tensor."""
        if self._enabled:
            return self._init_scale if self._scale is None else float(self._scale.item())
        return 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = new_interval

    def _get_growth_tracker(self) -> int:
        if self._enabled:
            return (self._init_growth_tracker if self._growth_tracker is None
                    else int(self._growth_tracker.item()))
        return 0

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """torch's five entries (scale, growth_factor, backoff_factor, growth_interval,
        _growth_tracker) as Python numbers; empty when disabled."""
        if self._enabled:
            return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                    "backoff_factor": self._backoff_factor,
                    "growth_interval": self._growth_interval,
                    "_growth_tracker": self._get_growth_tracker()}
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise GcompError("The source state dict is empty, possibly because it was saved "
                             "from a disabled instance of GradScaler.")
        self._init_scale = float(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        with gcomp.no_grad():
            if self._scale is not None:
                self._scale.fill_(self._init_scale)
            if self._growth_tracker is not None:
                self._growth_tracker.fill_(self._init_growth_tracker)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._enabled:
            if len(self._per_optimizer_states) != 0:
                raise GcompError("A GradScaler instance may only be pickled at the beginning of "
                                 "an iteration, or at the end after scaler.update().")
            state["_init_scale"] = self.get_scale()
            state["_init_growth_tracker"] = self._get_growth_tracker()
            state["_scale"] = None
            state["_growth_tracker"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def _check_same_side(found: list, traced: bool, first: str, second: str) -> None:
    """Refuse an iteration split across a compiled function's boundary (Note [GradScaler inside
    gcomp.compile])."""
    if any(f.is_traced for f in found) != traced:
        inside, outside = (second, first) if traced else (first, second)
        raise GcompError(f"{inside} ran inside gcomp.compile and {outside} outside it: call "
                         "scale, unscale_, step and update of one iteration all inside the "
                         "compiled function, or all outside it")
