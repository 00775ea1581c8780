"""Operators, PyTorch's type promotion, elementwise math, matmul and einsum against torch."""

from __future__ import annotations

import operator
import zlib

import numpy as np
import pytest
from torch_reference import arr, check, check_or_error, pos

# One xdist worker runs this file, so its eager per-op compiles are shared by all its tests.
pytestmark = pytest.mark.xdist_group("frontend_math")

# -- operators both ways round, with Python scalars and across dtypes -------------------------

BINARY = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
          "//": operator.floordiv, "%": operator.mod, "**": operator.pow, "==": operator.eq,
          "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
          ">=": operator.ge, "&": operator.and_, "|": operator.or_, "^": operator.xor}


def _data(spec, positive, gen, nonzero_bools=False):
    """A tensor spec "dtype[shape]" -> numpy data without zeros (divisors), small ints."""
    dtype, _, dims = spec.partition("[")
    shape = tuple(int(d) for d in dims.rstrip("]").split(",") if d)
    if dtype == "bool":
        return np.ones(shape, bool) if nonzero_bools else arr(*shape, dtype="bool", gen=gen)
    sign = np.where(arr(*shape, dtype="bool", gen=gen), -1, 1)
    if dtype in ("int32", "int64", "uint8"):
        a = arr(*shape, dtype=dtype, low=1, high=5, gen=gen)
        return a if positive or dtype == "uint8" else a * sign.astype(dtype)
    a = arr(*shape, dtype="float32", low=0.25, high=2.0, gen=gen)
    return (a if positive else a * sign).astype(dtype)


# (left, right, how): a tensor spec or a Python scalar on each side; every pair also runs the
# other way round. how: "all" also runs inside gcomp.compile and checks gradients (tracing goes
# through the same promotion code as eager, so a few pairs are enough there); "grad" checks eager
# gradients too; "value" checks eager values, dtypes and shapes.
OPERANDS = [
    ("float32[3]", 2, "grad"), ("float32[2,3]", 2.5, "all"), ("float32[3]", True, "value"),
    ("int64[3]", 3, "all"), ("int64[3]", 2.5, "grad"), ("int64[3]", True, "value"),
    ("int32[3]", 2.5, "value"), ("int32[3]", 3, "value"), ("bool[3]", 3, "value"),
    ("bool[2,3]", True, "all"), ("bool[3]", 2.5, "value"), ("float16[3]", 2.5, "grad"),
    ("uint8[3]", 3, "all"), ("float32[2,3]", "float32[3]", "grad"),
    ("int64[3]", "float32[3]", "all"), ("int32[3]", "int64[3]", "value"),
    ("bool[3]", "int64[3]", "value"), ("bool[2,3]", "float32[3]", "grad"),
    ("float16[3]", "float32[]", "all"), ("float16[]", "float32[3]", "grad"),
    ("int64[3]", "float64[]", "value"), ("int32[3]", "int64[]", "value"),
    ("float32[2,1]", "float64[3]", "grad"), ("bfloat16[3]", "float16[3]", "value"),
    ("uint8[3]", "int32[]", "value"),
]


def _cases():
    for left, right, how in OPERANDS:
        for a, b in ((left, right), (right, left)):
            for op in BINARY:
                if op == "**" and isinstance(a, bool):
                    continue  # torch 2.13 fails an internal assert on True ** tensor
                if how == "value" and op in ("!=", "<=", ">", ">="):
                    continue  # comparisons share one promotion path: == and < stand for them
                yield pytest.param(op, a, b, how, id=f"{a}{op}{b}")


@pytest.mark.parametrize("op, a, b, how", list(_cases()))
def test_binary_operator(op, a, b, how):
    f = BINARY[op]
    positive = op == "**"  # no negative bases or exponents: int ** -1 is an error, 0 no base
    specs = [x for x in (a, b) if isinstance(x, str)]
    gen = np.random.default_rng(zlib.crc32(f"{a}{op}{b}".encode()))  # the same data every run
    data = [_data(s, positive, gen, nonzero_bools=op in ("/", "//", "%")) for s in specs]
    it = iter(range(len(specs)))
    slots = [next(it) if isinstance(x, str) else None for x in (a, b)]

    def fn(lib, *xs):
        return f(*[x if k is None else xs[k] for x, k in zip((a, b), slots, strict=True)])

    check_or_error(fn, *data, compiled=how == "all", grad=how != "value")


