"""Invalid uses raise gcomp.GcompError (never a bare Python exception) with a message that names
the user's source line and says what went wrong; torch refuses the same uses."""

from __future__ import annotations

import inspect
import os

import numpy as np
import pytest
import torch

import gcomp

# One xdist worker runs this file, so its eager per-op compiles are shared by all its tests.
pytestmark = pytest.mark.xdist_group("frontend_errors")

HERE = os.path.basename(__file__)


def _x(lib, *shape, dtype=None, requires_grad=False):
    n = int(np.prod(shape))
    x = lib.arange(n, dtype=dtype or lib.float32).reshape(shape)
    return x.requires_grad_() if requires_grad else x


def _setitem(x, key, value):
    x[key] = value


def _iadd(x, v):
    x += v


def _leaf(lib):
    return lib.tensor([1.0, 2.0, 3.0], requires_grad=True)


# (name, fn(lib), substrings the message must contain)
ERRORS = [
    # shapes
    ("broadcast_mismatch", lambda t: _x(t, 2, 3) + _x(t, 4), ["[2, 3]", "[4]"]),
    ("broadcast_mismatch_mul", lambda t: _x(t, 3, 1, 2) * _x(t, 4, 3), ["[3, 1, 2]", "[4, 3]"]),
    ("where_mismatch", lambda t: t.where(_x(t, 2) > 0, _x(t, 3), 0.0), ["[2]", "[3]"]),
    ("matmul_inner", lambda t: _x(t, 2, 3) @ _x(t, 4, 5), ["2x3", "4x5"]),
    ("matmul_vector", lambda t: _x(t, 3) @ _x(t, 4), ["3", "4"]),
    ("matmul_batch", lambda t: _x(t, 2, 3, 4) @ _x(t, 3, 4, 5), ["[2]", "[3]"]),
    ("matmul_0d", lambda t: t.matmul(_x(t, 2), t.tensor(2.0)), ["1D"]),
    ("matmul_dtypes", lambda t: _x(t, 2, 3) @ _x(t, 3, 2, dtype=t.float64), ["float64"]),
    ("einsum_dtypes", lambda t: t.einsum("ij,jk", _x(t, 2, 3), _x(t, 3, 2, dtype=t.int64)),
     ["int64"]),
    ("einsum_sizes", lambda t: t.einsum("ij,jk", _x(t, 2, 3), _x(t, 4, 2)), ["j"]),
    ("einsum_operands", lambda t: t.einsum("ij,jk", _x(t, 2, 3)), ["operand"]),
    ("cat_mismatch", lambda t: t.cat([_x(t, 2, 3), _x(t, 2, 4)]), ["[2, 3]", "[2, 4]"]),
    ("stack_mismatch", lambda t: t.stack([_x(t, 2), _x(t, 3)]), ["[2]", "[3]"]),
    ("reshape_bad_size", lambda t: _x(t, 2, 3).reshape(4, 2), ["[4, 2]", "6"]),
    ("view_bad_infer", lambda t: _x(t, 2, 3).view(4, -1), ["6"]),
    ("view_two_infers", lambda t: _x(t, 2, 3).view(-1, -1), ["one dimension"]),
    ("expand_bad", lambda t: _x(t, 2, 3).expand(4, 3), ["[2, 3]", "[4, 3]"]),
    ("split_sections", lambda t: _x(t, 5).split([2, 2]), ["5"]),
    ("permute_not_permutation", lambda t: _x(t, 2, 3).permute(0, 0), ["permut"]),
    ("t_of_3d", lambda t: _x(t, 2, 3, 4).t(), ["3D"]),
    ("copy_mismatch", lambda t: _x(t, 2, 3).copy_(_x(t, 4)), ["[4]", "[2, 3]"]),
    # dims and indices out of range
    ("sum_dim", lambda t: _x(t, 2, 3).sum(2), ["range", "2"]),
    ("softmax_dim", lambda t: _x(t, 2, 3).softmax(-3), ["range", "-3"]),
    ("transpose_dim", lambda t: _x(t, 2, 3).transpose(0, 5), ["range", "5"]),
    ("unsqueeze_dim", lambda t: _x(t, 2, 3).unsqueeze(4), ["range", "4"]),
    ("index_int", lambda t: _x(t, 3, 4)[3], ["index 3", "size 3"]),
    ("index_negative", lambda t: _x(t, 3, 4)[:, -5], ["-5", "size 4"]),
    ("index_tensor", lambda t: _x(t, 3, 4)[t.tensor([0, 3])], ["3", "size 3"]),
    ("index_tensor_negative", lambda t: _x(t, 3, 4)[:, t.tensor([-5])], ["-5", "4"]),
    ("index_too_many", lambda t: _x(t, 3, 4)[0, 0, 0], ["too many indices"]),
    ("index_float_tensor", lambda t: _x(t, 3)[t.tensor([0.0])], ["long", "bool"]),
    ("setitem_out_of_range", lambda t: _setitem(_x(t, 3), 3, 1.0), ["index 3"]),
    ("setitem_tensor_out_of_range", lambda t: _setitem(_x(t, 3), t.tensor([0, 4]), 1.0), ["4"]),
    ("setitem_shape", lambda t: _setitem(_x(t, 3, 4), 0, _x(t, 3)), ["[3]", "[4]"]),
    ("mask_shape", lambda t: _x(t, 3, 4)[t.tensor([True, False])], ["mask"]),
    # dtypes
    ("mean_int", lambda t: _x(t, 2, 3, dtype=t.int64).mean(), ["mean", "int64"]),
    ("mean_bool", lambda t: (_x(t, 2) > 0).mean(), ["mean", "bool"]),
    ("std_int", lambda t: _x(t, 3, dtype=t.int64).std(), ["int64"]),
    ("sub_bool", lambda t: (_x(t, 2) > 0) - (_x(t, 2) > 1), ["bool", "~"]),
    ("neg_bool", lambda t: -(_x(t, 2) > 0), ["bool"]),
    ("invert_float", lambda t: ~_x(t, 2), ["integer", "bool"]),
    ("and_float", lambda t: _x(t, 2) & _x(t, 2), ["integer", "bool"]),
    ("int_inplace_float", lambda t: _x(t, 2, dtype=t.int64).add_(0.5), ["float32", "int64"]),
    ("int_iadd_float", lambda t: _iadd(_x(t, 2, dtype=t.int64), 0.5), ["float32", "int64"]),
    ("requires_grad_int", lambda t: _x(t, 2, dtype=t.int64).requires_grad_(), ["floating"]),
    ("rounding_mode", lambda t: t.div(_x(t, 2), 2, rounding_mode="round"), ["rounding_mode"]),
    ("int_pow_negative", lambda t: _x(t, 2, dtype=t.int64) ** -1, ["negative"]),
    # in-place updates autograd can't allow
    ("inplace_leaf", lambda t: _leaf(t).add_(1), ["leaf", "in-place", "no_grad"]),
    ("inplace_leaf_zero", lambda t: _leaf(t).zero_(), ["leaf", "in-place"]),
    ("inplace_leaf_iadd", lambda t: _iadd(_leaf(t), 1), ["leaf", "in-place"]),
    ("inplace_leaf_setitem", lambda t: _setitem(_leaf(t), 0, 5.0), ["leaf", "in-place"]),
    ("inplace_leaf_copy", lambda t: _leaf(t).copy_(t.zeros(3)), ["leaf", "in-place"]),
    ("inplace_leaf_clamp", lambda t: _leaf(t).clamp_(min=0), ["leaf", "in-place"]),
    ("inplace_view_of_leaf", lambda t: _leaf(t)[1:].mul_(2), ["leaf", "in-place"]),
    ("inplace_view_of_leaf_reshape", lambda t: _leaf(t).view(3, 1).fill_(0), ["leaf"]),
    ("inplace_expanded_view", lambda t: _x(t, 3, 1).expand(3, 4).add_(1), ["expand"]),
    # conversions
    ("item_many", lambda t: _x(t, 2).item(), ["2 elements"]),
    ("bool_many", lambda t: bool(_x(t, 2)), ["ambiguous"]),
    ("numpy_requires_grad", lambda t: _leaf(t).numpy(), ["detach"]),
    ("len_0d", lambda t: len(t.tensor(1.0)), ["0-d"]),
    ("backward_non_scalar", lambda t: (_leaf(t) * 2).backward(), ["scalar"]),
    ("randint_no_size", lambda t: t.randint(0, 5), ["size"]),
]


