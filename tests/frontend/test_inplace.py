"""In-place ops against torch: results, gradients through them, that they change the tensor
they are called on and return it, and that .data, .detach() and views share storage as in torch."""

from __future__ import annotations

import numpy as np
import pytest
from torch_reference import arr, check_or_error

import gcomp

# One xdist worker runs this file, so its eager per-op compiles are shared by all its tests.
pytestmark = pytest.mark.xdist_group("frontend_inplace")

X = arr(3, 4)
Y = arr(3, 4)
ROW = arr(4)
INTS = arr(3, 4, dtype="int64", low=-5, high=5)


def _on_copy(update):
    """A case running ``update`` on a copy of its first argument (a leaf that requires grad can't
    be updated in place) and returning the copy; the update must return the tensor itself."""
    def fn(t, x, *rest):
        y = x.clone()
        out = update(y, *rest)
        assert out is y, "an in-place op must return the tensor it updated"
        return y

    return fn


def _iop(update):
    """Same for augmented assignment (x += ...), which rebinds the name to the result."""
    def fn(t, x, *rest):
        y = x.clone()
        before = y
        y = update(y, *rest)
        assert y is before, "x += ... must update x itself"
        return y

    return fn


def _iadd(y, v):
    y += v
    return y


def _isub(y, v):
    y -= v
    return y


def _imul(y, v):
    y *= v
    return y


def _idiv(y, v):
    y /= v
    return y


INPLACE = [
    ("add_tensor", _on_copy(lambda y, v: y.add_(v)), [X, Y]),
    ("add_scalar", _on_copy(lambda y: y.add_(2.5)), [X]),
    ("add_alpha", _on_copy(lambda y, v: y.add_(v, alpha=-2)), [X, Y]),
    ("add_broadcast", _on_copy(lambda y, v: y.add_(v)), [X, ROW]),
    ("sub_tensor", _on_copy(lambda y, v: y.sub_(v)), [X, Y]),
    ("sub_scalar", _on_copy(lambda y: y.sub_(1)), [X]),
    ("mul_tensor", _on_copy(lambda y, v: y.mul_(v)), [X, Y]),
    ("mul_scalar", _on_copy(lambda y: y.mul_(-3)), [X]),
    ("div_tensor", _on_copy(lambda y, v: y.div_(v + 3)), [X, Y]),
    ("div_scalar", _on_copy(lambda y: y.div_(4.0)), [X]),
    ("div_rounding", _on_copy(lambda y: y.div_(3, rounding_mode="floor")), [X]),
    ("zero", _on_copy(lambda y: y.zero_()), [X]),
    ("fill_scalar", _on_copy(lambda y: y.fill_(1.5)), [X]),
    ("fill_0d_tensor", _on_copy(lambda y, v: y.fill_(v)), [X, arr()]),
    ("copy", _on_copy(lambda y, v: y.copy_(v)), [X, Y]),
    ("copy_broadcast", _on_copy(lambda y, v: y.copy_(v)), [X, ROW]),
    ("copy_other_dtype", _on_copy(lambda y, v: y.copy_(v)), [X, INTS]),
    ("copy_float_into_int", _on_copy(lambda y, v: y.copy_(v)), [INTS, X]),
    ("clamp_min", _on_copy(lambda y: y.clamp_(min=-0.5)), [X]),
    ("clamp_max", _on_copy(lambda y: y.clamp_(max=0.5)), [X]),
    ("clamp_both", _on_copy(lambda y: y.clamp_(-0.5, 0.5)), [X]),
    ("clamp_tensor", _on_copy(lambda y, lo: y.clamp_(min=lo)), [X, Y]),
    ("chain", _on_copy(lambda y, v: y.mul_(2).add_(v).clamp_(max=1.0)), [X, Y]),
    ("iadd", _iop(_iadd), [X, Y]), ("isub_scalar", _iop(lambda y: _isub(y, 2)), [X]),
    ("imul", _iop(_imul), [X, ROW]), ("idiv", _iop(_idiv), [X, Y + 3]),
    ("int_add_int", _on_copy(lambda y: y.add_(3)), [INTS]),
    ("int_mul_tensor", _on_copy(lambda y, v: y.mul_(v)), [INTS, INTS]),
    ("int_zero", _on_copy(lambda y: y.zero_()), [INTS]),
    ("int_fill_float", _on_copy(lambda y: y.fill_(2.7)), [INTS]),
    ("int_clamp", _on_copy(lambda y: y.clamp_(-1, 2)), [INTS]),
    ("float_add_int_tensor", _on_copy(lambda y, v: y.add_(v)), [X, INTS]),
    ("f16_add_f32", _on_copy(lambda y, v: y.add_(v)), [X.astype("float16"), Y]),
    # results that torch refuses to cast back into the updated tensor's dtype
    ("int_add_float_scalar", _on_copy(lambda y: y.add_(2.5)), [INTS]),
    ("int_add_float_tensor", _on_copy(lambda y, v: y.add_(v)), [INTS, X]),
    ("int_div", _on_copy(lambda y: y.div_(2)), [INTS]),
    ("int_idiv", _iop(lambda y: _idiv(y, 2)), [INTS]),
    ("int_imul_float", _iop(lambda y: _imul(y, 1.5)), [INTS]),
    ("int_clamp_float", _on_copy(lambda y: y.clamp_(min=0.5)), [INTS]),
    ("bool_add_int", _on_copy(lambda y: y.add_(1)), [INTS > 0]),
    ("broadcast_into_smaller", _on_copy(lambda y, v: y.add_(v)), [ROW, X]),
]


