"""PyTorch's math functions over the primitives: promotion, broadcasting and scalars live here,
once, so every primitive can stay lax-like (operands of one shape and dtype)."""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from ..core.dispatch import Mode, bind, user_error
from ..ir import types as T
from ..ir.errors import GcompError, ShapeError
from .autocast import lower_precision
from .tensor import Tensor, _dim

Scalar = (bool, int, float)


def _scalar(x):
    if isinstance(x, Scalar):
        return x
    if isinstance(x, np.generic):
        return x.item()
    return None


def _operand_info(x):
    if isinstance(x, Tensor):
        return (x._type.dtype, len(x._type.shape))
    s = _scalar(x)
    if s is None:
        raise user_error(GcompError, f"expected a Tensor or a number, got {type(x).__name__}")
    return s


# Note [Scalars in eager code]
# ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
# A Python number in an eager op (``x * lr``) becomes a ``full`` node whose value is an
# attribute, and eager execution jits each primitive once per attribute set: a baked constant is
# the fastest call, but every new value costs a compile (about 30-50 ms on CPU). Code whose
# numbers change every step (a decaying learning rate, an annealed temperature, ``1 / len(batch)``)
# would compile every step. So, like torch.compile's automatic dynamic shapes, the first
# ``_BAKED`` values of each (shape, dtype) are baked, and after that the value is passed to a
# jitted ``full`` rule as a runtime argument (one compile per shape and dtype). Traced code is
# unaffected: there a ``full`` node is a constant of the graph, folded or not by the passes.
_BAKED = 4
_SEEN: dict = {}  # (shape, dtype) -> values baked so far
_DYNAMIC: dict = {}  # (shape, dtype) -> jitted full with the value as an argument


def full(shape, value, dtype) -> Tensor:
    if dtype.is_floating_point:
        value = float(value)
    elif dtype == T.bool_:
        value = int(bool(value))
    else:
        value = int(value)
    shape = tuple(shape)
    if len(Mode.stack) == 1:
        key = (shape, dtype)
        seen = _SEEN.get(key)
        if seen is None:
            seen = _SEEN[key] = set() if len(_SEEN) < 10_000 else None
        if seen is not None and value not in seen:
            if len(seen) >= _BAKED:
                out = _full_dynamic(key, value)
                out._number = True
                return out
            seen.add(value)
        out = bind("full", shape=shape, value=value, dtype=dtype)
        out._number = True  # kept on the tape (Note [Freeing the graph] in core/autograd.py)
        return out
    return bind("full", shape=shape, value=value, dtype=dtype)


def _full_dynamic(key, value) -> Tensor:
    """``full`` with its value as a jit argument (Note [Scalars in eager code])."""
    import jax

    from ..core.tensor import Storage
    from ..lowering import rule_for, to_jax_dtype

    shape, dtype = key
    fn = _DYNAMIC.get(key)
    if fn is None:
        rule = rule_for("full")
        fn = _DYNAMIC[key] = jax.jit(lambda v: rule(shape=shape, value=v, dtype=dtype))
    try:
        arg = np.asarray(value, dtype=to_jax_dtype(dtype))
    except OverflowError:
        return bind("full", shape=shape, value=value, dtype=dtype)  # an error names the line
    return Tensor(Storage(fn(arg)), T.TensorType(shape, dtype))


def broadcast_shapes(*shapes) -> tuple[int, ...]:
    """PyTorch's broadcasting of shapes; an error names both shapes and the user's line."""
    try:
        return T.broadcast_shapes(*shapes)
    except ShapeError as e:
        raise user_error(ShapeError, str(e)) from None


def cast(x: Tensor, dtype) -> Tensor:
    return x if x._type.dtype == dtype else bind("cast", x, dtype=dtype)


def broadcast_to(x: Tensor, shape) -> Tensor:
    shape = tuple(shape)
    if x._type.shape == shape:
        return x
    nd = len(shape)
    if x.ndim > nd:
        raise user_error(GcompError, f"cannot broadcast {list(x.shape)} to {list(shape)}")
    if broadcast_shapes(x._type.shape, shape) != shape:  # an error names both shapes
        raise user_error(GcompError, f"cannot broadcast {list(x.shape)} to {list(shape)}")
    return bind("broadcast", x, shape=shape, dims=tuple(range(nd - x.ndim, nd)))


