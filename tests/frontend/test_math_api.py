"""torch's less common elementwise math (inverse trig, special functions, NaN-aware helpers), its
reductions that skip NaN, and its dtype limits, against torch: values on random data and on
edge values (0, -0, +-inf, NaN, domain boundaries), float64 gradients, one compiled function for
all of them, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_reference import assert_same, check, gcomp_tensor, torch_tensor

import gcomp

pytestmark = pytest.mark.xdist_group("frontend_math_api")

gen = np.random.default_rng(7)

EDGES = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.7, 1e-8, -1e-8, 40.0, -40.0, np.inf,
                  -np.inf, np.nan])


def _u(lo, hi, shape=(3, 4)):
    return gen.uniform(lo, hi, shape)


# name -> (function of (lib, x), interior data for gradients)
UNARY = {
    "asin": (lambda t, x: t.asin(x), _u(-0.9, 0.9)),
    "arccos": (lambda t, x: t.arccos(x), _u(-0.9, 0.9)),
    "atan": (lambda t, x: t.atan(x), _u(-3, 3)),
    "sinh": (lambda t, x: t.sinh(x), _u(-3, 3)),
    "cosh": (lambda t, x: t.cosh(x), _u(-3, 3)),
    "arcsinh": (lambda t, x: t.arcsinh(x), _u(-3, 3)),
    "acosh": (lambda t, x: t.acosh(x), _u(1.1, 4)),
    "arctanh": (lambda t, x: t.arctanh(x), _u(-0.9, 0.9)),
    "erfc": (lambda t, x: t.erfc(x), _u(-3, 3)),
    "lgamma": (lambda t, x: t.lgamma(x), _u(0.1, 6)),
    "digamma": (lambda t, x: t.digamma(x), _u(0.1, 6)),
    "polygamma2": (lambda t, x: t.polygamma(2, x), _u(0.3, 6)),
    "absolute": (lambda t, x: t.absolute(x), _u(0.2, 2) * np.sign(_u(-1, 1))),
    "sgn": (lambda t, x: t.sgn(x), _u(-2, 2)),
    "signbit": (lambda t, x: t.signbit(x), _u(-2, 2)),
    "frac": (lambda t, x: t.frac(x), _u(-5, 5)),
    "deg2rad": (lambda t, x: t.deg2rad(x), _u(-400, 400)),
    "rad2deg": (lambda t, x: t.rad2deg(x), _u(-7, 7)),
    "clamp_min": (lambda t, x: t.clamp_min(x, 0.25), _u(-2, 2)),
    "clamp_max": (lambda t, x: t.clamp_max(x, -0.25), _u(-2, 2)),
    "logit": (lambda t, x: t.logit(x), _u(0.05, 0.95)),
    "logit_eps": (lambda t, x: t.logit(x, eps=0.2), _u(0.0, 1.0)),
    "sinc": (lambda t, x: t.sinc(x), _u(-3, 3)),
    "nan_to_num": (lambda t, x: t.nan_to_num(x), _u(-2, 2)),
    "nan_to_num_args": (lambda t, x: t.nan_to_num(x, nan=1.5, posinf=7.0, neginf=-2.0),
                        _u(-2, 2)),
    "isposinf": (lambda t, x: t.isposinf(x), _u(-2, 2)),
    "isneginf": (lambda t, x: t.isneginf(x), _u(-2, 2)),
    "isreal": (lambda t, x: t.isreal(x), _u(-2, 2)),
    "float_power": (lambda t, x: t.float_power(x, 3), _u(-2, 2)),
    "nansum": (lambda t, x: t.nansum(x), _u(-2, 2)),
    "nansum_dim": (lambda t, x: t.nansum(x, dim=-1, keepdim=True), _u(-2, 2)),
    "nanmean": (lambda t, x: t.nanmean(x, 0), _u(-2, 2)),
    "count_nonzero": (lambda t, x: t.count_nonzero(x, dim=-1), np.round(_u(-1, 1))),
}
# torch's trigamma (digamma's derivative) and lax.polygamma agree to about 5e-10 in float64
GAMMA_TOL = (1e-8, 1e-8)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_values_and_gradients(name):
    fn, interior = UNARY[name]
    tol = GAMMA_TOL if "gamma" in name else None
    check(fn, interior, compiled=False, grad_tol=tol)  # float64 values and gradients
    check(fn, interior.astype(np.float32), compiled=False)


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unary_edge_values(name, dtype):
    fn, _ = UNARY[name]
    if name == "polygamma2":  # torch's values at the poles of polygamma are not a convention
        x = EDGES[np.isfinite(EDGES) & (EDGES > 0)]
    else:
        x = EDGES
    check(fn, x.astype(dtype), grad=False, compiled=False)


@pytest.mark.parametrize("name", ["asin", "cosh", "erfc", "lgamma", "sgn", "signbit",
                                  "deg2rad", "nan_to_num", "isposinf", "float_power", "nansum",
                                  "count_nonzero", "sinc", "logit_eps"])
@pytest.mark.parametrize("dtype", ["int64", "bool"])
def test_unary_integer_and_bool_inputs(name, dtype):
    fn, _ = UNARY[name]
    x = np.array([0, 1, 3, -2]) if dtype == "int64" else np.array([True, False, True])
    if name == "lgamma" and dtype == "int64":
        x = np.array([1, 3, 4])
    check(fn, x.astype(dtype), grad=False, compiled=False)


def test_signbit_sees_negative_zero_and_nan_sign():
    x = np.array([-0.0, 0.0, -np.nan, np.nan, -1.0], np.float32)
    assert gcomp.signbit(gcomp.tensor(x)).tolist() == torch.signbit(torch.tensor(x)).tolist()
    half = gcomp.tensor([-0.0, 1.0, -2.0], dtype=gcomp.float16)
    assert half.signbit().tolist() == [True, False, True]
    assert gcomp.tensor([-0.0, 1.0], dtype=gcomp.bfloat16).signbit().tolist() == [True, False]


# name -> (function of (lib, a, b), interior data a, b)
BINARY = {
    "arctan2": (lambda t, a, b: t.arctan2(a, b), _u(0.2, 2), _u(-2, -0.2)),
    "copysign": (lambda t, a, b: t.copysign(a, b), _u(-2, 2), _u(-2, 2)),
    "xlogy": (lambda t, a, b: t.xlogy(a, b), _u(-2, 2), _u(0.1, 3)),
    "logaddexp": (lambda t, a, b: t.logaddexp(a, b), _u(-3, 3), _u(-3, 3)),
    "logaddexp2": (lambda t, a, b: t.logaddexp2(a, b), _u(-3, 3), _u(-3, 3)),
    "hypot": (lambda t, a, b: t.hypot(a, b), _u(-3, 3), _u(-3, 3)),
    "fmax": (lambda t, a, b: t.fmax(a, b), _u(-3, 3), _u(-3, 3)),
    "fmin": (lambda t, a, b: t.fmin(a, b), _u(-3, 3), _u(-3, 3)),
    "heaviside": (lambda t, a, b: t.heaviside(a, b), np.round(_u(-1, 1)), _u(-2, 2)),
    "float_power": (lambda t, a, b: t.float_power(a, b), _u(0.2, 2), _u(-2, 2)),
    "not_equal": (lambda t, a, b: t.not_equal(a, b), np.round(_u(-1, 1)), np.round(_u(-1, 1))),
    "addcmul": (lambda t, a, b: t.addcmul(a, b, a, value=-0.5), _u(-2, 2), _u(-2, 2)),
    "addcdiv": (lambda t, a, b: t.addcdiv(b, a, b, value=2), _u(-2, 2), _u(0.5, 2)),
}


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_values_and_gradients(name):
    fn, a, b = BINARY[name]
    check(fn, a, b, compiled=False)
    check(fn, a.astype(np.float32), b[0].astype(np.float32), compiled=False)  # broadcast


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_edge_values(name):
    fn, _, _ = BINARY[name]
    a, b = np.meshgrid(EDGES, EDGES)
    check(fn, a, b, grad=False, compiled=False)
    check(fn, a.astype(np.float32), b.astype(np.float32), grad=False, compiled=False)


@pytest.mark.parametrize("case", [
    lambda t, x: t.xlogy(2, x), lambda t, x: t.xlogy(x, 3.0), lambda t, x: t.copysign(x, -1),
    lambda t, x: t.float_power(2, x), lambda t, x: t.addcmul(x, x, x),
    lambda t, x: t.addcdiv(1.0, x, x, value=3) if t is gcomp else 1.0 + 3 * x / x,
    lambda t, x: t.heaviside(x, t.tensor(0.5, dtype=t.float64)),
], ids=["xlogy_scalar_a", "xlogy_scalar_b", "copysign_scalar", "float_power_scalar_base",
        "addcmul_default", "addcdiv_scalar_input", "heaviside_0d_values"])
def test_scalar_operands(case):
    check(case, _u(0.2, 2), compiled=False)


def test_gradients_at_edges_match_torch():
    """Where torch's gradient is finite at a special point, gcomp's is the same."""
    cases = [
        (lambda t, a, b: t.xlogy(a, b), [0.0, 0.0, 1.0], [-1.0, 2.0, 0.0]),
        (lambda t, a, b: t.logaddexp(a, b), [1.0, -2.0, 3.0], [1.0, -2.0, 0.0]),
        (lambda t, a, b: t.fmax(a, b), [1.0, np.nan, 2.0], [1.0, 2.0, np.nan]),
        (lambda t, a, b: t.fmin(a, b), [1.0, np.nan, 2.0], [1.0, 2.0, np.nan]),
        (lambda t, a, b: t.copysign(a, b), [0.0, 2.0, -1.0], [-1.0, -0.0, 3.0]),
        (lambda t, a, b: t.hypot(a, b), [0.0, 3.0, 1.0], [2.0, 4.0, 1.0]),
        (lambda t, a, b: t.sinc(a) + t.nan_to_num(b), [0.0, 1.0, -1.0], [np.nan, np.inf, 1.0]),
        (lambda t, a, b: t.logit(a, eps=0.25) * b, [0.25, 0.1, 0.8], [1.0, 1.0, 1.0]),
    ]
    for fn, a, b in cases:
        check(fn, np.array(a), np.array(b), compiled=False)


def test_polygamma_orders():
    x = _u(0.5, 4)
    for n in (0, 1, 3):
        check(lambda t, y, n=n: t.polygamma(n, y), x, compiled=False, tol=GAMMA_TOL,
              grad_tol=GAMMA_TOL)
    check(lambda t, y: y.polygamma(1), x, compiled=False, tol=GAMMA_TOL, grad_tol=GAMMA_TOL)


def test_reductions_skipping_nan():
    x = _u(-2, 2, (3, 4))
    x[0, 1] = x[2, 3] = x[2, 0] = np.nan
    for fn in (lambda t, y: t.nansum(y), lambda t, y: y.nansum((0, 1), keepdim=True),
               lambda t, y: t.nanmean(y), lambda t, y: y.nanmean(dim=1),
               lambda t, y: t.nanmean(y, 0, keepdim=True)):
        check(fn, x, compiled=False)
    x[:, 2] = np.nan  # an all-NaN column: nanmean is NaN there (torch's gradient is NaN too,
    for fn in (lambda t, y: t.nanmean(y, 0), lambda t, y: t.nansum(y, 0)):  # gcomp's is 0)
        check(fn, x, grad=False, compiled=False)
    ints = np.array([[0, 1, 2], [0, 0, 5]])
    for fn in (lambda t, y: t.count_nonzero(y), lambda t, y: y.count_nonzero(0),
               lambda t, y: t.count_nonzero(y, dim=(0, 1)), lambda t, y: t.nansum(y, 1),
               lambda t, y: t.nansum(y, dtype=t.float32)):
        check(fn, ints, compiled=False)


INPLACE = [
    ("asin_", (), _u(-0.9, 0.9)), ("arctanh_", (), _u(-0.9, 0.9)), ("cosh_", (), _u(-2, 2)),
    ("erfc_", (), _u(-2, 2)), ("lgamma_", (), _u(0.2, 3)), ("digamma_", (), _u(0.2, 3)),
    ("polygamma_", (1,), _u(0.2, 3)), ("frac_", (), _u(-3, 3)), ("sgn_", (), _u(-2, 2)),
    ("clamp_min_", (0.1,), _u(-1, 1)), ("clamp_max_", (0.1,), _u(-1, 1)),
    ("deg2rad_", (), _u(-90, 90)), ("logit_", (), _u(0.1, 0.9)), ("sinc_", (), _u(-2, 2)),
    ("nan_to_num_", (), np.array([np.nan, np.inf, -np.inf, 1.0])),
    ("copysign_", (-1.0,), _u(-1, 1)), ("hypot_", (None,), _u(-1, 1)),
    ("xlogy_", (None,), _u(0.2, 1)), ("addcmul_", (None, None), _u(-1, 1)),
    ("arctan2_", (None,), _u(-1, 1)), ("absolute_", (), _u(-1, 1)),
    ("negative_", (), _u(-1, 1)), ("not_equal_", (0.5,), np.array([0.5, 1.0])),
    ("float_power_", (2,), _u(-1, 1)), ("heaviside_", (None,), np.array([-1.0, 0.0, 2.0])),
]


@pytest.mark.parametrize("name, args, x", INPLACE, ids=[c[0] for c in INPLACE])
def test_inplace_methods(name, args, x):
    def fn(t, y):
        y = y * 1  # a non-leaf, so that the in-place op is recorded for the gradient
        operands = [y * 0.5 + 1 if a is None else a for a in args]
        out = getattr(y, name)(*operands)
        assert out is y
        return y

    tol = GAMMA_TOL if "gamma" in name else None
    check(fn, x, compiled=False, tol=tol, grad_tol=tol)


def test_addcdiv_inplace_with_value_as_an_optimizer_writes_it():
    """Adam's update: p.addcdiv_(m, v.sqrt().add_(eps), value=-lr), under no_grad."""
    p, m, v = _u(-1, 1), _u(-1, 1), _u(0.1, 1)
    results = []
    for t in (torch, gcomp):
        tp = t.tensor(p, requires_grad=True)
        with t.no_grad():
            tp.addcdiv_(t.tensor(m), t.tensor(v).sqrt().add_(1e-8), value=-0.01)
            tp.addcmul_(t.tensor(m), t.tensor(v), value=0.5)
            tp.lerp_(t.tensor(m), 0.1)
        results.append(tp.detach().numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-12)


