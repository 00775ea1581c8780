"""torch.special for real dtypes (all of torch 2.13's torch.special.__all__), over gcomp's
primitives.

Most functions are gcomp functions under torch.special's names (``expit`` is ``sigmoid``,
``gammaln`` is ``lgamma``) or short compositions of primitives that follow torch's own formulas,
so their values agree with torch's to the last bits (``ndtr`` is ``(1 + erf(x / sqrt 2)) / 2``,
``log_ndtr`` switches to ``erfcx`` below -1, as torch does). What cannot be composed without
losing accuracy is a primitive of gcomp/ir/ops/elementwise.py: ``erfcx``, ``ndtri``, the
exponentially scaled Bessel functions ``bessel_i0e``/``bessel_i1e``, the incomplete gamma
functions ``igamma``/``igammac``, Hurwitz's ``zeta``; the Bessel functions j0, j1, y0, y1, k0,
k1 (and exp(x) k0, exp(x) k1) and Airy's Ai, whose jax rules are torch's Cephes code
(gcomp/lowering/cephes.py); and one ``orthogonal_polynomial`` primitive for the twelve
Chebyshev, Hermite, Laguerre and Legendre polynomials (gcomp/lowering/polynomials.py).

Gradients are torch's: none for the functions torch leaves without one (the Bessel functions
but i0, i0e, i1, i1e; Airy's Ai; the polynomials; ``spherical_bessel_j0``), whose results do not
require grad, and none in the first operand of ``gammainc``, ``gammaincc`` and ``zeta`` (torch's
"derivative ... is not implemented"; see ``_constant_operand``). Every function but ``softmax``
and ``log_softmax`` takes ``out=``, as in torch.
"""

from __future__ import annotations

import math

from .core.dispatch import EagerInterpreter, Mode, bind, user_error
from .frontend import ops as O
from .frontend.autograd import no_grad
from .frontend.tensor import Tensor
from .ir.errors import GcompError

__all__ = ["airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "chebyshev_polynomial_t",
           "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w", "digamma",
           "entr", "erf", "erfc", "erfcx", "erfinv", "exp2", "expit", "expm1", "gammainc",
           "gammaincc", "gammaln", "hermite_polynomial_h", "hermite_polynomial_he", "i0", "i0e",
           "i1", "i1e", "laguerre_polynomial_l", "legendre_polynomial_p", "log1p", "log_ndtr",
           "log_softmax", "logit", "logsumexp", "modified_bessel_i0", "modified_bessel_i1",
           "modified_bessel_k0", "modified_bessel_k1", "multigammaln", "ndtr", "ndtri", "polygamma",
           "psi", "round", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
           "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
           "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w", "sinc", "softmax",
           "spherical_bessel_j0", "xlog1py", "xlogy", "zeta"]

_SQRT1_2 = math.sqrt(0.5)


def _float(x) -> Tensor:
    """x as a tensor of a floating dtype (integers and bools promote to the default float)."""
    return O._as_float(x)


# -- gcomp's functions under torch.special's names ----------------------------------------------
def erf(input):  # noqa: A002 - torch's argument names
    return O.erf(input)


def erfc(input):  # noqa: A002
    return O.erfc(input)


def erfinv(input):  # noqa: A002
    return O.erfinv(input)


def expit(input):  # noqa: A002
    return O.sigmoid(input)


def exp2(input):  # noqa: A002
    return O.exp2(input)


def expm1(input):  # noqa: A002
    return O.expm1(input)


def log1p(input):  # noqa: A002
    return O.log1p(input)


def gammaln(input):  # noqa: A002
    return O.lgamma(input)


def digamma(input):  # noqa: A002
    return O.digamma(input)


def psi(input):  # noqa: A002
    return O.digamma(input)


def polygamma(n, input):  # noqa: A002
    return O.polygamma(n, input)


def logit(input, eps=None):  # noqa: A002
    return O.logit(input, eps)


def sinc(input):  # noqa: A002
    return O.sinc(input)


def xlogy(input, other):  # noqa: A002
    return O.xlogy(input, other)


def logsumexp(input, dim, keepdim=False):  # noqa: A002
    return O.logsumexp(input, dim, keepdim)


def softmax(input, dim, *, dtype=None):  # noqa: A002
    return O.softmax(input, dim, dtype)