def _prep(x, dtype, shape):
    if isinstance(x, Tensor):
        return broadcast_to(cast(x, dtype), shape)
    return full(shape, _scalar(x), dtype)


def _shape_of(x):
    return x._type.shape if isinstance(x, Tensor) else ()


def promote(*xs, dtype=None):
    """Cast and broadcast operands to their common PyTorch dtype and shape."""
    dtype = dtype or T.result_type(*[_operand_info(x) for x in xs])
    shape = broadcast_shapes(*[_shape_of(x) for x in xs])
    return [_prep(x, dtype, shape) for x in xs]


def _binary(op, a, b, dtype=None):
    if (type(a) is Tensor and type(b) is Tensor and a._type == b._type and dtype is None):
        return bind(op, a, b)
    x, y = promote(a, b, dtype=dtype)
    return bind(op, x, y)


def _float_dtype(*xs):
    dt = T.result_type(*[_operand_info(x) for x in xs])
    return dt if dt.is_floating_point else T.DEFAULT_FLOAT


def _unary_float(op, x):
    x = as_tensor(x)
    return bind(op, cast(x, _float_dtype(x)))


def as_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    from .creation import tensor

    return tensor(x)


# -- arithmetic ------------------------------------------------------------------------------
def add(a, b, *, alpha=1):
    if alpha != 1:
        b = mul(b, alpha)
    if _is_bool(a) and _is_bool(b):
        return _binary("logical_or", a, b)  # torch: True + True is True
    return _binary("add", a, b)


def sub(a, b, *, alpha=1):
    if alpha != 1:
        b = mul(b, alpha)
    if _is_bool(a) or _is_bool(b):
        raise user_error(GcompError, "subtraction (the - operator) with a bool tensor or a bool "
                         "is not supported, as in torch; to invert a mask use ~ or logical_not, "
                         "or cast the bool tensor first")
    return _binary("sub", a, b)


def _is_bool(x):
    return (isinstance(x, Tensor) and x.dtype == T.bool_) or isinstance(x, bool)


def mul(a, b):
    if _is_bool(a) and _is_bool(b):
        return _binary("logical_and", a, b)
    return _binary("mul", a, b)


def div(a, b, *, rounding_mode=None):
    if rounding_mode is None:
        return _binary("div", a, b, dtype=_float_dtype(a, b))
    if rounding_mode == "floor":
        return floor_divide(a, b)
    if rounding_mode == "trunc":
        dt = T.result_type(_operand_info(a), _operand_info(b))
        if dt.is_floating_point:
            return trunc(_binary("div", a, b))
        return _binary("div", a, b)
    raise user_error(GcompError, f"div: rounding_mode must be None, 'trunc' or 'floor', got "
                     f"{rounding_mode!r}")


true_divide = divide = div


def floor_divide(a, b):
    return _binary("floor_divide", a, b)


def remainder(a, b):
    return _binary("remainder", a, b)


def fmod(a, b):
    return sub(a, mul(div(a, b, rounding_mode="trunc"), b))


def pow(a, b):  # noqa: A001
    if _is_bool(a) and _is_bool(b):
        if isinstance(a, Tensor) and isinstance(b, bool):  # torch: x ** True is x, ** False is 1
            return _binary("logical_or", a, not b)
        raise user_error(GcompError, "pow is not implemented for bool tensors, as in torch; cast "
                         "them first")
    if (isinstance(a, Tensor) and not a.dtype.is_floating_point and isinstance(b, int)
            and not isinstance(b, bool) and b < 0):
        raise user_error(GcompError, f"integers to negative integer powers are not allowed ("
                         f"{a.dtype.name} tensor ** {b}); use a float tensor or a float exponent")
    if isinstance(a, Tensor) and a.dtype.is_floating_point and _scalar(b) is not None:
        if b == 2:
            return bind("mul", a, a)  # what torch computes for x ** 2, with a simpler gradient
    return _binary("pow", a, b)


def atan2(a, b):
    return _binary("atan2", a, b, dtype=_float_dtype(a, b))


