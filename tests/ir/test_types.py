"""Type promotion and broadcasting against their references: torch and numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch._prims_common import ELEMENTWISE_TYPE_PROMOTION_KIND, elementwise_dtypes

from gcomp.ir import (
    ALL_DTYPES,
    ShapeError,
    TensorType,
    broadcast_shapes,
    dtype_from_name,
    float32,
    int64,
    promote_types,
    result_type,
    uint32,
)


def torch_dtype(d):
    """gcomp's dtype names are torch's attribute names, except bool_ (torch.bool)."""
    return getattr(torch, d.name)


def torch_operand(op):
    """A gcomp result_type operand ((dtype, ndim) or a Python scalar) as torch sees it."""
    if isinstance(op, tuple):
        dtype, ndim = op
        return torch.zeros((2,) * ndim, dtype=torch_dtype(dtype))
    return op


def test_dtype_names_match_torch():
    assert [torch_dtype(d) for d in ALL_DTYPES] == [
        torch.bool, torch.uint8, torch.uint32, torch.int8, torch.int16, torch.int32, torch.int64,
        torch.float16,
        torch.bfloat16, torch.float32, torch.float64]
    for d in ALL_DTYPES:
        assert dtype_from_name(d.name) is d and dtype_from_name(d.short) is d
        assert d.itemsize == torch.empty((), dtype=torch_dtype(d)).element_size()
        assert d.is_floating_point == torch_dtype(d).is_floating_point


@pytest.mark.parametrize("a, b", list(itertools.product(ALL_DTYPES, ALL_DTYPES)),
                         ids=lambda d: d.short)
def test_promote_types_matches_torch(a, b):
    try:
        want = torch.promote_types(torch_dtype(a), torch_dtype(b))
    except RuntimeError:
        # torch 2.x refuses uint32 with any other integer or bool dtype ("Promotion for uint16,
        # uint32, uint64 types is not supported"); numpy's integer lattice agrees with torch's on
        # every pair torch does support, so it is the reference for these.
        assert uint32 in (a, b) and not (a.is_floating_point or b.is_floating_point)
        want_np = np.promote_types(np.dtype(a.name), np.dtype(b.name))
        assert np.dtype(promote_types(a, b).name) == want_np
        return
    assert torch_dtype(promote_types(a, b)) == want


def test_promote_types_is_symmetric_and_idempotent():
    for a, b in itertools.product(ALL_DTYPES, ALL_DTYPES):
        assert promote_types(a, b) == promote_types(b, a)
        assert promote_types(a, a) == a


# result_type operands: tensors of rank 0 and 1 of every dtype (rank 2 behaves as rank 1), and
# Python scalars
_TENSORS = [(d, ndim) for d in ALL_DTYPES for ndim in (0, 1)]
_SCALARS = [True, 3, 2.5]
_OPERANDS = _TENSORS + _SCALARS


def _ident(op):
    if isinstance(op, tuple):
        return f"{op[0].short}[]" if op[1] == 0 else f"{op[0].short}[2]"
    return f"py{type(op).__name__}"


@pytest.mark.parametrize("a", _OPERANDS, ids=_ident)
def test_result_type_of_two_matches_torch(a):
    """``a`` against every other operand, in both orders (torch needs one tensor at least)."""
    mismatches, checked = [], 0
    for b in _OPERANDS:
        if not (isinstance(a, tuple) or isinstance(b, tuple)):
            continue
        for x, y in ((a, b), (b, a)):
            try:
                want = torch.result_type(torch_operand(x), torch_operand(y))
            except RuntimeError:  # torch refuses uint32 beside another integer dtype
                assert any(isinstance(o, tuple) and o[0] == uint32 for o in (x, y))
                continue
            checked += 1
            got = result_type(x, y)
            if torch_dtype(got) != want:
                mismatches.append(f"{_ident(x)}, {_ident(y)}: gcomp {got.name}, torch {want}")
    assert checked >= len(_TENSORS) - 2
    assert not mismatches, "\n".join(mismatches)


def _no_torch_uint32_promotion(ops) -> bool:
    """True when torch's kernels would refuse the mix (uint32 beside another integer dtype)."""
    ints = {o[0] for o in ops if isinstance(o, tuple) and not o[0].is_floating_point}
    return uint32 in ints and len(ints) > 1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_OPERANDS), min_size=1, max_size=5))
def test_result_type_of_many_matches_torch(ops):
    """Three or more operands: torch.result_type takes two, so the reference is torch's own
    Python implementation of elementwise promotion (torch._prims_common), which takes any number;
    it agrees with torch.result_type on every pair (checked above for the same operands)."""
    tensors = [o for o in ops if isinstance(o, tuple)]
    if not tensors or _no_torch_uint32_promotion(ops):
        return
    operands = [torch_operand(o) for o in ops]
    _, want = elementwise_dtypes(*operands,
                                 type_promotion_kind=ELEMENTWISE_TYPE_PROMOTION_KIND.DEFAULT)
    if len(ops) == 3 and len(tensors) == 3:  # the reference agrees with a real 3-operand kernel
        try:
            assert torch.addcmul(*operands).dtype == want
        except RuntimeError:  # addcmul refuses bool and some mixes
            pass
    assert torch_dtype(result_type(*ops)) == want


def test_result_type_needs_an_operand():
    with pytest.raises(ShapeError):
        result_type()


# -- broadcasting --------------------------------------------------------------------------------
_BROADCAST_CASES = [
    (),
    ((),),
    ((), ()),
    ((3,), ()),
    ((2, 3), (3,)),
    ((2, 1), (1, 3)),
    ((4, 1, 5), (3, 1)),
    ((1,), (0,)),
    ((0,), (0, 0)),
    ((5, 0), (1, 1)),
    ((2, 3), (2, 3), (1, 3), (3,)),
    ((1, 1, 1), (7,)),
    ((8, 1, 6, 1), (7, 1, 5)),
    # numpy refuses these
    ((3,), (4,)),
    ((2, 3), (3, 2)),
    ((0,), (3,)),
    ((2, 1), (3, 1), (1, 1)),
    ((5, 4), (1,), (4, 5)),
]


def _check_broadcast(shapes):
    try:
        want = np.broadcast_shapes(*shapes)
    except ValueError:
        with pytest.raises(ShapeError, match="cannot be broadcast"):
            broadcast_shapes(*shapes)
        return
    assert broadcast_shapes(*shapes) == want


@pytest.mark.parametrize("shapes", _BROADCAST_CASES, ids=str)
def test_broadcast_shapes_matches_numpy(shapes):
    _check_broadcast(shapes)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from([0, 1, 1, 2, 3]), max_size=4).map(tuple), max_size=4))
def test_broadcast_shapes_matches_numpy_on_random_shapes(shapes):
    _check_broadcast(shapes)


def test_tensor_type_text_and_sizes():
    t = TensorType([2, 3], float32)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.nbytes == 24
    assert str(t) == "f32[2,3]" and str(TensorType((), int64)) == "i64[]"
