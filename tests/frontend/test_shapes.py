"""Shape ops against torch: reshape/view, flatten, permute, transposes, squeeze/unsqueeze,
expand, repeat, cat, stack, split and chunk (results, shapes and gradients)."""

from __future__ import annotations

import pytest
from torch_reference import arr, check

# One xdist worker runs this file, so its eager per-op compiles are shared by all its tests.
pytestmark = pytest.mark.xdist_group("frontend_shapes")

X = arr(3, 4)
X3 = arr(2, 3, 4)
INTS = arr(3, 4, dtype="int64", low=-5, high=5)
COL = arr(3, 1)
ONES = arr(1, 3, 1, 2)

SHAPE_OPS = [
    # reshape / view
    ("reshape", lambda t, x: x.reshape(4, 3), X),
    ("reshape_tuple", lambda t, x: x.reshape((2, 6)), X),
    ("reshape_infer", lambda t, x: x.reshape(-1, 2), X),
    ("reshape_fn", lambda t, x: t.reshape(x, (12,)), X),
    ("reshape_0d", lambda t, x: x.reshape(()), X[:1, :1]),
    ("reshape_int", lambda t, x: x.reshape(2, -1), INTS),
    ("view_flat", lambda t, x: x.view(-1), X), ("view_infer", lambda t, x: x.view(2, -1, 2), X3),
    ("view_tuple", lambda t, x: x.view((4, 6)), X3), ("view_as", lambda t, x: x.view_as(x.t()), X),
    ("reshape_chain", lambda t, x: x.view(6, 4).reshape(4, 6).view(-1) * 2, X3),
    # flatten
    ("flatten", lambda t, x: x.flatten(), X3), ("flatten_start", lambda t, x: x.flatten(1), X3),
    ("flatten_range", lambda t, x: t.flatten(x, 0, 1), X3),
    ("flatten_neg", lambda t, x: x.flatten(-2, -1), X3),
    ("flatten_0d", lambda t, x: x.flatten(), X[0, 0]),
    # permute / transpose / t / T
    ("permute", lambda t, x: x.permute(2, 0, 1), X3),
    ("permute_tuple", lambda t, x: x.permute((1, 2, 0)), X3),
    ("permute_neg", lambda t, x: t.permute(x, (-1, 0, 1)), X3),
    ("transpose", lambda t, x: x.transpose(0, 2), X3),
    ("transpose_neg", lambda t, x: t.transpose(x, -1, -2), X3),
    ("t", lambda t, x: x.t(), X),
    ("t_fn", lambda t, x: t.t(x), X),
    ("t_1d", lambda t, x: x.t(), X[0]),
    ("T", lambda t, x: x.T, X), ("mT", lambda t, x: x.mT, X3),
    ("swapaxes", lambda t, x: x.swapaxes(0, 1), X3), ("transpose_int", lambda t, x: x.t(), INTS),
    # squeeze / unsqueeze
    ("squeeze", lambda t, x: x.squeeze(), ONES), ("squeeze_dim", lambda t, x: x.squeeze(0), ONES),
    ("squeeze_neg", lambda t, x: x.squeeze(-2), ONES),
    ("squeeze_not_one", lambda t, x: x.squeeze(1), ONES),
    ("squeeze_fn", lambda t, x: t.squeeze(x, 2), ONES),
    ("squeeze_tuple", lambda t, x: x.squeeze((0, 2)), ONES),
    ("unsqueeze", lambda t, x: x.unsqueeze(0), X),
    ("unsqueeze_last", lambda t, x: x.unsqueeze(-1), X),
    ("unsqueeze_mid", lambda t, x: t.unsqueeze(x, 1), X),
    ("unsqueeze_neg2", lambda t, x: x.unsqueeze(-2), X),
    ("unsqueeze_0d", lambda t, x: x.unsqueeze(0), X[0, 0]),
    # expand / repeat
    ("expand", lambda t, x: x.expand(3, 5), COL),
    ("expand_keep", lambda t, x: x.expand(-1, 4), COL),
    ("expand_new_dims", lambda t, x: x.expand(2, 3, 4), COL),
    ("expand_as", lambda t, x: x.expand_as(t.zeros(2, 3, 4)), COL),
    ("expand_tuple", lambda t, x: x.expand((2, -1, -1)), X),
    ("broadcast_to", lambda t, x: t.broadcast_to(x, (2, 3, 4)), COL),
    ("repeat", lambda t, x: x.repeat(2, 3), X),
    ("repeat_new_dims", lambda t, x: x.repeat(2, 1, 2), X),
    ("repeat_tuple", lambda t, x: x.repeat((1, 2)), COL),
    ("repeat_int", lambda t, x: x.repeat(2, 1), INTS),
]