def maximum(a, b):
    return _binary("maximum", a, b)


def minimum(a, b):
    return _binary("minimum", a, b)


def neg(x):
    x = as_tensor(x)
    if x.dtype == T.bool_:
        raise user_error(GcompError, "negation of a bool tensor; use ~ or logical_not")
    return bind("neg", x)


negative = neg


def abs(x):  # noqa: A001
    x = as_tensor(x)
    return x if x.dtype == T.bool_ else bind("abs", x)


def sign(x):
    x = as_tensor(x)
    return x if x.dtype == T.bool_ else bind("sign", x)


def _rounding(op):
    def f(x):
        x = as_tensor(x)
        return bind(op, x) if x.dtype.is_floating_point else x

    f.__name__ = op
    return f


floor, ceil, round = _rounding("floor"), _rounding("ceil"), _rounding("round")  # noqa: A001


def trunc(x):
    x = as_tensor(x)
    if not x.dtype.is_floating_point:
        return x
    return where(lt(x, 0), ceil(x), floor(x))


def _make_float_unary(op, name):
    def f(x):
        return _unary_float(op, x)

    f.__name__ = name
    return f


exp = _make_float_unary("exp", "exp")
expm1 = _make_float_unary("expm1", "expm1")
log = _make_float_unary("log", "log")
log1p = _make_float_unary("log1p", "log1p")
sqrt = _make_float_unary("sqrt", "sqrt")
rsqrt = _make_float_unary("rsqrt", "rsqrt")
sin = _make_float_unary("sin", "sin")
cos = _make_float_unary("cos", "cos")
tan = _make_float_unary("tan", "tan")
tanh = _make_float_unary("tanh", "tanh")
sigmoid = _make_float_unary("logistic", "sigmoid")
erf = _make_float_unary("erf", "erf")
erfinv = _make_float_unary("erf_inv", "erfinv")


def log2(x):
    return div(log(x), math.log(2.0))


def log10(x):
    return div(log(x), math.log(10.0))


def exp2(x):
    return exp(mul(x, math.log(2.0)))


def reciprocal(x):
    return div(1.0, x)


def square(x):
    return mul(x, x)


def relu(x):
    x = as_tensor(x)
    return maximum(x, full((), 0, x.dtype)) if x.ndim == 0 else bind(
        "maximum", x, full(x._type.shape, 0, x.dtype))


def clamp(x, min=None, max=None):  # noqa: A002
    x = as_tensor(x)
    if min is None and max is None:
        raise user_error(GcompError, "clamp: at least one of min and max must be given")
    if min is not None:
        x = _clamp_one(x, min, "maximum")
    if max is not None:
        x = _clamp_one(x, max, "minimum")
    return x


def _clamp_one(x, bound, op):
    # torch.clamp passes the gradient where the bound is not active (ties go to x)
    if isinstance(bound, Tensor):
        y = _binary(op, x, bound)
        keep = ge(x, bound) if op == "maximum" else le(x, bound)
        return where(keep, x, y)
    b = full(x._type.shape, bound, T.result_type(_operand_info(x), _scalar(bound)))
    x2 = cast(x, b.dtype)
    keep = bind("ge" if op == "maximum" else "le", x2, b)
    if x2.dtype.is_floating_point:
        keep = bind("logical_or", keep, bind("ne", x2, x2))  # NaN stays NaN, as in torch
    return bind("select", keep, x2, b)


clip = clamp


def where(cond, a=None, b=None):
    if a is None and b is None:
        from .shape_ops import nonzero

        return nonzero(cond, as_tuple=True)
    cond = as_tensor(cond)
    if cond.dtype != T.bool_:
        cond = ne(cond, 0)
    x, y = promote(a, b)
    shape = broadcast_shapes(cond._type.shape, x._type.shape)
    return bind("select", broadcast_to(cond, shape), broadcast_to(x, shape),
                broadcast_to(y, shape))


def _compare(op):
    def f(a, b):
        return _binary(op, a, b)

    f.__name__ = op
    return f


eq, ne, lt, le, gt, ge = (_compare(o) for o in ("eq", "ne", "lt", "le", "gt", "ge"))
greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne


