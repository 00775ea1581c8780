"""gcomp.special against torch.special (torch 2.13), every function of its __all__: values on
grids of edge values (0, -0, negatives, large, +-inf, NaN) in float64 eagerly and in float32
compiled (many functions in one gcomp.compile: one compile instead of many eager ones), float64
gradients where torch has them (and none where it has none), the functions torch does not
differentiate in their first operand, the orthogonal polynomials over degrees, out=, and
compiled gradients of several."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch_reference import assert_same, check

import gcomp
import gcomp.special

pytestmark = pytest.mark.xdist_group("frontend_special")

N = 20  # every grid has this many points, so the eager ops compile once per dtype
EDGES = np.array([-np.inf, -40.0, -5.0, -1.5, -1.0, -0.5, -1e-8, -0.0, 0.0, 1e-8, 0.3, 0.5, 1.0,
                  2.5, 5.0, 30.0, 100.0, 700.0, np.inf, np.nan])
UNIT = np.array([-1.0, -1e-3, 0.0, 1e-300, 1e-20, 1e-5, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99,
                 1 - 1e-9, 1.0, 1.001, 2.0, np.inf, -np.inf, np.nan])  # ndtri, logit, erfinv
assert EDGES.shape == UNIT.shape == (N,)

gen = np.random.default_rng(11)


def _u(lo, hi):
    return gen.uniform(lo, hi, N)


# float32 differs from torch's float32 by a few ulps; gammaln(1) and ndtr(-5) are 1 + x
# cancellations, so an atol of float32's ulp at 1
F32 = (4e-6, 1.2e-7)
# name -> (edge grid, float64 interior points for the gradient; None: torch has no gradient)
UNARY = {
    "erf": (EDGES, _u(-3, 3)),
    "erfc": (EDGES, _u(-3, 3)),
    "erfcx": (EDGES, _u(-3, 10)),
    "erfinv": (UNIT, _u(-0.95, 0.95)),
    "expit": (EDGES, _u(-6, 6)),
    "logit": (UNIT, _u(0.05, 0.95)),
    "exp2": (EDGES, _u(-5, 5)),
    "expm1": (EDGES, _u(-3, 3)),
    "log1p": (EDGES, _u(-0.9, 3)),
    "gammaln": (EDGES, _u(0.1, 8)),
    "digamma": (EDGES, _u(0.1, 8)),
    "psi": (EDGES, _u(0.1, 8)),
    "i0": (EDGES, _u(-8, 8)),
    "i0e": (EDGES, _u(0.1, 8) * np.sign(_u(-1, 1))),  # |x| has a kink at 0
    "i1": (EDGES, _u(-8, 8)),
    "i1e": (EDGES, _u(0.1, 8) * np.sign(_u(-1, 1))),
    "ndtr": (EDGES, _u(-4, 4)),
    "ndtri": (UNIT, _u(0.01, 0.99)),
    "log_ndtr": (EDGES, np.concatenate([_u(-40, -1)[:10], _u(-1, 6)[:10]])),
    "sinc": (EDGES, _u(-3, 3)),
    "entr": (EDGES, _u(0.05, 4)),
    "round": (np.concatenate([[-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997], EDGES[:13]]), None),
    "spherical_bessel_j0": (EDGES, None),
    "modified_bessel_i0": (EDGES, None),
    "modified_bessel_i1": (EDGES, None),
    "bessel_j0": (EDGES, None),
    "bessel_j1": (EDGES, None),
    "bessel_y0": (EDGES, None),
    "bessel_y1": (EDGES, None),
    "modified_bessel_k0": (EDGES, None),
    "modified_bessel_k1": (EDGES, None),
    "scaled_modified_bessel_k0": (EDGES, None),
    "scaled_modified_bessel_k1": (EDGES, None),
    "airy_ai": (EDGES, None),
}
GRAD_TOL = {"digamma": (1e-8, 1e-10), "psi": (1e-8, 1e-10)}  # lax's trigamma: about 5e-10
# lax's erf_inv near 1 (1 - 1e-9) is good to about 1e-11, its float32 lgamma(1) is 4.8e-7
# and Ai(-40) is sin of a phase of 169: XLA's and libm's sin differ by 1e-13 there (f32: 7e-5)
TOL = {("erfinv", "float64"): (1e-10, 1e-12), ("gammaln", "float32"): (4e-6, 5e-7),
       ("airy_ai", "float64"): (1e-12, 1e-14), ("airy_ai", "float32"): (2e-4, 1.2e-7)}


def _tol(name, dtype):
    return TOL.get((name, dtype), F32 if dtype == "float32" else None)


def compare_compiled(names, fn, *arrays, tol):
    """All of ``names`` in one gcomp.compile (one compile instead of many eager ones), each
    result against torch's: ``fn(lib, name, *tensors)``."""
    compiled = gcomp.compile(lambda *xs: tuple(fn(gcomp, n, *xs) for n in names))
    got = compiled(*[gcomp.tensor(a) for a in arrays])
    for name, g in zip(names, got, strict=True):
        assert_same(g, fn(torch, name, *[torch.tensor(a) for a in arrays]), tol(name), name)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_values(name):
    """float64, eagerly."""
    check(lambda t, a: getattr(t.special, name)(a), UNARY[name][0], grad=False, compiled=False,
          tol=_tol(name, "float64"))