UNARY_OPERATORS = [
    ("neg", lambda t, x: -x, "float32[2,3]"), ("neg_int", lambda t, x: -x, "int64[4]"),
    ("pos", lambda t, x: +x, "float32[3]"), ("abs_op", lambda t, x: abs(x), "float32[2,3]"),
    ("abs_int", lambda t, x: abs(x), "int32[4]"), ("invert_bool", lambda t, x: ~x, "bool[5]"),
    ("invert_int", lambda t, x: ~x, "int64[4]"), ("invert_int32", lambda t, x: ~x, "int32[4]"),
    ("not_and", lambda t, x: ~(x > 0) & (x < 1), "float32[5]"),
    ("chain", lambda t, x: (x > 0) | (x < -1) ^ (x == 1), "int64[6]"),
]


@pytest.mark.parametrize("fn, spec", [pytest.param(f, s, id=n) for n, f, s in UNARY_OPERATORS])
def test_unary_operator(fn, spec):
    check(fn, _data(spec, False, np.random.default_rng(zlib.crc32(spec.encode()))))


# -- integer and floor division, remainders, rounding modes ---------------------------------

_NUM = np.array([-7, -6, -5, -1, 0, 1, 5, 6, 7, -3, 3, 4], dtype=np.int64)
_DEN = np.array([2, -2, 3, -3, 5, -5, 2, -4, -2, 3, 2, -3], dtype=np.int64)

