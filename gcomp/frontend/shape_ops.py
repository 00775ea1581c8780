"""Shape ops and indexing with PyTorch's semantics.

Note [Views]
Results that PyTorch makes views (view/reshape, permute/transpose, expand, slicing, split,
narrow, basic indexing, squeeze/unsqueeze) record their root tensor, the root's storage version,
and a function that recomputes them from the root. When the root is updated in place, the next
use of the view recomputes it (the dispatcher checks the version), so the view shows the update
as in PyTorch. An in-place update of a view writes through: the view function applied to an index
tensor tells which root elements the view covers, and the new values are scattered into the root
(indexing.write_at). Views made by expand cover root elements more than once and cannot be
written, as in PyTorch.

Whether PyTorch makes a view or a copy depends on strides (reshape of a transposed tensor copies,
view of one raises), so views carry the strides PyTorch would give them (``_strides``, in elements)
and reshape/view/contiguous decide with PyTorch's own rule (computeStride in ATen).
"""

from __future__ import annotations

import builtins
import math

import numpy as np

from ..core.dispatch import bind, user_error
from ..ir import types as T
from ..ir.errors import GcompError
from .tensor import Tensor, _dim


def contiguous_strides(shape) -> tuple[int, ...]:
    out, acc = [], 1
    for d in reversed(shape):
        out.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(out))


def strides_of(x: Tensor) -> tuple[int, ...]:
    s = x._strides
    return s if s is not None else contiguous_strides(x._type.shape)


def is_contiguous(x: Tensor) -> bool:
    if x._strides is None or x.numel() == 0:
        return True
    want = contiguous_strides(x._type.shape)
    return all(a == b for a, b, d in zip(x._strides, want, x._type.shape) if d != 1)


def _view_strides(old_shape, old_strides, new_shape):
    """ATen's computeStride: the strides of ``new_shape`` viewing the old layout, or None when
    no view exists (then reshape copies and view raises)."""
    if math.prod(old_shape) == 0 or not old_shape:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base = old_strides[-1]
    tensor_numel = view_numel = 1
    for tensor_d in range(len(old_shape) - 1, -1, -1):
        tensor_numel *= old_shape[tensor_d]
        if tensor_d == 0 or (old_shape[tensor_d - 1] != 1 and
                             old_strides[tensor_d - 1] != tensor_numel * chunk_base):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base = old_strides[tensor_d - 1]
                tensor_numel = view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def _view_of(out: Tensor, base: Tensor, fn=None, writable: bool = True, strides=None) -> Tensor:
    """Record that ``out == fn(base)`` is a view of base's root (Note [Views])."""
    if fn is None or out is base:
        return out
    if strides is not None and strides != contiguous_strides(out._type.shape):
        out._strides = tuple(strides)
    if base._base is not None:
        root, inner = base._base, base._view_fn
        writable = writable and base._view_writable

        def full(r, inner=inner, fn=fn):
            return fn(inner(r))
    else:
        root, full = base, fn
    if out._storage is root._storage:
        return out
    out._base = root
    out._base_version = root._storage.version
    out._view_fn = full
    out._view_writable = writable
    return out


def _sizes(args):
    if len(args) == 1 and isinstance(args[0], (list, tuple)):
        return tuple(args[0])
    return tuple(args)


def _infer_shape(shape, numel):
    shape = [int(d) for d in shape]
    if shape.count(-1) > 1:
        raise user_error(GcompError, "only one dimension can be inferred (-1)")
    if -1 in shape:
        rest = math.prod(d for d in shape if d != -1)
        if rest == 0 or numel % rest:
            raise user_error(GcompError, f"shape '{shape}' is invalid for input of size {numel}")
        shape[shape.index(-1)] = numel // rest
    if math.prod(shape) != numel or builtins.any(d < 0 for d in shape):
        raise user_error(GcompError, f"shape '{list(shape)}' is invalid for input of size {numel}")
    return tuple(shape)


def reshape(x: Tensor, *shape) -> Tensor:
    """A view when PyTorch's strides allow one, otherwise a copy (as torch.reshape)."""
    shape = _infer_shape(_sizes(shape), x.numel())
    strides = _view_strides(x._type.shape, strides_of(x), shape)
    if shape == x._type.shape:
        return _view_of(_alias(x), x, lambda b: reshape(b, shape), strides=strides_of(x))
    out = bind("reshape", x, shape=shape)
    if strides is None:
        return out  # a copy: PyTorch copies here too
    return _view_of(out, x, lambda b: reshape(b, shape), strides=strides)