def log_softmax(input, dim, *, dtype=None):  # noqa: A002
    return O.log_softmax(input, dim, dtype)


def round(input, *, decimals=0):  # noqa: A001, A002
    """Half to even, at ``decimals`` decimal places (negative: to the left of the point), with
    torch's arithmetic: round(x * 10^d) / 10^d, or round(x / 10^-d) * 10^-d."""
    if not isinstance(decimals, int) or isinstance(decimals, bool):
        raise user_error(GcompError, f"round(): decimals must be an int, got {decimals!r}")
    if decimals == 0:
        return O.round(input)
    x = O.as_tensor(input)
    if not x.dtype.is_floating_point:
        raise user_error(GcompError, f"round(): decimals is not supported for {x.dtype.name} "
                         "tensors (as in torch); cast to a float dtype first")
    scale = 10.0 ** abs(decimals)
    if decimals > 0:
        return O.div(O.round(O.mul(x, scale)), scale)
    return O.mul(O.round(O.div(x, scale)), scale)


# -- new primitives -----------------------------------------------------------------------------
def erfcx(input):  # noqa: A002
    """The scaled complementary error function exp(x^2) erfc(x)."""
    return bind("erfcx", _float(input))


def ndtri(input):  # noqa: A002
    """The inverse of ndtr: the standard normal quantile of p (-inf at 0, inf at 1)."""
    return bind("ndtri", _float(input))


def i0e(input):  # noqa: A002
    """exp(-|x|) i0(x)."""
    return bind("bessel_i0e", _float(input))


def i1e(input):  # noqa: A002
    """exp(-|x|) i1(x)."""
    return bind("bessel_i1e", _float(input))


def _unscaled(x, scaled):
    """exp(|x|) times the scaled Bessel function, as torch computes it (inf from where exp(|x|)
    overflows, NaN at +-inf)."""
    return O.mul(O.exp(O.abs(x)), bind(scaled, x))


def i0(input):  # noqa: A002
    """The modified Bessel function of the first kind of order 0."""
    return _unscaled(_float(input), "bessel_i0e")


def i1(input):  # noqa: A002
    """The modified Bessel function of the first kind of order 1."""
    return _unscaled(_float(input), "bessel_i1e")


def _constant_operand(name: str, what: str, t) -> None:
    """torch has no derivative of ``name`` in this operand (its "derivative for '<what>' is not
    implemented"). Eagerly the VJP rule raises torch's error when a backward needs it
    (gcomp/autodiff/elementwise.py). The autodiff pass of a compiled function cannot tell which
    operands the user differentiates, so while tracing an operand that requires grad is refused
    here, at the call, instead of being given a gradient of zero."""
    if (isinstance(t, Tensor) and t.requires_grad and Mode.grad_enabled
            and not isinstance(Mode.stack[-1], EagerInterpreter)):
        raise user_error(GcompError, f"special.{name}: the derivative for '{what}' is not "
                         "implemented (as in torch), and inside gcomp.compile its first operand "
                         "must not require grad; pass input.detach()")


def _float_binary(op, name, what, input, other):  # noqa: A002
    _constant_operand(name, what, input)
    a, b = O._floats(input, other)
    return bind(op, a, b)


def gammainc(input, other):  # noqa: A002
    """The regularized lower incomplete gamma function P(a = input, x = other)."""
    return _float_binary("igamma", "gammainc", "igamma: input", input, other)


def gammaincc(input, other):  # noqa: A002
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    return _float_binary("igammac", "gammaincc", "igammac: input", input, other)


def zeta(input, other):  # noqa: A002
    """Hurwitz's zeta function: the sum over k >= 0 of (k + q)^-s, s = input, q = other."""
    return _float_binary("zeta", "zeta", "zeta", input, other)


# -- compositions, after torch's formulas (aten/src/ATen/native/Math.h) ------------------------
def ndtr(input):  # noqa: A002
    """The standard normal CDF, (1 + erf(x / sqrt 2)) / 2 as torch computes it (0 below about
    -8.3 in float64, where 1 + erf loses everything)."""
    x = _float(input)
    return O.mul(O.add(O.erf(O.mul(x, _SQRT1_2)), 1.0), 0.5)


