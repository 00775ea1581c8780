"""``x[key]`` and ``x[key] = value`` against torch: ints, negative ints, slices with steps, None,
Ellipsis, integer tensors (numpy's placement rules for adjacent and separated index tensors),
boolean masks (eagerly: their result's shape depends on the data), values and gradients."""

from __future__ import annotations

import numpy as np
import pytest
from torch_reference import arr, check

# One xdist worker runs this file, so its eager per-op compiles are shared by all its tests.
pytestmark = pytest.mark.xdist_group("frontend_indexing")

X = arr(3, 4)
X3 = arr(2, 3, 4)
INTS = arr(3, 4, dtype="int64", low=-5, high=5)
IDX = np.array([2, 0], dtype=np.int64)  # index tensors passed as (non-differentiable) arguments
IDX_NEG = np.array([-1, 1, -3], dtype=np.int64)
IDX2D = np.array([[0, 1], [2, 0]], dtype=np.int64)
MASK = arr(3, 4, dtype="bool")
ROWS = np.array([True, False, True])

GETITEM = [
    # basic: ints, negative ints, slices with steps, None, Ellipsis
    ("int", lambda t, x: x[1], [X]), ("neg_int", lambda t, x: x[-1], [X]),
    ("two_ints", lambda t, x: x[1, 2], [X]), ("neg_ints", lambda t, x: x[-1, -4], [X]),
    ("int_on_3d", lambda t, x: x[1][2], [X3]), ("slice", lambda t, x: x[1:3], [X]),
    ("slice_step", lambda t, x: x[::2], [X]), ("slice_both", lambda t, x: x[1:, ::3], [X]),
    ("slice_neg_bounds", lambda t, x: x[-2:, :-1], [X]),
    ("slice_step_offset", lambda t, x: x[:, 1::2], [X]),
    ("slice_past_end", lambda t, x: x[1:10, -10:2], [X]), ("slice_empty", lambda t, x: x[2:1], [X]),
    ("column", lambda t, x: x[:, 1], [X]), ("int_and_slice", lambda t, x: x[1, 1:3], [X3]),
    ("none", lambda t, x: x[None], [X]), ("none_middle", lambda t, x: x[:, None], [X]),
    ("none_many", lambda t, x: x[None, :, None, :, None], [X]),
    ("ellipsis", lambda t, x: x[..., 1], [X3]), ("ellipsis_front", lambda t, x: x[0, ...], [X3]),
    ("ellipsis_middle", lambda t, x: x[1, ..., ::2], [X3]),
    ("ellipsis_none", lambda t, x: x[..., None], [X3]), ("ellipsis_only", lambda t, x: x[...], [X]),
    ("int_ellipsis_none", lambda t, x: x[None, ..., 0, None], [X3]),
    ("int_0d_result", lambda t, x: x[1, 2, 3], [X3]),
    ("int_tensor_dtype", lambda t, x: x[1, 1:], [INTS]),
    ("index_with_0d_tensor", lambda t, x: x[t.tensor(1)], [X]),
    # integer tensors
    ("tensor_1d", lambda t, x, i: x[i], [X, IDX]),
    ("tensor_neg", lambda t, x, i: x[:, i], [X, IDX_NEG]),
    ("tensor_2d", lambda t, x, i: x[i], [X, IDX2D]),
    ("tensor_const", lambda t, x: x[t.tensor([0, 2, 2])], [X]),
    ("list", lambda t, x: x[[0, 2]], [X]),
    ("tensor_dim1", lambda t, x, i: x[:, i], [X3, IDX[:1]]),
    ("tensor_last", lambda t, x, i: x[..., i], [X3, IDX]),
    ("two_adjacent", lambda t, x, i, j: x[i, j], [X3, IDX[:2] % 2, IDX]),
    ("two_adjacent_inner", lambda t, x, i, j: x[:, i, j], [X3, IDX, IDX[::-1].copy()]),
    ("two_separated", lambda t, x, i, j: x[i % 2, :, j], [X3, IDX, IDX_NEG[:2]]),
    ("two_broadcast", lambda t, x, i, j: x[i, :, j], [X3, np.array([[0], [1]]), IDX_NEG]),
    ("two_on_2d", lambda t, x, i, j: x[i, j], [X, IDX, IDX_NEG[:2]]),
    ("tensor_and_int", lambda t, x, i: x[1, :, i], [X3, IDX]),
    ("tensor_none_tensor", lambda t, x, i, j: x[i, None, j], [X3, IDX % 2, IDX]),
    ("tensor_and_slice_step", lambda t, x, i: x[i, ::2], [X, IDX]),
    ("tensor_repeated", lambda t, x: x[t.tensor([1, 1, 0])], [X]),
    ("tensor_int_data", lambda t, x, i: x[i, 1:], [INTS, IDX]),
]


@pytest.mark.parametrize("fn, xs", [pytest.param(f, xs, id=n) for n, f, xs in GETITEM])
def test_getitem(fn, xs):
    check(fn, *xs)