def equal(a, b) -> bool:
    return a.shape == b.shape and bool(eq(a, b).all())


def allclose(a, b, rtol=1e-5, atol=1e-8) -> bool:
    return bool(isclose(a, b, rtol, atol).all())


def isclose(a, b, rtol=1e-5, atol=1e-8):
    return le(abs(sub(a, b)), add(atol, mul(rtol, abs(b))))


def _to_bool(x):
    x = as_tensor(x)
    return x if x.dtype == T.bool_ else ne(x, 0)


def logical_and(a, b):
    return bind("logical_and", *promote(_to_bool(a), _to_bool(b)))


def logical_or(a, b):
    return bind("logical_or", *promote(_to_bool(a), _to_bool(b)))


def logical_xor(a, b):
    return bind("logical_xor", *promote(_to_bool(a), _to_bool(b)))


def logical_not(x):
    return bind("logical_not", _to_bool(x))


def _bitwise(op, logical):
    def f(a, b):
        x, y = promote(a, b)
        if x.dtype.is_floating_point:
            raise user_error(GcompError, f"{op} is only defined for integer and bool tensors")
        return bind(logical if x.dtype == T.bool_ else op, x, y)

    return f


bitwise_and = _bitwise("bitwise_and", "logical_and")
bitwise_or = _bitwise("bitwise_or", "logical_or")
bitwise_xor = _bitwise("bitwise_xor", "logical_xor")


def bitwise_not(x):
    x = as_tensor(x)
    if x.dtype.is_floating_point:
        raise user_error(GcompError, "~ is only defined for integer and bool tensors")
    return bind("logical_not" if x.dtype == T.bool_ else "bitwise_not", x)


def isnan(x):
    return ne(x, x)


def isinf(x):
    return eq(abs(x), math.inf)


def isfinite(x):
    x = as_tensor(x)
    if not x.dtype.is_floating_point:
        return full(x._type.shape, True, T.bool_)
    return logical_not(logical_or(isnan(x), isinf(x)))


def lerp(a, b, weight):
    return add(a, mul(weight, sub(b, a)))


# -- reductions ------------------------------------------------------------------------------
def _axes(x: Tensor, dim) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(x.ndim))
    if isinstance(dim, (list, tuple)):
        return tuple(sorted({_dim(d, x.ndim) for d in dim})) if x.ndim else ()
    return (_dim(dim, x.ndim),) if x.ndim else ()


def sum(x, dim=None, keepdim=False, *, dtype=None):  # noqa: A001
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    elif not x.dtype.is_floating_point:
        x = cast(x, T.int64)
    return bind("reduce_sum", x, axes=_axes(x, dim), keepdims=keepdim)


def mean(x, dim=None, keepdim=False, *, dtype=None):
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    if not x.dtype.is_floating_point:
        raise user_error(GcompError, f"mean(): could not infer output dtype. Input dtype must be "
                         f"either a floating point or complex dtype. Got: {x.dtype.name}")
    axes = _axes(x, dim)
    n = 1
    for a in axes:
        n *= x._type.shape[a]
    s = bind("reduce_sum", x, axes=axes, keepdims=keepdim)
    return div(s, float(n) if n else math.nan)


def prod(x, dim=None, keepdim=False, *, dtype=None):
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    elif not x.dtype.is_floating_point:
        x = cast(x, T.int64)
    return bind("reduce_prod", x, axes=_axes(x, dim), keepdims=keepdim)


def amax(x, dim=None, keepdim=False):
    x = as_tensor(x)
    return bind("reduce_max", x, axes=_axes(x, dim if dim != () else None), keepdims=keepdim)


def amin(x, dim=None, keepdim=False):
    x = as_tensor(x)
    return bind("reduce_min", x, axes=_axes(x, dim if dim != () else None), keepdims=keepdim)


MinMax = namedtuple("MinMax", ["values", "indices"])