def log_ndtr(input):  # noqa: A002
    """log(ndtr(x)), accurate in both tails: log(erfcx(-t) / 2) - t^2 below x = -1 and
    log1p(-erfc(t) / 2) above, with t = x / sqrt 2. Each branch sees a harmless operand where the
    other is taken, so neither puts inf or NaN into the gradient."""
    x = _float(input)
    low = O.lt(x, -1.0)
    t_low = O.mul(O.where(low, x, -1.0), _SQRT1_2)
    t_high = O.mul(O.where(low, 0.0, x), _SQRT1_2)
    left = O.sub(O.log(O.mul(erfcx(O.neg(t_low)), 0.5)), O.mul(t_low, t_low))
    right = O.log1p(O.neg(O.mul(O.erfc(t_high), 0.5)))
    return O.where(low, left, right)


def entr(input):  # noqa: A002
    """-x log(x) for x > 0, 0 at 0, -inf below 0, NaN at NaN. The gradient -(1 + log x) for
    x > 0; 0 at x <= 0 (torch: inf at 0, NaN below)."""
    x = _float(input)
    pos = O.gt(x, 0.0)
    safe = O.where(pos, x, 1.0)
    out = O.where(pos, O.neg(O.mul(safe, O.log(safe))), O.where(O.eq(x, 0.0), 0.0, -math.inf))
    return O.where(O.isnan(x), x, out)


def xlog1py(input, other):  # noqa: A002
    """input * log1p(other), 0 where input == 0 (unless other is NaN), as xlogy. The gradient
    is torch's, except at input == 0 with other == inf or -1, where it is 0."""
    a, b = O._floats(input, other)
    zero = O.logical_and(O.eq(a, 0.0), O.logical_or(O.le(b, -1.0), O.eq(b, math.inf)))
    safe_b = O.where(zero, 0.0, b)  # keeps log1p(-1) = -inf out of the masked branch's gradient
    return O.where(zero, 0.0, O.mul(a, O.log1p(safe_b)))


def multigammaln(input, p):  # noqa: A002
    """The log of the multivariate gamma function of dimension p: the sum of lgamma(x - j/2)
    for j < p, plus p (p - 1) / 4 log(pi). As torch 2.13, it does not check x > (p - 1) / 2
    (below, the terms are lgamma's values there: inf at its poles)."""
    if not isinstance(p, int) or isinstance(p, bool) or p < 1:
        raise user_error(GcompError, f"multigammaln: p has to be greater than or equal to 1, "
                         f"got {p!r}")
    x = _float(input)
    from .frontend.creation import tensor
    from .frontend.shape_ops import unsqueeze

    offsets = tensor([-0.5 * (p - 1 - j) for j in range(p)], dtype=x.dtype)
    terms = O.lgamma(O.add(unsqueeze(x, -1), offsets))
    return O.add(O.sum(terms, -1), p * (p - 1) * math.log(math.pi) / 4)


# -- functions torch gives no gradient (their results do not require grad) --------------------
def _detached(x) -> Tensor:
    return _float(x.detach() if isinstance(x, Tensor) else x)


def spherical_bessel_j0(input):  # noqa: A002
    """sin(x) / x, by torch's series below |x| = 0.5; 0 at +-inf."""
    with no_grad():
        x = _detached(input)
        x2 = O.mul(x, x)
        series = 1.0 / 6227020800.0
        for c in (-1.0 / 39916800.0, 1.0 / 362880.0, -1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0):
            series = O.add(O.mul(x2, series), c)
        series = O.add(O.mul(x2, series), 1.0)
        small = O.lt(O.abs(x), 0.5)
        safe = O.where(small, 1.0, x)
        out = O.where(small, series, O.div(O.sin(safe), safe))
        return O.where(O.isinf(x), 0.0, out)


def _named(f, name: str, doc: str):
    f.__name__ = f.__qualname__ = name
    f.__doc__ = doc
    return f


def _no_gradient(name: str, op: str, doc: str):
    def f(input):  # noqa: A002
        return bind(op, _float(input))  # a primitive without a VJP: nothing is taped

    return _named(f, name, doc)