def test_all_of_them_compiled_with_gradients():
    """One gcomp.compile over every new function (values and gradients) against torch."""

    def fn(t, a, b, c):
        pos = t.sigmoid(a) + 0.2
        unit = t.tanh(a) * 0.9
        outs = [t.asin(unit), t.acos(unit), t.atan(a), t.sinh(a), t.cosh(b), t.asinh(a),
                t.acosh(pos + 1), t.atanh(unit), t.erfc(a), t.lgamma(pos), t.digamma(pos),
                t.polygamma(1, pos), t.sgn(a), t.frac(a * 3), t.deg2rad(a), t.rad2deg(b),
                t.copysign(a, b), t.clamp_min(a, 0.1), t.clamp_max(b, 0.1),
                t.addcmul(c, a, b, value=0.3), t.addcdiv(c, a, pos, value=-2),
                t.xlogy(a, pos), t.logaddexp(a, b), t.logaddexp2(a, b), t.hypot(a, b),
                t.fmax(a, b), t.fmin(a, b), t.logit(t.sigmoid(a), eps=0.3), t.sinc(a),
                t.float_power(pos, b), t.nan_to_num(t.log(a)), t.nansum(t.log(b)),
                t.nanmean(t.log(a), 1), t.heaviside(t.round(a).detach(), a.detach()),
                t.signbit(a), t.isposinf(1 / (a * 0)), t.isneginf(t.log(b * 0)),
                t.count_nonzero(t.round(a), dim=0)]
        return [o.float() if o.dtype.is_floating_point else o for o in outs]

    # data of its own (the module's generator is shared with the tests that ran before on this
    # worker); every row of a has a positive entry, so nanmean(log(a)) is never an all-NaN
    # mean, whose gradient torch makes NaN and gcomp 0
    rng = np.random.default_rng(23)
    a, b, c = (rng.uniform(-2, 2, (3, 4)) for _ in range(3))
    assert (a > 0).any(1).all()
    check(fn, a, b, c.astype(np.float32))