def _minmax(name, x, dim, keepdim, other):
    if isinstance(dim, Tensor):  # torch.max(a, b)
        return maximum(x, dim) if name == "max" else minimum(x, dim)
    if other is not None:
        return maximum(x, other) if name == "max" else minimum(x, other)
    x = as_tensor(x)
    if dim is None:
        if x.numel() == 0:
            raise user_error(GcompError, f"{name}(): expected a non-empty tensor")
        return amax(x) if name == "max" else amin(x)
    values = amax(x, dim, keepdim) if name == "max" else amin(x, dim, keepdim)
    indices = argmax(x, dim, keepdim) if name == "max" else argmin(x, dim, keepdim)
    return MinMax(values, indices)


def max(x, dim=None, keepdim=False, *, other=None):  # noqa: A001
    return _minmax("max", x, dim, keepdim, other)


def min(x, dim=None, keepdim=False, *, other=None):  # noqa: A001
    return _minmax("min", x, dim, keepdim, other)


def _arg(op, x, dim, keepdim):
    x = as_tensor(x)
    if dim is None:
        from .shape_ops import reshape

        x = reshape(x, (-1,))
        return bind(op, x, axis=0, keepdims=False, dtype=T.int64)
    return bind(op, x, axis=_dim(dim, x.ndim), keepdims=keepdim, dtype=T.int64)


def argmax(x, dim=None, keepdim=False):
    return _arg("argmax", x, dim, keepdim)


def argmin(x, dim=None, keepdim=False):
    return _arg("argmin", x, dim, keepdim)


