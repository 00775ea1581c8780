"""VJP of dot_general (the transposes follow jax's _dot_general_transpose_lhs/rhs).

A node with an ``accumulate`` dtype (Note [Accumulation dtype] in ir/ops/linalg.py) has a
cotangent of that dtype and operands of a narrower one: the cotangent is cast to the operands'
dtype, each transpose product accumulates in the same dtype as the node, and its result is cast
back to the operand's dtype, the dtype its cotangent must have.
"""

from __future__ import annotations

import numpy as np

from ..core import prims as P
from ..core.autograd import needs_input_grad
from ..ir.errors import GcompError
from ..ir.ops.linalg import svd_sizes
from . import defvjp


def _ranges_like(*xs):
    start = 0
    for x in xs:
        yield list(range(start, start + len(x)))
        start += len(x)


def _transpose_lhs(g, x, y, x_contract, y_contract, x_batch, y_batch, swap_ans=False,
                   accumulate=""):
    x_ndim, y_ndim = len(x._type.shape), len(y._type.shape)
    x_kept = [i for i in range(x_ndim) if i not in x_contract and i not in x_batch]
    y_kept = [i for i in range(y_ndim) if i not in y_contract and i not in y_batch]
    if swap_ans:
        ans_batch, ans_y, _ = _ranges_like(x_batch, y_kept, x_kept)
    else:
        ans_batch, _, ans_y = _ranges_like(x_batch, x_kept, y_kept)
    contract = tuple(zip(ans_y, y_kept))
    batch = tuple(zip(ans_batch, y_batch))
    x_contract_sorted_by_y = list(np.take(x_contract, np.argsort(y_contract))) if x_contract else []
    out_axes = tuple(int(a) for a in np.argsort(list(x_batch) + x_kept + x_contract_sorted_by_y))
    prod = P.dot_general(g, y, contract=contract, batch=batch, accumulate=accumulate)
    if accumulate:
        prod = P.cast(prod, dtype=x._type.dtype)
    if out_axes != tuple(range(len(out_axes))):
        prod = P.transpose(prod, perm=out_axes)
    return prod


@defvjp("dot_general")
def _dot_general(cts, inputs, outputs, contract, batch, accumulate=""):
    (g,), (x, y) = cts, inputs
    xc, yc = [a for a, _ in contract], [b for _, b in contract]
    xb, yb = [a for a, _ in batch], [b for _, b in batch]
    acc = accumulate
    if acc:  # an f32 cotangent of bf16 operands: multiply in bf16, accumulate in f32
        g = P.cast(g, dtype=x._type.dtype)
    gx = _transpose_lhs(g, x, y, xc, yc, xb, yb, accumulate=acc) if needs_input_grad(0) else None
    gy = (_transpose_lhs(g, y, x, yc, xc, yb, xb, swap_ans=True, accumulate=acc)
          if needs_input_grad(1) else None)
    return [gx, gy]