def test_predicates_and_constants():
    assert gcomp.inf == math.inf and math.isnan(gcomp.nan)
    assert gcomp.pi == torch.pi and gcomp.e == torch.e and gcomp.newaxis is None
    x = gcomp.ones(2, 3)
    assert x[:, gcomp.newaxis].shape == (2, 1, 3)
    assert gcomp.is_floating_point(x) and not gcomp.is_floating_point(gcomp.ones(2).long())
    assert not gcomp.is_complex(x) and not x.is_complex()
    assert x.isreal().all()
    for v, want in ((0.0, False), (2.5, True), ([0], False), ([[3]], True), (True, True)):
        assert gcomp.is_nonzero(gcomp.tensor(v)) is want
        assert gcomp.tensor(v).is_nonzero() is want
    with pytest.raises(gcomp.GcompError, match="more than one value"):
        gcomp.is_nonzero(gcomp.ones(2))
    with pytest.raises(gcomp.GcompError, match="no values"):
        gcomp.is_nonzero(gcomp.ones(0))


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32", "float64"])
def test_finfo(name):
    got, want = gcomp.finfo(getattr(gcomp, name)), torch.finfo(getattr(torch, name))
    for field in ("eps", "max", "min", "tiny", "smallest_normal", "resolution", "bits"):
        assert getattr(got, field) == getattr(want, field), field
    assert got.dtype is getattr(gcomp, name)


