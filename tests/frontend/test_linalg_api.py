"""gcomp.linalg, torch's top-level linear-algebra names and the matrix products against torch:
values eagerly, float64 gradients (of sign-invariant functions of the decompositions), one
compiled function covering several, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from torch_reference import arr, check, variant_marks

import gcomp

pytestmark = pytest.mark.xdist_group("frontend_linalg")

F64 = "float64"
_g = np.random.default_rng(7)
A = _g.standard_normal((4, 4)) + 4 * np.eye(4)  # well conditioned
AB = _g.standard_normal((2, 3, 3)) + 3 * np.eye(3)
TALL = _g.standard_normal((5, 3))
WIDE = _g.standard_normal((3, 5))
B = _g.standard_normal((4, 2))
VEC = _g.standard_normal(4)
M = arr(3, 4, dtype=F64)
V3 = arr(4, 3, dtype=F64)


def spd(t, x):
    """A symmetric positive definite matrix from any square x (gradients flow through it)."""
    return x @ x.mT + 3 * t.eye(x.shape[-1], dtype=x.dtype)


def sym(x):
    return x + x.mT


def eigh_inv(t, x):
    w, v = t.linalg.eigh(sym(x))
    return w, v * v, (v * w.unsqueeze(-2)) @ v.mT


def svd_inv(t, x, full):
    u, s, vh = t.linalg.svd(x, full_matrices=full)
    k = s.shape[-1]
    return s, u[..., :k] * u[..., :k], vh[..., :k, :] * vh[..., :k, :], \
        (u[..., :k] * s.unsqueeze(-2)) @ vh[..., :k, :]


def qr_inv(t, x):
    q, r = t.linalg.qr(x)
    return q * q, r * r, q @ r


CASES = [
    ("solve", lambda t, a, b: t.linalg.solve(a, b), [A, B]),
    ("solve_vector", lambda t, a, b: t.linalg.solve(a, b), [A, VEC]),
    ("solve_batch_broadcast", lambda t, a, b: t.linalg.solve(a, b), [AB, AB[0, :, :2].copy()]),
    ("solve_right", lambda t, a, b: t.linalg.solve(a, b, left=False), [A, B.T.copy()]),
    ("inv", lambda t, a: t.linalg.inv(a), [A]), ("inverse", lambda t, a: t.inverse(a), [AB]),
    ("inverse_method", lambda t, a: a.inverse(), [A]),
    ("det", lambda t, a: t.linalg.det(a), [A]), ("det_batch", lambda t, a: t.det(a), [AB]),
    ("det_method", lambda t, a: a.det(), [-A]),
    ("slogdet", lambda t, a: t.linalg.slogdet(a), [-A]),
    ("slogdet_top", lambda t, a: t.slogdet(a), [AB]),
    ("logdet", lambda t, a: t.logdet(spd(t, a)), [A]),
    ("logdet_negative_is_nan", lambda t, a: t.logdet(a), [np.diag([-1.0, 2.0])]),
    ("cholesky", lambda t, a: t.linalg.cholesky(spd(t, a)), [A]),
    ("cholesky_upper", lambda t, a: t.linalg.cholesky(spd(t, a), upper=True), [AB]),
    ("cholesky_legacy", lambda t, a: t.cholesky(spd(t, a)), [A]),
    ("qr", lambda t, a: qr_inv(t, a), [A]), ("qr_tall", lambda t, a: qr_inv(t, a), [TALL]),
    ("qr_batch", lambda t, a: qr_inv(t, a), [AB]),
    ("qr_r_mode", lambda t, a: t.linalg.qr(a, mode="r")[1].abs(), [TALL]),
    ("eigh", lambda t, a: eigh_inv(t, a), [A]), ("eigh_batch", lambda t, a: eigh_inv(t, a), [AB]),
    ("eigh_upper", lambda t, a: t.linalg.eigh(a, UPLO="U")[0], [A]),
    ("eigvalsh", lambda t, a: t.linalg.eigvalsh(sym(a)), [A]),
    ("svd_square", lambda t, a: svd_inv(t, a, True), [A]),
    ("svd_tall", lambda t, a: svd_inv(t, a, False), [TALL]),
    ("svd_wide", lambda t, a: svd_inv(t, a, False), [WIDE]),
    ("svd_full_tall", lambda t, a: svd_inv(t, a, True), [TALL]),
    ("svd_full_shapes", lambda t, a: [x.shape for x in t.linalg.svd(a)], [WIDE]),
    ("svd_batch", lambda t, a: svd_inv(t, a, False), [AB]),
    ("svd_legacy", lambda t, a: (lambda u, s, v: (s, (u * s) @ v.mT))(*t.svd(a)), [TALL]),
    ("svdvals", lambda t, a: t.linalg.svdvals(a), [WIDE]),
    ("pinv", lambda t, a: t.linalg.pinv(a), [TALL]),
    ("pinverse", lambda t, a: t.pinverse(a), [WIDE]),
    ("pinv_rank_deficient", lambda t, a: t.linalg.pinv(a), [np.outer(VEC, VEC[:3])]),
    ("matrix_rank", lambda t, a: t.linalg.matrix_rank(a), [np.outer(VEC, VEC[:3])]),
    ("matrix_rank_full", lambda t, a: t.linalg.matrix_rank(a), [AB]),
    ("lstsq", lambda t, a, b: t.linalg.lstsq(a, b).solution, [TALL, TALL[:, :2] + 1]),
    *[(f"matrix_power_{n}", lambda t, a, n=n: t.linalg.matrix_power(a, n), [A])
      for n in (0, 1, 3, -2)],
    ("matrix_power_top", lambda t, a: t.matrix_power(a, 5), [AB]),
    *[(f"vector_norm_{o}", lambda t, x, o=o: t.linalg.vector_norm(x, o), [M])
      for o in (2, 1, 3, float("inf"), 0.5)],
    ("vector_norm_zero_ord", lambda t, x: t.linalg.vector_norm(x, 0, dim=1), [M]),
    ("vector_norm_dim", lambda t, x: t.linalg.vector_norm(x, dim=(0,), keepdim=True), [M]),
    *[(f"matrix_norm_{o}", lambda t, x, o=o: t.linalg.matrix_norm(x, o), [M])
      for o in ("fro", "nuc", 2, -2, 1, -1, float("inf"), -float("inf"))],
    ("matrix_norm_dims_keepdim", lambda t, x: t.linalg.matrix_norm(x, 1, (2, 0), True), [AB]),
    ("matrix_norm_nuc_keepdim", lambda t, x: t.linalg.matrix_norm(x, "nuc", keepdim=True), [AB]),
    ("norm_default", lambda t, x: t.linalg.norm(x), [AB]),
    ("norm_matrix_ord", lambda t, x: t.linalg.norm(x, 1), [M]),
    ("norm_vector_dim", lambda t, x: t.linalg.norm(x, 3, dim=1), [M]),
    ("norm_two_dims", lambda t, x: t.linalg.norm(x, dim=(0, 2)), [AB]),
    ("linalg_cross", lambda t, a, b: t.linalg.cross(a, b), [V3, arr(4, 3, dtype=F64)]),
    ("cross_default_dim", lambda t, a, b: t.cross(a, b), [V3.T.copy(), arr(3, 4, dtype=F64)]),
    ("cross_broadcast", lambda t, a, b: a.cross(b, dim=-1), [V3, arr(1, 3, dtype=F64)]),
    ("multi_dot", lambda t, a, b, c: t.linalg.multi_dot([a, b, c]), [VEC, A, B]),
    # products
    ("tensordot_int", lambda t, a, b: t.tensordot(a, b, 1), [M, arr(4, 2, dtype=F64)]),
    ("tensordot_lists", lambda t, a, b: t.tensordot(a, b, ([0, 2], [1, 0])),
     [arr(2, 3, 4, dtype=F64), arr(4, 2, 5, dtype=F64)]),
    ("tensordot_zero", lambda t, a, b: t.tensordot(a, b, 0), [VEC, M]),
    ("inner", lambda t, a, b: t.inner(a, b), [M, arr(2, 4, dtype=F64)]),
    ("inner_scalar", lambda t, a, b: t.inner(a, b), [arr(dtype=F64), M]),
    ("vdot", lambda t, a, b: t.vdot(a, b), [VEC, VEC[::-1].copy()]),
    ("ger", lambda t, a, b: t.ger(a, b), [VEC, VEC[:3].copy()]),
    ("addmm", lambda t, c, a, b: t.addmm(c, a, b, beta=0.5, alpha=2), [arr(2, dtype=F64), A, B]),
    ("addmm_beta0", lambda t, c, a, b: t.addmm(c, a, b, beta=0), [np.full((4, 2), np.nan), A, B]),
    ("addmm_method_inplace", lambda t, c, a, b: (c * 1).addmm_(a, b), [B, A, B]),
    ("addmv", lambda t, c, a, b: t.addmv(c, a, b, alpha=-1), [VEC, A, VEC]),
    ("addbmm", lambda t, c, a, b: t.addbmm(c, a, b, beta=2), [AB[0], AB, AB]),
    ("baddbmm", lambda t, c, a, b: t.baddbmm(c, a, b, alpha=0.5), [AB, AB, AB]),
    ("addr", lambda t, c, a, b: t.addr(c, a, b), [M, arr(3, dtype=F64), VEC]),
    ("chain_matmul", lambda t, a, b, c: t.chain_matmul(a, b, c), [M, A, B]),
    *[(f"cdist_{p}", lambda t, a, b, p=p: t.cdist(a, b, p), [M, arr(5, 4, dtype=F64)])
      for p in (2.0, 1.0, 3.0)],
    ("cdist_batch_zero_distance", lambda t, a: t.cdist(a, a), [AB]),
    ("kron", lambda t, a, b: t.kron(a, b), [M, arr(2, 3, dtype=F64)]),
    ("kron_mixed_rank", lambda t, a, b: t.kron(a, b), [VEC, AB]),
    ("diff", lambda t, x: t.diff(x), [M]),
    ("diff_n_dim", lambda t, x: x.diff(2, 0), [arr(5, 3, dtype=F64)]),
    ("diff_prepend_append", lambda t, x, p, a: t.diff(x, dim=1, prepend=p, append=a),
     [M, arr(3, 2, dtype=F64), arr(3, 1, dtype=F64)]),
    ("diff_bool", lambda t, x: t.diff(x), [arr(6, dtype="bool")]),
    ("diff_int", lambda t, x: t.diff(x, 3), [arr(6, dtype="int64", low=-9, high=9)]),
]


# Cases whose gradient another case checks through the same ops: values only, to keep the
# file fast (each new op shape costs an eager compile).
VALUES_ONLY = {"inverse_method", "det_method", "slogdet_top", "cholesky_legacy", "qr_batch",
               "eigh_upper", "svd_legacy", "pinverse", "matrix_power_1", "matrix_power_top",
               "matrix_norm_-1", "matrix_norm_-inf", "matrix_norm_dims_keepdim",
               "norm_matrix_ord", "norm_vector_dim", "norm_two_dims", "cross_default_dim",
               "tensordot_zero", "inner_scalar", "addmm_method_inplace", "addr", "addbmm",
               "kron_mixed_rank", "diff_n_dim",
               # gradients checked by test_compiled_covers_several (batched variants eagerly)
               "solve", "inv", "det", "cholesky", "qr_tall", "eigh", "svd_tall", "pinv",
               "matrix_norm_nuc", "vector_norm_3", "matrix_power_3", "cdist_2.0", "kron",
               "tensordot_int", "baddbmm", "diff", "linalg_cross"}


@pytest.mark.parametrize("name, fn, xs", [
    pytest.param(n, f, xs, id=n, marks=variant_marks(n, [c[0] for c in CASES]))
    for n, f, xs in CASES])
def test_against_torch(name, fn, xs):
    check(fn, *xs, compiled=False, grad=name not in VALUES_ONLY, grad_tol=(1e-8, 1e-8))


def test_compiled_covers_several():
    def fn(t, a, b, tall):
        return (t.linalg.solve(a, b), t.linalg.inv(a), t.linalg.slogdet(a), t.det(a),
                t.linalg.cholesky(spd(t, a)), qr_inv(t, tall), eigh_inv(t, a),
                svd_inv(t, tall, False), t.linalg.pinv(tall), t.linalg.matrix_norm(a, "nuc"),
                t.linalg.vector_norm(b, 3), t.linalg.matrix_power(a, 3), t.cdist(tall, tall),
                t.kron(a, b), t.tensordot(a, b, 1), t.baddbmm(b, a[None], b[None]),
                t.diff(a, 1, 0), t.linalg.cross(tall, tall.flip(0)))

    check(fn, A, B, TALL, grad_tol=(1e-8, 1e-8))


def test_wide_qr_gradient_is_a_clear_error():
    x = gcomp.tensor(WIDE, requires_grad=True)
    q, r = gcomp.linalg.qr(x)
    with pytest.raises(gcomp.GcompError, match="wide"):
        (q.sum() + r.sum()).backward()


BAD = [
    ("solve_not_square", lambda t: t.linalg.solve(t.ones(2, 3), t.ones(2))),
    ("solve_mismatch", lambda t: t.linalg.solve(t.eye(3), t.ones(2, 1))),
    ("inv_singular", lambda t: t.linalg.inv(t.zeros(2, 2))),
    ("inv_int", lambda t: t.linalg.inv(t.eye(2, dtype=t.int64))),
    ("det_1d", lambda t: t.linalg.det(t.ones(3))),
    ("cholesky_not_pd", lambda t: t.linalg.cholesky(-t.eye(2))),
    ("eigh_bad_uplo", lambda t: t.linalg.eigh(t.eye(2), UPLO="X")),
    ("qr_bad_mode", lambda t: t.linalg.qr(t.eye(2), mode="full")),
    ("matrix_norm_bad_ord", lambda t: t.linalg.matrix_norm(t.eye(2), 3)),
    ("norm_3d_with_ord", lambda t: t.linalg.norm(t.ones(2, 2, 2), 2)),
    ("tensordot_mismatch", lambda t: t.tensordot(t.ones(2, 3), t.ones(2, 3), 1)),
    ("cross_ndim", lambda t: t.linalg.cross(t.ones(2, 3), t.ones(3))),
    ("cross_no_3", lambda t: t.linalg.cross(t.ones(2, 2), t.ones(2, 2))),
    ("cdist_columns", lambda t: t.cdist(t.ones(2, 3), t.ones(2, 4))),
    ("vdot_2d", lambda t: t.vdot(t.ones(2, 2), t.ones(2, 2))),
    ("diff_0d", lambda t: t.diff(t.tensor(1.0))),
    ("inner_mismatch", lambda t: t.inner(t.ones(2, 3), t.ones(2))),
]


@pytest.mark.parametrize("fn", [pytest.param(f, id=n) for n, f in BAD])
def test_bad_input_is_a_gcomp_error(fn):
    import torch

    with pytest.raises((RuntimeError, IndexError, ValueError, TypeError)):
        fn(torch)
    with pytest.raises(gcomp.GcompError):
        fn(gcomp)


def test_out_argument():
    a = gcomp.tensor(A)
    out = gcomp.zeros(4, 4, dtype=gcomp.float64)
    assert gcomp.linalg.inv(a, out=out) is out
    np.testing.assert_allclose(out.numpy(), np.linalg.inv(A), rtol=1e-12)
    out = gcomp.zeros(4, 2, dtype=gcomp.float64)
    gcomp.addmm(gcomp.tensor(B), a, gcomp.tensor(B), out=out)
    np.testing.assert_allclose(out.numpy(), B + A @ B, rtol=1e-12)
