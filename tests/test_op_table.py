"""The op table: one row per primitive (a few have more), each checked five ways.

A row builds numpy operands, applies one primitive with ``bind`` and checks:

a. the eager result against an independent reference (numpy, scipy.special, torch, or
   ``jax.random`` called directly for the key-based ops), and against the op's declared type;
b. the same op inside ``gcomp.compile`` against the eager result;
c. for differentiable rows, the eager VJP (``gcomp.autograd.grad`` with a random cotangent, float64)
   against torch.autograd, and against central finite differences through the dot-product
   identity <J u, v> = <u, J^T v>;
d. the compiled gradient against the eager one;
e. every stage of the compiled function's IR prints, parses back to the same text and verifies;

and, for rows with float64 operands, that the op run on float32 copies keeps the declared float32
(jax_enable_x64 makes jax's own defaults float64) and stays close to the reference.

The compiled function of a row returns the op's result and its VJP together, so each row costs one
jit compile; results are cached per row so the checks share them. The rows live in
``op_table_rows.py``; ``test_op_coverage.py`` checks that every primitive has one.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import pytest
import torch
from op_table_rows import ROWS, Row

import gcomp
from gcomp.core.dispatch import bind
from gcomp.ir import parse, verify
from gcomp.lowering import to_jax_dtype

GRAD_ROWS = [r for r in ROWS if r.wrt]
F32_ROWS = [r for r in ROWS if r.f32_ok()]
TORCH_GRAD_ROWS = [r for r in GRAD_ROWS if r.torch_fn is not None]
FD_ROWS = [r for r in GRAD_ROWS if r.fd]


def _params(rows):
    return [pytest.param(r, id=r.id, marks=pytest.mark.xdist_group(r.id)) for r in rows]


# -- per-row data, computed once --------------------------------------------------------------
@functools.cache
def operands(row: Row) -> list[np.ndarray]:
    return row.make(np.random.default_rng(zlib.crc32(row.id.encode())))


@functools.cache
def eager(row: Row):
    """The eager result (a gcomp Tensor, taped when the row differentiates)."""
    xs = _tensors(operands(row), row.wrt)
    return xs, bind(row.op, *xs, **row.attrs)


@functools.cache
def cotangent(row: Row) -> np.ndarray:
    out = eager(row)[1]
    rng = np.random.default_rng(zlib.crc32(row.id.encode()) + 1)
    return rng.standard_normal(tuple(out.shape)).astype(to_jax_dtype(out.dtype))


@functools.cache
def eager_grads(row: Row) -> list[np.ndarray]:
    xs, out = eager(row)
    grads = gcomp.autograd.grad(out, [xs[i] for i in row.wrt],
                                grad_outputs=[gcomp.tensor(cotangent(row))],
                                materialize_grads=True)
    return [_np(g) for g in grads]


@functools.cache
def compiled(row: Row):
    """(compiled function, its arguments, its results): the op's result, then its VJP."""
    n, wrt = len(operands(row)), row.wrt

    def fn(*args):
        xs = args[:n]
        out = bind(row.op, *xs, **row.attrs)
        if not wrt:
            return out
        grads = gcomp.autograd.grad(out, [xs[i] for i in wrt], grad_outputs=[args[n]],
                                    materialize_grads=True)
        return (out, *grads)

    cf = gcomp.compile(fn, name=row.op)
    args = _tensors(operands(row), wrt)
    if wrt:
        args.append(gcomp.tensor(cotangent(row)))
    res = cf(*args)
    return cf, args, [_np(r) for r in (res if wrt else [res])]


def _tensors(arrays, wrt=()):
    ts = [gcomp.tensor(a) for a in arrays]
    for i in wrt:
        ts[i].requires_grad_()
    return ts


def _np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy())


def reference(row: Row, arrays) -> np.ndarray:
    if row.ref is not None:
        return np.asarray(row.ref(*arrays))
    with torch.no_grad():
        return row.torch_fn(*[torch.from_numpy(a.copy()) for a in arrays]).numpy()


def _torch_grads(row: Row) -> list[np.ndarray]:
    ts = [torch.from_numpy(a.copy()) for a in operands(row)]
    for i in row.wrt:
        ts[i].requires_grad_()
    out = row.torch_fn(*ts)
    grads = torch.autograd.grad(out, [ts[i] for i in row.wrt],
                                grad_outputs=torch.from_numpy(cotangent(row)), allow_unused=True)
    return [np.zeros_like(operands(row)[i]) if g is None else g.numpy()
            for i, g in zip(row.wrt, grads, strict=True)]