def var(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    x = as_tensor(x)
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    axes = _axes(x, dim)
    n = 1
    for a in axes:
        n *= x._type.shape[a]
    centered = sub(x, mean(x, axes, keepdim=True))
    ss = sum(mul(centered, centered), axes, keepdim)
    return div(ss, float(builtins.max(0, n - correction)) if n - correction > 0 else math.nan)


def std(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return sqrt(var(x, dim, unbiased, keepdim, correction=correction))


def all(x, dim=None, keepdim=False):  # noqa: A001
    x = _to_bool(x)
    return bind("reduce_min", x, axes=_axes(x, dim), keepdims=keepdim)


def any(x, dim=None, keepdim=False):  # noqa: A001
    x = _to_bool(x)
    return bind("reduce_max", x, axes=_axes(x, dim), keepdims=keepdim)


def logsumexp(x, dim, keepdim=False):
    x = as_tensor(x)
    if not x.dtype.is_floating_point:
        x = cast(x, T.DEFAULT_FLOAT)
    m = _stable_max(x, dim)
    s = log(sum(exp(sub(x, m)), dim, keepdim=True))
    out = add(s, m)
    if not keepdim:
        from .shape_ops import squeeze

        out = squeeze(out, _axes(x, dim))
    return out


def _stable_max(x, dim):
    """max over dim (kept), with no gradient, and 0 where it is infinite."""
    from .autograd import no_grad

    with no_grad():
        m = amax(x.detach(), dim, keepdim=True)
        m = where(isinf(m), 0.0, m)
    return m


def cumsum(x, dim, *, dtype=None):
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    elif not x.dtype.is_floating_point:
        x = cast(x, T.int64)
    return bind("cumsum", x, axis=_dim(dim, x.ndim))


def softmax(x, dim, dtype=None):
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    e = exp(sub(x, _stable_max(x, dim)))
    return div(e, sum(e, dim, keepdim=True))


def log_softmax(x, dim, dtype=None):
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    shifted = sub(x, _stable_max(x, dim))
    return sub(shifted, log(sum(exp(shifted), dim, keepdim=True)))


def norm(x, p=2, dim=None, keepdim=False):
    x = as_tensor(x)
    if p == 2 or p == "fro":
        return sqrt(sum(mul(x, x), dim, keepdim))
    if p == 1:
        return sum(abs(x), dim, keepdim)
    if p == math.inf:
        return amax(abs(x), dim, keepdim)
    return pow(sum(pow(abs(x), p), dim, keepdim), 1.0 / p)


# -- linear algebra --------------------------------------------------------------------------
@lower_precision
def matmul(a, b):
    """torch.matmul: 1-d vectors, 2-d matrices and broadcast batches of matrices."""
    return _matmul(a, b)


def _matmul(a, b):
    """matmul without autocast: dot and mv stay float32 under autocast, as in torch."""
    from .shape_ops import reshape, unsqueeze

    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise user_error(GcompError, "both arguments to matmul need to be at least 1D, but they "
                         f"are {a.ndim}D and {b.ndim}D")
    if a.dtype != b.dtype:
        raise user_error(GcompError, "matmul: both operands must have the same dtype, as in "
                         f"torch; got {a.dtype.name} and {b.dtype.name} (cast one first)")
    if a.ndim == 1 and b.ndim == 1:
        _check_k(a, b, a.shape[0], b.shape[0])
        return bind("dot_general", a, b, contract=((0, 0),))
    if a.ndim <= 2 and b.ndim <= 2:
        _check_k(a, b, a.shape[-1], b.shape[0])
        return bind("dot_general", a, b, contract=((a.ndim - 1, 0),))
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = unsqueeze(a, 0)
    if vb:
        b = unsqueeze(b, -1)
    _check_k(a, b, a.shape[-1], b.shape[-2])
    batch = broadcast_shapes(a._type.shape[:-2], b._type.shape[:-2])
    a = broadcast_to(a, batch + a._type.shape[-2:])
    b = broadcast_to(b, batch + b._type.shape[-2:])
    nb = len(batch)
    out = bind("dot_general", a, b, contract=((nb + 1, nb),), batch=tuple((i, i) for i in range(nb)))
    if va:
        out = reshape(out, batch + (out.shape[-1],))
    if vb:
        out = reshape(out, out._type.shape[:-1])
    return out


def _check_k(a, b, k1, k2):
    if k1 != k2:
        raise user_error(GcompError, f"mat1 and mat2 shapes cannot be multiplied "
                         f"({'x'.join(map(str, a.shape))} and {'x'.join(map(str, b.shape))})")


@lower_precision
def mm(a, b):
    if a.ndim != 2 or b.ndim != 2:
        raise user_error(GcompError, "mm: both arguments must be 2-D")
    return _matmul(a, b)


@lower_precision
def bmm(a, b):
    if a.ndim != 3 or b.ndim != 3:
        raise user_error(GcompError, "bmm: both arguments must be 3-D")
    if a.shape[0] != b.shape[0]:
        raise user_error(GcompError, f"bmm: batch sizes differ ({a.shape[0]} and {b.shape[0]})")
    return _matmul(a, b)


def dot(a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise user_error(GcompError, "1D tensors expected for dot")
    return _matmul(a, b)


def mv(a, b):
    return _matmul(a, b)


def outer(a, b):
    from .shape_ops import unsqueeze

    return mul(unsqueeze(a, 1), unsqueeze(b, 0))


@lower_precision
def einsum(equation: str, *operands):
    """torch.einsum, lowered to transposes, broadcasts, reductions and one dot_general a pair."""
    from .einsum import einsum as _einsum

    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    return _einsum(equation, [as_tensor(o) for o in operands])


multiply, subtract = mul, sub


# -- more of torch's elementwise math: inverse trig, special functions, NaN-aware helpers -------
# Composites of the primitives above except where a composite loses accuracy (asinh, erfc, the
# gamma family are primitives in ir/ops/elementwise.py).
asin = arcsin = _make_float_unary("asin", "asin")
acos = arccos = _make_float_unary("acos", "acos")
atan = arctan = _make_float_unary("atan", "atan")
sinh = _make_float_unary("sinh", "sinh")
cosh = _make_float_unary("cosh", "cosh")
asinh = arcsinh = _make_float_unary("asinh", "asinh")
acosh = arccosh = _make_float_unary("acosh", "acosh")
atanh = arctanh = _make_float_unary("atanh", "atanh")
erfc = _make_float_unary("erfc", "erfc")
lgamma = _make_float_unary("lgamma", "lgamma")
digamma = _make_float_unary("digamma", "digamma")
arctan2 = atan2
absolute = abs
sgn = sign  # real tensors: sgn is sign


def polygamma(n, x):
    """torch.polygamma(n, input): the n-th derivative of digamma."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise user_error(GcompError, f"polygamma(n, input): n must be a non-negative int, got "
                         f"{n!r}")
    if n == 0:
        return digamma(x)
    x = as_tensor(x)
    return bind("polygamma", cast(x, _float_dtype(x)), n=n)


def _need_float(name, *xs):
    for x in xs:
        if isinstance(x, Tensor) and not x.dtype.is_floating_point:
            raise user_error(GcompError, f"{name}: not implemented for {x.dtype.name} tensors "
                             "(as in torch); cast to a float dtype first, e.g. x.float()")


def _floats(*xs):
    """Operands promoted to one float dtype and broadcast to one shape."""
    return promote(*xs, dtype=_float_dtype(*xs))


def clamp_min(x, min):  # noqa: A002
    return clamp(x, min=min)


def clamp_max(x, max):  # noqa: A002
    return clamp(x, max=max)


def signbit(x):
    """Whether the sign bit is set: true for -0.0 and negative NaNs too."""
    x = as_tensor(x)
    if x.dtype == T.bool_:
        return full(x._type.shape, False, T.bool_)
    if not x.dtype.is_floating_point:
        return lt(x, 0)
    ints = {16: T.int16, 32: T.int32, 64: T.int64}[x.dtype.bits]
    return lt(bind("bitcast", x, dtype=ints), 0)


def frac(x):
    _need_float("frac", as_tensor(x))
    return sub(x, trunc(x))


def deg2rad(x):
    return mul(_as_float(x), math.pi / 180.0)


def rad2deg(x):
    return mul(_as_float(x), 180.0 / math.pi)


def _as_float(x):
    x = as_tensor(x)
    return cast(x, _float_dtype(x))


def copysign(a, b):
    """|a| with the sign (bit) of b; the gradient flows to a only, as in torch."""
    a, b = _floats(a, b)
    m = abs(a)
    return where(signbit(b), neg(m), m)


def addcmul(input, tensor1, tensor2, *, value=1):  # noqa: A002
    p = mul(tensor1, tensor2)
    return add(input, p if value == 1 else mul(p, value))


def addcdiv(input, tensor1, tensor2, *, value=1):  # noqa: A002
    if not _is_float_operand(tensor1) and not _is_float_operand(tensor2):
        raise user_error(GcompError, "Integer division with addcdiv is no longer supported (as in "
                         "torch); use input + value * tensor1 / tensor2, or cast tensor1 to float")
    q = div(tensor1, tensor2)
    return add(input, q if value == 1 else mul(q, value))


def _is_float_operand(x):
    return x.dtype.is_floating_point if isinstance(x, Tensor) else isinstance(x, float)


def xlogy(a, b):
    """a * log(b), 0 where a == 0 (unless b is NaN). The gradient is torch's: log(b) for a, also
    at a == 0, except where b <= 0 (0 there) or b = inf."""
    a, b = _floats(a, b)
    zero = logical_and(eq(a, 0), logical_or(le(b, 0), eq(b, math.inf)))  # 0 * log(b) is NaN
    safe_b = where(zero, 1.0, b)  # keeps log(0) = -inf out of the gradient of the masked branch
    return where(zero, 0.0, mul(a, log(safe_b)))


def _logaddexp(name, a, b, log1p_of_exp):
    _need_float(name, a, b)
    a, b = _floats(a, b)
    m = maximum(a, b)  # ties split the gradient: d/da = d/db = 1/2 at a == b, as torch
    d = sub(a, b)
    d = where(logical_and(isinf(a), eq(a, b)), 0.0, d)  # inf - inf
    return add(m, log1p_of_exp(neg(abs(d))))


def logaddexp(a, b):
    return _logaddexp("logaddexp", a, b, lambda t: log1p(exp(t)))


def logaddexp2(a, b):
    return _logaddexp("logaddexp2", a, b, lambda t: div(log1p(exp2(t)), math.log(2.0)))


def hypot(a, b):
    """sqrt(a^2 + b^2) without overflow or underflow in the squares (as std::hypot)."""
    _need_float("hypot", a, b)
    a, b = _floats(a, b)
    x, y = abs(a), abs(b)
    hi, lo = maximum(x, y), minimum(x, y)
    zero = eq(hi, 0)
    r = div(lo, where(zero, 1.0, hi))
    out = where(zero, 0.0, mul(hi, sqrt(add(mul(r, r), 1.0))))
    return where(logical_or(isinf(a), isinf(b)), math.inf, out)


def fmax(a, b):
    """maximum that ignores NaN (NaN only where both are); ties send the gradient to a."""
    a, b = promote(a, b)
    return where(logical_or(ge(a, b), isnan(b)), a, b)


def fmin(a, b):
    a, b = promote(a, b)
    return where(logical_or(le(a, b), isnan(b)), a, b)


def heaviside(input, values):  # noqa: A002
    x, v = as_tensor(input), as_tensor(values)
    if x.dtype != v.dtype:
        raise user_error(GcompError, "heaviside is not yet implemented for tensors with different "
                         f"dtypes ({x.dtype.name} and {v.dtype.name}, as in torch); cast one")
    x, v = promote(x, v)
    return where(eq(x, 0), v, cast(gt(x, 0), x.dtype))


def logit(x, eps=None):
    x = _as_float(x)
    if eps is not None:
        x = clamp(x, eps, 1.0 - eps)
    return log(div(x, sub(1.0, x)))


def sinc(x):
    """sin(pi x) / (pi x), 1 at 0."""
    x = _as_float(x)
    zero = eq(x, 0)
    px = mul(where(zero, 1.0, x), math.pi)
    return where(zero, 1.0, div(sin(px), px))


def float_power(a, b):
    """pow in float64, whatever the operands' dtypes."""
    a = cast(as_tensor(a), T.float64) if isinstance(a, Tensor) else float(_scalar(a))
    b = cast(b, T.float64) if isinstance(b, Tensor) else float(_scalar(b))
    if not isinstance(a, Tensor):
        a = full((), a, T.float64)
    return pow(a, b)


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN, +inf and -inf replaced by nan, posinf and neginf (default: the dtype's max and min).
    The gradient flows only where x is finite, as in torch."""
    x = as_tensor(x)
    if not x.dtype.is_floating_point:
        return _copy(x)
    from .dtype_info import finfo

    info = finfo(x.dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    out = where(eq(x, math.inf), full((), posinf, x.dtype), x)
    out = where(eq(x, -math.inf), full((), neginf, x.dtype), out)
    return where(isnan(x), full((), nan, x.dtype), out)


def _copy(x):
    return logical_or(x, False) if x.dtype == T.bool_ else add(x, full((), 0, x.dtype))


def isposinf(x):
    x = as_tensor(x)
    return eq(x, math.inf) if x.dtype.is_floating_point else full(x._type.shape, False, T.bool_)


def isneginf(x):
    x = as_tensor(x)
    return eq(x, -math.inf) if x.dtype.is_floating_point else full(x._type.shape, False, T.bool_)


def isreal(x):
    """True everywhere: gcomp has no complex dtypes."""
    x = as_tensor(x)
    return full(x._type.shape, True, T.bool_)


def is_floating_point(t) -> bool:
    return as_tensor(t).dtype.is_floating_point


def is_complex(t) -> bool:
    return False


def is_nonzero(t) -> bool:
    t = as_tensor(t)
    if t.numel() != 1:
        which = "no values" if t.numel() == 0 else "more than one value"
        raise user_error(GcompError, f"Boolean value of Tensor with {which} is ambiguous")
    return bool(t.item() != 0)


def nansum(x, dim=None, keepdim=False, *, dtype=None):
    x = as_tensor(x)
    if x.dtype.is_floating_point:
        x = where(isnan(x), 0.0, x)
    return sum(x, dim, keepdim, dtype=dtype)


def nanmean(x, dim=None, keepdim=False, *, dtype=None):
    x = as_tensor(x)
    if dtype is not None:
        x = cast(x, dtype)
    if not x.dtype.is_floating_point:
        raise user_error(GcompError, "nanmean(): expected input to have floating point dtype but "
                         f"got {x.dtype.name}; cast it first, e.g. x.float()")
    count = sum(cast(logical_not(isnan(x)), x.dtype), dim, keepdim)
    return div(nansum(x, dim, keepdim), count)


def count_nonzero(x, dim=None):
    return sum(ne(as_tensor(x), 0), dim)
