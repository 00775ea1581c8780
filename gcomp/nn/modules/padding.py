"""Padding layers (torch.nn.ZeroPad*, ConstantPad*, ReflectionPad*, ReplicationPad*,
CircularPad*), each one F.pad call."""

from __future__ import annotations

from .. import functional as F
from .module import Module

__all__ = [f"{kind}Pad{n}d" for kind in ("Zero", "Constant", "Reflection", "Replication",
                                         "Circular") for n in (1, 2, 3)]


class _PadNd(Module):
    _n = 1
    _mode = "constant"

    def __init__(self, padding):
        super().__init__()
        if isinstance(padding, int):
            padding = (padding,) * (2 * self._n)
        self.padding = tuple(padding)
        if len(self.padding) != 2 * self._n:
            raise F._common.NNValueError(f"{type(self).__name__}: padding must be an int or a "
                                         f"tuple of {2 * self._n} ints, got {padding!r}")

    def forward(self, input):
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float):
        super().__init__(padding)
        self.value = value

    def forward(self, input):
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class _ZeroPadNd(_ConstantPadNd):
    def __init__(self, padding):
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


def _make(base, kind, mode):
    for n in (1, 2, 3):
        name = f"{kind}Pad{n}d"
        attrs = {"_n": n, "__doc__": f"{kind} padding of the last {n} dim(s).",
                 "__module__": __name__, "__qualname__": name}
        if mode is not None:
            attrs["_mode"] = mode
        globals()[name] = type(name, (base,), attrs)


_make(_ZeroPadNd, "Zero", None)
_make(_ConstantPadNd, "Constant", None)
_make(_PadNd, "Reflection", "reflect")
_make(_PadNd, "Replication", "replicate")
_make(_PadNd, "Circular", "circular")