@pytest.mark.parametrize("fn, x", [pytest.param(f, x, id=n) for n, f, x in SHAPE_OPS])
def test_shape_op(fn, x):
    check(fn, x)


A, B, C = arr(2, 3), arr(2, 3), arr(4, 3)

JOIN_SPLIT = [
    # cat / stack
    ("cat", lambda t, a, b, c: t.cat([a, b, c]), [A, B, C]),
    ("cat_dim1", lambda t, a, b: t.cat((a, b), dim=1), [A, B]),
    ("cat_neg", lambda t, a, b: t.cat([a, b], -1), [A, B]),
    ("cat_one", lambda t, a: t.cat([a]), [A]),
    ("cat_mixed_dtypes", lambda t, a, i: t.cat([a, i]), [A, INTS[:2, :3]]),
    ("cat_int", lambda t, i: t.cat([i, i], 1), [INTS]),
    ("concat", lambda t, a, b: t.concat([a, b], 0), [A, B]),
    ("stack", lambda t, a, b: t.stack([a, b]), [A, B]),
    ("stack_dim1", lambda t, a, b: t.stack((a, b), 1), [A, B]),
    ("stack_neg", lambda t, a, b: t.stack([a, b], dim=-1), [A, B]),
    ("stack_1d", lambda t, a, b: t.stack([a[0], b[1], a[1]]), [A, B]),
    # split / chunk
    ("split_int", lambda t, x: x.split(2), [C]), ("split_uneven", lambda t, x: x.split(3), [C]),
    ("split_dim", lambda t, x: t.split(x, 2, dim=1), [A]),
    ("split_sections", lambda t, x: x.split([1, 3]), [C]),
    ("split_sections_dim", lambda t, x: t.split(x, [1, 2], -1), [A]),
    ("split_big", lambda t, x: x.split(10), [C]),
    ("chunk", lambda t, x: x.chunk(2), [C]), ("chunk_uneven", lambda t, x: x.chunk(3, dim=1), [X]),
    ("chunk_fn", lambda t, x: t.chunk(x, 3), [C]),
    ("chunk_more_than_size", lambda t, x: x.chunk(5, 1), [A]),
    ("split_then_cat", lambda t, x: t.cat(x.split([3, 1])[::-1]), [C]),
    ("unbind", lambda t, x: x.unbind(1), [A]),
]


@pytest.mark.parametrize("fn, xs", [pytest.param(f, xs, id=n) for n, f, xs in JOIN_SPLIT])
def test_join_split(fn, xs):
    check(fn, *xs)


@pytest.mark.parametrize("fn, x", [
    pytest.param(lambda t, x: x.reshape(2, 6).shape, X, id="shape"),
    pytest.param(lambda t, x: x.permute(2, 0, 1).size(), X3, id="size"),
    pytest.param(lambda t, x: x.unsqueeze(1).size(1), X, id="size_dim"),
    pytest.param(lambda t, x: x.expand(2, 3, 4).dim(), COL, id="dim"),
    pytest.param(lambda t, x: [p.shape for p in x.split([1, 3])], C, id="split_shapes"),
])
def test_result_shapes(fn, x):
    check(fn, x)
