"""``out=``: PyTorch's functions write their result into a given tensor.

``gcomp.X(..., out=t)`` computes ``gcomp.X(...)`` and writes it into ``t`` (a tuple of tensors
for functions that return several, like ``max(x, dim)``), then returns ``t``. As in torch: the
result must be castable to ``t``'s dtype without losing its kind (a float result into an integer
tensor is an error), a ``t`` of another shape is resized (its storage rebound, so views of the
old ``t`` keep the old values), and ``out=`` does not take part in autograd (an error when the
result requires grad). The wrapper is applied once, in gcomp/__init__.py, to the functions of the
torch namespace; Tensor methods have no ``out``.
"""

from __future__ import annotations

import functools

from ..core.dispatch import Mode, user_error
from ..ir.errors import GcompError
from .tensor import Tensor


def write(name: str, result, out):
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result):
            raise user_error(GcompError, f"{name}(): out= must be a tuple of {len(result)} "
                             "tensors for a function that returns several")
        for r, o in zip(result, out):
            write(name, r, o)
        return out
    if not isinstance(result, Tensor):
        raise user_error(GcompError, f"{name}() does not take out= (it does not return a "
                         "tensor)")
    if not isinstance(out, Tensor):
        raise user_error(GcompError, f"{name}(): out= must be a tensor, got "
                         f"{type(out).__name__}")
    if Mode.grad_enabled and (result.requires_grad or out.requires_grad):
        raise user_error(GcompError, f"{name}(): functions with out=... arguments don't support "
                         "automatic differentiation; call it without out= (y = gcomp."
                         f"{name}(...)) or under gcomp.no_grad()")
    from .inplace import assign, check_result_type
    from .ops import cast

    check_result_type(result, out, f"{name}(): ")
    value = result if result.dtype == out.dtype else cast(result, out.dtype)
    if tuple(out.shape) != tuple(result.shape):
        out.data = value  # torch resizes out (Tensor.data rebinds the storage)
    else:
        assign(out, value)
    return out


def with_out(fn):
    """``fn`` taking ``out=`` (Note at the top of this module)."""
    @functools.wraps(fn)
    def f(*args, out=None, **kwargs):
        if out is None:
            return fn(*args, **kwargs)
        return write(fn.__name__, fn(*args, **kwargs), out)

    f.__wrapped_out__ = True
    return f


_MODULES = ("gcomp.frontend.ops", "gcomp.frontend.shape_ops", "gcomp.frontend.einsum",
            "gcomp.frontend.sorting", "gcomp.frontend.random_ops")
_NOT = {"tensor", "as_tensor", "from_numpy", "is_tensor", "allclose", "equal", "is_floating_point",
        "is_complex", "is_nonzero", "broadcast_shapes", "result_type", "promote_types",
        "can_cast", "numel"}


def wrap_namespace(namespace: dict) -> None:
    """Give the namespace's tensor functions ``out=`` where they lack it."""
    import inspect

    for name, fn in list(namespace.items()):
        if (not inspect.isfunction(fn) or name.startswith("_") or name in _NOT
                or getattr(fn, "__module__", None) not in _MODULES
                or getattr(fn, "__wrapped_out__", False)):
            continue
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            continue
        if "out" in params:
            continue
        namespace[name] = with_out(fn)