@pytest.mark.parametrize("fn, parts", [pytest.param(f, p, id=n) for n, f, p in ERRORS])
def test_error(fn, parts):
    with pytest.raises((RuntimeError, TypeError, ValueError, IndexError, ZeroDivisionError)):
        fn(torch)  # torch refuses it too
    with pytest.raises(gcomp.GcompError) as info:
        fn(gcomp)
    message = str(info.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    assert HERE in message, f"the message does not name the user's file: {message!r}"


@pytest.mark.parametrize("update", [lambda x: x.t_(), lambda x: x.squeeze_(),
                                    lambda x: x.unsqueeze_(0), lambda x: x.transpose_(0, 1)])
def test_shape_changing_inplace_ops_are_refused(update):
    """torch changes the tensor's shape in place; gcomp refuses clearly instead (a missing
    feature, not a wrong result)."""
    x = _x(gcomp, 2, 1)
    with pytest.raises(gcomp.GcompError, match=r"x = x\."):
        update(x)
    assert x.shape == (2, 1)


def test_index_error_is_also_an_index_error():
    """Python's iteration protocol and user code catch IndexError: gcomp's is one too."""
    with pytest.raises(IndexError):
        _x(gcomp, 3)[5]


# -- data-dependent Python control flow on traced tensors, inside gcomp.compile ---------------

def _if(x):
    if x.sum() > 0:
        return x
    return -x


def _while(x):
    while x.max() > 1:
        x = x / 2
    return x


def _and(x):
    return (x > 0).any() and x


def _mask_index(x):
    return x[x > 0]


def _mask_setitem(x):
    y = x.clone()
    y[y > 0] = 0.0
    return y


# (name, fn, what the message names, the text of the line the message must point at)
TRACED = [
    ("item", lambda x: x.sum().item() * x, "item()", ".item()"),
    ("bool", lambda x: x * bool(x.sum() > 0), "bool()", "bool("),
    ("if", _if, "bool()", "if x.sum()"),
    ("while", _while, "bool()", "while x.max()"),
    ("and", _and, "bool()", "and x"),
    ("float", lambda x: x * float(x.sum()), "float()", "float("),
    ("int", lambda x: x * int(x.sum()), "int()", "int("),
    ("tolist", lambda x: gcomp.tensor(x.tolist()), "tolist()", "tolist"),
    ("numpy", lambda x: x.numpy(), "numpy()", "numpy"),
    ("index_with_traced", lambda x: x[int(x.argmax())], "int()", "argmax"),
    ("mask_index", _mask_index, "boolean-mask", "x[x > 0]"),
    ("mask_setitem", _mask_setitem, "boolean-mask", "y[y > 0]"),
    ("nonzero", lambda x: gcomp.nonzero(x), "nonzero", "nonzero"),
]


def _line_of(fn, text):
    """The file line holding ``text`` inside fn's source."""
    lines, start = inspect.getsourcelines(fn)
    for i, line in enumerate(lines):
        if text in line:
            return start + i
    raise AssertionError(f"{text!r} not in the source of {fn}")


@pytest.mark.parametrize("fn, what, marker", [pytest.param(f, w, m, id=n)
                                               for n, f, w, m in TRACED])
def test_traced_value_used_by_python(fn, what, marker):
    x = gcomp.tensor([1.0, -2.0, 3.0])
    fn(x)  # fine eagerly
    with pytest.raises(gcomp.GcompError) as info:
        gcomp.compile(fn)(x)
    message = str(info.value)
    line = _line_of(fn, marker)
    assert f"{HERE}:{line}" in message, f"expected {HERE}:{line} in {message!r}"
    assert "gcomp.where" in message, message
    assert what in message, message
    assert isinstance(info.value, gcomp.TracedValueError)


def test_failed_compile_leaves_state_unchanged():
    w = gcomp.tensor([1.0, 2.0])

    def step(x):
        w.add_(x)
        if x.sum() > 0:  # an error after the update: the update must not leak out
            return w
        return w

    with pytest.raises(gcomp.GcompError):
        gcomp.compile(step)(gcomp.tensor([1.0, 1.0]))
    assert w.tolist() == [1.0, 2.0]