def view(x: Tensor, *shape) -> Tensor:
    shape = _infer_shape(_sizes(shape), x.numel())
    if _view_strides(x._type.shape, strides_of(x), shape) is None:
        raise user_error(GcompError, "view size is not compatible with input tensor's size and "
                         "stride (at least one dimension spans across two contiguous subspaces). "
                         "Use .reshape(...) instead.")
    return reshape(x, shape)


def contiguous(x: Tensor, memory_format=None) -> Tensor:
    """x itself when its (PyTorch) layout is contiguous, else a copy."""
    if is_contiguous(x):
        return x
    return bind("reshape", x, shape=x._type.shape) if x._type.shape else x


def _alias(x: Tensor) -> Tensor:
    """A new tensor object with x's data and autograd identity (a no-op view)."""
    out = Tensor(x._storage, x._type, x.requires_grad)
    out._grad_fn, out._out_index = x._grad_fn, x._out_index
    if x._grad_fn is None and x.requires_grad:
        # a view of a leaf that requires grad: route gradients through an identity op
        from ..core.prims import reshape as _r

        return _r(x, shape=x._type.shape)
    return out


def flatten(x: Tensor, start_dim=0, end_dim=-1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = _dim(start_dim, x.ndim), _dim(end_dim, x.ndim)
    shape = x._type.shape
    return reshape(x, shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:])


def unflatten(x: Tensor, dim, sizes) -> Tensor:
    d = _dim(dim, x.ndim)
    sizes = _infer_shape(sizes, x._type.shape[d])
    return reshape(x, x._type.shape[:d] + sizes + x._type.shape[d + 1:])


def permute(x: Tensor, *dims) -> Tensor:
    dims = tuple(_dim(d, x.ndim) for d in _sizes(dims))
    if sorted(dims) != list(range(x.ndim)):
        raise user_error(GcompError, f"permute: {list(dims)} is not a permutation of "
                         f"{x.ndim} dims")
    out = _alias(x) if dims == tuple(range(x.ndim)) else bind("transpose", x, perm=dims)
    old = strides_of(x)
    return _view_of(out, x, lambda b: permute(b, dims), strides=tuple(old[d] for d in dims))


def transpose(x: Tensor, dim0, dim1) -> Tensor:
    if x.ndim == 0:
        return x
    perm = list(range(x.ndim))
    a, b = _dim(dim0, x.ndim), _dim(dim1, x.ndim)
    perm[a], perm[b] = perm[b], perm[a]
    return permute(x, perm)


swapaxes = transpose


def t(x: Tensor) -> Tensor:
    if x.ndim > 2:
        raise user_error(GcompError, f"t() expects a tensor with <= 2 dimensions, but self is "
                         f"{x.ndim}D")
    return transpose(x, 0, 1) if x.ndim == 2 else x


def squeeze(x: Tensor, dim=None) -> Tensor:
    shape = x._type.shape
    if dim is None:
        dims = [i for i, d in enumerate(shape) if d == 1]
    else:
        dims = [_dim(d, x.ndim) for d in (dim if isinstance(dim, (list, tuple)) else [dim])]
        dims = [d for d in dims if x.ndim and shape[d] == 1]
    return reshape(x, tuple(d for i, d in enumerate(shape) if i not in dims))


def unsqueeze(x: Tensor, dim) -> Tensor:
    d = _dim(dim, x.ndim + 1)
    shape = x._type.shape
    return reshape(x, shape[:d] + (1,) + shape[d:])


def expand(x: Tensor, *sizes) -> Tensor:
    from .ops import broadcast_to

    sizes = _sizes(sizes)
    n = len(sizes) - x.ndim
    if n < 0:
        raise user_error(GcompError, f"expand: the number of sizes ({len(sizes)}) must be at "
                         f"least the tensor's dims ({x.ndim})")
    shape = tuple(x._type.shape[i - n] if s == -1 else s for i, s in enumerate(sizes))
    old = strides_of(x)
    strides = tuple(0 if i < n or x._type.shape[i - n] != s else old[i - n]
                    for i, s in enumerate(shape))
    return _view_of(broadcast_to(x, shape), x, lambda b: expand(b, shape), writable=False,
                    strides=strides)


