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



# -- scatters (torch.scatter and friends) --------------------------------------------------------
# Each is one ``scatter``/``scatter_add`` primitive on the flattened input at linear indices
# (as gather is one ``take``), so they are differentiable and compile like any other op.
def _iota(n: int, shape) -> Tensor:
    return reshape(bind("iota", shape=(n,), dim=0, dtype=T.int64), shape)


def _linear_index(x: Tensor, d: int, index: Tensor, name: str) -> Tensor:
    """Flat indices into x of torch.scatter/gather's ``x[i][index[i][j]]`` (index may be
    smaller than x in every dim)."""
    from .ops import add, mul

    if index.dtype != T.int64:
        raise user_error(GcompError, f"{name}(): Expected dtype int64 for index")
    if index.ndim != x.ndim:
        raise user_error(GcompError, f"{name}(): Index tensor must have the same number of "
                         f"dimensions as self tensor ({index.ndim} vs {x.ndim})")
    for i, (a, b) in enumerate(zip(index._type.shape, x._type.shape)):
        if i != d and a > b:
            raise user_error(GcompError, f"{name}(): Expected index {list(index.shape)} to be "
                             f"smaller than self {list(x.shape)} apart from dimension {d}")
    idx = _wrap_index(index, x.shape[d])
    strides = contiguous_strides(x._type.shape)
    lin = None
    for i in range(x.ndim):
        if i == d:
            part = mul(idx, strides[i])
        else:
            shape = [1] * x.ndim
            shape[i] = index.shape[i]
            part = mul(_iota(index.shape[i], shape), strides[i])
        lin = part if lin is None else add(lin, part)
    return lin if lin is not None else idx


def _src_for(src, index: Tensor, x: Tensor, name: str) -> Tensor:
    """The leading ``index.shape`` block of src (or a scalar value filled to that shape), in x's
    dtype."""
    from .ops import as_tensor, cast, full

    if not isinstance(src, Tensor):
        return full(index._type.shape, src, x.dtype)
    if src.ndim == 0:
        from .ops import broadcast_to

        return broadcast_to(cast(src, x.dtype), index._type.shape)
    src = as_tensor(src)
    if src.ndim != index.ndim or builtins.any(a > b for a, b in zip(index._type.shape,
                                                                   src._type.shape)):
        raise user_error(GcompError, f"{name}(): Expected index {list(index.shape)} to be "
                         f"smaller than src {list(src.shape)}")
    if src._type.shape != index._type.shape:
        src = bind("slice", src, start=(0,) * src.ndim, limit=index._type.shape,
                   stride=(1,) * src.ndim)
    return cast(src, x.dtype)


def _scatter_flat(x, lin, upd, mode):
    flat = reshape(x, (-1,))
    if mode == "add":
        out = bind("scatter_add", flat, lin, upd, axis=0)
    else:
        out = bind("scatter", flat, lin, upd, axis=0, mode=mode)
    return reshape(out, x._type.shape)


_REDUCE_MODES = {"sum": "add", "add": "add", "prod": "mul", "multiply": "mul", "amax": "max",
                 "amin": "min", "mean": "mean"}


def _as_1d(input, index, src):
    """torch treats a 0-d index (and src) of a 1-d input as 1-d of one element
    (``zeros(10).scatter_(0, tensor(3), value=1)`` is a one-hot)."""
    if input.ndim == 1 and isinstance(index, Tensor) and index.ndim == 0:
        index = reshape(index, (1,))
        if isinstance(src, Tensor) and src.ndim == 0:
            src = reshape(src, (1,))
    return index, src


