"""Scatters, index updates, diagonals and shape helpers against torch: values eagerly, gradients
(float64) where torch has them, one compiled function covering several, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from torch_reference import arr, check, gcomp_tensor, torch_tensor, variant_marks

import gcomp

pytestmark = pytest.mark.xdist_group("frontend_scatter_index")

F64 = "float64"
X = arr(3, 5, dtype=F64)
X3 = arr(2, 3, 4, dtype=F64)
V = arr(5, dtype=F64)
SRC = arr(2, 5, dtype=F64)
IDX = np.array([[0, 1, 2, 0, 1], [2, 0, 0, 1, 2]], dtype=np.int64)
IDX_UNIQ = np.array([[0, 1, 2, 0, 1], [2, 0, 0, 1, 2]], dtype=np.int64)[:1]
VEC_IDX = np.array([0, 2, 0], dtype=np.int64)
ROWS = np.array([4, 0], dtype=np.int64)
MASK = arr(3, 5, dtype="bool")
INTS = arr(3, 5, dtype="int64", low=-5, high=5)
TIES = np.array([[1.0, 2.0, 2.0], [0.5, 2.0, 1.0]])  # amax ties between input and src


def reduce_case(r, inc):
    return (f"scatter_reduce_{r}_{'self' if inc else 'noself'}",
            lambda t, x, i, s: t.scatter_reduce(x, 0, i, s, r, include_self=inc), [X, IDX, SRC])


CASES = [
    # scatters: torch.scatter and its relatives (gradients w.r.t. input and src)
    ("scatter_src", lambda t, x, i, s: t.scatter(x, 0, i, s), [X, IDX_UNIQ, SRC]),
    ("scatter_small_index", lambda t, x, i, s: x.scatter(1, i[:, :2] % 3, s), [X, IDX, SRC]),
    ("scatter_value", lambda t, x, i: t.scatter(x, 0, i, value=2.5), [X, IDX]),
    ("scatter_reduce_add", lambda t, x, i, s: x.scatter(0, i, s, reduce="add"), [X, IDX, SRC]),
    ("scatter_reduce_multiply", lambda t, x, i, s: x.scatter(0, i, s, reduce="multiply"),
     [X, IDX, SRC]),
    ("scatter_add", lambda t, x, i, s: t.scatter_add(x, 0, i, s), [X, IDX, SRC]),
    ("scatter_add_dim1", lambda t, x, i, s: x.scatter_add(1, i % 3, s), [X, IDX, SRC]),
    ("scatter_add_ints", lambda t, x, i: x.scatter_add(0, i, x[:2]), [INTS, IDX]),
    *[reduce_case(r, inc) for r in ("sum", "prod", "mean", "amax", "amin")
      for inc in (True, False)],
    ("scatter_reduce_amax_ties", lambda t, x, s: x.scatter_reduce(
        1, t.tensor([[0, 0, 1], [2, 1, 1]]), s, "amax"), [TIES, TIES[:, ::-1].copy()]),
    ("scatter_reduce_mean_ints", lambda t, x, i: x.scatter_reduce(0, i, x[:2], "mean"),
     [INTS, IDX]),
    ("scatter_inplace", lambda t, x, i, s: x.clone().scatter_(0, i, s), [X, IDX_UNIQ, SRC]),
    ("scatter_add_inplace", lambda t, x, i, s: (x * 1).scatter_add_(0, i, s), [X, IDX, SRC]),
    ("scatter_reduce_inplace", lambda t, x, i, s: (x * 1).scatter_reduce_(0, i, s, "amin"),
     [X, IDX, SRC]),
    # index_* along one dim
    ("index_add", lambda t, x, i, s: t.index_add(x, 0, i, s, alpha=2), [X, VEC_IDX,
                                                                        arr(3, 5, dtype=F64)]),
    ("index_add_dim1", lambda t, x, i, s: x.index_add(1, i, s), [X, ROWS, arr(3, 2, dtype=F64)]),
    ("index_add_inplace", lambda t, x, i, s: (x * 1).index_add_(-1, i, s),
     [X, ROWS, arr(3, 2, dtype=F64)]),
    ("index_copy", lambda t, x, i, s: t.index_copy(x, 1, i, s), [X, ROWS, arr(3, 2, dtype=F64)]),
    ("index_copy_inplace", lambda t, x, i, s: (x * 1).index_copy_(0, i, s),
     [X, np.array([2, 0]), arr(2, 5, dtype=F64)]),
    ("index_fill", lambda t, x, i: t.index_fill(x, 1, i, -1.0), [X, ROWS]),
    ("index_fill_tensor", lambda t, x, i: x.index_fill(0, i, t.tensor(3)), [INTS, VEC_IDX]),
    ("index_fill_inplace", lambda t, x, i: (x * 1).index_fill_(1, i, 0.5), [X, ROWS]),
    ("index_put", lambda t, x, v: t.index_put(x, (t.tensor([0, 2]), t.tensor([1, 1])), v),
     [X, arr(2, dtype=F64)]),
    ("index_put_accumulate", lambda t, x, v: x.index_put(
        (t.tensor([0, 0, 1]), t.tensor([1, 1, 4])), v, accumulate=True), [X, arr(3, dtype=F64)]),
    ("index_put_rows", lambda t, x, v: x.index_put((t.tensor([2, 0]),), v), [X, V]),
    ("index_put_inplace", lambda t, x, v: (x * 1).index_put_((t.tensor([1]), t.tensor([3])), v),
     [X, arr(dtype=F64)]),
    ("put_", lambda t, x, v: (x * 1).put_(t.tensor([1, -1, 7]), v), [X, arr(3, dtype=F64)]),
    ("put_accumulate", lambda t, x, v: (x * 1).put_(t.tensor([[1, 1]]), v, accumulate=True),
     [X, arr(1, 2, dtype=F64)]),
    ("masked_fill", lambda t, x, m: t.masked_fill(x, m, 3.0), [X, MASK]),
    ("masked_fill_int_keeps_dtype", lambda t, x, m: t.masked_fill(x, m, 3), [INTS, MASK]),
    ("masked_fill_tensor_value", lambda t, x, m, v: x.masked_fill(m, v), [X, MASK,
                                                                        arr(dtype=F64)]),
    ("masked_fill_inplace", lambda t, x, m: (x * 1).masked_fill_(m, -2.0), [X, MASK]),
    ("masked_scatter", lambda t, x, m, s: x.masked_scatter(m, s), [X, MASK, arr(20, dtype=F64)]),
    ("masked_scatter_broadcast", lambda t, x, m, s: x.masked_scatter(m, s),
     [X, MASK[:1], arr(3, 5, dtype=F64)]),
    ("masked_scatter_inplace", lambda t, x, m, s: (x * 1).masked_scatter_(m, s),
     [X, MASK, arr(3, 5, dtype=F64)]),
    # diagonals
    *[(f"diag_vector_{k}", lambda t, v, k=k: t.diag(v, k), [V]) for k in (0, 2, -1)],
    *[(f"diag_matrix_{k}", lambda t, x, k=k: t.diag(x, k), [X]) for k in (0, 3, -2, 6)],
    ("diagonal", lambda t, x: t.diagonal(x), [X]),
    ("diagonal_dims", lambda t, x: x.diagonal(1, 2, 0), [X3]),
    ("diagonal_neg_dims", lambda t, x: t.diagonal(x, offset=-1, dim1=-1, dim2=-2), [X3]),
    ("diagonal_is_a_view", lambda t, x: _write_diagonal(x), [X]),
    ("diag_embed", lambda t, x: t.diag_embed(x), [X]),
    ("diag_embed_offset_dims", lambda t, x: t.diag_embed(x, 1, 0, 2), [X]),
    ("diag_embed_neg", lambda t, x: x.diag_embed(-2, dim1=-1, dim2=0), [X3]),
    ("diagflat", lambda t, x: t.diagflat(x, -1), [arr(2, 2, dtype=F64)]),
    ("trace", lambda t, x: t.trace(x), [X]),
    ("trace_int", lambda t, x: x.trace(), [INTS]),
    ("fill_diagonal", lambda t, x: (x * 1).fill_diagonal_(2.0), [X]),
    ("fill_diagonal_tall_wrap", lambda t, x: (x * 1).fill_diagonal_(2.0, wrap=True),
     [arr(7, 3, dtype=F64)]),
    ("fill_diagonal_tall", lambda t, x: (x * 1).fill_diagonal_(2.0), [arr(7, 3, dtype=F64)]),
    ("fill_diagonal_cube", lambda t, x: (x * 1).fill_diagonal_(-1), [arr(3, 3, 3, dtype=F64)]),
    ("tril_indices", lambda t: t.tril_indices(3, 4, 1), []),
    ("triu_indices", lambda t: t.triu_indices(4, 3, -1), []),
    # shape helpers
    ("tile", lambda t, x: t.tile(x, (2,)), [X]), ("tile_more", lambda t, x: x.tile(2, 1, 3), [X]),
    ("repeat_interleave_int", lambda t, x: t.repeat_interleave(x, 2), [X]),
    ("repeat_interleave_dim", lambda t, x: x.repeat_interleave(3, dim=1), [X]),
    ("repeat_interleave_tensor", lambda t, x: x.repeat_interleave(t.tensor([1, 0, 2]), dim=0),
     [X]),
    ("repeat_interleave_tensor_size", lambda t, x: t.repeat_interleave(
        x, t.tensor([2, 1, 0, 1, 3]), 1, output_size=7), [X]),
    ("repeat_interleave_repeats_only", lambda t: t.repeat_interleave(t.tensor([1, 3, 2])), []),
    ("hstack", lambda t, a, b: t.hstack([a, b]), [X, X]),
    ("hstack_1d", lambda t, a, b: t.hstack((a, b)), [V, V]),
    ("vstack", lambda t, a, b: t.vstack([a, b]), [V, X]),
    ("row_stack", lambda t, a, b: t.row_stack([a, b]), [V, V]),
    ("dstack", lambda t, a, b: t.dstack([a, b]), [X, X]),
    ("column_stack", lambda t, a, b: t.column_stack([a, b]), [V, arr(5, 2, dtype=F64)]),
    ("hsplit", lambda t, x: t.hsplit(x, [1, 3]), [X]),
    ("hsplit_sections", lambda t, x: x.hsplit(2), [arr(2, 4, dtype=F64)]),
    ("vsplit", lambda t, x: t.vsplit(x, [2]), [X]),
    ("dsplit", lambda t, x: t.dsplit(x, 2), [X3]),
    ("tensor_split_n", lambda t, x: t.tensor_split(x, 3, dim=1), [X]),
    ("tensor_split_indices", lambda t, x: x.tensor_split([1, 4, -1, 9], 1), [X]),
    ("meshgrid_ij", lambda t, a, b: t.meshgrid(a, b, indexing="ij"), [V, arr(3, dtype=F64)]),
    ("meshgrid_xy", lambda t, a, b, c: t.meshgrid([a, b, c], indexing="xy"),
     [V, arr(3, dtype=F64), arr(2, dtype=F64)]),
    ("movedim", lambda t, x: t.movedim(x, 0, -1), [X3]),
    ("movedim_many", lambda t, x: x.movedim((0, 1), (2, 0)), [X3]),
    ("moveaxis", lambda t, x: t.moveaxis(x, -1, 0), [X3]),
    ("swapdims", lambda t, x: t.swapdims(x, 0, 2), [X3]),
    ("ravel", lambda t, x: t.ravel(x.t()), [X]),
    ("select", lambda t, x: t.select(x, 1, -2), [X3]),
    ("select_view", lambda t, x: _write_select(x), [X]),
    ("select_scatter", lambda t, x, s: t.select_scatter(x, s, 0, 1), [X, V]),
    ("slice_scatter", lambda t, x, s: t.slice_scatter(x, s, 1, 1, 5, 2),
     [X, arr(3, 2, dtype=F64)]),
    ("slice_scatter_default", lambda t, x, s: x.slice_scatter(s), [X, X]),
    ("atleast_1d", lambda t, x: t.atleast_1d(x), [arr(dtype=F64)]),
    ("atleast_2d_many", lambda t, a, b: t.atleast_2d(a, b), [arr(dtype=F64), V]),
    ("atleast_3d_many", lambda t, a, b, c: t.atleast_3d([a, b, c]), [arr(dtype=F64), V, X]),
    ("broadcast_tensors", lambda t, a, b: t.broadcast_tensors(a, b), [X, V]),
    ("broadcast_shapes", lambda t: t.broadcast_shapes((3, 1), (1, 4), 4), []),
    *[(f"rot90_{k}", lambda t, x, k=k: t.rot90(x, k, (0, 2)), [X3]) for k in (1, 2, -1, 4)],
    ("fliplr", lambda t, x: t.fliplr(x), [X]), ("flipud", lambda t, x: t.flipud(x), [X3]),
    ("cartesian_prod", lambda t, a, b: t.cartesian_prod(a, b), [V, arr(2, dtype=F64)]),
    ("combinations", lambda t, v: t.combinations(v), [V]),
    ("combinations_replacement", lambda t, v: t.combinations(v, 3, with_replacement=True),
     [arr(3, dtype=F64)]),
    ("unravel_index", lambda t, i: t.unravel_index(i, (3, 4, 5)),
     [np.array([0, 17, 59, 33], dtype=np.int64)]),
    ("block_diag", lambda t, a, b, c: t.block_diag(a, b, c), [X, V, arr(dtype=F64)]),
    ("unfold", lambda t, x: x.unfold(1, 2, 2), [X3]),
    ("unfold_overlap", lambda t, x: x.unfold(-1, 3, 1), [X]),
    ("argwhere", lambda t, x: t.argwhere(x), [MASK]),
]


def _write_diagonal(x):
    y = x * 1
    y.diagonal().mul_(0.0)
    return y


def _write_select(x):
    y = x * 1
    y.select(1, 2).fill_(7.0)
    return y


# Compositions of view ops whose gradients the view tests or the compiled test below cover:
# values only here, to keep the file fast (each new op shape costs an eager compile).
VALUES_ONLY = {"tile_more", "hstack_1d", "vstack", "row_stack", "dstack", "column_stack",
               "hsplit", "hsplit_sections", "vsplit", "dsplit", "tensor_split_indices",
               "meshgrid_xy", "movedim_many", "moveaxis", "swapdims", "ravel", "atleast_1d",
               "atleast_2d_many", "atleast_3d_many", "broadcast_tensors", "rot90_2", "rot90_-1",
               "fliplr", "flipud", "combinations_replacement", "diag_matrix_3", "diag_matrix_-2",
               "diag_matrix_6", "diagonal_neg_dims", "diag_embed_neg", "diagflat",
               "fill_diagonal_tall", "fill_diagonal_cube", "index_fill_inplace",
               "index_copy_inplace", "index_add_inplace", "masked_fill_inplace",
               "masked_scatter_inplace", "unfold_overlap", "slice_scatter_default",
               "repeat_interleave_dim", "scatter_small_index", "scatter_add_dim1",
               # gradients checked by test_compiled_covers_several
               "tile", "rot90_1", "rot90_4", "movedim", "cartesian_prod", "block_diag",
               "unfold", "diag_embed", "diagonal", "trace", "index_fill", "masked_fill",
               "hstack", "meshgrid_ij", "select"}


@pytest.mark.parametrize("name, fn, xs", [
    pytest.param(n, f, xs, id=n, marks=variant_marks(n, [c[0] for c in CASES]))
    for n, f, xs in CASES])
def test_against_torch(name, fn, xs):
    check(fn, *xs, compiled=False, grad=name not in VALUES_ONLY)


def test_compiled_covers_several():
    """One gcomp.compile of many of the above (values and gradients against torch)."""
    def fn(t, x, s, v, m):
        i = t.tensor(IDX)
        out = [t.scatter(x, 0, i[:1], s), x.scatter_add(0, i, s),
               x.scatter_reduce(0, i, s, "amax", include_self=False),
               x.scatter_reduce(0, i, s, "mean"), x.index_add(1, t.tensor(ROWS), s[:, :2].t()[:, :1]
                                                              .expand(2, 3).t()),
               x.index_put((t.tensor([0, 2]),), v), x.masked_scatter(m, x * 2),
               t.diag_embed(x, 1), x.diagonal(1), t.trace(x), t.tile(x, (2, 1)),
               x.repeat_interleave(2, 0), t.select_scatter(x, v, 0, 1),
               t.slice_scatter(x, s, 0, 1), t.rot90(x), x.unfold(1, 2, 1),
               t.block_diag(x, v), t.movedim(x, 0, 1), t.cartesian_prod(v[:2], v[:3]),
               x.index_fill(1, t.tensor(ROWS), 0.0), t.masked_fill(x, m, 1.0)]
        return out

    check(fn, X, SRC, V, MASK)


BAD = [
    ("scatter_float_index", lambda t: t.zeros(3).scatter(0, t.tensor([0.0]), t.ones(1))),
    ("scatter_rank", lambda t: t.zeros(3, 2).scatter(0, t.tensor([0]), t.ones(1))),
    ("scatter_index_out_of_range", lambda t: t.zeros(3).scatter(0, t.tensor([5]), t.ones(1))),
    ("scatter_reduce_bad", lambda t: t.zeros(3).scatter_reduce(0, t.tensor([0]), t.ones(1),
                                                               "median")),
    ("index_add_shape", lambda t: t.zeros(3, 2).index_add(0, t.tensor([0]), t.ones(2, 2))),
    ("index_select_matrix_index", lambda t: t.zeros(3).index_fill(0, t.tensor([[0]]), 1.0)),
    ("masked_fill_nonbool", lambda t: t.zeros(3).masked_fill(t.tensor([1, 0, 1]), 1.0)),
    ("diagonal_same_dims", lambda t: t.zeros(3, 3).diagonal(0, 1, 1)),
    ("diag_3d", lambda t: t.diag(t.zeros(2, 2, 2))),
    ("trace_1d", lambda t: t.trace(t.zeros(3))),
    ("fill_diagonal_1d", lambda t: t.zeros(3).fill_diagonal_(1.0)),
    ("hsplit_uneven", lambda t: t.hsplit(t.zeros(2, 5), 2)),
    ("vsplit_1d", lambda t: t.vsplit(t.zeros(4), 2)),
    ("movedim_repeated", lambda t: t.movedim(t.zeros(2, 3), (0, 0), (0, 1))),
    ("rot90_same_dims", lambda t: t.rot90(t.zeros(2, 3), 1, (0, 0))),
    ("unfold_too_big", lambda t: t.zeros(3).unfold(0, 4, 1)),
    ("select_scatter_shape", lambda t: t.select_scatter(t.zeros(3, 2), t.ones(3), 0, 0)),
    ("meshgrid_2d", lambda t: t.meshgrid(t.zeros(2, 2), t.zeros(2))),
    ("repeat_interleave_negative", lambda t: t.repeat_interleave(t.zeros(2), t.tensor([1, -1]))),
    ("masked_scatter_short_source", lambda t: t.zeros(3).masked_scatter(
        t.tensor([True, True, False]), t.ones(1))),
]


@pytest.mark.parametrize("fn", [pytest.param(f, id=n) for n, f in BAD])
def test_bad_input_is_a_gcomp_error(fn):
    import torch

    with pytest.raises((RuntimeError, IndexError, ValueError, TypeError)):
        fn(torch)
    with pytest.raises(gcomp.GcompError):
        fn(gcomp)


def test_repeat_interleave_traced_repeats_need_output_size():
    with pytest.raises(gcomp.GcompError, match="output_size"):
        gcomp.compile(lambda x, r: x.repeat_interleave(r))(gcomp.ones(3), gcomp.tensor([1, 2, 0]))
    out = gcomp.compile(lambda x, r: x.repeat_interleave(r, output_size=3))(
        gcomp.tensor([1.0, 2.0, 3.0]), gcomp.tensor([1, 2, 0]))
    np.testing.assert_array_equal(out.numpy(), [1.0, 2.0, 2.0])


_ = (gcomp_tensor, torch_tensor)
