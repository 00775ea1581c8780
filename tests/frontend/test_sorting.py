"""Sorting, selection and cumulative ops against torch: values, indices, dtypes and float64
gradients eagerly (one table), one compiled function covering them all, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_reference import arr, check, gcomp_tensor, torch_tensor, variant_marks

import gcomp

pytestmark = pytest.mark.xdist_group("frontend_sorting")

nan = float("nan")
X = arr(3, 5, dtype="float64")  # random: no ties, so indices are unambiguous
X4 = arr(2, 3, 4, dtype="float64")
X32 = arr(4, 6)
TIES = np.array([[1.0, 0.5, 1.0, -1.0, 0.5, 1.0], [0.0, -0.0, 2.0, 0.0, 2.0, -1.0]])
NANS = np.array([[2.0, nan, -0.5, 1.0, nan, -1.0], [3.0, 1.5, 4.0, 0.5, -2.0, 9.0],
                 [nan, nan, nan, 1.0, 2.0, 0.0]])
ZEROS = np.array([[-2.0, 0.0, 0.5, 1.5, 0.0], [1.25, -0.5, 3.0, 0.0, 2.0],
                  [0.5, 2.0, -1.5, 0.75, 1.0]])
INTS = arr(3, 6, dtype="int64", low=-4, high=4)
SMALL = arr(2, 7, dtype="int64", low=0, high=3)  # many ties: for mode
SEQ = np.sort(arr(2, 6, dtype="float64"), axis=1)
Q = np.array([0.0, 0.2, 0.5, 0.75, 1.0])

CASES = [
    # sort / argsort / msort
    ("sort", lambda t, x: t.sort(x), X), ("sort_dim0_desc", lambda t, x: x.sort(0, True), X),
    ("sort_kw", lambda t, x: t.sort(x, dim=-2, descending=True), X4),
    ("sort_stable_ties", lambda t, x: t.sort(x, dim=1, stable=True), TIES),
    ("sort_stable_ties_desc", lambda t, x: x.sort(dim=1, descending=True, stable=True), TIES),
    ("sort_nan", lambda t, x: t.sort(x, stable=True), NANS),
    ("sort_nan_desc", lambda t, x: t.sort(x, descending=True, stable=True), NANS),
    ("sort_ints_desc", lambda t, x: t.sort(x, dim=1, descending=True, stable=True), INTS),
    ("sort_float32", lambda t, x: x.sort(1), X32),
    ("sort_0d", lambda t, x: t.sort(x), X[0, 0]),
    ("argsort", lambda t, x: t.argsort(x, 0), X), ("argsort_desc", lambda t, x: x.argsort(
        descending=True), X4),
    ("argsort_stable", lambda t, x: t.argsort(x, stable=True), TIES),
    ("msort", lambda t, x: t.msort(x), X),
    # topk / kthvalue
    ("topk", lambda t, x: t.topk(x, 3), X), ("topk_smallest", lambda t, x: x.topk(2, 0, False), X),
    ("topk_dim", lambda t, x: t.topk(x, 2, dim=1, largest=True, sorted=True), X4),
    ("topk_nan", lambda t, x: t.topk(x, 2), NANS[1:2]), ("topk_ints", lambda t, x: x.topk(1),
                                                         INTS * 10 + np.arange(6)),
    ("kthvalue", lambda t, x: t.kthvalue(x, 2), X),
    ("kthvalue_keepdim", lambda t, x: x.kthvalue(3, 0, keepdim=True), X),
    # median / nanmedian / mode
    ("median_all", lambda t, x: t.median(x), X),
    ("median_dim", lambda t, x: t.median(x, 1), X),
    ("median_dim_even_keepdim", lambda t, x: x.median(-1, keepdim=True), X4),
    ("median_nan", lambda t, x: t.median(x, 1), NANS[:2]),
    ("median_ints", lambda t, x: t.median(x, 0), INTS * 10 + np.arange(6)),
    ("nanmedian", lambda t, x: t.nanmedian(x, 1), NANS), ("nanmedian_all", lambda t, x:
                                                          x.nanmedian(), NANS),
    ("mode_ints", lambda t, x: t.mode(x), SMALL), ("mode_dim0", lambda t, x: x.mode(0, True),
                                                   SMALL),
    ("mode_floats", lambda t, x: t.mode(x, 1), TIES),
    # quantile / nanquantile
    ("quantile_scalar", lambda t, x: [t.quantile(x, 0.3), x.quantile(0.7, dim=1)], X4),
    ("quantile_tensor_keepdim", lambda t, x, q: t.quantile(x, q, dim=1, keepdim=True), X4, Q),
    ("quantile_interpolations", lambda t, x, q: [t.quantile(x, q, 1, interpolation=m) for m in
                                                 ("lower", "higher", "midpoint", "nearest")],
     X4, Q),
    ("quantile_nan", lambda t, x: t.quantile(x, 0.4, dim=1), NANS),
    ("nanquantile", lambda t, x, q: t.nanquantile(x, q, 1), NANS[:2], Q),
    ("nanquantile_all", lambda t, x: x.nanquantile(0.25), NANS),
    # cumulative ops
    ("cumprod", lambda t, x: t.cumprod(x, 1), X), ("cumprod_zeros", lambda t, x: x.cumprod(1),
                                                   ZEROS),
    ("cumprod_zeros_dim0", lambda t, x: t.cumprod(x, 0), ZEROS),
    ("cumprod_ints", lambda t, x: t.cumprod(x, 1), INTS),
    ("cumprod_dtype", lambda t, x: t.cumprod(x, 0, dtype=t.float64), INTS),
    ("cummax", lambda t, x: t.cummax(x, 1), X), ("cummin", lambda t, x: x.cummin(0), X),
    ("cummax_ties", lambda t, x: t.cummax(x, 1), TIES),
    ("cummin_nan", lambda t, x: t.cummin(x, 1), NANS),
    ("cummax_ints", lambda t, x: t.cummax(x, -1), INTS),
    ("logcumsumexp", lambda t, x: t.logcumsumexp(x, 1), X),
    ("logcumsumexp_wide", lambda t, x: (x * 300).logcumsumexp(0), X),
    # searching and counting
    ("searchsorted", lambda t, s, v: t.searchsorted(s, v), SEQ, X[:2]),
    ("searchsorted_right_int32", lambda t, s, v: t.searchsorted(s, v, right=True, out_int32=True),
     SEQ, X[:2]),
    ("searchsorted_1d_side", lambda t, s, v: t.searchsorted(s, v, side="right"), SEQ[0], X4),
    ("searchsorted_nan", lambda t, s, v: t.searchsorted(s, v), SEQ, NANS[:2]),
    ("bucketize", lambda t, x, b: t.bucketize(x, b), X4, SEQ[0]),
    ("bucketize_right", lambda t, x, b: t.bucketize(x, b, right=True),
     np.array([[-1, 0, 2], [3, 5, 9]]), np.array([0, 2, 3, 8])),
    ("unique", lambda t, x: t.unique(x), INTS),
    ("unique_all", lambda t, x: t.unique(x, return_inverse=True, return_counts=True), INTS),
    ("unique_dim", lambda t, x: x.unique(dim=0, return_inverse=True, return_counts=True),
     np.array([[1, 2], [0, 1], [1, 2]])),
    ("unique_consecutive", lambda t, x: t.unique_consecutive(x, return_inverse=True,
                                                             return_counts=True), SMALL),
    ("unique_consecutive_dim", lambda t, x: t.unique_consecutive(x, return_counts=True, dim=1),
     np.array([[1, 1, 2, 2, 1], [0, 0, 3, 3, 0]])),
    ("bincount", lambda t, x: t.bincount(x), SMALL[0]),
    ("bincount_weights_minlength", lambda t, x, w: t.bincount(x, w, minlength=5), SMALL[0],
     X[0, :1].repeat(7)),
    ("histc", lambda t, x: t.histc(x, bins=6), X),
    ("histc_range", lambda t, x: x.histc(4, -1, 1), X4),
]


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c[0], marks=variant_marks(c[0], [d[0] for d in CASES])) for c in CASES])
def test_against_torch(case):
    _, fn, *arrays = case
    check(fn, *arrays, compiled=False)


def test_return_types_unpack_and_name_fields():
    x = gcomp_tensor(X)
    values, indices = gcomp.sort(x)
    r = gcomp.topk(x, 2)
    assert r.values is r[0] and r.indices is r[1]
    assert values.shape == indices.shape == x.shape and indices.dtype == gcomp.int64
    assert type(gcomp.cummax(x, 0)).__name__ == "cummax"


def test_out_arguments_are_written():
    x = gcomp_tensor(X)
    v, i = gcomp.zeros(X.shape, dtype=gcomp.float64), gcomp.zeros(X.shape, dtype=gcomp.int64)
    r = gcomp.sort(x, 0, out=(v, i))
    want = torch.sort(torch_tensor(X), 0)
    assert r.values is v and r.indices is i
    np.testing.assert_array_equal(i.numpy(), want.indices.numpy())
    np.testing.assert_array_equal(v.numpy(), want.values.numpy())
    c = gcomp.zeros(X.shape, dtype=gcomp.float64)
    assert gcomp.cumprod(x, 1, out=c) is c
    np.testing.assert_allclose(c.numpy(), np.cumprod(X, 1), rtol=1e-12)
    with pytest.raises(gcomp.GcompError, match="out= must be a tensor of the result's shape"):
        gcomp.cumprod(x, 1, out=gcomp.zeros(2))


def _program(t, x, z, s, v):
    """One program over the compile-friendly ops, their gradients included."""
    vals, idx = t.sort(x, dim=1, descending=True)
    top = t.topk(x, 2, dim=0)
    med = t.median(x, 1)
    cmx = t.cummax(x, 1)
    loss = (vals * vals).sum() + top.values.sum() + t.cumprod(z, 1).sum() + med.values.sum() \
        + t.quantile(x, 0.3, dim=1).sum() + t.logcumsumexp(x, 0).sum() + cmx.values.sum()
    kth = t.kthvalue(x, 2, 0)
    loss = loss + kth.values.sum() + t.nanmedian(z, 0).values.sum()
    counts = t.bincount(t.searchsorted(s, v).flatten(), minlength=8)
    return (loss, idx, top.indices, med.indices, cmx.indices, kth.indices, counts,
            *t.mode(z.detach(), 0), t.histc(v, 5))


def test_one_compiled_program_matches_torch():
    tx, tz = torch_tensor(X, True), torch_tensor(ZEROS, True)
    want = _program(torch, tx, tz, torch_tensor(SEQ[0]), torch_tensor(X4))
    want_grads = torch.autograd.grad(want[0], [tx, tz])

    def step(x, z, s, v):
        out = _program(gcomp, x, z, s, v)
        return (*out, *gcomp.autograd.grad(out[0], [x, z]))

    got = gcomp.compile(step)(gcomp_tensor(X, True), gcomp_tensor(ZEROS, True),
                              gcomp_tensor(SEQ[0]), gcomp_tensor(X4))
    for g, w in zip(got, [*want, *want_grads], strict=True):
        np.testing.assert_allclose(np.asarray(g.detach()), w.detach().numpy(), rtol=1e-12,
                                   atol=1e-12)


def test_data_dependent_shapes_refuse_to_trace():
    for fn in (lambda x: gcomp.unique(x), lambda x: x.unique_consecutive(),
               lambda x: gcomp.bincount(x)):
        with pytest.raises(gcomp.TracedValueError, match="depends on the data|minlength"):
            gcomp.compile(fn)(gcomp_tensor(SMALL[0]))


BAD = [
    ("topk_k_too_large", lambda: gcomp.topk(gcomp_tensor(X), 6)),
    ("kthvalue_k_zero", lambda: gcomp.kthvalue(gcomp_tensor(X), 0)),
    ("sort_bad_dim", lambda: gcomp.sort(gcomp_tensor(X), 2)),
    ("quantile_q_out_of_range", lambda: gcomp.quantile(gcomp_tensor(X), 1.5)),
    ("quantile_int_input", lambda: gcomp.quantile(gcomp_tensor(INTS), 0.5)),
    ("quantile_bad_interpolation", lambda: gcomp.quantile(gcomp_tensor(X), 0.5,
                                                          interpolation="cubic")),
    ("bincount_negative", lambda: gcomp.bincount(gcomp_tensor(np.array([1, -1])))),
    ("bincount_float", lambda: gcomp.bincount(gcomp_tensor(X[0]))),
    ("searchsorted_mismatch", lambda: gcomp.searchsorted(gcomp_tensor(SEQ), gcomp_tensor(X))),
    ("histc_ints", lambda: gcomp.histc(gcomp_tensor(INTS))),
]


@pytest.mark.parametrize("fn", [pytest.param(f, id=n) for n, f in BAD])
def test_bad_input_is_a_gcomp_error_naming_the_line(fn):
    with pytest.raises(gcomp.GcompError, match="test_sorting.py"):
        fn()
