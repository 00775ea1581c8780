"""Elementwise primitives: operands of one shape and one dtype (the front end broadcasts and
casts)."""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType, bool_
from . import declare, same_dtype, same_shape

# torch.special's Bessel functions of the first and second kind (j, y), the modified ones of the
# second kind (k; k0e, k1e: times exp(x)) and Airy's Ai: without a gradient, as in torch
BESSEL = ("bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "bessel_k0", "bessel_k1",
          "bessel_k0e", "bessel_k1e", "airy_ai")
FLOAT_UNARY = ("exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh",
               "logistic", "erf", "erf_inv", "floor", "ceil", "round", "asin", "acos", "atan",
               "sinh", "cosh", "asinh", "acosh", "atanh", "erfc", "lgamma", "digamma",
               "erfcx", "ndtri", "bessel_i0e", "bessel_i1e", *BESSEL)
ANY_UNARY = ("neg", "abs", "sign", "stop_gradient")
ARITH_BINARY = ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "remainder",
                "floor_divide", "atan2")
# igamma(a, x) and igammac(a, x): the regularized lower and upper incomplete gamma functions;
# zeta(s, q): Hurwitz's zeta function. Differentiable in their second operand only, as in torch.
FLOAT_BINARY = ("igamma", "igammac", "zeta")
COMPARE = ("eq", "ne", "lt", "le", "gt", "ge")
LOGICAL = ("logical_and", "logical_or", "logical_xor")
BITWISE = ("bitwise_and", "bitwise_or", "bitwise_xor")
NON_DIFFERENTIABLE = {"sign", "floor", "ceil", "round", "floor_divide", *COMPARE, *LOGICAL,
                      *BITWISE, *BESSEL, "logical_not", "bitwise_not", "iota", "full", "constant"}


def _float_unary(name):
    def rule(types):
        (x,) = types
        if not x.dtype.is_floating_point:
            raise ShapeError(f"{name} needs a floating-point operand, got {x}; cast it first")
        return [x]

    return rule


def _any_unary(types):
    return [types[0]]


def _signed_unary(name):
    def rule(types):
        (x,) = types
        if x.dtype == bool_:
            raise ShapeError(f"{name} is not defined on bool operands (torch refuses it too); use "
                             "logical_not to invert a mask, or cast first")
        return [x]

    return rule


def _arith_binary(name):
    def rule(types):
        dtype = same_dtype(name, types)
        if dtype == bool_:
            raise ShapeError(f"{name} is not defined on bool operands; cast them first")
        return [TensorType(same_shape(name, types), dtype)]

    return rule


def _float_binary(name):
    def rule(types):
        dtype = same_dtype(name, types)
        if not dtype.is_floating_point:
            raise ShapeError(f"{name} needs floating-point operands, got {types[0]}; cast them "
                             "first")
        return [TensorType(same_shape(name, types), dtype)]

    return rule


def _compare(name):
    def rule(types):
        same_dtype(name, types)
        return [TensorType(same_shape(name, types), bool_)]

    return rule


def _logical(name):
    def rule(types):
        if any(t.dtype != bool_ for t in types):
            raise ShapeError(f"{name} takes bool operands, got {', '.join(map(str, types))}")
        return [TensorType(same_shape(name, types), bool_)]

    return rule


def _bitwise(name):
    def rule(types):
        dtype = same_dtype(name, types)
        if dtype.is_floating_point:
            raise ShapeError(f"{name} takes integer or bool operands, got {types[0]}")
        return [TensorType(same_shape(name, types), dtype)]

    return rule


for _n in FLOAT_UNARY:
    declare(_n, "elementwise", 1, differentiable=_n not in NON_DIFFERENTIABLE)(_float_unary(_n))
for _n in ANY_UNARY:
    declare(_n, "elementwise", 1, differentiable=_n not in NON_DIFFERENTIABLE)(
        _signed_unary(_n) if _n in ("neg", "abs") else _any_unary)
for _n in ARITH_BINARY:
    declare(_n, "elementwise", 2, differentiable=_n not in NON_DIFFERENTIABLE)(_arith_binary(_n))
for _n in FLOAT_BINARY:
    declare(_n, "elementwise", 2)(_float_binary(_n))
for _n in COMPARE:
    declare(_n, "elementwise", 2, differentiable=False)(_compare(_n))