def expand_as(x, other):
    return expand(x, other.shape)


def broadcast_to(x, shape):
    return expand(x, tuple(shape))


def repeat(x: Tensor, *sizes) -> Tensor:
    from .ops import broadcast_to

    sizes = _sizes(sizes)
    if len(sizes) < x.ndim:
        raise user_error(GcompError, "repeat: number of repeat dims can not be smaller than the "
                         "number of tensor dims")
    x = reshape(x, (1,) * (len(sizes) - x.ndim) + x._type.shape)
    inter = []
    for r, d in zip(sizes, x._type.shape):
        inter += [r, d]
    y = broadcast_to(reshape(x, tuple(v for d in x._type.shape for v in (1, d))), tuple(inter))
    return reshape(y, tuple(r * d for r, d in zip(sizes, x._type.shape)))


def cat(tensors, dim=0) -> Tensor:
    from .ops import promote

    tensors = [t for t in tensors]
    if not tensors:
        raise user_error(GcompError, "cat(): expected a non-empty list of Tensors")
    nonempty = [t for t in tensors if not (t.ndim == 1 and t.shape[0] == 0)] or tensors[:1]
    d = _dim(dim, nonempty[0].ndim)
    dtype = T.result_type(*[(t.dtype, 1) for t in nonempty])
    from .ops import cast

    xs = [cast(t, dtype) for t in nonempty]
    ref = xs[0]._type.shape
    for x in xs:
        if x.ndim != len(ref) or builtins.any(a != b for i, (a, b) in
                                                enumerate(zip(x._type.shape, ref)) if i != d):
            raise user_error(GcompError, f"cat(): sizes of tensors must match except in dimension "
                             f"{d}; got {list(ref)} and {list(x.shape)}")
    if len(xs) == 1:
        return xs[0]
    _ = promote
    return bind("concatenate", *xs, axis=d)


concat = concatenate = cat


