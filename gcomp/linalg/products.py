"""Products and differences over matmul and the shape ops: tensordot, inner, vdot, ger, the
addmm family, chain_matmul, cdist, kron, cross and diff (torch's top-level functions)."""

from __future__ import annotations

import builtins
import math

from ..core.dispatch import bind, user_error
from ..frontend import ops as O
from ..frontend import shape_ops as S
from ..frontend.autocast import float32 as amp_float32
from ..frontend.autocast import lower_precision
from ..frontend.tensor import _dim
from ..ir import types as T
from ..ir.errors import GcompError


def _same_dtype(a, b):
    a, b = O.as_tensor(a), O.as_tensor(b)
    dt = T.result_type((a.dtype, 1), (b.dtype, 1))
    return O.cast(a, dt), O.cast(b, dt)


def tensordot(a, b, dims=2):
    """Contract the last ``dims`` dims of a with the first of b, or the listed pairs."""
    a, b = _same_dtype(a, b)
    if isinstance(dims, int):
        if dims < 0:
            raise user_error(GcompError, f"tensordot expects dims >= 0, but got dims={dims}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
    if len(da) != len(db):
        raise user_error(GcompError, "both dimension lists should have same length")
    da, db = [_dim(d, a.ndim) for d in da], [_dim(d, b.ndim) for d in db]
    for x, y in zip(da, db):
        if a.shape[x] != b.shape[y]:
            raise user_error(GcompError, f"contracted dimensions need to match, but first has "
                             f"size {a.shape[x]} in dim {x} and second has size {b.shape[y]} in "
                             f"dim {y}")
    return bind("dot_general", a, b, contract=tuple(zip(da, db)))


def inner(a, b):
    a, b = _same_dtype(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return O.mul(a, b)
    if a.shape[-1] != b.shape[-1]:
        raise user_error(GcompError, f"inner() the last dimension must match on both input "
                         f"tensors but got shapes {list(a.shape)} and {list(b.shape)}")
    return tensordot(a, b, ([-1], [-1]))


def vdot(a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise user_error(GcompError, f"1D tensors expected, but got {a.ndim}D and {b.ndim}D "
                         "tensors")
    return O.dot(a, b)


def ger(a, b):
    return O.outer(a, b)


def _add_scaled(input, prod, beta, alpha):
    """beta * input + alpha * prod; with beta == 0 input is ignored (nan and inf too)."""
    if alpha != 1:
        prod = O.mul(prod, alpha)
    if beta == 0:
        return O.broadcast_to(prod, O.broadcast_shapes(prod._type.shape, input._type.shape))
    return O.add(O.mul(input, beta) if beta != 1 else input, prod)


@lower_precision
def addmm(input, mat1, mat2, *, beta=1, alpha=1):
    return _add_scaled(input, O.mm(mat1, mat2), beta, alpha)


def addmv(input, mat, vec, *, beta=1, alpha=1):
    if mat.ndim != 2 or vec.ndim != 1:
        raise user_error(GcompError, f"vector + matrix @ vector expected, got {input.ndim}, "
                         f"{mat.ndim}, {vec.ndim}")
    return _add_scaled(input, O.mv(mat, vec), beta, alpha)


@lower_precision
def addbmm(input, batch1, batch2, *, beta=1, alpha=1):
    return _add_scaled(input, O.sum(O.bmm(batch1, batch2), 0), beta, alpha)


@lower_precision
def baddbmm(input, batch1, batch2, *, beta=1, alpha=1):
    return _add_scaled(input, O.bmm(batch1, batch2), beta, alpha)


def addr(input, vec1, vec2, *, beta=1, alpha=1):
    return _add_scaled(input, O.outer(vec1, vec2), beta, alpha)


def chain_matmul(*matrices):
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    if not matrices:
        raise user_error(GcompError, "chain_matmul(): Expected one or more matrices")
    r = matrices[0]
    for m in matrices[1:]:
        r = O.mm(r, m)
    return r


@amp_float32
def cdist(x1, x2, p=2.0, compute_mode=None):
    """Pairwise p-norm distances of the rows of x1 [..., P, M] and x2 [..., R, M]."""
    if x1.ndim < 2 or x2.ndim < 2:
        raise user_error(GcompError, f"cdist only supports at least 2D tensors, X1 got: "
                         f"{x1.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise user_error(GcompError, f"X1 and X2 must have the same number of columns. X1: "
                         f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise user_error(GcompError, "cdist only supports non-negative p values")
    diff = O.sub(S.unsqueeze(x1, -2), S.unsqueeze(x2, -3))
    if p == 2:
        sq = O.sum(O.mul(diff, diff), -1)
        pos = O.gt(sq, 0)
        return O.where(pos, O.sqrt(O.where(pos, sq, 1.0)), 0.0)  # gradient 0 at distance 0
    from ..linalg import vector_norm

    if p not in (0, 1, math.inf):
        a = O.abs(diff)
        s = O.sum(O.pow(a, p), -1)
        pos = O.gt(s, 0)
        return O.where(pos, O.pow(O.where(pos, s, 1.0), 1.0 / p), 0.0)
    return vector_norm(diff, p, -1)


def kron(a, b):
    a, b = _same_dtype(a, b)
    nd = builtins.max(a.ndim, b.ndim)
    a = S.reshape(a, (1,) * (nd - a.ndim) + a._type.shape)
    b = S.reshape(b, (1,) * (nd - b.ndim) + b._type.shape)
    ai = S.reshape(a, tuple(v for d in a._type.shape for v in (d, 1)))
    bi = S.reshape(b, tuple(v for d in b._type.shape for v in (1, d)))
    return S.reshape(O.mul(ai, bi), tuple(x * y for x, y in zip(a._type.shape, b._type.shape)))


def cross(input, other, dim=None):
    """The cross product along dim (torch.cross: the first dim of size 3 when dim is None;
    torch.linalg.cross: dim=-1)."""
    a, b = _same_dtype(input, other)
    if a.ndim != b.ndim:
        raise user_error(GcompError, "linalg.cross: inputs must have the same number of "
                         "dimensions.")
    shape = O.broadcast_shapes(a._type.shape, b._type.shape)
    a, b = O.broadcast_to(a, shape), O.broadcast_to(b, shape)
    if dim is None:
        dim = next((i for i, d in enumerate(shape) if d == 3), None)
        if dim is None:
            raise user_error(GcompError, "no dimension of size 3 in input")
    d = _dim(dim, len(shape))
    if shape[d] != 3:
        raise user_error(GcompError, f"linalg.cross: inputs dimension {d} must have length 3. "
                         f"Got {shape[d]} and {shape[d]}")
    a0, a1, a2 = (S.select(a, d, i) for i in range(3))
    b0, b1, b2 = (S.select(b, d, i) for i in range(3))
    return S.stack([O.sub(O.mul(a1, b2), O.mul(a2, b1)), O.sub(O.mul(a2, b0), O.mul(a0, b2)),
                    O.sub(O.mul(a0, b1), O.mul(a1, b0))], d)


def diff(input, n=1, dim=-1, prepend=None, append=None):
    """The n-th forward difference along dim (!= for bool tensors)."""
    x = input
    if x.ndim == 0:
        raise user_error(GcompError, "diff expects input to be at least one-dimensional")
    d = _dim(dim, x.ndim)
    if prepend is not None or append is not None:
        def as_dim(t_):
            t_ = O.as_tensor(t_)
            if t_.ndim == 0:
                shape = list(x._type.shape)
                shape[d] = 1
                t_ = O.broadcast_to(t_, shape)
            return t_

        parts = ([as_dim(prepend)] if prepend is not None else []) + [x] + (
            [as_dim(append)] if append is not None else [])
        x = S.cat(parts, d)
    for _ in range(n):
        m = x.shape[d]
        if m == 0:
            break
        hi, lo = S._slice_dim(x, d, 1, m, 1), S._slice_dim(x, d, 0, m - 1, 1)
        x = O.logical_xor(hi, lo) if x.dtype == T.bool_ else O.sub(hi, lo)
    return x


def _give_out(namespace: dict, names) -> None:
    """``out=`` for these functions (frontend/out.py; its namespace pass covers only frontend
    modules)."""
    from ..frontend.out import with_out

    for n in names:
        namespace[n] = with_out(namespace[n])


_give_out(globals(), ("tensordot", "inner", "vdot", "ger", "addmm", "addmv", "addbmm", "baddbmm",
                      "addr", "chain_matmul", "kron", "cross", "diff", "cdist"))