for _n in LOGICAL:
    declare(_n, "elementwise", 2, differentiable=False)(_logical(_n))
for _n in BITWISE:
    declare(_n, "elementwise", 2, differentiable=False)(_bitwise(_n))


@declare("logical_not", "elementwise", 1, differentiable=False)
def _logical_not(types):
    return _logical("logical_not")(types)


@declare("bitwise_not", "elementwise", 1, differentiable=False)
def _bitwise_not(types):
    return _bitwise("bitwise_not")(types)


@declare("shift_right_logical", "elementwise", 2, differentiable=False)
def _shift_right_logical(types):
    return _bitwise("shift_right_logical")(types)


@declare("polygamma", "elementwise", 1, {"n": "int"})
def _polygamma(types, n):
    """The n-th derivative of digamma (n >= 1; n = 0 is the digamma primitive)."""
    if n < 1:
        raise ShapeError(f"polygamma: n must be at least 1 (use digamma for n = 0), got {n}")
    return _float_unary("polygamma")(types)


# torch.special's classical orthogonal polynomials (no gradient, as in torch)
POLYNOMIALS = ("chebyshev_t", "chebyshev_u", "chebyshev_v", "chebyshev_w", "shifted_chebyshev_t",
               "shifted_chebyshev_u", "shifted_chebyshev_v", "shifted_chebyshev_w", "hermite_h",
               "hermite_he", "laguerre_l", "legendre_p")


@declare("orthogonal_polynomial", "elementwise", 2, {"kind": "str"}, differentiable=False)
def _orthogonal_polynomial(types, kind):
    """orthogonal_polynomial(x, n): the polynomial ``kind`` of degree n (truncated to an integer)
    at x, elementwise."""
    if kind not in POLYNOMIALS:
        raise ShapeError(f"orthogonal_polynomial: unknown kind {kind!r} (kinds: "
                         f"{', '.join(POLYNOMIALS)})")
    return _float_binary("orthogonal_polynomial")(types)


@declare("select", "elementwise", 3)
def _select(types):
    """select(pred, on_true, on_false): torch.where."""
    pred, a, b = types
    if pred.dtype != bool_:
        raise ShapeError(f"select: the predicate must be bool, got {pred}")
    dtype = same_dtype("select", [a, b])
    return [TensorType(same_shape("select", types), dtype)]


@declare("cast", "elementwise", 1, {"dtype": "dtype"})
def _cast(types, dtype):
    return [TensorType(types[0].shape, dtype)]


@declare("bitcast", "elementwise", 1, {"dtype": "dtype"}, differentiable=False)
def _bitcast(types, dtype):
    if dtype.bits != types[0].dtype.bits:
        raise ShapeError(f"bitcast needs equal widths, got {types[0].dtype} to {dtype}")
    return [TensorType(types[0].shape, dtype)]


@declare("iota", "elementwise", 0, {"shape": "shape", "dim": "int", "dtype": "dtype"},
         differentiable=False)
def _iota(types, shape, dim, dtype):
    """Values 0, 1, ... along ``dim``, broadcast over the other dims."""
    if not 0 <= dim < len(shape):
        raise ShapeError(f"iota: dim {dim} out of range for shape {list(shape)}")
    return [TensorType(tuple(shape), dtype)]


@declare("full", "elementwise", 0, {"shape": "shape", "value": "float", "dtype": "dtype"},
         differentiable=False)
def _full(types, shape, value, dtype):
    return [TensorType(tuple(shape), dtype)]


def literal_shape(value) -> tuple[int, ...]:
    """The shape of a nested list of numbers; raises ShapeError when it is ragged."""
    shape = []
    probe = value
    while isinstance(probe, (list, tuple)):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]

    def check(v, depth):
        if depth == len(shape):
            if not isinstance(v, (bool, int, float)):
                raise ShapeError(f"constant: {v!r} is not a number")
        elif not isinstance(v, (list, tuple)) or len(v) != shape[depth]:
            raise ShapeError(f"constant: ragged nested list, expected shape {shape}")
        else:
            for x in v:
                check(x, depth + 1)

    check(value, 0)
    return tuple(shape)


@declare("constant", "elementwise", 0, {"value": "literal", "dtype": "dtype"},
         differentiable=False)
def _constant(types, value, dtype):
    """An array written out in the IR (nested lists), for small literals made inside a trace."""
    return [TensorType(literal_shape(value), dtype)]