def stack(tensors, dim=0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise user_error(GcompError, "stack expects a non-empty TensorList")
    shape = tensors[0].shape
    for t_ in tensors:
        if t_.shape != shape:
            raise user_error(GcompError, f"stack expects each tensor to be equal size, but got "
                             f"{list(shape)} and {list(t_.shape)}")
    d = _dim(dim, len(shape) + 1)
    return cat([unsqueeze(t_, d) for t_ in tensors], d)


def narrow(x, dim, start, length):
    d = _dim(dim, x.ndim)
    start = start % x.shape[d] if start < 0 else start
    return _slice_dim(x, d, start, start + length, 1)


def _slice_dim(x, d, start, stop, step):
    shape = x._type.shape
    if start == 0 and stop == shape[d] and step == 1:
        out = _alias(x)
    else:
        starts = tuple(start if i == d else 0 for i in range(x.ndim))
        limits = tuple(stop if i == d else s for i, s in enumerate(shape))
        strides = tuple(step if i == d else 1 for i in range(x.ndim))
        out = bind("slice", x, start=starts, limit=limits, stride=strides)
    strides = tuple(st * step if i == d else st for i, st in enumerate(strides_of(x)))
    return _view_of(out, x, lambda b: _slice_dim(b, d, start, stop, step), strides=strides)


def split(x, split_size_or_sections, dim=0):
    d = _dim(dim, x.ndim)
    n = x._type.shape[d]
    if isinstance(split_size_or_sections, int):
        s = split_size_or_sections
        if s <= 0:
            raise user_error(GcompError, "split: split_size must be positive")
        sizes = [builtins.min(s, n - i) for i in range(0, n, s)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if builtins.sum(sizes) != n:
            raise user_error(GcompError, f"split_with_sizes expects split_sizes to sum exactly to "
                             f"{n} (input tensor's size at dimension {d}), but got {sizes}")
    out, start = [], 0
    for s in sizes:
        out.append(_slice_dim(x, d, start, start + s, 1))
        start += s
    return tuple(out)


def chunk(x, chunks, dim=0):
    d = _dim(dim, x.ndim)
    n = x._type.shape[d]
    size = -(-n // chunks) if chunks > 0 else 0
    if size == 0:
        return (x,)
    return split(x, size, d)


def unbind(x, dim=0):
    d = _dim(dim, x.ndim)
    return tuple(squeeze(p, d) for p in split(x, 1, d))


def flip(x, dims):
    dims = tuple(_dim(d, x.ndim) for d in (dims if isinstance(dims, (list, tuple)) else [dims]))
    return bind("rev", x, dims=dims)


def roll(x, shifts, dims=None):
    if dims is None:
        return reshape(roll(flatten(x), shifts, 0), x.shape)
    shifts = shifts if isinstance(shifts, (list, tuple)) else [shifts]
    dims = dims if isinstance(dims, (list, tuple)) else [dims]
    for s, d in zip(shifts, dims):
        d = _dim(d, x.ndim)
        n = x.shape[d]
        if n == 0:
            continue
        s %= n
        if s:
            a, b = _slice_dim(x, d, n - s, n, 1), _slice_dim(x, d, 0, n - s, 1)
            x = cat([a, b], d)
    return x


# -- gathers ---------------------------------------------------------------------------------
def _wrap_index(idx: Tensor, size: int) -> Tensor:
    """Negative indices count from the end; out-of-range ones are an error when they are known."""
    from .ops import add, cast, lt, where

    idx = cast(idx, T.int64)
    if not idx.is_traced and idx.numel():
        a = np.asarray(idx._storage.data)
        if (a >= size).any() or (a < -size).any():
            bad = a[(a >= size) | (a < -size)].flat[0]
            raise user_error(GcompError, f"index {bad} is out of bounds for dimension with size "
                             f"{size}")
        if not (a < 0).any():
            return idx
    return where(lt(idx, 0), add(idx, size), idx)


def index_select(x, dim, index):
    d = _dim(dim, x.ndim)
    if index.ndim > 1:
        raise user_error(GcompError, "index_select(): index must be a vector")
    return bind("take", x, _wrap_index(index, x.shape[d]), axis=d)


def take(x, index):
    return bind("take", flatten(x), _wrap_index(index, x.numel()), axis=0)


def gather(x, dim, index):
    """torch.gather: out[i][j] = x[i][index[i][j]] for dim=1 (index may be smaller than x)."""
    from .ops import add, mul

    d = _dim(dim, x.ndim)
    if index.ndim != x.ndim:
        raise user_error(GcompError, "gather(): index must have as many dims as the input")
    idx = _wrap_index(index, x.shape[d])
    # linear index into the flattened input
    strides = [math.prod(x._type.shape[i + 1:]) for i in range(x.ndim)]
    lin = None
    for i in range(x.ndim):
        if i == d:
            part = mul(idx, strides[i])
        else:
            n = index.shape[i]
            shape = [1] * x.ndim
            shape[i] = n
            part = reshape(bind("iota", shape=(n,), dim=0, dtype=T.int64), shape)
            part = mul(part, strides[i])
        lin = part if lin is None else add(lin, part)
    return bind("take", flatten(x), lin, axis=0)


take_along_dim = None  # set below


def _take_along_dim(x, indices, dim):
    return gather(x, dim, indices)


take_along_dim = _take_along_dim


def nonzero(x, as_tuple=False):
    if x.is_traced:
        from .tensor import _concrete_error

        raise _concrete_error("nonzero() (its result's shape depends on the data)")
    from .creation import tensor

    idx = np.nonzero(np.asarray(x._storage.data))
    if as_tuple:
        return tuple(tensor(i.astype(np.int64)) for i in idx)
    return tensor(np.stack(idx, axis=1).astype(np.int64) if idx else np.zeros((0, 0), np.int64))


def masked_select(x, mask):
    return x[mask.expand(x.shape) if mask.shape != x.shape else mask]


def tril(x, diagonal=0):
    return _tri(x, diagonal, lower=True)


def triu(x, diagonal=0):
    return _tri(x, diagonal, lower=False)


def _tri(x, k, lower):
    from .ops import add, ge, le, where, full

    n, m = x.shape[-2:]
    rows = bind("iota", shape=(n, m), dim=0, dtype=T.int64)
    cols = bind("iota", shape=(n, m), dim=1, dtype=T.int64)
    keep = le(cols, add(rows, k)) if lower else ge(cols, add(rows, k))
    return where(keep, x, full((), 0, x.dtype))


from .indexing import getitem, setitem  # noqa: E402,F401
