"""torch.cpu: the host's queries, and torch.cpu.amp's (deprecated) autocast."""

from __future__ import annotations

import sys
import types
import warnings


def is_available() -> bool:
    return True


def device_count() -> int:
    """1, as torch's: every jax CPU device of this process is part of one host."""
    return 1


def current_device() -> str:
    return "cpu"


def synchronize(device=None) -> None:
    """Wait for the work queued on the host's jax devices: a tiny computation queued after it
    on each is waited for (as gcomp.accelerator.synchronize)."""
    import jax

    for jd in jax.local_devices(backend="cpu"):
        jax.device_put(0, jd).block_until_ready()


def _deprecated_autocast(device_type: str, default_dtype_name: str):
    from .frontend import autocast as A

    class autocast(A.autocast):  # noqa: N801 - torch's name
        __doc__ = (f"torch.{device_type}.amp.autocast(enabled=True, dtype=..., "
                   f"cache_enabled=True): gcomp.autocast({device_type!r}, ...), deprecated as "
                   "in torch")

        def __init__(self, enabled=True, dtype=None, cache_enabled=True):
            warnings.warn(f"`torch.{device_type}.amp.autocast(args...)` is deprecated. Please "
                          f"use `torch.amp.autocast('{device_type}', args...)` instead.",
                          FutureWarning, stacklevel=2)
            dtype = getattr(A.T, default_dtype_name) if dtype is None else dtype
            super().__init__(device_type, dtype=dtype, enabled=enabled,
                             cache_enabled=cache_enabled)

    return autocast


def _amp_module(parent: str, device_type: str, default_dtype_name: str):
    """The ``torch.<device>.amp`` module: autocast (deprecated) and GradScaler."""
    mod = types.ModuleType(f"{parent}.amp", f"torch.{device_type}.amp")
    mod.autocast = _deprecated_autocast(device_type, default_dtype_name)

    def _scaler(*args, **kwargs):
        from .amp import GradScaler

        return GradScaler(device_type, *args, **kwargs)

    mod.GradScaler = _scaler
    sys.modules[mod.__name__] = mod
    return mod


amp = _amp_module(__name__, "cpu", "bfloat16")
