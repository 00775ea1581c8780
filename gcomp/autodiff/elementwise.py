"""VJP rules of the elementwise family."""

from __future__ import annotations

import math

from ..core import prims as P
from ..core.autograd import needs_input_grad
from ..core.dispatch import EagerInterpreter, Mode, user_error
from ..ir.errors import GcompError
from . import defvjp


def _c(x, v):
    return P.scalar_like(x, v)


def unary(name):
    def deco(f):
        def rule(cts, inputs, outputs):
            return [f(cts[0], inputs[0], outputs[0])]

        defvjp(name)(rule)
        return f

    return deco


unary("neg")(lambda g, x, y: P.neg(g))
unary("abs")(lambda g, x, y: P.mul(g, P.sign(x)))
unary("exp")(lambda g, x, y: P.mul(g, y))
unary("expm1")(lambda g, x, y: P.mul(g, P.add(y, _c(y, 1.0))))
unary("log")(lambda g, x, y: P.div(g, x))
unary("log1p")(lambda g, x, y: P.div(g, P.add(x, _c(x, 1.0))))
unary("sqrt")(lambda g, x, y: P.div(g, P.mul(y, _c(y, 2.0))))
unary("rsqrt")(lambda g, x, y: P.mul(P.mul(g, _c(y, -0.5)), P.div(y, x)))
unary("sin")(lambda g, x, y: P.mul(g, P.cos(x)))
unary("cos")(lambda g, x, y: P.neg(P.mul(g, P.sin(x))))
unary("tan")(lambda g, x, y: P.mul(g, P.add(_c(y, 1.0), P.mul(y, y))))
unary("tanh")(lambda g, x, y: P.mul(g, P.sub(_c(y, 1.0), P.mul(y, y))))
unary("logistic")(lambda g, x, y: P.mul(g, P.mul(y, P.sub(_c(y, 1.0), y))))
unary("erf")(lambda g, x, y: P.mul(g, P.mul(_c(x, 2.0 / math.sqrt(math.pi)),
                                            P.exp(P.neg(P.mul(x, x))))))
unary("erf_inv")(lambda g, x, y: P.mul(g, P.mul(_c(y, math.sqrt(math.pi) / 2.0),
                                                P.exp(P.mul(y, y)))))

# inverse trig, hyperbolic, erfc and the gamma family (torch's derivatives.yaml)
unary("asin")(lambda g, x, y: P.mul(g, P.rsqrt(P.sub(_c(x, 1.0), P.mul(x, x)))))
unary("acos")(lambda g, x, y: P.neg(P.mul(g, P.rsqrt(P.sub(_c(x, 1.0), P.mul(x, x))))))
unary("atan")(lambda g, x, y: P.div(g, P.add(_c(x, 1.0), P.mul(x, x))))
unary("sinh")(lambda g, x, y: P.mul(g, P.cosh(x)))
unary("cosh")(lambda g, x, y: P.mul(g, P.sinh(x)))
unary("asinh")(lambda g, x, y: P.mul(g, P.rsqrt(P.add(P.mul(x, x), _c(x, 1.0)))))
unary("acosh")(lambda g, x, y: P.mul(g, P.rsqrt(P.sub(P.mul(x, x), _c(x, 1.0)))))
unary("atanh")(lambda g, x, y: P.div(g, P.sub(_c(x, 1.0), P.mul(x, x))))
unary("erfc")(lambda g, x, y: P.mul(g, P.mul(_c(x, -2.0 / math.sqrt(math.pi)),
                                             P.exp(P.neg(P.mul(x, x))))))
unary("lgamma")(lambda g, x, y: P.mul(g, P.digamma(x)))
unary("digamma")(lambda g, x, y: P.mul(g, P.polygamma(x, n=1)))


# torch.special's primitives (derivatives.yaml)
unary("erfcx")(lambda g, x, y: P.mul(g, P.sub(P.mul(P.mul(x, y), _c(x, 2.0)),
                                              _c(x, 2.0 / math.sqrt(math.pi)))))
unary("ndtri")(lambda g, x, y: P.mul(g, P.mul(_c(y, math.sqrt(2.0 * math.pi)),
                                              P.exp(P.mul(P.mul(y, y), _c(y, 0.5))))))
unary("bessel_i0e")(lambda g, x, y: P.mul(g, P.sub(P.bessel_i1e(x), P.mul(P.sign(x), y))))


_EPS = {"float16": 2.0 ** -10, "bfloat16": 2.0 ** -7, "float32": 2.0 ** -23, "float64": 2.0 ** -52}


@defvjp("bessel_i1e")
def _bessel_i1e(cts, inputs, outputs):
    """torch's i1e_backward: i0e(x) - i1e(x) (sgn(x) + 1/x), and 0.5 where |x| <= eps (the
    formula's 0/0)."""
    (g,), (x,), (y,) = cts, inputs, outputs
    eps = _c(x, _EPS[x._type.dtype.name])
    big = P.gt(P.abs(x), eps)
    safe = P.select(big, x, eps)
    dx = P.sub(P.bessel_i0e(safe), P.mul(y, P.add(P.sign(safe), P.div(_c(x, 1.0), safe))))
    return [P.mul(g, P.select(big, dx, _c(x, 0.5)))]


