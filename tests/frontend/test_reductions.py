"""Reductions against torch: dims, keepdim, negative and tuple dims, dtypes, values and indices."""

from __future__ import annotations

import pytest
from torch_reference import arr, check

# One xdist worker runs this file, so its eager per-op compiles are shared by all its tests.
pytestmark = pytest.mark.xdist_group("frontend_reductions")

X = arr(3, 4)  # random floats: no ties, so max/min indices and gradients are unambiguous
X3 = arr(2, 3, 4)
INTS = arr(3, 4, dtype="int64", low=-5, high=5)
B = arr(3, 4, dtype="bool")

REDUCTIONS = [
    # sum
    ("sum", lambda t, x: x.sum(), X), ("sum_fn", lambda t, x: t.sum(x), X),
    ("sum_dim", lambda t, x: x.sum(0), X), ("sum_neg_dim", lambda t, x: x.sum(-1), X3),
    ("sum_keepdim", lambda t, x: x.sum(1, keepdim=True), X3),
    ("sum_tuple", lambda t, x: x.sum((0, 2)), X3),
    ("sum_tuple_neg_keepdim", lambda t, x: t.sum(x, dim=(-1, 0), keepdim=True), X3),
    ("sum_int", lambda t, x: x.sum(), INTS), ("sum_int_dim", lambda t, x: x.sum(1), INTS),
    ("sum_int32", lambda t, x: x.sum(0), INTS.astype("int32")),
    ("sum_bool", lambda t, x: x.sum(), B), ("sum_bool_dim", lambda t, x: x.sum(-1), B),
    ("sum_dtype", lambda t, x: x.sum(dtype=t.float64), X),
    ("sum_f16", lambda t, x: x.sum(1), X.astype("float16")),
    # mean
    ("mean", lambda t, x: x.mean(), X), ("mean_dim", lambda t, x: x.mean(1), X),
    ("mean_neg_keepdim", lambda t, x: t.mean(x, -2, keepdim=True), X3),
    ("mean_tuple", lambda t, x: x.mean((0, 1)), X3),
    ("mean_dtype_arg", lambda t, x: x.mean(dtype=t.float64), X),
    ("mean_int_with_dtype", lambda t, x: x.mean(dtype=t.float32), INTS),
    ("mean_f64", lambda t, x: x.mean(0), X.astype("float64")),
    # max / min: full reductions, and (values, indices) along a dim
    ("max", lambda t, x: x.max(), X), ("min", lambda t, x: t.min(x), X),
    ("max_dim", lambda t, x: x.max(1), X), ("min_dim", lambda t, x: x.min(0), X),
    ("max_neg_keepdim", lambda t, x: t.max(x, -1, keepdim=True), X3),
    ("min_dim_kw", lambda t, x: x.min(dim=1, keepdim=True), X3),
    ("max_values", lambda t, x: x.max(dim=0).values, X),
    ("max_indices", lambda t, x: x.max(dim=0).indices, X),
    ("min_unpack", lambda t, x: (lambda v, i: v * 2 + i)(*x.min(-1)), X),
    ("max_int", lambda t, x: x.max(), INTS), ("max_int_dim", lambda t, x: x.max(0), INTS),
    ("max_bool", lambda t, x: x.max(), B),
    ("amax", lambda t, x: t.amax(x, 1), X), ("amin_tuple", lambda t, x: x.amin((0, 1)), X3),
    # argmax / argmin
    ("argmax", lambda t, x: x.argmax(), X), ("argmin", lambda t, x: t.argmin(x), X),
    ("argmax_dim", lambda t, x: x.argmax(1), X3),
    ("argmin_neg_keepdim", lambda t, x: x.argmin(-1, keepdim=True), X3),
    ("argmax_fn_dim", lambda t, x: t.argmax(x, dim=0), X),
    ("argmax_int", lambda t, x: x.argmax(dim=1), INTS * 100 + arr(3, 4, dtype="int64", high=9)),
    # prod
    ("prod", lambda t, x: x.prod(), X), ("prod_dim", lambda t, x: x.prod(1), X),
    ("prod_keepdim", lambda t, x: t.prod(x, -1, keepdim=True), X3),
    ("prod_int", lambda t, x: x.prod(0), INTS), ("prod_bool", lambda t, x: x.prod(), B),
    # var / std: unbiased by default, correction=0 and unbiased=False
    ("var", lambda t, x: x.var(), X), ("var_dim", lambda t, x: x.var(1), X),
    ("var_unbiased_false", lambda t, x: x.var(0, unbiased=False), X),
    ("var_correction0", lambda t, x: t.var(x, dim=1, correction=0), X),
    ("var_tuple_keepdim", lambda t, x: x.var((0, 2), keepdim=True), X3),
    ("std", lambda t, x: x.std(), X), ("std_dim", lambda t, x: t.std(x, -1), X3),
    ("std_correction0", lambda t, x: x.std(dim=0, correction=0), X),
    ("std_unbiased_false_keepdim", lambda t, x: x.std(1, False, True), X3),
    ("std_f64", lambda t, x: x.std(0), X.astype("float64")),
    # all / any
    ("all", lambda t, x: x.all(), B), ("any", lambda t, x: t.any(x), B),
    ("all_dim", lambda t, x: x.all(1), B), ("any_dim_keepdim", lambda t, x: x.any(0, True), B),
    ("all_float", lambda t, x: (x > -1.5).all(-1), X), ("any_int", lambda t, x: x.any(1), INTS),
    ("all_all_true", lambda t, x: (x == x).all(), X),
    ("any_none_true", lambda t, x: (x > 100).any(), X),
    # logsumexp
    ("logsumexp", lambda t, x: t.logsumexp(x, 1), X),
    ("logsumexp_neg_keepdim", lambda t, x: x.logsumexp(-1, keepdim=True), X3),
    ("logsumexp_tuple", lambda t, x: t.logsumexp(x, (0, 2)), X3),
    ("logsumexp_large", lambda t, x: t.logsumexp(x * 200, 0), X),
    ("logsumexp_int", lambda t, x: t.logsumexp(x, 1), INTS),
    # 0-d and size-1 inputs
    ("sum_0d", lambda t, x: x.sum(), X[0, 0]), ("max_0d_dim", lambda t, x: x.max(0), X[0, 0]),
    ("mean_0d_dim", lambda t, x: x.mean(-1), X[0, 0]),
]


@pytest.mark.parametrize("fn, x", [pytest.param(f, x, id=n) for n, f, x in REDUCTIONS])
def test_reduction(fn, x):
    check(fn, x)