MASKED = [
    ("mask", lambda t, x, m: x[m], [X, MASK]),
    ("mask_from_data", lambda t, x: x[x > 0], [X]),
    ("mask_rows", lambda t, x, m: x[m], [X, ROWS]),
    ("mask_rows_and_slice", lambda t, x, m: x[m, 1:], [X, ROWS]),
    ("mask_inner_dim", lambda t, x, m: x[:, m], [X3, ROWS]),
    ("mask_all_false", lambda t, x: x[x > 100], [X]),
    ("mask_int_data", lambda t, x: x[x % 2 == 0], [INTS]),
    ("masked_select", lambda t, x, m: t.masked_select(x, m), [X, MASK]),
]


@pytest.mark.parametrize("fn, xs", [pytest.param(f, xs, id=n) for n, f, xs in MASKED])
def test_getitem_boolean_mask(fn, xs):
    check(fn, *xs, compiled=False)  # inside gcomp.compile this is an error: see test_errors.py


V_ROW, V_COL, V_ONE = arr(4), arr(3, 1), arr(1)


def _set(key):
    """``y = x.clone(); y[key] = value``, returning y: its gradient reaches x where x was not
    overwritten, and the value where it was. Arguments: x, value, then the index tensors."""
    def fn(t, x, value, *idx):
        y = x.clone()
        y[key(t, *idx)] = value
        return y

    return fn


def _setv(key, value):
    def fn(t, x, *rest):
        y = x.clone()
        y[key(t, *rest)] = value
        return y

    return fn


SETITEM = [
    # Python scalar values
    ("int_scalar", _setv(lambda t: 1, 5.0), [X]),
    ("neg_int_int_value", _setv(lambda t: -1, 7), [X]),
    ("slice_step_scalar", _setv(lambda t: (slice(None), slice(None, None, 2)), -1.5), [X]),
    ("ellipsis_scalar", _setv(lambda t: (Ellipsis, 0), 0.0), [X3]),
    ("none_scalar", _setv(lambda t: (None, 1), 2), [X]),
    ("element", _setv(lambda t: (2, 3), 9.0), [X]),
    ("tensor_index_scalar", _setv(lambda t, i: i, 0.5), [X, IDX]),
    ("two_tensors_scalar", _setv(lambda t, i, j: (i, j), 3.0), [X, IDX, IDX_NEG[:2]]),
    ("int_data_float_value", _setv(lambda t: 0, 2.7), [INTS]),
    ("int_data_negative_float", _setv(lambda t: (slice(None), 1), -2.7), [INTS]),
    ("bool_value", _setv(lambda t: 1, True), [X]),
    # tensor values, broadcast to the indexed region
    ("row_tensor", _set(lambda t: 1), [X, V_ROW]),
    ("rows_broadcast", _set(lambda t: slice(0, 2)), [X, V_ROW]),
    ("column_broadcast", _set(lambda t: (slice(None), slice(1, 3))), [X, V_COL]),
    ("one_element_broadcast", _set(lambda t: (Ellipsis, 2)), [X3, V_ONE]),
    ("strided_block", _set(lambda t: (slice(None, None, 2), slice(1, None, 2))), [X, arr(2, 2)]),
    ("tensor_index_rows", _set(lambda t, i: i), [X, arr(2, 4), IDX]),
    ("tensor_index_broadcast", _set(lambda t, i: (slice(None), i)), [X, V_COL, IDX]),
    ("two_separated", _set(lambda t, i, j: (i % 2, slice(None), j)),
     [X3, arr(2, 3), IDX, IDX_NEG[:2]]),
    ("two_adjacent", _set(lambda t, i, j: (i, j)), [X, arr(2), IDX, IDX_NEG[:2]]),
    ("zero_d_value", _set(lambda t: (0, 0)), [X, arr()]),
    ("none_tensor", _set(lambda t: (None, slice(1, 3))), [X, V_ROW]),
    ("int_value_into_float", _set(lambda t: 2), [X, arr(4, dtype="int64")]),
    ("float_value_into_int", _set(lambda t: 2), [INTS, arr(4)]),
]


@pytest.mark.parametrize("fn, xs", [pytest.param(f, xs, id=n) for n, f, xs in SETITEM])
def test_setitem(fn, xs):
    check(fn, *xs)


MASKED_SET = [
    ("mask_scalar", lambda t, x, m: _masked_set(x, m, 0.0), [X, MASK]),
    ("mask_from_data", lambda t, x: _masked_set(x, x < 0, -1.0), [X]),
    ("mask_tensor_value", lambda t, x, v: _masked_set(x, x > 0, v[:int((x > 0).sum())]),
     [X, arr(12)]),
    ("mask_rows_broadcast", lambda t, x, m, v: _masked_set(x, m, v), [X, ROWS, V_ROW]),
    ("mask_int_data", lambda t, x: _masked_set(x, x < 0, 0), [INTS]),
]


def _masked_set(x, m, v):
    y = x.clone()
    y[m] = v
    return y


@pytest.mark.parametrize("fn, xs", [pytest.param(f, xs, id=n) for n, f, xs in MASKED_SET])
def test_setitem_boolean_mask(fn, xs):
    check(fn, *xs, compiled=False)
