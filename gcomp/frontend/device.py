"""Devices: PyTorch's names over jax's devices. Compiled code runs where its inputs live.

Note [Devices and committed arrays]
A gcomp device names one jax device of this process: ``cpu``/``cpu:N`` is
``jax.local_devices(backend="cpu")[N]``, ``cuda:N`` this process's N-th GPU, ``tpu:N`` its N-th
TPU. As in torch, the index is local: in a multi-process run every process's ``cuda:0`` is its own
first GPU (the devices of all processes, for a Mesh, are ``gcomp.distributed.devices()``, jax's).

jax distinguishes *committed* arrays (placed on a device on purpose, by ``jax.device_put(x, d)``
or computed from committed arrays) from *uncommitted* ones (made without a device: they live on
the default device and follow whatever committed array they meet). gcomp keeps that distinction
instead of inventing its own: a tensor made without ``device=`` is uncommitted, so a Python
scalar, a ``gcomp.ones(3)`` or a batch from a DataLoader combines with tensors anywhere, as
torch's CPU scalars combine with CUDA tensors. Creation with ``device=...`` commits; a move
(``.to(device)``, ``.cpu()``, ``.cuda()``, ``module.to(device)``) commits what it moves and, as
in torch, returns the tensor itself when it is already there. Two committed tensors on different
devices meeting in an op, eager or compiled, are an error that names both devices and says to
move one (jax raises it; the dispatcher and the compiled call translate it in their error paths,
so the common case pays nothing: ``device_error`` below).

Equality is lenient where torch is strict: ``device("cuda") == device("cuda:0")`` (there is no
current-device setting; an index-less device is index 0). ``str`` and ``repr`` are torch's.
A tensor split or replicated over a mesh (gcomp.distributed) reports its first device.
"""

from __future__ import annotations

from ..core.dispatch import Mode
from ..ir.errors import GcompError

_PLATFORM = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "tpu": "tpu"}
_KIND = {"gpu": "cuda", "cuda": "cuda", "rocm": "cuda", "cpu": "cpu", "tpu": "tpu"}


def _error(message: str) -> GcompError:
    from ..core.dispatch import user_error

    return user_error(GcompError, message)