@pytest.mark.parametrize("fn, xs", [pytest.param(f, xs, id=n) for n, f, xs in INPLACE])
def test_inplace(fn, xs):
    check_or_error(fn, *xs)


def _values(x):
    return np.asarray(x.detach()).copy()


def test_inplace_changes_the_tensor_and_returns_it():
    x = gcomp.tensor([1.0, 2.0, 3.0])
    storage_before = x._storage
    assert x.add_(1) is x
    np.testing.assert_array_equal(_values(x), [2.0, 3.0, 4.0])
    assert x.mul_(2).sub_(1).div_(2) is x
    np.testing.assert_array_equal(_values(x), [1.5, 2.5, 3.5])
    x.clamp_(max=2.0)
    np.testing.assert_array_equal(_values(x), [1.5, 2.0, 2.0])
    x.copy_(gcomp.tensor([7, 8, 9]))
    assert x.dtype == gcomp.float32
    np.testing.assert_array_equal(_values(x), [7.0, 8.0, 9.0])
    x.fill_(4)
    np.testing.assert_array_equal(_values(x), [4.0, 4.0, 4.0])
    x.zero_()
    np.testing.assert_array_equal(_values(x), [0.0, 0.0, 0.0])
    assert x._storage is storage_before


@pytest.mark.parametrize("alias", [
    pytest.param(lambda x: x.detach(), id="detach"),
    pytest.param(lambda x: x.data, id="data"),
])
def test_detach_and_data_share_storage(alias):
    x = gcomp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = alias(x)
    assert not a.requires_grad
    a.add_(10)  # allowed: the alias does not require grad
    np.testing.assert_array_equal(_values(x), [11.0, 12.0, 13.0])
    a[1] = 0.0
    np.testing.assert_array_equal(_values(x), [11.0, 0.0, 13.0])
    with gcomp.no_grad():
        x.mul_(2)
    np.testing.assert_array_equal(_values(a), [22.0, 0.0, 26.0])
    assert x.requires_grad and x.is_leaf
    (x * x).sum().backward()  # x still works as a leaf after the updates
    np.testing.assert_array_equal(_values(x.grad), [44.0, 0.0, 52.0])


def test_detach_shares_storage_like_torch():
    import torch

    for lib in (torch, gcomp):
        x = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        d = x.detach()
        d.zero_()
        d2 = x.data
        d2.fill_(5.0)
        assert x.tolist() == [[5.0, 5.0], [5.0, 5.0]], lib.__name__


@pytest.mark.parametrize("update, expected", [
    pytest.param(lambda x: x.view(-1).add_(1), [[2, 3, 4], [5, 6, 7]], id="view"),
    pytest.param(lambda x: x[0].fill_(0), [[0, 0, 0], [4, 5, 6]], id="row"),
    pytest.param(lambda x: x[:, ::2].mul_(10), [[10, 2, 30], [40, 5, 60]], id="strided"),
    pytest.param(lambda x: x.t().zero_(), [[0, 0, 0], [0, 0, 0]], id="transpose"),
    pytest.param(lambda x: x[1].copy_(gcomp.tensor([7.0, 8.0, 9.0])), [[1, 2, 3], [7, 8, 9]],
                 id="copy_into_row"),
    pytest.param(lambda x: x.unsqueeze(0)[0, 1, 1:].clamp_(max=0), [[1, 2, 3], [4, 0, 0]],
                 id="view_of_view"),
])
def test_inplace_on_a_view_writes_through(update, expected):
    x = gcomp.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    update(x)
    np.testing.assert_array_equal(_values(x), np.array(expected, dtype=np.float32))


def test_view_sees_inplace_update_of_its_base():
    x = gcomp.tensor([[1.0, 2.0], [3.0, 4.0]])
    row, flat = x[1], x.view(-1)
    x.add_(1)
    assert row.tolist() == [4.0, 5.0]
    assert flat.tolist() == [2.0, 3.0, 4.0, 5.0]


def test_inplace_through_a_view_is_differentiable():
    import torch

    def run(lib):
        w = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        y = w * 1.0
        y[0].mul_(w[1])  # y[0] = w[0] * w[1]
        y.t()[1].add_(2)  # column 1 += 2
        (y * lib.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
        return y.tolist(), w.grad.tolist()

    assert run(gcomp) == run(torch)


def test_inplace_on_an_argument_inside_compile():
    """An in-place update of an argument inside gcomp.compile is visible to the caller, as in
    eager code."""
    def step(x, v):
        x.mul_(2)
        x[0] = v.sum()
        return x + 1

    eager_x, compiled_x = gcomp.tensor([1.0, 2.0, 3.0]), gcomp.tensor([1.0, 2.0, 3.0])
    v = gcomp.tensor([0.5, 0.25])
    want = step(eager_x, v)
    got = gcomp.compile(step)(compiled_x, v)
    assert got.tolist() == want.tolist()
    assert compiled_x.tolist() == eager_x.tolist() == [0.75, 4.0, 6.0]