def scatter(input, dim, index, src=None, value=None, *, reduce=None):
    """torch.scatter(input, dim, index, src | value, reduce=None|'add'|'multiply')."""
    if src is None:
        src = value
    if src is None:
        raise user_error(GcompError, "scatter(): expected a src tensor or a value")
    index, src = _as_1d(input, index, src)
    if index.numel() == 0:
        return input
    d = _dim(dim, input.ndim)
    lin = _linear_index(input, d, index, "scatter")
    upd = _src_for(src, index, input, "scatter")
    if reduce is None:
        return _scatter_flat(input, lin, upd, "set")
    if reduce not in ("add", "multiply"):
        raise user_error(GcompError, f"scatter(): reduce argument must be either add or "
                         f"multiply, got {reduce!r}")
    return _scatter_flat(input, lin, upd, _REDUCE_MODES[reduce])


def scatter_add(input, dim, index, src):
    index, src = _as_1d(input, index, src)
    if index.numel() == 0:
        return input
    d = _dim(dim, input.ndim)
    lin = _linear_index(input, d, index, "scatter_add")
    return _scatter_flat(input, lin, _src_for(src, index, input, "scatter_add"), "add")


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True):
    """torch.scatter_reduce with reduce in sum, prod, mean, amax, amin."""
    from .ops import add, cast, div, full, gt, where

    if reduce not in ("sum", "prod", "mean", "amax", "amin"):
        raise user_error(GcompError, f"scatter_reduce(): reduce argument must be one of sum, "
                         f"prod, mean, amax, amin, got {reduce!r}")
    if index.numel() == 0:
        return input
    d = _dim(dim, input.ndim)
    lin = _linear_index(input, d, index, "scatter_reduce")
    upd = _src_for(src, index, input, "scatter_reduce")
    shape, dt = input._type.shape, input.dtype
    hit = _scatter_flat(full(shape, 0, T.int64), lin, full(index._type.shape, 1, T.int64), "add")
    if include_self:
        base = input
    else:
        if reduce in ("sum", "mean"):
            ident = 0
        elif reduce == "prod":
            ident = 1
        elif dt.is_floating_point:
            ident = -math.inf if reduce == "amax" else math.inf
        else:
            info = np.iinfo(np.int64 if dt == T.int64 else str(dt.name))
            ident = info.min if reduce == "amax" else info.max
        base = full(shape, ident, dt)
    out = _scatter_flat(base, lin, upd, _REDUCE_MODES[reduce] if reduce != "mean" else "add")
    if reduce == "mean":
        count = add(hit, 1) if include_self else where(gt(hit, 0), hit, 1)
        out = div(out, cast(count, dt)) if dt.is_floating_point else \
            div(out, count, rounding_mode="floor")
    if not include_self:
        out = where(gt(hit, 0), out, input)
    return cast(out, dt)


def _index_vector(x, d, index, name):
    if index.ndim > 1:
        raise user_error(GcompError, f"{name}(): Index is supposed to be a vector")
    if index.dtype.is_floating_point or index.dtype == T.bool_:
        raise user_error(GcompError, f"{name}(): Expected dtype int32/int64 for index")
    return _wrap_index(reshape(index, (-1,)), x.shape[d] if x.ndim else 1)


def _source_for(x, d, idx, source, name):
    from .ops import as_tensor, cast

    source = as_tensor(source)
    want = x._type.shape[:d] + idx._type.shape + x._type.shape[d + 1:]
    if source.numel() != math.prod(want) or (source.ndim != len(want) and source.ndim != 0
                                             and x.ndim != 0):
        raise user_error(GcompError, f"{name}(): source {list(source.shape)} does not match "
                         f"self {list(x.shape)} with {idx.shape[0]} indices along dimension {d}")
    return reshape(cast(source, x.dtype), want)


def index_add(input, dim, index, source, *, alpha=1):
    """torch.index_add: input[..., index[i], ...] += alpha * source[..., i, ...]."""
    from .ops import mul

    x = reshape(input, (1,)) if input.ndim == 0 else input
    d = _dim(dim, x.ndim)
    idx = _index_vector(x, d, index, "index_add")
    src = _source_for(x, d, idx, source, "index_add")
    if alpha != 1:
        src = mul(src, alpha)
    return reshape(bind("scatter_add", x, idx, src, axis=d), input._type.shape)