# -- decompositions and solves (Note [Packed results] in ir/ops/linalg.py) -----------------------
# The formulas are PyTorch's (FunctionsManual.cpp), so gradients agree with torch's conventions:
# a symmetric gradient for cholesky and eigh, and only U[..., :k] and V[..., :k] of a full SVD
# carrying gradient.
def _mT(x):
    nd = len(x._type.shape)
    return P.transpose(x, perm=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _mm(a, b):
    nb = len(a._type.shape) - 2
    return P.dot_general(a, b, contract=((nb + 1, nb),), batch=tuple((i, i) for i in range(nb)))


def _eye(n, like):
    """The n x n identity in like's dtype, broadcast to like's batch dims."""
    from ..ir import types as T

    rows = P.iota(shape=(n, n), dim=0, dtype=T.int64)
    eye = P.cast(P.eq(rows, P.iota(shape=(n, n), dim=1, dtype=T.int64)), dtype=like._type.dtype)
    batch = like._type.shape[:-2]
    return P.broadcast(eye, shape=batch + (n, n), dims=(len(batch), len(batch) + 1))


def _tri_mask(n, like, lower):
    from ..ir import types as T

    rows = P.iota(shape=(n, n), dim=0, dtype=T.int64)
    cols = P.iota(shape=(n, n), dim=1, dtype=T.int64)
    keep = P.ge(rows, cols) if lower else P.le(rows, cols)
    batch = like._type.shape[:-2]
    return P.broadcast(keep, shape=batch + (n, n), dims=(len(batch), len(batch) + 1))


def _tril(x, strict=False):
    n = x._type.shape[-1]
    keep = _tri_mask(n, x, lower=True)
    if strict:
        keep = P.logical_and(keep, P.logical_not(P.cast(_eye(n, x), dtype=keep._type.dtype)))
    return P.select(keep, x, P.zeros_like(x))


def _diag_embed(v, like=None):
    """v [..., n] as diagonal matrices [..., n, n]."""
    n = v._type.shape[-1]
    shape = v._type.shape + (n,)
    nd = len(shape)
    rows = P.broadcast(v, shape=shape, dims=tuple(range(nd - 2)) + (nd - 2,))
    return P.mul(rows, _eye(n, rows))


def _diag_part(x):
    n = x._type.shape[-1]
    return P.reduce_sum(P.mul(x, _eye(n, x)), axes=(len(x._type.shape) - 1,))


def _sym(x):
    return P.mul(P.add(x, _mT(x)), P.full_like(x, 0.5))


def _unpack(packed, shapes):
    """The pieces of a packed result (Note [Packed results]), each reshaped to batch + shape."""
    batch = packed._type.shape[:-1]
    out, start = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        piece = P.slice(packed, start=(0,) * len(batch) + (start,),
                        limit=batch + (start + size,), stride=(1,) * (len(batch) + 1))
        out.append(P.reshape(piece, shape=batch + tuple(shape)))
        start += size
    return out


def _pack(pieces):
    batch = pieces[0]._type.shape[:len(pieces[0]._type.shape) - 2] if len(
        pieces[0]._type.shape) >= 2 else ()
    flat = [P.reshape(p, shape=batch + (int(np.prod(p._type.shape[len(batch):])),))
            for p in pieces]
    return P.concatenate(*flat, axis=len(batch)) if len(flat) > 1 else flat[0]


def _solve(a, b):
    return P.linalg_solve(a, b)


def _inv_t(a):
    """inverse(a) transposed."""
    return _solve(_mT(a), _eye(a._type.shape[-1], a))


@defvjp("linalg_solve")
def _linalg_solve(cts, inputs, outputs):
    (g,), (a, _), (x,) = cts, inputs, outputs
    gb = _solve(_mT(a), g)
    ga = P.neg(_mm(gb, _mT(x))) if needs_input_grad(0) else None
    return [ga, gb]


@defvjp("slogdet")
def _slogdet(cts, inputs, outputs):
    """Only log |det| has a gradient: g * inverse(a)^T."""
    (g,), (a,) = cts, inputs
    batch = a._type.shape[:-2]
    nb = len(batch)
    glog = P.reshape(P.slice(g, start=(0,) * nb + (1,), limit=batch + (2,),
                             stride=(1,) * (nb + 1)), shape=batch)
    n = a._type.shape[-1]
    gfull = P.broadcast(glog, shape=batch + (n, n), dims=tuple(range(nb)))
    return [P.mul(gfull, _inv_t(a))]


@defvjp("cholesky")
def _cholesky(cts, inputs, outputs):
    """gA = sym(L^-T phi(L^T gL) L^-1), phi: the lower triangle with a halved diagonal."""
    (g,), (low,) = cts, outputs
    n = low._type.shape[-1]
    phi = _tril(_mm(_mT(low), g))
    phi = P.sub(phi, P.mul(P.mul(phi, _eye(n, low)), P.full_like(low, 0.5)))
    left = _solve(_mT(low), phi)  # L^-T phi
    ga = _mT(_solve(_mT(low), _mT(left)))  # (L^-T (L^-T phi)^T)^T = L^-T phi L^-1
    return [_sym(ga)]


def _off_diagonal_ratio(num, den, like):
    """num / den off the diagonal, zero on it (den's diagonal is zero)."""
    n = like._type.shape[-1]
    eye = P.gt(_eye(n, like), P.zeros_like(like))
    safe = P.select(eye, P.full_like(den, 1.0), den)
    return P.select(eye, P.zeros_like(num), P.div(num, safe))


def _pairwise_diff(w, like):
    """E[..., i, j] = w[j] - w[i]."""
    n = w._type.shape[-1]
    shape = w._type.shape + (n,)
    nd = len(shape)
    wj = P.broadcast(w, shape=shape, dims=tuple(range(nd - 2)) + (nd - 1,))
    wi = P.broadcast(w, shape=shape, dims=tuple(range(nd - 2)) + (nd - 2,))
    return P.sub(wj, wi)


@defvjp("eigh")
def _eigh(cts, inputs, outputs):
    """gA = V (diag(gw) + skew(V^T gV) / 2E) V^T, E_ij = w_j - w_i (torch's formula)."""
    (g,), (a,), (out,) = cts, inputs, outputs
    n = a._type.shape[-1]
    gw, gv = _unpack(g, [(n,), (n, n)])
    w, v = _unpack(out, [(n,), (n, n)])
    vtg = _mm(_mT(v), gv)
    skew = P.mul(P.sub(vtg, _mT(vtg)), P.full_like(vtg, 0.5))
    inner = P.add(_off_diagonal_ratio(skew, _pairwise_diff(w, a), a), _diag_embed(gw, a))
    return [_mm(_mm(v, inner), _mT(v))]


@defvjp("svd")
def _svd(cts, inputs, outputs, full_matrices):
    """gA = U [(skew(U^T gU) / E) S + S (skew(V^T gV) / E) + diag(gS)] V^T
    + (I - U U^T) gU S^-1 V^T + U S^-1 gV^T (I - V V^T), E_jk = s_k^2 - s_j^2 (torch's
    svd_backward); of a full SVD only the first k columns of U and V carry gradient."""
    (g,), (a,), (out,) = cts, inputs, outputs
    m, n = a._type.shape[-2:]
    ku, k, kv = svd_sizes(m, n, full_matrices)
    gu, gs, gv = _unpack(g, [(m, ku), (k,), (n, kv)])
    u, s, v = _unpack(out, [(m, ku), (k,), (n, kv)])
    if full_matrices:
        u, gu = _first_columns(u, k), _first_columns(gu, k)
        v, gv = _first_columns(v, k), _first_columns(gv, k)
    sq = P.mul(s, s)
    e = _pairwise_diff(sq, _square_like(a, k))
    like = _square_like(a, k)
    utgu, vtgv = _mm(_mT(u), gu), _mm(_mT(v), gv)
    j = _off_diagonal_ratio(P.sub(utgu, _mT(utgu)), e, like)
    kk = _off_diagonal_ratio(P.sub(vtgv, _mT(vtgv)), e, like)
    smat = _diag_embed(s, like)
    inner = P.add(P.add(_mm(j, smat), _mm(smat, kk)), _diag_embed(gs, like))
    ga = _mm(_mm(u, inner), _mT(v))
    sinv = _diag_embed(P.div(P.full_like(s, 1.0), s), like)
    if m > k:
        proj_u = P.sub(gu, _mm(u, utgu))  # (I - U U^T) gU
        ga = P.add(ga, _mm(_mm(proj_u, sinv), _mT(v)))
    if n > k:
        proj_v = P.sub(gv, _mm(v, vtgv))  # (I - V V^T) gV
        ga = P.add(ga, _mm(_mm(u, sinv), _mT(proj_v)))
    return [ga]


def _first_columns(x, k):
    shape = x._type.shape
    nd = len(shape)
    return P.slice(x, start=(0,) * nd, limit=shape[:-1] + (k,), stride=(1,) * nd)


def _square_like(a, k):
    """A [..., k, k] stand-in with a's batch and dtype (for _eye's broadcast)."""
    return P.full(shape=a._type.shape[:-2] + (k, k), value=0.0, dtype=a._type.dtype)


@defvjp("qr")
def _qr(cts, inputs, outputs):
    """For m >= n: gA = Q (gR + tril(Q^T gQ - gQ^T Q + R gR^T - gR R^T) R^-T)
    + (gQ - Q Q^T gQ) R^-T (TensorFlow's QrGrad). Wide matrices are not supported."""
    (g,), (a,), (out,) = cts, inputs, outputs
    m, n = a._type.shape[-2:]
    if m < n:
        from ..core.dispatch import user_error

        raise user_error(GcompError, f"the gradient of qr of a wide matrix ({m} x {n}, fewer "
                         "rows than columns) is not supported; differentiate qr of the "
                         "transpose or of a square part")
    k = n
    gq, gr = _unpack(g, [(m, k), (k, n)])
    q, r = _unpack(out, [(m, k), (k, n)])
    qdq = _mm(_mT(q), gq)
    rdr = _mm(r, _mT(gr))
    low = _tril(P.add(P.sub(qdq, _mT(qdq)), P.sub(rdr, _mT(rdr))))

    def times_r_inv_t(x):  # x R^-T = (R^-1 x^T)^T
        return _mT(_solve(r, _mT(x)))

    ga = _mm(q, P.add(gr, times_r_inv_t(low)))
    return [P.add(ga, times_r_inv_t(P.sub(gq, _mm(q, qdq))))]