class device:  # noqa: N801 - torch.device
    """gcomp.device("cpu"), gcomp.device("cpu:1"), gcomp.device("cuda:0"), gcomp.device("cuda", 1),
    gcomp.device(0) (cuda:0, as in torch)."""

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):  # noqa: A002 - torch's argument name
        if isinstance(type, device):
            if index is not None:
                raise _error(f"device({type!r}, {index}): the device already has an index")
            type, index = type.type, type.index
        elif isinstance(type, int) and not isinstance(type, bool):
            type, index = "cuda", type
        elif not isinstance(type, str):
            raise _error(f"device() expects a string like 'cpu', 'cuda:0' or a device, got "
                         f"{type!r}")
        elif ":" in type:
            if index is not None:
                raise _error(f"device({type!r}, {index}): the string already has an index; "
                             "pass one or the other")
            text = type
            type, _, idx = type.partition(":")
            if not idx.isdigit():
                raise _error(f"invalid device string {text!r}; expected a type and an index, "
                             "e.g. 'cuda:0'")
            index = int(idx)
        if type not in _PLATFORM:
            raise _error(f"unknown device type {type!r}; expected one of cpu, cuda, tpu")
        if index is not None and (not isinstance(index, int) or index < 0):
            raise _error(f"device index must be a non-negative integer, got {index!r}")
        self.type = _KIND[type]
        self.index = index

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = device(other)
            except GcompError:
                return False
        return isinstance(other, device) and self.type == other.type and \
            (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash((self.type, self.index or 0))

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __str__(self):
        return self.type + (f":{self.index}" if self.index is not None else "")

    def __reduce__(self):
        return (device, (self.type, self.index))

    def jax_device(self):
        """The jax device this names; a GcompError at the user's line if there is none."""
        devs = _devices(_PLATFORM[self.type])
        if not devs:
            hint = " (gcomp.cuda.is_available() is False)" if self.type == "cuda" else ""
            raise _error(f"no {self.type} device is available here{hint}; use 'cpu', or check "
                         "gcomp.distributed.devices() for what jax sees")
        i = self.index or 0
        if i >= len(devs):
            raise _error(f"device {self} does not exist: there are {len(devs)} {self.type} "
                         f"device(s), {self.type}:0 to {self.type}:{len(devs) - 1}")
        return devs[i]


_DEVICES: dict = {}  # jax platform -> this process's devices (never changes within a process)
_OF_JAX: dict = {}  # jax device -> gcomp device, or None for another process's device


def _devices(platform: str) -> list:
    devs = _DEVICES.get(platform)
    if devs is None:
        import jax

        try:
            devs = list(jax.local_devices(backend=platform))
        except RuntimeError:  # no such backend here
            devs = []
        _DEVICES[platform] = devs
    return devs


def of_jax(jd) -> device | None:
    """The gcomp device of a jax device; None for a device of another process."""
    try:
        return _OF_JAX[jd]
    except KeyError:
        pass
    kind = _KIND.get(jd.platform, jd.platform)
    devs = _devices(_PLATFORM.get(kind, jd.platform))
    out = None
    if jd in devs:
        index = devs.index(jd)
        out = device(kind, None if kind == "cpu" and index == 0 else index)
    _OF_JAX[jd] = out
    return out


def name_of_jax(jd) -> str:
    """'cpu:1' for a device of this process, 'cpu#2048' (jax's id) for another process's."""
    d = of_jax(jd)
    return f"{d.type}:{d.index or 0}" if d is not None else f"{jd.platform}#{jd.id}"


def default_device() -> device:
    import jax

    return of_jax(jax.local_devices()[0])


def device_of(t) -> device:
    """A tensor's device: where its array lives (the first local device of one split over a
    mesh); the default device while tracing (the executable runs where its inputs are)."""
    devs = getattr(t._current(), "devices", None)
    if devs is None:
        return default_device()
    ds = devs()
    if len(ds) == 1:
        return of_jax(next(iter(ds)))
    local = [d for d in map(of_jax, ds) if d is not None]
    return min(local, key=lambda d: d.index or 0)


def placement(t) -> str:
    """Where a tensor lives, for error messages: 'cpu:1', or 'a mesh of 4 devices (cpu:0, ...)'."""
    data = t._storage.data
    devs = getattr(data, "devices", None)
    if devs is None:
        return "(traced)"
    ds = sorted(devs(), key=lambda d: d.id)
    if len(ds) == 1:
        return name_of_jax(ds[0])
    return f"a mesh of {len(ds)} devices ({', '.join(map(name_of_jax, ds))})"


def cuda_is_available() -> bool:
    return bool(_devices("gpu"))


def cuda_device_count() -> int:
    return len(_devices("gpu"))


# ---------------------------------------------------------------------------------------------
# Moving tensors

def to_device(t, dev: device, commit: bool = False):
    """``t`` on ``dev``: t itself when it is already there (as in torch; an uncommitted tensor on
    the default device stays uncommitted unless ``commit``), else a copy there, committed, that
    autograd differentiates (the gradient moves back). Inside gcomp.compile it is ``t``: one
    executable runs on the device (or mesh) of its inputs."""
    if t.is_traced:
        return t
    jd = dev.jax_device()
    data = t._storage.data
    if (data.committed or not commit) and data.devices() == {jd}:
        return t
    import jax

    from .tensor import new_tensor

    out = new_tensor(jax.device_put(data, jd), t._type)
    _tape_move(t, out)
    return out


def place_like(out, like):
    """``out`` on ``like``'s devices when ``like`` is committed (zeros_like, new_zeros, ...: the
    source's device, as in torch); unchanged otherwise."""
    src = like._storage.data
    if getattr(src, "committed", False) and not out.is_traced:
        data = out._storage.data
        if data.sharding != src.sharding:
            import jax

            out._storage.data = jax.device_put(data, src.sharding)
    return out


def _tape_move(src, out) -> None:
    """Record the move for autograd: the cotangent goes back to ``src``'s device."""
    from ..core import autograd as core_ag
    from ..core.dispatch import Mode

    if not (src.requires_grad and Mode.grad_enabled and src.dtype.is_floating_point):
        return
    import jax

    sharding = src._storage.data.sharding
    back = src._storage.data.committed

    def vjp(cts, inputs, outputs, **_):
        ct = cts[0]
        if back and not ct.is_traced:
            from .tensor import new_tensor

            moved = new_tensor(jax.device_put(ct._storage.data, sharding), ct._type)
            _tape_move(ct, moved)
            ct = moved
        return [ct]

    node = core_ag.TapeNode("to", {}, [src._snapshot()], None, [src._edge()], None, custom=vjp)
    node.output_keys = [(node, 0)]
    out.requires_grad, out._grad_fn, out._out_index = True, node, 0
    node.outputs = [out._snapshot()]


# ---------------------------------------------------------------------------------------------
# Two committed tensors on different devices (Note [Devices and committed arrays])

def is_device_mismatch(e: BaseException) -> bool:
    """Whether ``e`` is jax's error for arrays on different devices meeting in one call."""
    text = str(e)
    return isinstance(e, ValueError) and ("incompatible devices" in text or
                                          "does not match the sharding" in text)


def device_error(what: str, named) -> GcompError:
    """The error for ``named`` ((name, tensor) pairs) that live on different devices. Tensors
    made without a device are left out: they follow the others."""
    by_place: dict[str, list[str]] = {}
    for name, t in named:
        if getattr(t._storage.data, "committed", False):
            by_place.setdefault(placement(t), []).append(name)
    parts = [f"{', '.join(names)} on {place}" for place, names in by_place.items()]
    return _error(f"{what}: tensors on different devices: {'; '.join(parts)}. Move one with "
                  ".to(device) (for a module, module.to(device)) so that they are on one device")


def _eager_device_error(op, inputs, e):
    if not is_device_mismatch(e):
        return None
    return device_error(op, [(f"input {i}", t) for i, t in enumerate(inputs)])


Mode.device_error = _eager_device_error