DIVISION = [
    ("floordiv", lambda t, a, b: a // b), ("mod", lambda t, a, b: a % b),
    ("truediv", lambda t, a, b: a / b),
    ("div_none", lambda t, a, b: t.div(a, b)),
    ("div_trunc", lambda t, a, b: t.div(a, b, rounding_mode="trunc")),
    ("div_floor", lambda t, a, b: t.div(a, b, rounding_mode="floor")),
    ("method_div_trunc", lambda t, a, b: a.div(b, rounding_mode="trunc")),
    ("floor_divide", lambda t, a, b: t.floor_divide(a, b)),
    ("remainder", lambda t, a, b: t.remainder(a, b)), ("fmod", lambda t, a, b: t.fmod(a, b)),
    ("floordiv_neg_scalar", lambda t, a, b: a // -3), ("mod_neg_scalar", lambda t, a, b: a % -3),
    ("rfloordiv", lambda t, a, b: -7 // b), ("rmod", lambda t, a, b: -7 % b),
    ("fmod_scalar", lambda t, a, b: t.fmod(a, -3)),
    ("div_trunc_scalar", lambda t, a, b: t.div(a, -4, rounding_mode="trunc")),
    ("div_floor_scalar", lambda t, a, b: t.div(a, 4, rounding_mode="floor")),
    ("int_floordiv_float_scalar", lambda t, a, b: a // 2.5),
    ("int_mod_float_scalar", lambda t, a, b: a % -2.5),
]


@pytest.mark.parametrize("dtype", ["int64", "int32", "float32"])
@pytest.mark.parametrize("fn", [pytest.param(f, id=n) for n, f in DIVISION])
def test_division(fn, dtype):
    a, b = _NUM.astype(dtype), _DEN.astype(dtype)
    if dtype == "float32":
        a = a + np.float32(0.5)
    check(fn, a, b, compiled=dtype != "int32")


# -- elementwise functions -------------------------------------------------------------------

X = arr(3, 4)
P = pos(3, 4)
INTS = arr(3, 4, dtype="int64", low=-5, high=5)

ELEMENTWISE = [
    ("exp", lambda t, x: t.exp(x), X), ("exp_method", lambda t, x: x.exp(), X),
    ("exp_int", lambda t, x: t.exp(x), INTS), ("exp_f64", lambda t, x: x.exp(), X.astype("f8")),
    ("log", lambda t, x: t.log(x), P), ("log_method", lambda t, x: x.log(), P),
    ("log_int", lambda t, x: t.log(x), np.abs(INTS) + 1),
    ("sqrt", lambda t, x: t.sqrt(x), P), ("sqrt_method", lambda t, x: x.sqrt(), P.astype("f8")),
    ("abs", lambda t, x: t.abs(x), X), ("abs_method", lambda t, x: x.abs(), INTS),
    ("relu", lambda t, x: t.relu(x), X), ("relu_method", lambda t, x: x.relu(), X),
    ("relu_int", lambda t, x: t.relu(x), INTS), ("sigmoid", lambda t, x: t.sigmoid(x), X),
    ("sigmoid_method", lambda t, x: x.sigmoid(), X), ("tanh", lambda t, x: t.tanh(x), X),
    ("tanh_method", lambda t, x: x.tanh(), X.astype("f8")),
    ("neg_fn", lambda t, x: t.neg(x), X),
    ("pow_tensor", lambda t, x: t.pow(x, 3), X), ("pow_half", lambda t, x: x ** 0.5, P),
    ("pow_one", lambda t, x: x ** 1, X), ("rpow", lambda t, x: 2 ** x, X),
    ("sigmoid_f16", lambda t, x: t.sigmoid(x), X.astype("f2")),
]


@pytest.mark.parametrize("fn, x", [pytest.param(f, x, id=n) for n, f, x in ELEMENTWISE])
def test_elementwise(fn, x):
    check(fn, x)


LO, HI = arr(3, 4, low=-2, high=-0.5), arr(3, 4, low=0.5, high=2)

CLAMP = [
    ("min_only", lambda t, x: t.clamp(x, min=-0.5), [X]),
    ("max_only", lambda t, x: t.clamp(x, max=0.5), [X]),
    ("both", lambda t, x: t.clamp(x, -0.5, 0.5), [X]),
    ("method", lambda t, x: x.clamp(min=-1.0, max=1), [X]),
    ("clip", lambda t, x: x.clip(-0.5, 0.5), [X]),
    ("tensor_min", lambda t, x, lo: t.clamp(x, min=lo), [X, LO]),
    ("tensor_max", lambda t, x, hi: t.clamp(x, max=hi), [X, HI]),
    ("tensor_both", lambda t, x, lo, hi: t.clamp(x, lo, hi), [X, LO, HI]),
    ("tensor_broadcast", lambda t, x, lo: x.clamp(min=lo), [X, LO[0]]),
    ("int", lambda t, x: x.clamp(-2, 3), [INTS]),
    ("int_float_bound", lambda t, x: x.clamp(min=-2.5), [INTS]),
    ("int_tensor_bound_float", lambda t, x, lo: x.clamp(min=lo), [INTS, LO]),
]


@pytest.mark.parametrize("fn, xs", [pytest.param(f, xs, id=n) for n, f, xs in CLAMP])
def test_clamp(fn, xs):
    check(fn, *xs)


B = arr(3, 4, dtype="bool")

WHERE_MAXMIN = [
    ("where", lambda t, c, x, y: t.where(c, x, y), [B, X, P]),
    ("where_scalar", lambda t, c, x: t.where(c, x, 0.0), [B, X]),
    ("where_scalar_left", lambda t, c, x: t.where(c, 2, x), [B, X]),
    ("where_int_scalars", lambda t, c: t.where(c, 1, 0), [B]),
    ("where_mixed_dtypes", lambda t, c, x, y: t.where(c, x, y), [B, X, P.astype("f8")]),
    ("where_broadcast", lambda t, c, x, y: t.where(c, x, y), [B[:, :1], X[0], P]),
    ("where_int_cond", lambda t, x: t.where(x > 0, x, -x), [X]),
    ("where_method", lambda t, c, x, y: x.where(c, y), [B, X, P]),
    ("maximum", lambda t, x, y: t.maximum(x, y), [X, P]),
    ("minimum", lambda t, x, y: t.minimum(x, y), [X, P]),
    ("maximum_broadcast", lambda t, x, y: t.maximum(x, y), [X, P[0]]),
    ("maximum_mixed", lambda t, x, y: t.maximum(x, y), [INTS, X]),
    ("minimum_int", lambda t, x, y: x.minimum(y), [INTS, INTS[::-1].copy()]),
    ("max_binary", lambda t, x, y: t.max(x, y), [X, P]),
    ("min_binary", lambda t, x, y: t.min(x, y), [X, P]),
]


@pytest.mark.parametrize("fn, xs", [pytest.param(f, xs, id=n) for n, f, xs in WHERE_MAXMIN])
def test_where_maximum_minimum(fn, xs):
    check(fn, *xs)


X3 = arr(2, 3, 4)

SOFTMAX = [
    ("softmax_last", lambda t, x: t.softmax(x, -1), X3),
    ("softmax_dim0", lambda t, x: t.softmax(x, dim=0), X3),
    ("softmax_method", lambda t, x: x.softmax(1), X3),
    ("softmax_dtype", lambda t, x: t.softmax(x, -1, dtype=t.float64), X3),
    ("log_softmax_last", lambda t, x: t.log_softmax(x, -1), X3),
    ("log_softmax_dim1", lambda t, x: x.log_softmax(dim=1), X3),
    ("log_softmax_large", lambda t, x: t.log_softmax(x * 100, -1), X3),
    ("softmax_f64", lambda t, x: t.softmax(x, 0), X3.astype("f8")),
]


@pytest.mark.parametrize("fn, x", [pytest.param(f, x, id=n) for n, f, x in SOFTMAX])
def test_softmax(fn, x):
    check(fn, x)


# -- matmul and einsum -----------------------------------------------------------------------

MATMUL = [
    ("1d_1d", (4,), (4,)), ("2d_1d", (3, 4), (4,)), ("1d_2d", (4,), (4, 5)),
    ("2d_2d", (3, 4), (4, 5)), ("3d_3d", (2, 3, 4), (2, 4, 5)), ("3d_2d", (2, 3, 4), (4, 5)),
    ("2d_3d", (3, 4), (2, 4, 5)), ("1d_3d", (4,), (2, 4, 5)), ("3d_1d", (2, 3, 4), (4,)),
    ("broadcast_batch", (2, 1, 3, 4), (3, 4, 2)), ("4d_4d", (2, 3, 1, 4), (1, 3, 4, 2)),
]


@pytest.mark.parametrize("a, b", [pytest.param(a, b, id=n) for n, a, b in MATMUL])
def test_matmul(a, b):
    check(lambda t, x, y: x @ y, arr(*a), arr(*b))


@pytest.mark.parametrize("fn, xs", [
    pytest.param(lambda t, x, y: t.matmul(x, y), [arr(3, 4), arr(4, 2)], id="function"),
    pytest.param(lambda t, x, y: x.matmul(y), [arr(2, 3, 4), arr(4)], id="method"),
    pytest.param(lambda t, x, y: x @ y, [arr(3, 4, dtype="int64"), arr(4, 2, dtype="int64")],
                 id="int"),
    pytest.param(lambda t, x, y: t.mm(x, y), [arr(3, 4), arr(4, 2)], id="mm"),
    pytest.param(lambda t, x, y: t.bmm(x, y), [arr(2, 3, 4), arr(2, 4, 2)], id="bmm"),
    pytest.param(lambda t, x, y: t.mv(x, y), [arr(3, 4), arr(4)], id="mv"),
    pytest.param(lambda t, x, y: t.dot(x, y), [arr(4), arr(4)], id="dot"),
])
def test_matmul_variants(fn, xs):
    check(fn, *xs)


EINSUM = [
    ("matmul", "ij,jk->ik", [(3, 4), (4, 5)]),
    ("batch_matmul", "bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("outer", "i,j->ij", [(3,), (4,)]),
    ("transpose", "ij->ji", [(3, 4)]),
    ("sum_over_index", "ij->i", [(3, 4)]),
    ("sum_all", "ij->", [(3, 4)]),
    ("ellipsis_matmul", "...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("ellipsis_broadcast", "...ij,...jk->...ik", [(2, 1, 3, 4), (3, 4, 2)]),
    ("implicit_output", "ij,jk", [(3, 4), (4, 5)]),
    ("dot", "i,i->", [(4,), (4,)]),
    ("three_operands", "ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("bilinear", "bi,ij,bj->b", [(2, 3), (3, 4), (2, 4)]),
    ("permute_3d", "abc->cab", [(2, 3, 4)]),
    ("batch_outer", "bi,bj->bij", [(2, 3), (2, 4)]),
    ("spaces", "i j , j k -> i k", [(3, 4), (4, 5)]),
]


@pytest.mark.parametrize("eq, shapes", [pytest.param(e, s, id=n) for n, e, s in EINSUM])
def test_einsum(eq, shapes):
    check(lambda t, *xs: t.einsum(eq, *xs), *[arr(*s) for s in shapes])


def test_einsum_list_operands():
    check(lambda t, x, y: t.einsum("ij,jk->ik", [x, y]), arr(3, 4), arr(4, 2))