# gcomp's own functions under torch.special's names (their float32 values: test_math_api.py)
ALIASES = {"erf", "erfc", "erfinv", "expit", "logit", "exp2", "expm1", "log1p", "gammaln",
           "digamma", "psi", "sinc", "round"}


def test_unary_values_float32_compiled():
    for grid in (EDGES, UNIT):
        names = [n for n, (g, _) in UNARY.items() if g is grid and n not in ALIASES]
        compare_compiled(names, lambda t, n, a: getattr(t.special, n)(a),
                         grid.astype(np.float32), tol=lambda n: _tol(n, "float32"))


@pytest.mark.parametrize("name", [n for n, (_, g) in UNARY.items() if g is not None])
def test_unary_gradients(name):
    check(lambda t, a: getattr(t.special, name)(a), UNARY[name][1], compiled=False,
          grad_tol=GRAD_TOL.get(name))


# (round: torch's gradient is zero, and gcomp's round records none, as gcomp.round)
@pytest.mark.parametrize("name", [n for n, (_, g) in UNARY.items() if g is None and n != "round"])
def test_functions_torch_does_not_differentiate(name):
    x = gcomp.tensor(UNARY["i0"][1], requires_grad=True)
    t = torch.tensor(UNARY["i0"][1], requires_grad=True)
    got, want = getattr(gcomp.special, name)(x), getattr(torch.special, name)(t)
    assert got.requires_grad == want.requires_grad
    assert_same(got, want)


def test_integer_inputs_promote_as_in_torch():
    check(lambda t, a: (t.special.i0(a), t.special.ndtri(a)), np.arange(-9, 11), grad=False,
          compiled=False)


# -- functions of two operands -------------------------------------------------------------
PAIR_EDGES = np.array([-np.inf, -2.5, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0, 1e3,
                       np.inf, np.nan])
A, B = (np.array(v) for v in zip(*itertools.product(PAIR_EDGES, PAIR_EDGES), strict=True))
BINARY = ["xlog1py", "zeta", "gammainc", "gammaincc"]  # (xlogy: gcomp.xlogy, test_math_api.py)


# lax's incomplete gamma and torch's agree to 2e-10 in float64 at a = x = 1000
BINARY_TOL = {"float64": (1e-9, 1e-12), "float32": (1e-5, 1e-7)}


@pytest.mark.parametrize("name", BINARY)
def test_binary_values(name):
    """float64, eagerly."""
    check(lambda t, a, b: getattr(t.special, name)(a, b), A, B, grad=False, compiled=False,
          tol=BINARY_TOL["float64"])


def test_binary_values_float32_compiled():
    compare_compiled(BINARY, lambda t, n, a, b: getattr(t.special, n)(a, b),
                     A.astype(np.float32), B.astype(np.float32),
                     tol=lambda n: BINARY_TOL["float32"])


def test_xlog1py_gradients():
    a = np.concatenate([_u(-2, 2)[:15], np.zeros(5)])  # a = 0: the gradient in a is log1p(b)
    check(lambda t, x, y: t.special.xlog1py(x, y), a, _u(-0.9, 3), compiled=False)


@pytest.mark.parametrize("name", ["zeta", "gammainc", "gammaincc"])
def test_gradient_in_the_second_operand_only(name):
    s, x = gen.uniform(1.5, 4, A.shape), gen.uniform(0.3, 4, A.shape)  # A's shape: no new compile
    check(lambda t, a, b: getattr(t.special, name)(a.detach(), b), s, x, compiled=False,
          grad_tol=(1e-9, 1e-12))
    # torch: "the derivative for ... is not implemented", at backward; gcomp says the same
    for lib in (torch, gcomp):
        a = lib.tensor(s, requires_grad=True)
        y = getattr(lib.special, name)(a, lib.tensor(x))
        with pytest.raises(RuntimeError if lib is torch else gcomp.GcompError,
                           match="derivative for .* is not implemented"):
            y.sum().backward()
    # inside gcomp.compile the autodiff pass cannot tell, so the call refuses such an operand
    f = gcomp.compile(lambda a, b: getattr(gcomp.special, name)(a, b).sum())
    with pytest.raises(gcomp.GcompError, match="must not require grad") as info:
        f(gcomp.tensor(s, requires_grad=True), gcomp.tensor(x))
    assert "test_special.py" in str(info.value)