bessel_j0 = _no_gradient("bessel_j0", "bessel_j0", "The Bessel function of the first kind, J0.")
bessel_j1 = _no_gradient("bessel_j1", "bessel_j1", "The Bessel function of the first kind, J1.")
bessel_y0 = _no_gradient("bessel_y0", "bessel_y0", "The Bessel function of the second kind, Y0.")
bessel_y1 = _no_gradient("bessel_y1", "bessel_y1", "The Bessel function of the second kind, Y1.")
modified_bessel_k0 = _no_gradient("modified_bessel_k0", "bessel_k0",
                                  "The modified Bessel function of the second kind, K0.")
modified_bessel_k1 = _no_gradient("modified_bessel_k1", "bessel_k1",
                                  "The modified Bessel function of the second kind, K1.")
scaled_modified_bessel_k0 = _no_gradient("scaled_modified_bessel_k0", "bessel_k0e",
                                         "exp(x) K0(x).")
scaled_modified_bessel_k1 = _no_gradient("scaled_modified_bessel_k1", "bessel_k1e",
                                         "exp(x) K1(x).")
airy_ai = _no_gradient("airy_ai", "airy_ai", "Airy's function Ai.")


def _polynomial(name: str, kind: str, what: str):
    def f(input, n):  # noqa: A002
        x, degree = O._floats(input, n)  # torch's promotion; n is truncated to an integer
        return bind("orthogonal_polynomial", x, degree, kind=kind)

    return _named(f, name, f"{what} of degree n (truncated to an integer; 0 for n < 0) at "
                  "input, by torch's recurrences and closed forms; no gradient, as in torch.")


chebyshev_polynomial_t = _polynomial("chebyshev_polynomial_t", "chebyshev_t",
                                     "The Chebyshev polynomial of the first kind T_n")
chebyshev_polynomial_u = _polynomial("chebyshev_polynomial_u", "chebyshev_u",
                                     "The Chebyshev polynomial of the second kind U_n")
chebyshev_polynomial_v = _polynomial("chebyshev_polynomial_v", "chebyshev_v",
                                     "The Chebyshev polynomial of the third kind V_n")
chebyshev_polynomial_w = _polynomial("chebyshev_polynomial_w", "chebyshev_w",
                                     "The Chebyshev polynomial of the fourth kind W_n")
shifted_chebyshev_polynomial_t = _polynomial("shifted_chebyshev_polynomial_t",
                                             "shifted_chebyshev_t", "T_n(2x - 1)")
shifted_chebyshev_polynomial_u = _polynomial("shifted_chebyshev_polynomial_u",
                                             "shifted_chebyshev_u", "U_n(2x - 1)")
shifted_chebyshev_polynomial_v = _polynomial("shifted_chebyshev_polynomial_v",
                                             "shifted_chebyshev_v", "V_n(2x - 1)")
shifted_chebyshev_polynomial_w = _polynomial("shifted_chebyshev_polynomial_w",
                                             "shifted_chebyshev_w", "W_n(2x - 1)")
hermite_polynomial_h = _polynomial("hermite_polynomial_h", "hermite_h",
                                   "The physicists' Hermite polynomial H_n (NaN past n = 128 in "
                                   "float32, 512 in float64, as torch)")
hermite_polynomial_he = _polynomial("hermite_polynomial_he", "hermite_he",
                                    "The probabilists' Hermite polynomial He_n (NaN past n = 128 "
                                    "in float32, 512 in float64, as torch)")
laguerre_polynomial_l = _polynomial("laguerre_polynomial_l", "laguerre_l",
                                    "The Laguerre polynomial L_n")
legendre_polynomial_p = _polynomial("legendre_polynomial_p", "legendre_p",
                                    "The Legendre polynomial P_n")


def modified_bessel_i0(input):  # noqa: A002
    """i0 without a gradient, as torch's modified_bessel_i0."""
    with no_grad():
        return i0(_detached(input))


def modified_bessel_i1(input):  # noqa: A002
    """i1 without a gradient, as torch's modified_bessel_i1."""
    with no_grad():
        return i1(_detached(input))


def _give_out() -> None:
    """``out=`` for every function torch.special gives it (all but softmax and log_softmax)."""
    from .frontend.out import with_out

    for name in __all__:
        if name not in ("softmax", "log_softmax"):
            globals()[name] = with_out(globals()[name])


_give_out()
