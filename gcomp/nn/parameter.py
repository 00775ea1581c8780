"""nn.Parameter: a Tensor that a Module registers as a parameter."""

from __future__ import annotations

import gcomp
from gcomp import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and shares storage with ``data``."""

    def __new__(cls, data=None, requires_grad: bool = True):
        if data is None:
            data = gcomp.empty(0)
        if not isinstance(data, Tensor):
            data = gcomp.tensor(data)
        p = Tensor.__new__(cls)
        Tensor.__init__(p, data._storage, data._type, False)
        if requires_grad:
            p.requires_grad_(True)
        return p

    def __init__(self, data=None, requires_grad: bool = True):
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo):
        t = Tensor.__deepcopy__(self, memo)
        out = Parameter(t, self.requires_grad)
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, protocol):
        data, rg = Tensor.__reduce_ex__(self, protocol)[1]
        return (_rebuild_parameter, (data, rg))


def _rebuild_parameter(array, requires_grad):
    return Parameter(gcomp.tensor(array), requires_grad)


class Buffer(Tensor):
    """torch.nn.Buffer: marks a tensor to register as a buffer when assigned to a Module."""

    def __new__(cls, data=None, *, persistent: bool = True):
        data = data if isinstance(data, Tensor) else gcomp.tensor(data if data is not None else [])
        b = Tensor.__new__(cls)
        Tensor.__init__(b, data._storage, data._type, False)
        b.persistent = persistent
        return b

    def __init__(self, data=None, *, persistent: bool = True):
        pass