# -- the rest: polygamma, multigammaln, softmax and friends, round, logit ----------------------
def test_polygamma_and_multigammaln():
    check(lambda t, a: t.special.polygamma(2, a), _u(0.3, 6), compiled=False,
          grad_tol=(1e-8, 1e-10))  # n = 0 and 1: digamma and its gradient, above
    check(lambda t, a: t.special.multigammaln(a, 3), _u(1.5, 6), compiled=False,
          grad_tol=(1e-8, 1e-10))
    check(lambda t, a: t.special.multigammaln(a, 1), _u(0.5, 6), grad=False, compiled=False)
    # torch 2.13 no longer checks x > (p - 1) / 2: lgamma's values below, inf at its poles
    check(lambda t, a: t.special.multigammaln(a, 4), np.array([1.0, 3.0, 1.4, -0.2]),
          grad=False, compiled=False)
    with pytest.raises(gcomp.GcompError, match="greater than or equal to 1"):
        gcomp.special.multigammaln(gcomp.tensor([3.0]), 0)


def test_softmax_log_softmax_logsumexp_round_logit():
    x = _u(-3, 3)  # aliases of gcomp's own (tests/frontend/test_math.py)
    check(lambda t, a: t.special.softmax(a, 0), x, compiled=False)
    check(lambda t, a: (t.special.log_softmax(a, 0, dtype=t.float32),
                        t.special.logsumexp(a, 0, keepdim=True)), x, grad=False, compiled=False)
    r = np.array([1.2345, -125.0, 0.5, 2.675, -0.15, 1e6 + 0.5] + [0.25] * 14, np.float32)
    for d in (-1, 2):
        check(lambda t, a, d=d: t.special.round(a, decimals=d), r, grad=False, compiled=False)
    check(lambda t, a: t.special.logit(a, eps=0.2), UNIT, grad=False, compiled=False)


def test_out_keyword_as_in_torch():
    a = EDGES.astype(np.float32)
    for name in ("erfcx", "xlog1py"):
        args = (a,) if name == "erfcx" else (a, a)
        outs = [lib.empty(N) for lib in (torch, gcomp)]
        want = getattr(torch.special, name)(*map(torch.tensor, args), out=outs[0])
        got = getattr(gcomp.special, name)(*map(gcomp.tensor, args), out=outs[1])
        assert got is outs[1] and want is outs[0]
        assert_same(got, want)
    for lib in (torch, gcomp):  # softmax and log_softmax take no out=
        with pytest.raises(TypeError):
            lib.special.softmax(lib.tensor(a), 0, out=lib.empty(N))


def test_every_torch_special_function_is_here():
    assert gcomp.special.__all__ == sorted(torch.special.__all__)


POLYNOMIALS = [n for n in torch.special.__all__ if "polynomial" in n]
# NaN x is left out: torch returns an uninitialized value for it past degree 1 in most kinds
PX = np.array([-np.inf, -3.0, -1.0, -0.7, -0.5, -0.0, 0.0, 0.2, 0.5, 0.9, 1.0, 1.5, 4.0, np.inf])
PN = np.array([-3, 0, 1, 2, 3, 5, 7, 9, 10, 25, 200, 600, np.nan, np.inf, 2.7, -0.5])


def test_orthogonal_polynomials_compiled():
    """float64 values on a grid of x and degrees n: negative, fractional, inf and NaN too; all
    in one compiled function (eagerly: below). Near their zeros, values of size 1e-14 are
    rounding noise in both."""
    x, n = (np.array(v) for v in zip(*itertools.product(PX, PN), strict=True))
    compare_compiled(POLYNOMIALS, lambda t, name, a, b: getattr(t.special, name)(a, b), x, n,
                     tol=lambda name: (1e-11, 1e-12))


@pytest.mark.parametrize("name", ["chebyshev_polynomial_v", "laguerre_polynomial_l"])
def test_orthogonal_polynomials_float32_and_int_degrees(name):
    x, n = (np.array(v) for v in zip(*itertools.product(PX, PN[np.abs(PN) <= 25]),
                                     strict=True))
    # (float32 recurrences of degree 200 and up drift apart by 1e-3)
    check(lambda t, a, b: getattr(t.special, name)(a, b), x.astype(np.float32),
          n.astype(np.float32), grad=False, compiled=False, tol=(2e-5, 1e-6))
    a = gen.uniform(-1.2, 1.2, N)
    for degree in (4, np.arange(N)):  # a Python int, and an int64 tensor
        t_degree, g_degree = ((torch.tensor(degree), gcomp.tensor(degree))
                              if isinstance(degree, np.ndarray) else (degree, degree))
        want = getattr(torch.special, name)(torch.tensor(a, requires_grad=True), t_degree)
        got = getattr(gcomp.special, name)(gcomp.tensor(a, requires_grad=True), g_degree)
        assert got.requires_grad == want.requires_grad is False
        assert_same(got, want)


def test_compiled_function_of_several():
    """Values and gradients inside gcomp.compile: the primitives' lowering and VJP rules, and the
    compositions, traced."""
    def f(t, x, p, s):
        S = t.special  # (the op table compiles each primitive and its VJP on its own too)
        return (S.i1(x) + S.log_ndtr(x) + S.entr(p) + S.xlog1py(x, p)
                + S.zeta(s.detach(), p + 1) + S.multigammaln(s, 2))

    check(f, _u(-3, 3), _u(0.05, 0.95), _u(1.5, 4), grad_tol=(1e-9, 1e-12))