def index_copy(input, dim, index, source):
    x = reshape(input, (1,)) if input.ndim == 0 else input
    d = _dim(dim, x.ndim)
    idx = _index_vector(x, d, index, "index_copy")
    src = _source_for(x, d, idx, source, "index_copy")
    return reshape(bind("scatter", x, idx, src, axis=d, mode="set"), input._type.shape)


def index_fill(input, dim, index, value):
    from .ops import as_tensor, cast, full, gt, where

    x = reshape(input, (1,)) if input.ndim == 0 else input
    d = _dim(dim, x.ndim)
    idx = _index_vector(x, d, index, "index_fill")
    n = x.shape[d]
    hit = bind("scatter_add", full((n,), 0, T.int32), idx, full(idx._type.shape, 1, T.int32),
               axis=0)
    mask = reshape(gt(hit, 0), tuple(n if i == d else 1 for i in range(x.ndim)))
    if isinstance(value, Tensor):
        if value.ndim:
            raise user_error(GcompError, "index_fill_(): Only supports 0-dimensional value "
                             f"tensor, but got a tensor with {value.ndim} dimension(s)")
        value = cast(value, x.dtype)
    else:
        value = cast(as_tensor(value), x.dtype) if x.dtype != T.bool_ else bool(value)
    return reshape(where(mask, value, x), input._type.shape)


def _flat_ids(x: Tensor, key) -> Tensor:
    from .creation import arange

    return getitem(reshape(arange(x.numel()), x._type.shape), key)


def _put(x, ids, values, accumulate):
    from .ops import as_tensor, broadcast_to, cast

    vals = broadcast_to(cast(as_tensor(values), x.dtype), ids._type.shape)
    return _scatter_flat(x, ids, vals, "add" if accumulate else "set")


def index_put(input, indices, values, accumulate=False):
    """torch.index_put: input[indices] = values (or += with accumulate), out of place."""
    if not isinstance(indices, (tuple, list)):
        raise user_error(GcompError, "index_put(): indices must be a tuple of tensors")
    return _put(input, _flat_ids(input, tuple(indices)), values, accumulate)


def put(input, index, source, accumulate=False):
    """torch.put: input.flatten()[index] = source (or += with accumulate)."""
    from .ops import as_tensor

    ids = _wrap_index(index, input.numel())
    source = as_tensor(source)
    if source.numel() != ids.numel():
        raise user_error(GcompError, f"put_(): Expected source and index to have the same number "
                         f"of elements, but got {source.numel()} and {ids.numel()}")
    return _put(input, ids, reshape(source, ids._type.shape), accumulate)


def masked_fill(input, mask, value):
    """torch.masked_fill: the result keeps input's dtype."""
    from .ops import cast, where

    if isinstance(value, Tensor) and value.ndim:
        raise user_error(GcompError, "masked_fill only supports a 0-dimensional value tensor, "
                         f"but got tensor with {value.ndim} dimension(s)")
    if mask.dtype != T.bool_:
        raise user_error(GcompError, f"masked_fill only supports boolean masks, but got mask "
                         f"with dtype {mask.dtype.name}")
    if isinstance(value, Tensor):
        value = cast(value, input.dtype)
    else:  # a constant of the result's shape: what the attention patterns (passes) match
        from .ops import broadcast_shapes, full

        value = full(broadcast_shapes(input._type.shape, mask._type.shape), value, input.dtype)
    return cast(where(mask, value, input), input.dtype)


