"""PyTorch's legacy tensor constructors: ``torch.Tensor(2, 3)``, ``torch.LongTensor([1, 2])``,
``isinstance(t, torch.FloatTensor)`` and ``t.type() == 'torch.FloatTensor'``.

Note [Legacy constructors]
~~~~~~~~~~~~~~~~~~~~~~~~~~
Old tutorials and many custom layers still write ``nn.Parameter(torch.Tensor(out, in))`` followed
by an init function, or ``torch.LongTensor(ids)``. PyTorch's rule for the arguments: integers (or
one ``torch.Size``) are a shape, and the tensor is uninitialized (gcomp fills it with zeros, which
an uninitialized tensor may hold); a sequence or array is data, converted to the class's dtype;
a tensor of the class's dtype is returned as an alias; no arguments give an empty 1-d tensor.

``gcomp.Tensor`` is the tensor class itself, so its constructor is also the internal one,
``Tensor(Storage, TensorType)``: ``TensorBase.__init__`` sends anything whose first argument is
not a Storage here (one type test on the hot path). The typed classes (``FloatTensor``, ...) are
not subclasses: ``isinstance`` checks a tensor's dtype, as in PyTorch, and calling one builds a
plain gcomp Tensor.
"""

from __future__ import annotations

import numpy as np

from ..core.dispatch import user_error
from ..ir import types as T
from ..ir.errors import GcompError

# (class name, dtype); FloatTensor first: torch.Tensor's dtype
_TYPES = [("FloatTensor", T.float32), ("DoubleTensor", T.float64), ("HalfTensor", T.float16),
          ("BFloat16Tensor", T.bfloat16), ("ByteTensor", T.uint8), ("CharTensor", T.int8),
          ("ShortTensor", T.int16), ("IntTensor", T.int32), ("LongTensor", T.int64),
          ("BoolTensor", T.bool_)]
_NAME_OF = {dt: name for name, dt in _TYPES}


def build(dtype, args: tuple, device=None):
    """(storage, type) of ``dtype``'s legacy constructor called with ``args``."""
    from .creation import tensor, zeros
    from .tensor import Size, Tensor

    if len(args) == 1 and isinstance(args[0], Tensor):
        t = args[0]
        if t.dtype != dtype:
            raise user_error(GcompError, f"expected {dtype} (got {t.dtype}): the legacy "
                             f"constructor {_NAME_OF[dtype]}(tensor) does not convert; use "
                             f"tensor.to({dtype})")
        out = t.detach()
    elif not args:
        out = zeros(0, dtype=dtype, device=device)
    elif len(args) == 1 and isinstance(args[0], Size):
        out = zeros(tuple(args[0]), dtype=dtype, device=device)
    elif all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
        if any(a < 0 for a in args):
            raise user_error(GcompError, f"negative dimension in {_NAME_OF[dtype]}{args}")
        out = zeros(tuple(int(a) for a in args), dtype=dtype, device=device)
    elif len(args) == 1:
        data = args[0]
        if isinstance(data, (int, float, bool)):
            raise user_error(GcompError, f"{_NAME_OF[dtype]}({data!r}): a number is a size only "
                             "when it is an int; for a 0-d tensor use gcomp.tensor(value)")
        out = tensor(data, dtype=dtype, device=device)
    else:
        raise user_error(GcompError, f"{_NAME_OF[dtype]}{args}: expected ints (a shape), one "
                         "torch.Size, or one sequence of data")
    return out._storage, out._type


class _LegacyType(type):
    def __instancecheck__(cls, obj):
        from .tensor import Tensor

        return isinstance(obj, Tensor) and obj.dtype == cls.dtype

    def __repr__(cls):
        return f"<class 'gcomp.{cls.__name__}'>"


def _make(name, dtype):
    def __new__(cls, *args, device=None):
        from .tensor import Tensor

        t = Tensor.__new__(Tensor)
        t._storage, t._type = build(dtype, args, device)
        t.requires_grad = False
        return t

    return _LegacyType(name, (), {"dtype": dtype, "__new__": __new__,
                                  "__doc__": f"PyTorch's legacy {dtype} tensor constructor "
                                             "(Note [Legacy constructors] in "
                                             "gcomp/frontend/legacy.py)."})


LEGACY = {name: _make(name, dtype) for name, dtype in _TYPES}


def type_name(t) -> str:
    """``t.type()``: 'torch.FloatTensor', 'torch.cuda.LongTensor', ... (PyTorch's names)."""
    name = _NAME_OF.get(t.dtype, f"{t.dtype.name}Tensor")
    kind = t.device.type
    return f"torch.{name}" if kind == "cpu" else f"torch.{kind}.{name}"


def dtype_of_type(spec):
    """The dtype that ``Tensor.type(spec)`` names: a dtype, a legacy class or its name."""
    if isinstance(spec, T.DType):
        return spec
    if isinstance(spec, _LegacyType):
        return spec.dtype
    if isinstance(spec, str):
        short = spec.rsplit(".", 1)[-1]
        for name, dt in _TYPES:
            if short == name:
                return dt
    raise user_error(GcompError, f"invalid type {spec!r}: use a dtype (gcomp.float32), a legacy "
                     "class (gcomp.LongTensor) or its name ('torch.LongTensor')")
