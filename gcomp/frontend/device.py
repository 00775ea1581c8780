"""Devices (PyTorch's names over jax's devices). Compiled code runs where its inputs live."""

from __future__ import annotations

from ..ir.errors import GcompError

_PLATFORM = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "tpu": "tpu"}


class device:  # noqa: N801 - torch.device
    """gcomp.device("cpu"), gcomp.device("cuda:0"), gcomp.device("cuda", 1)."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):  # noqa: A002
        if isinstance(type, device):
            type, index = type.type, type.index
        if ":" in type:
            type, _, idx = type.partition(":")
            index = int(idx)
        if type not in _PLATFORM:
            raise GcompError(f"unknown device type {type!r}; expected one of cpu, cuda, tpu")
        self.type = "cuda" if type == "gpu" else type
        self.index = index

    def __eq__(self, other):
        if isinstance(other, str):
            other = device(other)
        return isinstance(other, device) and (self.type, self.index or 0) == (
            other.type, other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))

    def __repr__(self):
        return f"device(type='{self.type}'" + (f", index={self.index})" if self.index is not None
                                                 else ")")

    def __str__(self):
        return self.type + (f":{self.index}" if self.index is not None else "")

    def jax_device(self):
        import jax

        try:
            devs = jax.devices(_PLATFORM[self.type])
        except RuntimeError:
            devs = []
        if not devs:
            raise GcompError(f"no {self.type} device is available here (gcomp.cuda.is_available() "
                             f"is {bool(devs)}); use 'cpu'")
        i = self.index or 0
        if i >= len(devs):
            raise GcompError(f"{self} does not exist: {len(devs)} {self.type} device(s)")
        return devs[i]


def device_of(t) -> device:
    data = t._current()
    devs = getattr(data, "devices", None)
    if devs is None:
        return device("cpu")
    d = next(iter(devs()))
    kind = {"gpu": "cuda", "cuda": "cuda", "rocm": "cuda"}.get(d.platform, d.platform)
    return device(kind, d.id if kind != "cpu" else None)


def cuda_is_available() -> bool:
    import jax

    try:
        return bool(jax.devices("gpu"))
    except RuntimeError:
        return False


def cuda_device_count() -> int:
    import jax

    try:
        return len(jax.devices("gpu"))
    except RuntimeError:
        return 0


def to_device(t, dev: device):
    """A copy of t on ``dev`` (t itself when it is already there)."""
    import jax

    if t.is_traced:
        if dev != device_of(t):
            from ..core.dispatch import user_error

            raise user_error(GcompError, "moving a tensor between devices inside gcomp.compile is "
                             "not supported; move inputs before the call")
        return t
    if dev == device_of(t):
        return t
    from .tensor import new_tensor

    out = new_tensor(jax.device_put(t._storage.data, dev.jax_device()), t._type, t.requires_grad)
    return out
