"""In-place ops: functional underneath, then the tensor's storage is rebound (see Note [Storage
and aliasing] in core/tensor.py and Note [Functionalization] in frontend/tracing.py)."""

from __future__ import annotations

from ..core.dispatch import Mode, TraceInterpreter, user_error
from ..ir import types as T
from ..ir.errors import GcompError
from .tensor import Tensor


def assign(t: Tensor, new: Tensor, check: bool = True) -> Tensor:
    """Make ``t`` hold ``new``'s data (and autograd history), as an in-place op does."""
    from .ops import broadcast_to, cast

    if t._base is not None:
        return _assign_view(t, new)
    if check:
        if t.requires_grad and t._grad_fn is None and Mode.grad_enabled:
            raise user_error(GcompError, "a leaf Variable that requires grad is being used in an "
                             "in-place operation; wrap the update in `with gcomp.no_grad():`")
    if new._type.shape != t._type.shape:
        new = broadcast_to(new, t._type.shape)
    if new._type.dtype != t._type.dtype:
        new = cast(new, t._type.dtype)
    if new.requires_grad and new._grad_fn is None and Mode.grad_enabled:
        # t.copy_(leaf): t must not become that leaf; an identity op gives t its own tape node
        from ..core.prims import reshape

        new = reshape(new, shape=new._type.shape)
    interp = Mode.stack[-1]
    if isinstance(interp, TraceInterpreter):
        from .tracing import assign_traced

        assign_traced(interp, t, new)
    else:
        if t._storage is not new._storage:
            t._storage.data = new._storage.data
        t._storage.version += 1
    if new.requires_grad and Mode.grad_enabled:
        t._grad_fn, t._out_index, t.requires_grad = new._grad_fn, new._out_index, True
    return t


def _assign_view(t: Tensor, new: Tensor) -> Tensor:
    """Write through a view into its root (Note [Views] in shape_ops.py)."""
    from ..core.dispatch import refresh_view
    from .creation import arange
    from .indexing import write_at
    from .shape_ops import reshape

    if not t._view_writable:
        raise user_error(GcompError, "unsupported operation: more than one element of the "
                         "written-to tensor refers to a single memory location (an expand()ed "
                         "view); clone() it before updating it in place")
    root = t._base
    ids = t._view_fn(reshape(arange(root.numel()), root._type.shape))
    if t._view_nograd:
        from .autograd import no_grad

        with no_grad():
            write_at(root, ids, new.detach(), check=False)
    else:
        write_at(root, ids, new)
    refresh_view(t)
    return t


def _inplace(fn):
    def method(self, *args, **kwargs):
        return assign(self, fn(self, *args, **kwargs))

    method.__name__ = fn.__name__ + "_"
    return method


def zero_(t):
    from .ops import full

    return assign(t, full(t._type.shape, 0, t.dtype))


def fill_(t, value):
    from .ops import full

    if isinstance(value, Tensor):
        return assign(t, value)
    return assign(t, full(t._type.shape, value, t.dtype))


def copy_(t, src):
    from .ops import as_tensor

    return assign(t, as_tensor(src))


def check_result_type(result, target, prefix: str = "", hint: str = "") -> None:
    """A result written into ``target`` (an in-place op, ``out=``) must fit its dtype without a
    change of kind, as in torch: a float into an integer tensor, or anything but a bool into a
    bool tensor, is an error rather than a cast."""
    src, dst = result.dtype, target.dtype
    if (src.is_floating_point and not dst.is_floating_point) or (dst == T.bool_ and src != dst):
        raise user_error(GcompError, f"{prefix}result type {src.name} can't be cast to the "
                         f"desired output type {dst.name}{hint}")
