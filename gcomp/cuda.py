"""torch.cuda's queries over jax's GPU devices (docs/devices.md)."""

from .frontend.device import cuda_device_count as device_count  # noqa: F401
from .frontend.device import cuda_is_available as is_available  # noqa: F401


def current_device() -> int:
    """Always 0: gcomp has no current-device setting (``cuda`` means ``cuda:0``)."""
    return 0


def get_device_name(device=None) -> str:
    """jax's name for the GPU's kind, e.g. 'NVIDIA H100 80GB HBM3'."""
    from .frontend.device import device as Device

    d = Device("cuda", device) if isinstance(device, int) else Device(device or "cuda")
    return d.jax_device().device_kind


def manual_seed(seed: int) -> None:
    """gcomp has one generator for every device: this seeds it (gcomp.manual_seed)."""
    from .frontend.creation import manual_seed as seed_all

    seed_all(seed)


manual_seed_all = manual_seed


def synchronize(device=None) -> None:
    """Wait for the work queued on the GPU (gcomp.accelerator.synchronize); a no-op without one."""
    from . import accelerator

    if is_available():
        accelerator.synchronize(device)


def memory_allocated(device=None) -> int:
    from . import accelerator

    return accelerator.memory_allocated(device) if is_available() else 0


def max_memory_allocated(device=None) -> int:
    from . import accelerator

    return accelerator.max_memory_allocated(device) if is_available() else 0


def empty_cache() -> None:
    """Nothing to do (gcomp.accelerator.empty_cache)."""


from .cpu import _amp_module  # noqa: E402

amp = _amp_module(__name__, "cuda", "float16")
