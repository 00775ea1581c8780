"""Tensor creation and conversion against torch: dtype inference, factories, *_like, random
numbers (shapes, dtypes, ranges, loose statistics, seeding, eager == compiled), and the Tensor's
properties and conversions to Python and numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_reference import arr, assert_same, check, check_or_error

import gcomp

# One xdist worker runs this file, so its eager per-op compiles are shared by all its tests.
pytestmark = pytest.mark.xdist_group("frontend_creation")

F64 = np.array([[1.5, -2.25], [3.0, 0.125]])
F32 = F64.astype(np.float32)
I32 = np.array([[1, -2], [3, 4]], dtype=np.int32)

CREATION = [
    # tensor(): dtype inference from Python data and numpy arrays
    ("ints", lambda t: t.tensor([[1, 2], [3, -4]])), ("floats", lambda t: t.tensor([1.0, 2.5])),
    ("bools", lambda t: t.tensor([True, False])), ("int_and_float", lambda t: t.tensor([1, 2.5])),
    ("bool_and_int", lambda t: t.tensor([True, 2])), ("mixed", lambda t: t.tensor([1, 2.5, True])),
    ("int_scalar", lambda t: t.tensor(3)), ("float_scalar", lambda t: t.tensor(-2.5)),
    ("bool_scalar", lambda t: t.tensor(True)), ("empty_list", lambda t: t.tensor([])),
    ("nested_empty", lambda t: t.tensor([[], []])), ("tuple", lambda t: t.tensor((1, 2, 3))),
    ("numpy_f64", lambda t: t.tensor(F64)), ("numpy_f32", lambda t: t.tensor(F32)),
    ("numpy_i32", lambda t: t.tensor(I32)), ("numpy_i64", lambda t: t.tensor(I32.astype("i8"))),
    ("numpy_bool", lambda t: t.tensor(I32 > 0)), ("numpy_u8", lambda t: t.tensor(I32.astype("u1"))),
    ("numpy_0d", lambda t: t.tensor(np.array(2.5, dtype=np.float32))),
    ("numpy_scalar_f64", lambda t: t.tensor(np.float64(1.5))),
    ("numpy_scalar_i32", lambda t: t.tensor(np.int32(3))),
    ("dtype_arg", lambda t: t.tensor([1, 2], dtype=t.float64)),
    ("dtype_arg_float_to_int", lambda t: t.tensor([1.7, -1.7], dtype=t.int32)),
    ("dtype_arg_numpy", lambda t: t.tensor(F64, dtype=t.float16)),
    # as_tensor / from_numpy
    ("as_tensor_list", lambda t: t.as_tensor([1, 2])),
    ("as_tensor_numpy", lambda t: t.as_tensor(F64)),
    ("as_tensor_dtype", lambda t: t.as_tensor([1, 2], dtype=t.float32)),
    ("as_tensor_tensor_dtype", lambda t: t.as_tensor(t.tensor([1, 2]), dtype=t.float64)),
    ("from_numpy_f64", lambda t: t.from_numpy(F64)),
    ("from_numpy_f32", lambda t: t.from_numpy(F32)),
    ("from_numpy_i32", lambda t: t.from_numpy(I32)),
    ("from_numpy_bool", lambda t: t.from_numpy(I32 > 0)),
    # zeros / ones / full / eye
    ("zeros", lambda t: t.zeros(2, 3)), ("zeros_tuple", lambda t: t.zeros((2, 3))),
    ("zeros_list", lambda t: t.zeros([4])), ("zeros_0d", lambda t: t.zeros(())),
    ("zeros_int", lambda t: t.zeros(2, dtype=t.int64)),
    ("zeros_empty_dim", lambda t: t.zeros(0, 3)),
    ("ones", lambda t: t.ones(3)), ("ones_bool", lambda t: t.ones(2, 2, dtype=t.bool)),
    ("ones_f16", lambda t: t.ones((2,), dtype=t.float16)),
    ("full_float", lambda t: t.full((2, 3), 1.5)), ("full_int", lambda t: t.full((2,), 7)),
    ("full_bool", lambda t: t.full((2,), True)),
    ("full_dtype", lambda t: t.full((3,), 2, dtype=t.float64)),
    ("full_neg", lambda t: t.full([2, 2], -3.25)),
    ("eye", lambda t: t.eye(3)),
    ("eye_rect", lambda t: t.eye(2, 4)),
    ("eye_tall", lambda t: t.eye(4, 2)),
    ("eye_int", lambda t: t.eye(3, dtype=t.int64)), ("eye_bool", lambda t: t.eye(2, dtype=t.bool)),
    # arange: int and float forms, negative steps
    ("arange", lambda t: t.arange(5)), ("arange_start", lambda t: t.arange(2, 7)),
    ("arange_step", lambda t: t.arange(1, 10, 3)),
    ("arange_neg_step", lambda t: t.arange(5, 0, -1)),
    ("arange_neg_step3", lambda t: t.arange(10, -3, -3)),
    ("arange_empty", lambda t: t.arange(3, 3)),
    ("arange_float", lambda t: t.arange(0.0, 1.0, 0.25)),
    ("arange_float_end", lambda t: t.arange(2.5)),
    ("arange_float_step", lambda t: t.arange(1, 2.5, 0.5)),
    ("arange_float_neg", lambda t: t.arange(0, -1, -0.3)),
    ("arange_float_inexact", lambda t: t.arange(0, 1, 0.1)),
    ("arange_dtype", lambda t: t.arange(5, dtype=t.float32)),
    ("arange_dtype_f64", lambda t: t.arange(1, 4, 0.5, dtype=t.float64)),
    ("arange_int32", lambda t: t.arange(-4, 4, 3, dtype=t.int32)),
    # linspace
    ("linspace", lambda t: t.linspace(0, 1, 5)), ("linspace_neg", lambda t: t.linspace(-1, 1, 7)),
    ("linspace_one", lambda t: t.linspace(2, 3, 1)),
    ("linspace_descending", lambda t: t.linspace(3, -2, 6)),
    ("linspace_f64", lambda t: t.linspace(0, 1, 11, dtype=t.float64)),
    ("linspace_int", lambda t: t.linspace(0, 10, 11, dtype=t.int64)),
    ("linspace_int_trunc", lambda t: t.linspace(-1, 1, 4, dtype=t.int64)),
    ("linspace_many", lambda t: t.linspace(-3.5, 10.25, 100)),
]


@pytest.mark.parametrize("fn", [pytest.param(f, id=n) for n, f in CREATION])
def test_creation(fn):
    check(fn)


@pytest.mark.parametrize("fn", [
    pytest.param(lambda t: t.arange(5, 0), id="arange_wrong_way"),
    pytest.param(lambda t: t.arange(0, 5, -1), id="arange_negative_step_up"),
    pytest.param(lambda t: t.arange(0, 1, 0), id="arange_zero_step"),
    pytest.param(lambda t: t.tensor([[1, 2], [3]]), id="tensor_ragged"),
    pytest.param(lambda t: t.zeros(2, -1), id="zeros_negative"),
    pytest.param(lambda t: t.randint(5, 5, (2,)), id="randint_empty_range"),
    pytest.param(lambda t: t.randn_like(t.zeros(2, dtype=t.int64)), id="randn_like_int"),
    pytest.param(lambda t: t.eye(-1), id="eye_negative"),
    pytest.param(lambda t: t.linspace(0, 1, -1), id="linspace_negative_steps"),
])
def test_creation_errors(fn):
    check_or_error(fn)


def test_tensor_from_a_list_of_0d_tensors():
    check(lambda t: t.tensor([t.tensor(1.5), t.tensor(2)]), compiled=False)


X = arr(2, 3)
INTS = arr(2, 3, dtype="int64", low=-3, high=3)

LIKE = [
    ("zeros_like", lambda t, x: t.zeros_like(x), X),
    ("ones_like", lambda t, x: t.ones_like(x), INTS),
    ("full_like", lambda t, x: t.full_like(x, 2.5), X),
    ("full_like_int", lambda t, x: t.full_like(x, 2.7), INTS),
    ("zeros_like_dtype", lambda t, x: t.zeros_like(x, dtype=t.int32), X),
    ("ones_like_dtype", lambda t, x: t.ones_like(x, dtype=t.float64), INTS),
    ("full_like_bool", lambda t, x: t.full_like(x, True, dtype=t.bool), X),
    ("new_zeros", lambda t, x: x.new_zeros(2), INTS),
    ("new_ones", lambda t, x: x.new_ones((1, 2)), X),
    ("new_full", lambda t, x: x.new_full((3,), 4), X),
    ("new_tensor", lambda t, x: x.new_tensor([1, 2]), X),
    ("empty_shape", lambda t, x: t.empty(2, 3).shape, X),
    ("empty_dtype", lambda t, x: t.empty(2, dtype=t.int32).dtype, X),
    ("empty_like", lambda t, x: (t.empty_like(x).shape, t.empty_like(x).dtype), INTS),
    ("randn_like", lambda t, x: (t.randn_like(x).shape, t.randn_like(x).dtype), X),
    ("rand_like", lambda t, x: (t.rand_like(x).shape, t.rand_like(x, dtype=t.float64).dtype), X),
]


@pytest.mark.parametrize("fn, x", [pytest.param(f, x, id=n) for n, f, x in LIKE])
def test_like(fn, x):
    check(fn, x, grad=False)


# -- the Tensor's properties and conversions --------------------------------------------------

F = arr(2, 3)
PROPS = [
    ("shape", lambda t, x: x.shape, F), ("shape_0d", lambda t, x: x.shape, F[0, 0]),
    ("dtype", lambda t, x: x.dtype, F), ("dtype_int", lambda t, x: x.dtype, INTS),
    ("device", lambda t, x: x.device, F), ("device_type", lambda t, x: x.device.type, F),
    ("size", lambda t, x: x.size(), F), ("size_dim", lambda t, x: x.size(1), F),
    ("size_neg", lambda t, x: x.size(-2), F), ("dim", lambda t, x: x.dim(), F),
    ("ndim", lambda t, x: x.ndim, F), ("dim_0d", lambda t, x: x.dim(), F[0, 0]),
    ("numel", lambda t, x: x.numel(), F), ("numel_fn", lambda t, x: t.numel(x), F),
    ("len", lambda t, x: len(x), F),
    ("is_floating_point", lambda t, x: x.is_floating_point(), INTS),
    ("item_float", lambda t, x: x[1, 2].item(), F), ("item_int", lambda t, x: x[0, 1].item(), INTS),
    ("item_bool", lambda t, x: (x > 0)[0, 0].item(), INTS),
    ("item_one_element", lambda t, x: x[:1, 1:2].item(), F),
    ("item_f64", lambda t, x: x.double()[0, 0].item(), F),
    ("tolist", lambda t, x: x.tolist(), F), ("tolist_int", lambda t, x: x.tolist(), INTS),
    ("tolist_bool", lambda t, x: (x > 0).tolist(), INTS),
    ("tolist_0d", lambda t, x: x[0, 0].tolist(), INTS),
    ("numpy", lambda t, x: x.numpy(), F), ("numpy_int", lambda t, x: x.numpy(), INTS),
    ("numpy_bool", lambda t, x: (x > 0).numpy(), INTS),
    ("numpy_f16", lambda t, x: x.half().numpy(), F),
    ("python_float", lambda t, x: float(x[0, 0]), F), ("python_int", lambda t, x: int(x[1, 1]), F),
    ("python_bool", lambda t, x: bool(x[0, 1]), INTS),
    ("to_dtype", lambda t, x: x.to(t.float64), F),
    ("to_int_truncates", lambda t, x: (x * 3).to(t.int32), F),
    ("to_kw", lambda t, x: x.to(dtype=t.float16), INTS),
    ("to_other", lambda t, x: x.to(t.zeros(1, dtype=t.int32)), F),
    ("to_device", lambda t, x: x.to("cpu"), F),
    ("to_device_dtype", lambda t, x: x.to("cpu", t.float64), INTS),
    ("float", lambda t, x: x.float(), INTS), ("double", lambda t, x: x.double(), F),
    ("half", lambda t, x: x.half(), F), ("long", lambda t, x: (x * 3).long(), F),
    ("int", lambda t, x: (x * 3).int(), F), ("bool", lambda t, x: x.bool(), INTS),
    ("bool_from_float", lambda t, x: (x.round()).bool(), F),
    ("long_from_bool", lambda t, x: (x > 0).long(), F),
    ("type_as", lambda t, x: x.type_as(t.ones(1, dtype=t.float64)), INTS),
    ("clone", lambda t, x: x.clone(), F), ("detach", lambda t, x: x.detach() * 2, F),
]


@pytest.mark.parametrize("fn, x", [pytest.param(f, x, id=n) for n, f, x in PROPS])
def test_property_or_conversion(fn, x):
    check(fn, x, grad=False)


def test_to_same_dtype_returns_self():
    for lib in (torch, gcomp):
        x = lib.ones(2)
        assert x.to(lib.float32) is x
        assert x.to("cpu") is x
        assert x.float() is x or lib is torch  # torch: float() of a float tensor is self too
        assert x.to(lib.float32, copy=True) is not x


def test_numpy_and_tensor_do_not_share_changes_with_the_source_array():
    a = np.array([1.0, 2.0])
    x = gcomp.tensor(a)
    a[0] = 100.0
    assert x.tolist() == [1.0, 2.0]


def test_repr_uses_torch_style():
    assert repr(gcomp.tensor([1, 2])) == "tensor([1, 2])"
    assert "dtype=gcomp.float64" in repr(gcomp.tensor([1.0], dtype=gcomp.float64))
    assert "requires_grad=True" in repr(gcomp.tensor([1.0], requires_grad=True))


# -- random numbers ---------------------------------------------------------------------------

# One shape for most rows: each new shape compiles new eager random ops.
RANDOM_SHAPES = [
    ("rand", lambda t: t.rand(2, 3), (2, 3), "float32"),
    ("rand_tuple", lambda t: t.rand((2, 3)), (2, 3), "float32"),
    ("rand_f64", lambda t: t.rand(2, 3, dtype=t.float64), (2, 3), "float64"),
    ("rand_f16", lambda t: t.rand([2, 3], dtype=t.float16), (2, 3), "float16"),
    ("randn", lambda t: t.randn(2, 3), (2, 3), "float32"),
    ("randn_0d", lambda t: t.randn(()), (), "float32"),
    ("randn_f64", lambda t: t.randn((2, 3), dtype=t.float64), (2, 3), "float64"),
    ("randint", lambda t: t.randint(0, 10, (2, 3)), (2, 3), "int64"),
    ("randint_high_only", lambda t: t.randint(5, (2, 3)), (2, 3), "int64"),
    ("randint_dtype", lambda t: t.randint(-3, 3, (2, 3), dtype=t.int32), (2, 3), "int32"),
]


@pytest.mark.parametrize("fn, shape, dtype", [pytest.param(f, s, d, id=n)
                                              for n, f, s, d in RANDOM_SHAPES])
def test_random_shape_and_dtype(fn, shape, dtype):
    want = fn(torch)
    assert tuple(want.shape) == shape and str(want.dtype) == f"torch.{dtype}"
    got = fn(gcomp)
    assert tuple(got.shape) == shape and got.dtype.name == dtype


def test_random_shapes_and_dtypes_inside_compile():
    """All the draws above in one compiled function (one compile instead of ten)."""
    outs = gcomp.compile(lambda: tuple(fn(gcomp) for _, fn, _, _ in RANDOM_SHAPES))()
    for out, (name, _, shape, dtype) in zip(outs, RANDOM_SHAPES, strict=True):
        assert tuple(out.shape) == shape and out.dtype.name == dtype, name


N = 20_000


def test_rand_range_and_statistics():
    gcomp.manual_seed(0)
    u = gcomp.rand(N).numpy().astype(np.float64)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.01
    assert abs(u.std() - (1 / 12) ** 0.5) < 0.01
    assert len(np.unique(u)) > N * 0.99


def test_randn_statistics():
    gcomp.manual_seed(1)
    z = gcomp.randn(N).numpy().astype(np.float64)
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1.0) < 0.03
    assert abs((np.abs(z) < 1).mean() - 0.6827) < 0.02  # the shape of the normal, loosely
    assert np.isfinite(z).all() and np.abs(z).max() < 7


def test_randint_range_and_statistics():
    gcomp.manual_seed(2)
    r = gcomp.randint(-3, 4, (N,)).numpy()
    assert r.dtype == np.int64
    assert set(np.unique(r)) == set(range(-3, 4))
    counts = np.bincount(r + 3)
    assert np.all(np.abs(counts / N - 1 / 7) < 0.02)


def test_same_seed_same_numbers():
    def draw():
        return [gcomp.rand(2, 3).tolist(), gcomp.randn(2, 3).tolist(),
                gcomp.randint(0, 100, (2, 3)).tolist()]

    gcomp.manual_seed(123)
    first = draw()
    gcomp.manual_seed(123)
    assert draw() == first
    gcomp.manual_seed(124)
    assert draw() != first
    assert draw() != draw()  # the state advances between draws


def test_manual_seed_returns_a_generator():
    g = gcomp.manual_seed(5)
    assert isinstance(g, gcomp.Generator)
    a = g.get_state()
    x = gcomp.randn(2, 3).tolist()
    g.set_state(a)
    assert gcomp.randn(2, 3).tolist() == x


def test_compiled_draws_the_same_numbers_as_eager():
    def draw():
        return gcomp.randn(2, 3), gcomp.rand(2, 3), gcomp.randint(0, 10, (2, 3)), gcomp.randn_like(
            gcomp.zeros(2, 3))

    gcomp.manual_seed(7)
    eager = [x.tolist() for x in draw()]
    eager_next = gcomp.rand(2, 3).tolist()

    compiled_draw = gcomp.compile(draw)
    gcomp.manual_seed(7)
    assert [x.tolist() for x in compiled_draw()] == eager
    assert gcomp.rand(2, 3).tolist() == eager_next  # the generator advanced as in eager mode

    gcomp.manual_seed(7)
    again = [x.tolist() for x in compiled_draw()]  # a cached executable: same numbers again
    assert again == eager
    assert [x.tolist() for x in compiled_draw()] != eager  # and the next call draws new ones


def test_dropout_style_mask_inside_compile_matches_eager():
    def f(x):
        return x * (gcomp.rand(x.shape) > 0.5) * 2.0

    x = gcomp.ones(2, 3)
    gcomp.manual_seed(11)
    eager = f(x)
    gcomp.manual_seed(11)
    assert_same(gcomp.compile(f)(x), eager)


SMALL_INTS = [np.array([[100, -100, 7], [-128, 127, 0]], np.int8),
              np.array([[30000, -30000, 7], [-32768, 32767, 1]], np.int16)]


@pytest.mark.parametrize("x", SMALL_INTS, ids=["int8", "int16"])
@pytest.mark.parametrize("name, fn", [
    ("wrapping arithmetic", lambda t, x: (x + x, x * 3, -x, x - 1)),
    ("sum and mean promote", lambda t, x: (x.sum(), x.sum(1), x.float().mean(), x.prod(0))),
    ("division", lambda t, x: (x // 3, x % 5, x / 2)),
    ("with uint8 and scalars", lambda t, x: (x + t.ones(3, dtype=t.uint8), x + 2, x * 1.5,
                                             x + t.ones(3, dtype=t.int8))),
    ("conversions", lambda t, x: (x.char(), x.short(), x.byte(), x.to(t.int16), x.long(),
                                  x.bool(), x.max(), x.argmax(1))),
])
def test_small_integer_dtypes_match_torch(name, fn, x):
    check(fn, x, grad=False)


def test_int8_state_dict_loads_and_prints():
    q = torch.tensor([[-128, 5, 127]], dtype=torch.int8)
    got = gcomp.tensor(q.numpy())
    assert got.dtype is gcomp.int8 and got.tolist() == q.tolist()
    assert gcomp.short is gcomp.int16 and gcomp.tensor([1]).short().dtype is gcomp.int16
    g = gcomp.compile(lambda a: a * 2).ir(got)
    assert "%a: i8[1,3]" in str(g) and str(gcomp.ir.parse(str(g))) == str(g)