def _no_derivative(what: str):
    """The cotangent of an operand torch does not differentiate ("not implemented" in its
    derivatives.yaml). Eagerly, a backward that needs it raises torch's error. In a trace every
    float operand is given a cotangent and DCE drops those nobody uses, so the rule gives None
    there; gcomp.special refuses such an operand that requires grad while tracing instead."""
    if needs_input_grad(0) and isinstance(Mode.stack[-1], EagerInterpreter):
        raise user_error(GcompError, f"the derivative for '{what}' is not implemented (as in "
                         "torch); detach that operand")
    return None


@defvjp("igamma")
def _igamma(cts, inputs, outputs):
    (g,), (a, x) = cts, inputs
    return [_no_derivative("igamma: input"), P.mul(g, _igamma_density(a, x))]


@defvjp("igammac")
def _igammac(cts, inputs, outputs):
    (g,), (a, x) = cts, inputs
    return [_no_derivative("igammac: input"), P.neg(P.mul(g, _igamma_density(a, x)))]


def _igamma_density(a, x):
    """d/dx igamma(a, x) = exp((a - 1) log x - x - lgamma(a)), as torch writes it."""
    return P.exp(P.sub(P.sub(P.mul(P.sub(a, _c(a, 1.0)), P.log(x)), x), P.lgamma(a)))


@defvjp("zeta")
def _zeta(cts, inputs, outputs):
    (g,), (s, q) = cts, inputs
    return [_no_derivative("zeta"), P.mul(g, P.neg(P.mul(s, P.zeta(P.add(s, _c(s, 1.0)), q))))]


@defvjp("polygamma")
def _polygamma(cts, inputs, outputs, n):
    return [P.mul(cts[0], P.polygamma(inputs[0], n=n + 1))]


@defvjp("stop_gradient")
def _stop_gradient(cts, inputs, outputs):
    return [None]


def _wanted(i: int) -> bool:
    """Whether to compute input i's cotangent. Eagerly only if the walk needs it, so a rule
    reads only what torch would have saved (Note [Freeing the graph] in core/autograd.py). In
    a trace always, as before: DCE drops the unneeded ones anyway, and one noisy A/B run had
    the compiled LSTM step slower with them skipped (8.2 vs 7.8 ms, benchmarks/train_step.py),
    which is not understood yet, so traced graphs stay as they were."""
    return needs_input_grad(i) or not isinstance(Mode.stack[-1], EagerInterpreter)


@defvjp("add")
def _add(cts, inputs, outputs):
    return [cts[0], cts[0]]


@defvjp("sub")
def _sub(cts, inputs, outputs):
    return [cts[0], P.neg(cts[0])]


@defvjp("mul")
def _mul(cts, inputs, outputs):
    (g,), (x, y) = cts, inputs
    # a side that needs no gradient (x * 2) is not computed, so its partner is not read
    return [P.mul(g, y) if _wanted(0) else None,
            P.mul(g, x) if _wanted(1) else None]


@defvjp("div")
def _div(cts, inputs, outputs):
    (g,), (_, y), (out,) = cts, inputs, outputs
    gx = P.div(g, y)
    return [gx, P.neg(P.mul(gx, out)) if _wanted(1) else None]


@defvjp("pow")
def _pow(cts, inputs, outputs):
    """torch's pow_backward: d/dx = y x^(y-1) (0 where y == 0); d/dy = out log x (0 where x == 0
    and y >= 0)."""
    (g,), (x, y), (out,) = cts, inputs, outputs
    zero = _c(x, 0.0)
    gx = gy = None
    if _wanted(0):
        gx = P.mul(g, P.mul(y, P.pow(x, P.sub(y, _c(y, 1.0)))))
        gx = P.select(P.eq(y, zero), zero, gx)
    if _wanted(1):
        gy = P.mul(g, P.mul(out, P.log(x)))
        gy = P.select(P.logical_and(P.eq(x, zero), P.ge(y, zero)), zero, gy)
    return [gx, gy]


def _minmax(pick):
    def rule(cts, inputs, outputs):
        """Ties split the gradient in half, as torch.maximum/minimum do."""
        (g,), (x, y) = cts, inputs
        half, one, zero = _c(g, 0.5), _c(g, 1.0), _c(g, 0.0)
        wins = P.select(P.eq(x, y), half, P.select(pick(x, y), one, zero))
        return [P.mul(g, wins), P.mul(g, P.sub(one, wins))]

    return rule


defvjp("maximum")(_minmax(P.gt))
defvjp("minimum")(_minmax(P.lt))


@defvjp("remainder")
def _remainder(cts, inputs, outputs):
    (g,), (x, y) = cts, inputs
    return [g, P.neg(P.mul(g, P.floor_divide(x, y)))]


@defvjp("atan2")
def _atan2(cts, inputs, outputs):
    (g,), (y, x) = cts, inputs
    denom = P.add(P.mul(x, x), P.mul(y, y))
    return [P.mul(g, P.div(x, denom)), P.neg(P.mul(g, P.div(y, denom)))]


@defvjp("select")
def _select(cts, inputs, outputs):
    (g,), (pred, a, b) = cts, inputs
    zero = P.zeros_like(g)
    return [None, P.select(pred, g, zero), P.select(pred, zero, g)]


@defvjp("cast")
def _cast(cts, inputs, outputs, dtype):
    (g,), (x,) = cts, inputs
    if not x._type.dtype.is_floating_point:
        return [None]
    return [P.cast(g, dtype=x._type.dtype)]