def masked_scatter(input, mask, source):
    """torch.masked_scatter: the elements where mask is True, in order, from source's first
    elements (a cumsum of the mask and a take, so it works on traced masks)."""
    from .ops import add, broadcast_shapes, broadcast_to, cast, cumsum, minimum, where

    if mask.dtype != T.bool_:
        raise user_error(GcompError, "masked_scatter_ only supports boolean masks, but got mask "
                         f"with dtype {mask.dtype.name}")
    shape = broadcast_shapes(input._type.shape, mask._type.shape)
    x, m = broadcast_to(input, shape), reshape(broadcast_to(mask, shape), (-1,))
    src = reshape(cast(source, input.dtype), (-1,))
    if not m.is_traced and src.numel() < int(np.asarray(m._storage.data).sum()):
        raise user_error(GcompError, "masked_scatter: expected source to have at least as many "
                         "elements as there are True values in mask")
    pos = minimum(add(cumsum(m, 0), -1), builtins.max(src.numel() - 1, 0))
    pos = where(m, pos, 0)
    vals = bind("take", src, pos, axis=0) if src.numel() else reshape(x, (-1,))
    return reshape(where(m, vals, reshape(x, (-1,))), shape)


# -- diagonals ----------------------------------------------------------------------------------
def _diag_ids(n: int, m: int, offset: int) -> np.ndarray:
    """Flat indices of the ``offset`` diagonal of an n x m matrix."""
    length = builtins.max(0, builtins.min(n, m - offset) if offset >= 0 else
                          builtins.min(n + offset, m))
    rows = np.arange(length) + builtins.max(-offset, 0)
    return rows * m + rows + offset


