"""torch.accelerator over jax's devices: the accelerator is this process's GPUs (device type
'cuda') or, failing those, its TPUs ('tpu'); a CPU-only machine has none (docs/devices.md).

gcomp has no current-device setting (a device is always named: ``cuda`` means ``cuda:0``), so the
current index is always 0 and ``set_device_index`` accepts only 0. Memory figures are the XLA
allocator's (``jax.Device.memory_stats()``); a device without them (the CPU) reports 0.
"""

from __future__ import annotations

from .core.dispatch import user_error
from .frontend.device import _devices
from .frontend.device import device as _Device
from .ir.errors import GcompError


def _kind() -> str | None:
    for kind, platform in (("cuda", "gpu"), ("tpu", "tpu")):
        if _devices(platform):
            return kind
    return None


def is_available() -> bool:
    return _kind() is not None


def current_accelerator(check_available: bool = False) -> _Device | None:
    """``gcomp.device('cuda')`` or ``gcomp.device('tpu')`` (index None, as in torch); None
    without an accelerator."""
    kind = _kind()
    return None if kind is None else _Device(kind)


def device_count() -> int:
    kind = _kind()
    return 0 if kind is None else len(_devices({"cuda": "gpu", "tpu": "tpu"}[kind]))


def current_device_index() -> int:
    return 0


current_device_idx = current_device_index


def set_device_index(device, /) -> None:
    index = device.index if isinstance(device, _Device) else device
    if index not in (None, 0):
        raise user_error(GcompError, f"gcomp has no current-device setting, so the current index "
                         f"stays 0 (asked for {index}): name the device instead, "
                         f"tensor.to('{_kind() or 'cuda'}:{index}')")


set_device_idx = set_device_index


def _jax_devices(device=None) -> list:
    kind = _kind()
    if kind is None:
        return []
    if device is None:
        return [_Device(kind).jax_device()]
    d = _Device(kind, device) if isinstance(device, int) else _Device(device)
    return [d.jax_device()]


def synchronize(device=None, /) -> None:
    """Wait for the work queued on the accelerator: a tiny computation queued after it is waited
    for (XLA runs a device's executables in order). A no-op without an accelerator."""
    import jax

    for jd in _jax_devices(device):
        jax.device_put(0, jd).block_until_ready()


def _stat(key: str, device=None) -> int:
    for jd in _jax_devices(device):
        stats = jd.memory_stats() or {}
        return int(stats.get(key, 0))
    return 0


def memory_allocated(device=None, /) -> int:
    return _stat("bytes_in_use", device)


def max_memory_allocated(device=None, /) -> int:
    return _stat("peak_bytes_in_use", device)


def memory_reserved(device=None, /) -> int:
    return _stat("bytes_reserved", device) or _stat("bytes_in_use", device)


def memory_stats(device=None, /) -> dict:
    """The XLA allocator's statistics (its own key names); {} without them."""
    for jd in _jax_devices(device):
        return dict(jd.memory_stats() or {})
    return {}


def get_memory_info(device=None, /) -> tuple[int, int]:
    """(free, total) bytes of the device's allocator limit."""
    total = _stat("bytes_limit", device)
    return max(total - memory_allocated(device), 0), total


def empty_cache() -> None:
    """Nothing to do: jax frees a buffer when its last array goes (no cache to return to the
    driver from Python)."""
