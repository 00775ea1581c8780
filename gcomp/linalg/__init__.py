"""torch.linalg: norms, determinants, solves, inverses and the decompositions (cholesky, qr,
eigh, svd), over the primitives of gcomp/ir/ops/linalg.py (Note [Packed results] there: a
decomposition is one primitive whose result this module unpacks)."""

from __future__ import annotations

import math
from collections import namedtuple

from ..core.dispatch import bind, user_error
from ..frontend import ops as O
from ..frontend import shape_ops as S
from ..frontend.tensor import Tensor
from ..ir import types as T
from ..ir.errors import GcompError
from ..ir.ops.linalg import svd_sizes
from .products import cross  # noqa: F401

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
QRResult = namedtuple("QRResult", ["Q", "R"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
LstsqResult = namedtuple("LstsqResult", ["solution", "residuals", "rank", "singular_values"])


def _float_matrix(name, A, square=True):
    A = O.as_tensor(A)
    if A.ndim < 2:
        raise user_error(GcompError, f"linalg.{name}: The input tensor A must have at least 2 "
                         f"dimensions.")
    if square and A.shape[-1] != A.shape[-2]:
        raise user_error(GcompError, f"linalg.{name}: A must be batches of square matrices, but "
                         f"they are {A.shape[-2]} by {A.shape[-1]} matrices")
    if not A.dtype.is_floating_point:
        raise user_error(GcompError, f"linalg.{name}: Expected a floating point tensor as input. "
                         f"Got {A.dtype.name}")
    if A.dtype in (T.float16, T.bfloat16):
        raise user_error(GcompError, f"linalg.{name}: Low precision dtypes not supported. Got "
                         f"{A.dtype.name}; use .float() first")
    return A


def _unpack(packed, shapes):
    batch = packed._type.shape[:-1]
    out, start = [], 0
    for shape in shapes:
        size = math.prod(shape)
        out.append(S.reshape(S._slice_dim(packed, packed.ndim - 1, start, start + size, 1),
                             batch + tuple(shape)))
        start += size
    return out


def _mT(x):
    return S.transpose(x, -2, -1)


def _eye_like(A):
    n = A.shape[-1]
    eye = O.cast(O.eq(bind("iota", shape=(n, n), dim=0, dtype=T.int64),
                      bind("iota", shape=(n, n), dim=1, dtype=T.int64)), A.dtype)
    return O.broadcast_to(eye, A._type.shape)


# -- solves and inverses ------------------------------------------------------------------------
def solve(A, B, *, left=True):
    """X with A @ X = B (or X @ A = B with left=False); B may be a (batch of) vector(s)."""
    A = _float_matrix("solve", A)
    B = O.as_tensor(B)
    if not left:
        return _mT(solve(_mT(A), _mT(B)))
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    if vector:
        B = S.unsqueeze(B, -1)
    if B.shape[-2] != A.shape[-1]:
        raise user_error(GcompError, f"linalg.solve: Incompatible shapes of A and B for the "
                         f"equation AX = B ({'x'.join(map(str, A.shape))} and "
                         f"{'x'.join(map(str, B.shape))})")
    dtype = T.promote_types(A.dtype, B.dtype)
    batch = O.broadcast_shapes(A._type.shape[:-2], B._type.shape[:-2])
    A = O.broadcast_to(O.cast(A, dtype), batch + A._type.shape[-2:])
    B = O.broadcast_to(O.cast(B, dtype), batch + B._type.shape[-2:])
    X = bind("linalg_solve", A, B)
    return S.squeeze(X, -1) if vector else X


def inv(A):
    A = _float_matrix("inv", A)
    return _check_invertible("inv", solve(A, _eye_like(A)))


def _check_invertible(name, X):
    """Eagerly, a singular matrix (an inf or nan inverse) is an error, as in torch; traced, the
    result holds the infs and nans."""
    if not X.is_traced and X.numel():
        import numpy as np

        if not np.isfinite(np.asarray(X._storage.data)).all():
            raise user_error(GcompError, f"linalg.{name}: The diagonal element of the LU "
                             "factorization is zero, so the matrix is singular (not invertible)")
    return X


def slogdet(A):
    A = _float_matrix("slogdet", A)
    sign, logabs = _unpack(bind("slogdet", A), [(), ()])
    return SlogdetResult(sign, logabs)


def det(A):
    sign, logabs = slogdet(_float_matrix("det", A))
    return O.mul(sign, O.exp(logabs))


def logdet(A):
    """log det(A): nan for a negative determinant, -inf for a zero one (torch.logdet)."""
    sign, logabs = slogdet(_float_matrix("logdet", A))
    return O.where(O.lt(sign, 0), math.nan, logabs)


def matrix_power(A, n):
    A = O.as_tensor(A)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise user_error(GcompError, "linalg.matrix_power: A must be batches of square matrices")
    if n == 0:
        return _eye_like(A) if A.dtype.is_floating_point else O.cast(_eye_like(
            O.cast(A, T.float32)), A.dtype)
    if n < 0:
        A, n = inv(A), -n
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else O.matmul(result, base)
        n >>= 1
        if n:
            base = O.matmul(base, base)
    return result


# -- decompositions -----------------------------------------------------------------------------
def cholesky(A, *, upper=False):
    A = _float_matrix("cholesky", A)
    L = bind("cholesky", A)
    if not L.is_traced and L.numel():
        import numpy as np

        if np.isnan(np.asarray(L._storage.data)).any():
            raise user_error(GcompError, "linalg.cholesky: The factorization could not be "
                             "completed because the input is not positive-definite")
    return _mT(L) if upper else L


def qr(A, mode="reduced"):
    A = _float_matrix("qr", A, square=False)
    m, n = A.shape[-2:]
    k = min(m, n)
    if mode not in ("reduced", "complete", "r"):
        raise user_error(GcompError, f"qr received unrecognized mode '{mode}' but expected one "
                         "of 'reduced' (default), 'r', or 'complete'")
    if mode == "complete" and m > n:
        raise user_error(GcompError, "linalg.qr: mode='complete' of a tall matrix is not "
                         "supported; use mode='reduced'")
    Q, R = _unpack(bind("qr", A), [(m, k), (k, n)])
    if mode == "r":
        return QRResult(O.full((0,), 0, A.dtype), R)
    return QRResult(Q, R)


def _uplo(A, UPLO):
    if UPLO not in ("L", "U"):
        raise user_error(GcompError, f"Expected UPLO argument to be 'L' or 'U', but got {UPLO}")
    return _mT(A) if UPLO == "U" else A


def eigh(A, UPLO="L"):
    A = _uplo(_float_matrix("eigh", A), UPLO)
    n = A.shape[-1]
    w, V = _unpack(bind("eigh", A), [(n,), (n, n)])
    return EighResult(w, V)


def eigvalsh(A, UPLO="L"):
    return eigh(A, UPLO).eigenvalues


def svd(A, full_matrices=True, *, driver=None):
    """U, S, Vh; of a full SVD only U[..., :k] and Vh[..., :k, :] carry gradient (as torch)."""
    A = _float_matrix("svd", A, square=False)
    m, n = A.shape[-2:]
    full = bool(full_matrices) and m != n
    ku, k, kv = svd_sizes(m, n, full)
    U, s, V = _unpack(bind("svd", A, full_matrices=full), [(m, ku), (k,), (n, kv)])
    return SVDResult(U, s, _mT(V))


def svdvals(A, *, driver=None):
    return svd(A, full_matrices=False).S


def _default_rtol(A, s):
    eps = {T.float32: 1.1920929e-07, T.float64: 2.220446049250313e-16}[A.dtype]
    return max(A.shape[-2:]) * eps


def _cutoff(A, s, atol, rtol):
    smax = O.amax(s, -1, keepdim=True) if s.shape[-1] else s
    if rtol is None:
        rtol = 0.0 if (atol is not None and (not isinstance(atol, (int, float)) or atol > 0)) \
            else _default_rtol(A, s)
    tol = O.mul(smax, rtol)
    if atol is not None:
        tol = O.maximum(tol, atol)
    return tol


def pinv(A, *, atol=None, rtol=None, hermitian=False):
    """The pseudo-inverse from the SVD; singular values below max(atol, rtol * s_max) are
    dropped."""
    A = _float_matrix("pinv", A, square=False)
    U, s, Vh = svd(A, full_matrices=False)
    keep = O.gt(s, _cutoff(A, s, atol, rtol))
    s_inv = O.where(keep, O.div(1.0, O.where(keep, s, 1.0)), 0.0)
    return O.matmul(O.mul(_mT(Vh), S.unsqueeze(s_inv, -2)), _mT(U))


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False, tol=None):
    A = _float_matrix("matrix_rank", A, square=False)
    if tol is not None:
        atol, rtol = tol, 0.0
    s = svdvals(A)
    return O.sum(O.cast(O.gt(s, _cutoff(A, s, atol, rtol)), T.int64), -1)


def lstsq(A, B, rcond=None, *, driver=None):
    """The least-squares solution (through the pseudo-inverse); residuals and singular_values
    are empty, rank is computed (torch's default CPU driver, gelsy, gives the same)."""
    A = _float_matrix("lstsq", A, square=False)
    B = O.as_tensor(B)
    vector = B.ndim == A.ndim - 1
    Bm = S.unsqueeze(B, -1) if vector else B
    if Bm.shape[-2] != A.shape[-2]:
        raise user_error(GcompError, f"torch.linalg.lstsq: input.size(-2) should match "
                         f"other.size(-2) ({A.shape[-2]} and {Bm.shape[-2]})")
    X = O.matmul(pinv(A, rtol=rcond), O.cast(Bm, A.dtype))
    X = S.squeeze(X, -1) if vector else X
    empty = O.full((0,), 0, A.dtype)
    return LstsqResult(X, empty, matrix_rank(A, rtol=rcond), empty)


# -- norms --------------------------------------------------------------------------------------
def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):
    x = O.as_tensor(x)
    if dtype is not None:
        x = O.cast(x, dtype)
    if not x.dtype.is_floating_point:
        raise user_error(GcompError, f"linalg.vector_norm: Expected a floating point or complex "
                         f"tensor as input. Got {x.dtype.name}")
    if isinstance(dim, int):
        dim = (dim,)
    a = O.abs(x)
    if ord == math.inf:
        return O.amax(a, dim, keepdim)
    if ord == -math.inf:
        return O.amin(a, dim, keepdim)
    if ord == 0:
        return O.sum(O.cast(O.ne(x, 0), x.dtype), dim, keepdim)
    if ord == 1:
        return O.sum(a, dim, keepdim)
    if ord == 2:
        return O.sqrt(O.sum(O.mul(x, x), dim, keepdim))
    return O.pow(O.sum(O.pow(a, ord), dim, keepdim), 1.0 / ord)


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):
    A = O.as_tensor(A)
    if dtype is not None:
        A = O.cast(A, dtype)
    if A.ndim < 2:
        raise user_error(GcompError, "linalg.matrix_norm: The input tensor A must have at least "
                         "2 dimensions.")
    d0, d1 = (d % A.ndim for d in dim)
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        moved = S.movedim(A, (d0, d1), (-2, -1))
        s = svdvals(moved)
        r = O.sum(s, -1) if ord == "nuc" else (O.amax(s, -1) if ord == 2 else O.amin(s, -1))
        if keepdim:
            r = S.unsqueeze(S.unsqueeze(r, -1), -1)
            r = S.movedim(r, (-2, -1), (d0, d1))
        return r
    if ord in (1, -1, math.inf, -math.inf):
        sum_dim, red_dim = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = O.sum(O.abs(A), sum_dim, keepdim=True)
        red = O.amax if ord in (1, math.inf) else O.amin
        r = red(sums, red_dim, keepdim=True)
        return r if keepdim else S.squeeze(r, (d0, d1))
    raise user_error(GcompError, f"linalg.matrix_norm: Order {ord} not supported.")


def norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):
    A = O.as_tensor(A)
    if isinstance(dim, int):
        dim = (dim,)
    if ord is None:
        if dim is not None and len(dim) == 2:
            return matrix_norm(A, "fro", dim, keepdim, dtype=dtype)
        return vector_norm(A, 2, dim, keepdim, dtype=dtype)
    if dim is None:
        if A.ndim == 1:
            return vector_norm(A, ord, None, keepdim, dtype=dtype)
        if A.ndim == 2:
            return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
        raise user_error(GcompError, "linalg.norm: If dim is not specified but ord is, the "
                         f"input must be 1D or 2D. Got {A.ndim}D.")
    if len(dim) == 2:
        return matrix_norm(A, ord, dim, keepdim, dtype=dtype)
    return vector_norm(A, ord, dim, keepdim, dtype=dtype)


def multi_dot(tensors):
    from .products import chain_matmul

    ts = list(tensors)
    first_vec, last_vec = ts[0].ndim == 1, ts[-1].ndim == 1
    if first_vec:
        ts[0] = S.unsqueeze(ts[0], 0)
    if last_vec:
        ts[-1] = S.unsqueeze(ts[-1], -1)
    r = chain_matmul(*ts)
    if first_vec:
        r = S.squeeze(r, 0)
    if last_vec:
        r = S.squeeze(r, -1)
    return r


_ = Tensor


from .products import _give_out  # noqa: E402

_give_out(globals(), ("solve", "inv", "slogdet", "det", "cholesky", "qr", "eigh", "eigvalsh",
                      "svd", "svdvals", "pinv", "matrix_rank", "vector_norm", "matrix_norm",
                      "norm", "multi_dot", "matrix_power"))
