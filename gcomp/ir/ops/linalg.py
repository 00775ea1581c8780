"""dot_general: the one contraction primitive (matmul, bmm, einsum, linear all lower to it).

Note [Accumulation dtype]
``dot_general`` and ``convolution`` take an optional ``accumulate`` attribute: the dtype the
products are summed in, which is also the result's dtype (lax's ``preferred_element_type``).
Empty (the default, left out of the printed IR) means the operands' dtype, as before. Mixed
precision (passes/precision.py) writes ``accumulate="f32"`` on contractions of bf16 or f16
operands: the multiplies read low-precision values, the sums and the result stay float32. It
must be a float dtype that holds the operands' exactly (f32 or f64 for bf16 and f16 operands,
the operands' own dtype too); integer contractions take none. The attribute is a string (the
dtype's IR name) because a dtype attribute has no "unset" value in the op table.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..types import DType, TensorType, dtype_from_name, promote_types
from . import declare, same_dtype


def accumulate_dtype(op: str, dtype: DType, accumulate: str) -> DType:
    """The result dtype of a contraction of ``dtype`` operands with the ``accumulate``
    attribute (Note [Accumulation dtype])."""
    if not accumulate:
        return dtype
    acc = dtype_from_name(accumulate)
    if not (dtype.is_floating_point and acc.is_floating_point
            and promote_types(dtype, acc) == acc):
        raise ShapeError(f"{op}: cannot accumulate {dtype.short} operands in {acc.short}; "
                         "accumulate needs float operands and a float dtype at least as wide")
    return acc


@declare("dot_general", "linalg", 2,
         {"contract": "int_pairs", "batch": "int_pairs", "accumulate": "str"},
         {"batch": [], "accumulate": ""})
def _dot_general(types, contract, batch, accumulate):
    """lax.dot_general. ``contract`` and ``batch`` are lists of (lhs dim, rhs dim) pairs; the
    result is batch dims, then lhs free dims, then rhs free dims; ``accumulate`` is the dtype of
    the sums and the result when not the operands' (Note [Accumulation dtype])."""
    lhs, rhs = types
    dtype = accumulate_dtype("dot_general", same_dtype("dot_general", types), accumulate)
    used_l = [a for a, _ in contract] + [a for a, _ in batch]
    used_r = [b for _, b in contract] + [b for _, b in batch]
    for a, b in list(contract) + list(batch):
        if not (0 <= a < lhs.ndim and 0 <= b < rhs.ndim):
            raise ShapeError(f"dot_general: dims ({a}, {b}) out of range for {lhs} and {rhs}")
        if lhs.shape[a] != rhs.shape[b]:
            raise ShapeError(f"dot_general: size mismatch {lhs} dim {a} vs {rhs} dim {b}")
    if len(set(used_l)) != len(used_l) or len(set(used_r)) != len(used_r):
        raise ShapeError("dot_general: a dim is used twice")
    shape = [lhs.shape[a] for a, _ in batch]
    shape += [d for i, d in enumerate(lhs.shape) if i not in used_l]
    shape += [d for i, d in enumerate(rhs.shape) if i not in used_r]
    return [TensorType(tuple(shape), dtype)]


# -- decompositions and solves ------------------------------------------------------------------
# Note [Packed results]
# ``eigh``, ``svd``, ``qr`` and ``slogdet`` have several results; each is declared with one:
# the results flattened over their matrix dims and concatenated along one last dim, in the
# order given in its doc (gcomp.linalg unpacks them with slices and reshapes). One result keeps
# every primitive a single-output node, so the op table, CSE and the VJP machinery see the
# decomposition as one op computed once; the VJP rule unpacks its cotangent the same way.
#
# Signs are canonical, so results do not depend on the backend's LAPACK: each eigenvector and
# each pair of singular vectors (u_i, v_i) is flipped so that the largest-magnitude entry of the
# eigenvector (of u_i) is positive, and Q, R so that R's diagonal is non-negative. The flips are
# locally constant, so the VJP formulas hold unchanged.
def _square(op, a):
    if not a.dtype.is_floating_point:
        raise ShapeError(f"{op}: expected a floating point matrix, got {a}")
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"{op}: expected a batch of square matrices, got {a}")


def _matrix(op, a):
    if not a.dtype.is_floating_point:
        raise ShapeError(f"{op}: expected a floating point matrix, got {a}")
    if a.ndim < 2:
        raise ShapeError(f"{op}: expected a batch of matrices, got {a}")


@declare("linalg_solve", "linalg", 2)
def _linalg_solve(types):
    """x with a @ x == b for a [..., n, n] and b [..., n, k] of one batch shape (LU with partial
    pivoting)."""
    a, b = types
    _square("linalg_solve", a)
    if b.dtype != a.dtype or b.ndim != a.ndim or b.shape[:-1] != a.shape[:-1]:
        raise ShapeError(f"linalg_solve: b must be {a.dtype.short}[..., {a.shape[-1]}, k] with "
                         f"a's batch dims, got {b} for {a}")
    return [b]


@declare("slogdet", "linalg", 1)
def _slogdet(types):
    """[..., 2]: the sign of det(a) and log |det(a)| (Note [Packed results])."""
    (a,) = types
    _square("slogdet", a)
    return [TensorType(a.shape[:-2] + (2,), a.dtype)]


@declare("cholesky", "linalg", 1)
def _cholesky(types):
    """The lower Cholesky factor, from a's lower triangle (nan when a is not positive
    definite)."""
    (a,) = types
    _square("cholesky", a)
    return [a]


@declare("eigh", "linalg", 1)
def _eigh(types):
    """[..., n + n*n]: the ascending eigenvalues of the symmetric matrix in a's lower triangle,
    then its eigenvectors (columns) flattened (Note [Packed results])."""
    (a,) = types
    _square("eigh", a)
    n = a.shape[-1]
    return [TensorType(a.shape[:-2] + (n + n * n,), a.dtype)]


def svd_sizes(m: int, n: int, full_matrices: bool) -> tuple[int, int, int]:
    """Columns of U, singular values, columns of V of an m x n matrix."""
    k = min(m, n)
    return (m, k, n) if full_matrices else (k, k, k)


@declare("svd", "linalg", 1, {"full_matrices": "bool"}, {"full_matrices": False})
def _svd(types, full_matrices):
    """[..., m*ku + k + n*kv]: U [m, ku], the descending singular values [k] and V [n, kv]
    (not Vh), flattened and concatenated (Note [Packed results])."""
    (a,) = types
    _matrix("svd", a)
    m, n = a.shape[-2:]
    ku, k, kv = svd_sizes(m, n, full_matrices)
    return [TensorType(a.shape[:-2] + (m * ku + k + n * kv,), a.dtype)]


@declare("qr", "linalg", 1)
def _qr(types):
    """[..., m*k + k*n]: the reduced QR factors Q [m, k] and R [k, n], k = min(m, n), flattened
    and concatenated (Note [Packed results])."""
    (a,) = types
    _matrix("qr", a)
    m, n = a.shape[-2:]
    k = min(m, n)
    return [TensorType(a.shape[:-2] + (m * k + k * n,), a.dtype)]