def diagonal(input, offset=0, dim1=0, dim2=1):
    """torch.diagonal: the diagonal of dims (dim1, dim2) as the last dim; a view."""
    from .creation import tensor

    d1, d2 = _dim(dim1, input.ndim), _dim(dim2, input.ndim)
    if d1 == d2:
        raise user_error(GcompError, f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rest = [i for i in range(input.ndim) if i not in (d1, d2)]
    y = permute(input, rest + [d1, d2])
    n, m = y._type.shape[-2:]
    flat = reshape(y, y._type.shape[:-2] + (n * m,))
    out = bind("take", flat, tensor(_diag_ids(n, m, offset)), axis=flat.ndim - 1)
    old = strides_of(input)
    strides = tuple(old[i] for i in rest) + (old[d1] + old[d2],)
    return _view_of(out, input, lambda b: diagonal(b, offset, d1, d2), strides=strides)


def diag_embed(input, offset=0, dim1=-2, dim2=-1):
    """torch.diag_embed: the last dim of input on the ``offset`` diagonal of new dims
    (dim1, dim2) (a scatter_add into zeros)."""
    from .creation import tensor
    from .ops import full

    n = input.shape[-1] if input.ndim else 1
    x = reshape(input, (1,)) if input.ndim == 0 else input
    size = n + builtins.abs(offset)
    batch = x._type.shape[:-1]
    ids = tensor(_diag_ids(size, size, offset))
    out = bind("scatter_add", full(batch + (size * size,), 0, x.dtype), ids, x, axis=len(batch))
    out = reshape(out, batch + (size, size))
    nd = out.ndim
    d1, d2 = _dim(dim1, nd), _dim(dim2, nd)
    if d1 == d2:
        raise user_error(GcompError, f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return movedim(out, (nd - 2, nd - 1), (d1, d2))


def diag(input, diagonal=0):
    """torch.diag: a vector to a matrix with it on the ``diagonal``, a matrix to its diagonal."""
    if input.ndim == 1:
        return diag_embed(input, diagonal)
    if input.ndim == 2:
        return globals()["diagonal"](input, diagonal)
    raise user_error(GcompError, f"diag(): Supports 1D or 2D tensors. Got {input.ndim}D")


def diagflat(input, offset=0):
    return diag_embed(reshape(input, (-1,)), offset)


def trace(input):
    from .ops import sum as _sum

    if input.ndim != 2:
        raise user_error(GcompError, f"trace: expected a matrix, but got tensor with dim "
                         f"{input.ndim}")
    return _sum(diagonal(input))


def fill_diagonal_(input, fill_value, wrap=False):
    """In place: the main diagonal (of all dims at once) set to fill_value."""
    from .creation import tensor
    from .inplace import assign

    shape = input._type.shape
    if input.ndim < 2:
        raise user_error(GcompError, "fill_diagonal_: dimensions must larger than 1")
    if input.ndim > 2 and len(set(shape)) != 1:
        raise user_error(GcompError, "fill_diagonal_: all dimensions of input must be of equal "
                         "length")
    step = builtins.sum(contiguous_strides(shape))
    n = builtins.min(shape)
    if input.ndim == 2 and wrap:
        ids = np.arange(0, input.numel(), step)
    else:
        ids = np.arange(n) * step
    return assign(input, _put(input, tensor(ids.astype(np.int64)), fill_value, False))


def _tri_indices(row, col, offset, dtype, upper):
    from .creation import tensor

    r, c = (np.triu_indices if upper else np.tril_indices)(row, offset, col)
    return tensor(np.stack([r, c]).astype(np.int64), dtype=dtype or T.int64)


def tril_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    return _tri_indices(row, col, offset, dtype, upper=False)


def triu_indices(row, col, offset=0, *, dtype=None, device=None, layout=None):
    return _tri_indices(row, col, offset, dtype, upper=True)


# -- more shape helpers -------------------------------------------------------------------------
def movedim(input, source, destination):
    """torch.movedim / moveaxis: dims ``source`` moved to positions ``destination``."""
    src = list(source) if isinstance(source, (list, tuple)) else [source]
    dst = list(destination) if isinstance(destination, (list, tuple)) else [destination]
    if len(src) != len(dst):
        raise user_error(GcompError, f"movedim: Invalid source or destination dims: source "
                         f"({src} dims) should contain the same number of dims as destination "
                         f"({dst} dims)")
    nd = input.ndim
    src, dst = [_dim(d, nd) for d in src], [_dim(d, nd) for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise user_error(GcompError, "movedim: repeated dim in source or destination")
    order = [None] * nd
    for s_, d_ in zip(src, dst):
        order[d_] = s_
    rest = iter(i for i in range(nd) if i not in src)
    order = [o if o is not None else next(rest) for o in order]
    return permute(input, order)


moveaxis = movedim
swapdims = transpose


def ravel(input):
    return reshape(contiguous(input), (-1,))


def select(input, dim, index):
    """torch.select: the slice at ``index`` of ``dim``, without that dim; a view."""
    d = _dim(dim, input.ndim)
    n = input.shape[d]
    if not -n <= index < n:
        raise user_error(GcompError, f"select(): index {index} out of range for tensor of size "
                         f"{list(input.shape)} at dimension {d}")
    index %= n
    return squeeze(_slice_dim(input, d, index, index + 1, 1), d)


def _ids_like(x):
    from .creation import arange

    return reshape(arange(x.numel()), x._type.shape)


def select_scatter(input, src, dim, index):
    """torch.select_scatter: input with ``input.select(dim, index)`` replaced by src."""
    ids = select(_ids_like(input), dim, index)
    _check_embed(src, ids, "select_scatter")
    return _put(input, ids, src, False)


def slice_scatter(input, src, dim=0, start=None, end=None, step=1):
    """torch.slice_scatter: input with ``input[..., start:end:step, ...]`` replaced by src."""
    d = _dim(dim, input.ndim)
    s, e, st = slice(start, end, step).indices(input.shape[d])
    ids = _slice_dim(_ids_like(input), d, s, builtins.max(e, s), st)
    _check_embed(src, ids, "slice_scatter")
    return _put(input, ids, src, False)


def _check_embed(src, ids, name):
    if tuple(src.shape) != tuple(ids.shape):
        raise user_error(GcompError, f"{name}(): expected src to have a size equal to the slice "
                         f"of self. src size = {list(src.shape)}, slice size = {list(ids.shape)}")


def _atleast(nd, tensors):
    from .ops import as_tensor

    one = len(tensors) == 1 and not isinstance(tensors[0], (list, tuple))
    ts = tensors[0] if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) else tensors
    out = []
    for t_ in ts:
        t_ = as_tensor(t_)
        if t_.ndim < nd:
            shape = t_._type.shape
            if nd == 3 and t_.ndim == 1:
                shape = (1,) + shape + (1,)
            elif nd == 3 and t_.ndim == 2:
                shape = shape + (1,)
            else:
                shape = (1,) * (nd - t_.ndim) + shape
            t_ = reshape(t_, shape)
        out.append(t_)
    return out[0] if one else tuple(out)


def atleast_1d(*tensors):
    return _atleast(1, tensors)


def atleast_2d(*tensors):
    return _atleast(2, tensors)


def atleast_3d(*tensors):
    return _atleast(3, tensors)


def hstack(tensors):
    ts = atleast_1d(list(tensors))
    return cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors):
    return cat(atleast_2d(list(tensors)), 0)


row_stack = vstack


def dstack(tensors):
    return cat(atleast_3d(list(tensors)), 2)


def column_stack(tensors):
    ts = [reshape(t_, (t_.numel(), 1)) if t_.ndim <= 1 else t_ for t_ in tensors]
    return cat(ts, 1)


def tensor_split(input, indices_or_sections, dim=0):
    """torch.tensor_split: n nearly equal parts (the first ones one longer), or the parts
    between the given indices."""
    d = _dim(dim, input.ndim)
    n = input.shape[d]
    ios = indices_or_sections
    if isinstance(ios, Tensor):
        ios = ios.tolist() if ios.ndim else int(ios.item())
    if isinstance(ios, int):
        if ios <= 0:
            raise user_error(GcompError, f"tensor_split(): number of sections must be larger "
                             f"than 0, got {ios}")
        q, r = divmod(n, ios)
        bounds, start = [], 0
        for i in range(ios):
            start += q + (1 if i < r else 0)
            bounds.append(start)
        bounds = bounds[:-1]
    else:
        bounds = list(ios)
    out, start = [], 0
    for b in list(bounds) + [n]:
        b = builtins.min(builtins.max(b if b >= 0 else b + n, 0), n)
        out.append(_slice_dim(input, d, builtins.min(start, b), b, 1))
        start = builtins.max(start, b)
    return tuple(out)


def _split_along(name, input, ios, dim, min_ndim):
    if input.ndim < min_ndim:
        raise user_error(GcompError, f"torch.{name} requires a tensor with at least {min_ndim} "
                         f"dimension, but got a tensor with {input.ndim} dimensions!")
    if isinstance(ios, int) and input.shape[dim] % ios:
        raise user_error(GcompError, f"torch.{name} attempted to split along dimension {dim}, "
                         f"but the size of the dimension {input.shape[dim]} is not divisible by "
                         f"the split_size {ios}!")
    return tensor_split(input, ios, dim)


def hsplit(input, indices_or_sections):
    return _split_along("hsplit", input, indices_or_sections, 0 if input.ndim == 1 else 1, 1)


def vsplit(input, indices_or_sections):
    return _split_along("vsplit", input, indices_or_sections, 0, 2)


def dsplit(input, indices_or_sections):
    return _split_along("dsplit", input, indices_or_sections, 2, 3)


def meshgrid(*tensors, indexing="ij"):
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise user_error(GcompError, f"torch.meshgrid: indexing must be one of \"xy\" or \"ij\", "
                         f"but received: {indexing}")
    for t_ in tensors:
        if t_.ndim > 1:
            raise user_error(GcompError, "torch.meshgrid: Expected 0D or 1D tensor in the tensor "
                             "list")
    ts = [reshape(t_, (-1,)) for t_ in tensors]
    swap = indexing == "xy" and len(ts) >= 2
    if swap:
        ts[0], ts[1] = ts[1], ts[0]
    shape = tuple(t_.shape[0] for t_ in ts)
    out = [expand(reshape(t_, tuple(-1 if j == i else 1 for j in range(len(ts)))), shape)
           for i, t_ in enumerate(ts)]
    if swap:
        out[0], out[1] = out[1], out[0]
    return tuple(out)


def broadcast_tensors(*tensors):
    from .ops import broadcast_shapes as _bs

    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    shape = _bs(*[t_._type.shape for t_ in tensors])
    return tuple(expand(t_, shape) for t_ in tensors)


def broadcast_shapes(*shapes):
    from .ops import broadcast_shapes as _bs
    from .tensor import Size

    return Size(_bs(*[(s,) if isinstance(s, int) else tuple(s) for s in shapes]))


def rot90(input, k=1, dims=(0, 1)):
    if len(dims) != 2:
        raise user_error(GcompError, f"expected total rotation dims == 2, but got dims = "
                         f"{len(dims)}")
    d0, d1 = _dim(dims[0], input.ndim), _dim(dims[1], input.ndim)
    if d0 == d1:
        raise user_error(GcompError, f"expected rotation dims to be different, but got dim0 = "
                         f"{d0} and dim1 = {d1}")
    k %= 4
    if k == 1:
        return transpose(flip(input, d1), d0, d1)
    if k == 2:
        return flip(input, (d0, d1))
    if k == 3:
        return transpose(flip(input, d0), d0, d1)
    return _alias(input)


def fliplr(input):
    if input.ndim < 2:
        raise user_error(GcompError, "Input must be >= 2-d.")
    return flip(input, 1)


def flipud(input):
    if input.ndim < 1:
        raise user_error(GcompError, "Input must be >= 1-d.")
    return flip(input, 0)


def cartesian_prod(*tensors):
    if len(tensors) == 1:
        return tensors[0]
    return stack([reshape(g, (-1,)) for g in meshgrid(*tensors)], 1)


def combinations(input, r=2, with_replacement=False):
    import itertools

    from .creation import tensor

    if input.ndim != 1:
        raise user_error(GcompError, f"Expect a 1D vector, but got shape {list(input.shape)}")
    n = input.shape[0]
    make = itertools.combinations_with_replacement if with_replacement else \
        itertools.combinations
    combos = np.array(list(make(range(n), r)), dtype=np.int64).reshape(-1, r)
    if r == 0:
        combos = np.zeros((0,), np.int64)
    return bind("take", input, tensor(combos), axis=0)


def unravel_index(indices, shape):
    from .ops import as_tensor, floor_divide, remainder

    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    idx = as_tensor(indices)
    if idx.dtype.is_floating_point or idx.dtype == T.bool_:
        raise user_error(GcompError, "expected 'indices' to be integer dtype, but got "
                         f"{idx.dtype.name}")
    n = math.prod(shape)
    if not idx.is_traced and idx.numel():
        a = np.asarray(idx._storage.data)
        if (a >= n).any() or (a < -n).any():
            raise user_error(GcompError, "index out of bounds in unravel_index")
    idx = remainder(idx, n) if n else idx
    strides = contiguous_strides(shape)
    return tuple(remainder(floor_divide(idx, st), sz) for st, sz in zip(strides, shape))


def block_diag(*tensors):
    """torch.block_diag: the matrices (0-d and 1-d inputs as 1 x n) on the diagonal."""
    from .ops import as_tensor, cast

    ts = []
    for t_ in tensors:
        t_ = as_tensor(t_)
        if t_.ndim > 2:
            raise user_error(GcompError, f"torch.block_diag: Input tensors must have 2 or fewer "
                             f"dimensions. Input {len(ts)} has {t_.ndim} dimensions")
        ts.append(reshape(t_, (1, -1) if t_.ndim < 2 else t_._type.shape) if t_.ndim < 2
                  else t_)
    if not ts:
        from .ops import full

        return full((0, 0), 0, T.float32)
    dtype = T.result_type(*[(t_.dtype, 1) for t_ in ts])
    cols = builtins.sum(t_.shape[1] for t_ in ts)
    rows, left = [], 0
    for t_ in ts:
        w = t_.shape[1]
        rows.append(bind("pad", cast(t_, dtype), low=(0, left), high=(0, cols - left - w),
                         interior=(0, 0), value=0.0))
        left += w
    return cat(rows, 0)


def unfold(input, dimension, size, step):
    """Tensor.unfold: windows of ``size`` every ``step`` along dimension, as a new last dim."""
    from .creation import tensor

    x = reshape(input, (1,)) if input.ndim == 0 else input
    d = _dim(dimension, x.ndim)
    n = x.shape[d]
    if size > n:
        raise user_error(GcompError, f"maximum size for tensor at dimension {d} is {n} but size "
                         f"is {size}")
    if step <= 0:
        raise user_error(GcompError, f"step is {step} but must be > 0")
    starts = np.arange(0, n - size + 1, step)
    ids = (starts[:, None] + np.arange(size)[None, :]).astype(np.int64)
    out = bind("take", x, tensor(ids), axis=d)
    return movedim(out, d + 1, -1)


def argwhere(input):
    return nonzero(input)


def tile(input, *dims):
    dims = _sizes(dims)
    dims = (1,) * (input.ndim - len(dims)) + dims
    return repeat(input, dims)


def repeat_interleave(input, repeats=None, dim=None, *, output_size=None):
    """torch.repeat_interleave with int or tensor repeats; a traced repeats tensor needs
    output_size (the result's length depends on its values)."""
    from .creation import arange, tensor
    from .ops import as_tensor, cast, cumsum, le
    from .ops import sum as _sum

    if repeats is None:  # repeat_interleave(repeats): the indices repeated
        repeats, input = input, None
        x = arange(repeats.shape[0] if repeats.ndim else 1)
    else:
        x = input
    if dim is None:
        x, d = reshape(x, (-1,)), 0
    else:
        d = _dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    if isinstance(repeats, int) or (isinstance(repeats, Tensor) and repeats.numel() == 1
                                    and not repeats.is_traced and n != 1):
        r = int(repeats) if isinstance(repeats, int) else int(repeats.item())
        if r < 0:
            raise user_error(GcompError, "repeat_interleave: repeats can not be negative")
        y = unsqueeze(x, d + 1)
        shape = list(y._type.shape)
        shape[d + 1] = r
        y = expand(y, shape)
        shape = list(x._type.shape)
        shape[d] = n * r
        return reshape(y, shape)
    repeats = as_tensor(repeats)
    if repeats.ndim > 1 or (repeats.ndim == 1 and repeats.shape[0] not in (1, n)):
        raise user_error(GcompError, "repeat_interleave: repeats must have the same size as "
                         "input along dim")
    if repeats.dtype.is_floating_point:
        raise user_error(GcompError, "repeat_interleave: repeats has to be Long or Int tensor")
    if not repeats.is_traced:
        r = np.broadcast_to(np.asarray(repeats._storage.data), (n,))
        if (r < 0).any():
            raise user_error(GcompError, "repeat_interleave: repeats can not be negative")
        idx = tensor(np.repeat(np.arange(n), r).astype(np.int64))
    else:
        if output_size is None:
            from .tensor import _concrete_error

            raise _concrete_error("repeat_interleave with a tensor of repeats (pass "
                                  "output_size=)")
        ends = cumsum(cast(reshape(repeats, (-1,)), T.int64), 0)
        j = reshape(arange(output_size), (output_size, 1))
        idx = _sum(cast(le(reshape(ends, (1, -1)), j), T.int64), 1)
    return bind("take", x, idx, axis=d)

from .indexing import getitem, setitem  # noqa: E402,F401