def test_finfo_default_and_iinfo():
    assert gcomp.finfo().dtype is gcomp.float32 and gcomp.finfo().eps == torch.finfo().eps
    assert gcomp.finfo(gcomp.float16) == gcomp.finfo(gcomp.half)
    for name in ("uint8", "int8", "int16", "int32", "int64"):
        got, want = gcomp.iinfo(getattr(gcomp, name)), torch.iinfo(getattr(torch, name))
        assert (got.min, got.max, got.bits) == (want.min, want.max, want.bits)
        assert got.dtype is getattr(gcomp, name)
    assert gcomp.iinfo(gcomp.uint32).max == 2**32 - 1
    x = gcomp.full((2,), gcomp.finfo(gcomp.float32).max)
    assert np.isfinite(x.numpy()).all()


BAD = [
    (lambda: gcomp.finfo(gcomp.int32), "not a floating point dtype"),
    (lambda: gcomp.iinfo(gcomp.float32), "not an integer dtype"),
    (lambda: gcomp.iinfo(gcomp.bool), "not an integer dtype"),
    (lambda: gcomp.finfo("nonsense"), "expected a gcomp dtype"),
    (lambda: gcomp.frac(gcomp.tensor([1, 2])), "not implemented for int64"),
    (lambda: gcomp.logaddexp(gcomp.tensor([1]), gcomp.tensor([2])), "not implemented for int64"),
    (lambda: gcomp.hypot(gcomp.tensor([1]), gcomp.tensor([2.0])), "not implemented for int64"),
    (lambda: gcomp.addcdiv(gcomp.ones(2), gcomp.tensor([1, 2]), gcomp.tensor([3, 4])),
     "Integer division with addcdiv"),
    (lambda: gcomp.heaviside(gcomp.ones(2), gcomp.tensor(1)), "different dtypes"),
    (lambda: gcomp.nanmean(gcomp.tensor([1, 2])), "floating point"),
    (lambda: gcomp.polygamma(-1, gcomp.ones(2)), "non-negative int"),
    (lambda: gcomp.ones(2).float_power_(2), "float_power_"),
    (lambda: gcomp.tensor([1, 2]).asin_(), "can't be cast"),
    (lambda: gcomp.hypot(gcomp.ones(2), gcomp.ones(3)), "broadcast|shape"),
]


@pytest.mark.parametrize("fn, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input(fn, message):
    with pytest.raises(gcomp.GcompError, match=message) as info:
        fn()
    assert "test_math_api.py" in str(info.value)  # the error names the user's line


def test_eager_values_equal_torch_bitwise_where_they_should():
    """Exact results: signbit, fmax/fmin with NaN, heaviside, nan_to_num's replacements."""
    a = np.array([np.nan, 1.0, np.nan, -0.0, 2.0], np.float32)
    b = np.array([3.0, np.nan, np.nan, 0.0, -1.0], np.float32)
    for f in ("fmax", "fmin"):
        got = getattr(gcomp, f)(gcomp_tensor(a), gcomp_tensor(b))
        assert_same(got, getattr(torch, f)(torch_tensor(a), torch_tensor(b)), tol=(0, 0))
    got = gcomp.nan_to_num(gcomp_tensor(np.array([np.inf, -np.inf, np.nan], np.float16)))
    want = torch.nan_to_num(torch_tensor(np.array([np.inf, -np.inf, np.nan], np.float16)))
    assert_same(got, want, tol=(0, 0))