def assert_close(actual, expected, rtol, atol=None, what=""):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if np.issubdtype(actual.dtype, np.inexact):
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol if atol is None else atol,
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


# -- the checks -----------------------------------------------------------------------------
@pytest.mark.parametrize("row", _params(ROWS))
def test_eager_matches_reference(row):
    out = eager(row)[1]
    got = _np(out)
    # the lowering rule produced what the shape/dtype rule declared
    assert got.shape == tuple(out.shape)
    assert got.dtype == to_jax_dtype(out.dtype), f"{got.dtype} but declared {out.dtype}"
    want = reference(row, operands(row))
    assert got.dtype == want.dtype, f"dtype {got.dtype}, reference {want.dtype}"
    assert_close(got, want, row.rtol, what=f"{row.id} eager vs reference")


@pytest.mark.parametrize("row", _params(ROWS))
def test_compiled_matches_eager(row):
    got = compiled(row)[2][0]
    want = _np(eager(row)[1])
    assert got.dtype == want.dtype
    assert_close(got, want, 1e-13, 0, what=f"{row.id} compiled vs eager")


@pytest.mark.parametrize("row", _params(TORCH_GRAD_ROWS))
def test_vjp_matches_torch(row):
    for i, got, want in zip(row.wrt, eager_grads(row), _torch_grads(row), strict=True):
        assert got.dtype == want.dtype
        assert_close(got, want, row.grad_rtol, what=f"{row.id}: d/d operand {i}")


@pytest.mark.parametrize("row", _params(FD_ROWS))
def test_vjp_dot_product_identity(row):
    """<J u, v> by central differences of the eager op equals <u, J^T v> by the VJP."""
    xs, v = operands(row), cotangent(row)
    rng = np.random.default_rng(zlib.crc32(row.id.encode()) + 2)
    us = {i: rng.standard_normal(xs[i].shape).astype(xs[i].dtype) for i in row.wrt}

    def f(sign):
        moved = [x + sign * row.eps * us[i] if i in us else x for i, x in enumerate(xs)]
        with gcomp.no_grad():
            return _np(bind(row.op, *_tensors(moved), **row.attrs)).astype(np.float64)

    ju = (f(1) - f(-1)) / (2 * row.eps)
    lhs = float(np.sum(ju * v))
    rhs = float(sum(np.sum(us[i] * g) for i, g in zip(row.wrt, eager_grads(row), strict=True)))
    scale = float(np.sum(np.abs(ju * v))) + 1e-12
    assert abs(lhs - rhs) <= row.fd_rtol * scale, f"<Ju, v> = {lhs}, <u, J^T v> = {rhs}"


@pytest.mark.parametrize("row", _params(GRAD_ROWS))
def test_compiled_grad_matches_eager(row):
    got = compiled(row)[2][1:]
    for i, g, want in zip(row.wrt, got, eager_grads(row), strict=True):
        assert g.dtype == want.dtype
        assert_close(g, want, 1e-12, 1e-13, what=f"{row.id}: compiled d/d operand {i}")


@pytest.mark.parametrize("row", _params(ROWS))
def test_ir_round_trips(row):
    cf, args, _ = compiled(row)
    stages = cf.stages(*args)
    assert f" = {row.op}(" in stages[0].graph, stages[0].graph
    assert stages[-1].graph == cf.ir(*args)
    for stage in stages:
        g = parse(stage.graph)
        assert str(g) == stage.graph, f"stage {stage.name} does not round-trip"
        verify(g)


@pytest.mark.parametrize("row", _params(F32_ROWS))
def test_float32_operands_keep_their_dtype(row):
    """float32 stays float32 (x64 mode makes jax's own defaults float64) and near the reference
    computed in float64 from the same float32 values."""
    xs = [x.astype(np.float32) if x.dtype == np.float64 else x for x in operands(row)]
    out = bind(row.op, *_tensors(xs), **row.attrs)
    got = _np(out)
    assert got.shape == tuple(out.shape)
    assert got.dtype == to_jax_dtype(out.dtype), f"{got.dtype} but declared {out.dtype}"
    exact = [x.astype(np.float64) if x.dtype == np.float32 else x for x in xs]
    want = reference(row, exact)
    scale = float(np.max(np.abs(want), initial=1.0))
    assert_close(got.astype(want.dtype), want, 1e-5, 1e-5 * scale, what=f"{row.id} in float32")
