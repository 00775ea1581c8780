"""Activation functions (torch.nn.functional), written in primitives with as few ops as the
gradient allows.

Piecewise functions use ``select`` rather than maximum/minimum: its gradient is exact at the
kinks (PyTorch's relu has gradient 0 at 0, maximum would split it) and costs three ops instead of
ten. Branches that could overflow (exp of a large input) are computed on a clamped input, so the
discarded branch never sends inf * 0 = nan into the gradient.
"""

from __future__ import annotations

import math
import warnings

import gcomp
from gcomp import Tensor
from gcomp.core import prims as P
from gcomp.frontend.autocast import lower_precision

from ._common import NNValueError, expand, full, scale

__all__ = ["relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu", "celu",
           "gelu", "silu", "mish", "sigmoid", "tanh", "hardtanh", "hardtanh_", "hardsigmoid",
           "hardswish", "softplus", "softsign", "tanhshrink", "logsigmoid", "softmax",
           "softmin", "log_softmax", "threshold", "glu", "prelu", "softshrink", "hardshrink",
           "rrelu", "rrelu_", "gumbel_softmax"]


def _inplace(x: Tensor, out: Tensor, inplace: bool) -> Tensor:
    """PyTorch's inplace=True: write the result into the input tensor and return it."""
    return x.copy_(out) if inplace else out


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    zero = full(input, 0)
    return _inplace(input, P.select(P.gt(input, zero), input, zero), inplace)


def relu_(input: Tensor) -> Tensor:
    return relu(input, inplace=True)


def _clamp_select(x: Tensor, lo, hi) -> Tensor:
    """clamp with PyTorch's hardtanh gradient: 0 at and beyond the bounds."""
    lo_t, hi_t = full(x, lo), full(x, hi)
    return P.select(P.le(x, lo_t), lo_t, P.select(P.ge(x, hi_t), hi_t, x))


def hardtanh(input: Tensor, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    if min_val > max_val:
        raise NNValueError("min_val cannot be greater than max_val")
    return _inplace(input, _clamp_select(input, min_val, max_val), inplace)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    return hardtanh(input, min_val, max_val, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    out = P.select(P.gt(input, full(input, 0)), input, scale(input, negative_slope))
    return _inplace(input, out, inplace)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    return leaky_relu(input, negative_slope, inplace=True)


def _exp_branch(x: Tensor, alpha: float, inv_scale: float = 1.0):
    """(x > 0, alpha * expm1(min(x, 0) * inv_scale)): the negative branch of elu and celu."""
    zero = full(x, 0)
    pos = P.gt(x, zero)
    neg = scale(P.select(pos, zero, x), inv_scale)
    return pos, scale(P.expm1(neg), alpha)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    pos, negative = _exp_branch(input, alpha)
    return _inplace(input, P.select(pos, input, negative), inplace)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    return elu(input, alpha, inplace=True)


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    alpha, lam = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    pos, negative = _exp_branch(input, alpha)
    return _inplace(input, scale(P.select(pos, input, negative), lam), inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    pos, negative = _exp_branch(input, alpha, 1.0 / alpha)
    return _inplace(input, P.select(pos, input, negative), inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    half = full(input, 0.5)
    if approximate == "none":
        cdf = P.add(half, P.mul(half, P.erf(scale(input, math.sqrt(0.5)))))
    elif approximate == "tanh":
        cube = P.mul(P.mul(input, input), input)
        inner = scale(P.add(input, scale(cube, 0.044715)), math.sqrt(2.0 / math.pi))
        cdf = P.add(half, P.mul(half, P.tanh(inner)))
    else:
        raise NNValueError(f"approximate argument must be either none or tanh, got "
                           f"{approximate!r}")
    return P.mul(input, cdf)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, P.mul(input, P.logistic(input)), inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    return _inplace(input, P.mul(input, P.tanh(softplus(input))), inplace)


def sigmoid(input: Tensor) -> Tensor:
    return gcomp.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return gcomp.tanh(input)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    out = P.mul(_clamp_select(P.add(input, full(input, 3.0)), 0.0, 6.0), full(input, 1.0 / 6))
    return _inplace(input, out, inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    gate = _clamp_select(P.add(input, full(input, 3.0)), 0.0, 6.0)
    return _inplace(input, P.mul(P.mul(input, gate), full(input, 1.0 / 6)), inplace)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch)."""
    bx = scale(input, beta)
    limit = full(input, threshold)
    linear = P.gt(bx, limit)
    soft = P.log1p(P.exp(P.select(linear, limit, bx)))
    return P.select(linear, input, scale(soft, 1.0 / beta))


def _softplus_neg(x: Tensor) -> Tensor:
    """softplus(-x) = max(-x, 0) + log1p(exp(-|x|)), with exact gradients at 0."""
    zero = full(x, 0)
    pos = P.gt(x, zero)
    nx = P.neg(x)
    neg_abs = P.select(pos, nx, x)
    return P.add(P.select(pos, zero, nx), P.log1p(P.exp(neg_abs)))


def logsigmoid(input: Tensor) -> Tensor:
    return P.neg(_softplus_neg(input))


def softsign(input: Tensor) -> Tensor:
    return P.div(input, P.add(full(input, 1.0), P.abs(input)))


def tanhshrink(input: Tensor) -> Tensor:
    return P.sub(input, P.tanh(input))


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    out = P.select(P.gt(input, full(input, threshold)), input, full(input, value))
    return _inplace(input, out, inplace)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    if input.ndim == 0:
        raise NNValueError("glu does not support scalars because halving size must be even")
    a, b = gcomp.chunk(input, 2, dim)
    if a.shape != b.shape:
        raise NNValueError(f"Halving dimension must be even, but dimension {dim % input.ndim} "
                           f"is size {input.shape[dim]}")
    return P.mul(a, P.logistic(b))


@lower_precision
def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x > 0, else weight * x; weight has one entry or one per channel (dim 1)."""
    if weight.numel() == 1:
        w = expand(P.reshape(weight, shape=()), input._type.shape, ())
    else:
        w = expand(weight, input._type.shape, (1 if input.ndim > 1 else 0,))
    return P.select(P.gt(input, full(input, 0)), input, P.mul(w, input))


# -- softmax family ------------------------------------------------------------------------------
def _softmax_dim(name: str, ndim: int, dim):
    if dim is not None:
        return dim % max(ndim, 1)
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to "
                  "include dim=X as an argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _shifted(x: Tensor, d: int) -> Tensor:
    """x minus its max over dim d (the max carries no gradient; it cancels out)."""
    with gcomp.no_grad():
        m = P.reduce_max(x.detach(), axes=(d,), keepdims=True)
    return P.sub(x, expand(m, x._type.shape, range(x.ndim)))


def _prepare(input: Tensor, dtype):
    if dtype is not None:
        input = input.to(dtype)
    elif not input.dtype.is_floating_point:
        input = input.to(gcomp.float32)
    return input


def softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    x = _prepare(input, dtype)
    if x.ndim == 0:
        return full(x, 1.0)
    d = _softmax_dim("softmax", x.ndim, dim)
    e = P.exp(_shifted(x, d))
    return P.div(e, expand(P.reduce_sum(e, axes=(d,), keepdims=True), e._type.shape,
                           range(e.ndim)))


def softmin(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    x = _prepare(input, dtype)
    return softmax(P.neg(x), _softmax_dim("softmin", x.ndim, dim))


def log_softmax(input: Tensor, dim=None, _stacklevel: int = 3, dtype=None) -> Tensor:
    x = _prepare(input, dtype)
    if x.ndim == 0:
        return full(x, 0.0)
    d = _softmax_dim("log_softmax", x.ndim, dim)
    s = _shifted(x, d)
    lse = P.log(P.reduce_sum(P.exp(s), axes=(d,), keepdims=True))
    return P.sub(s, expand(lse, s._type.shape, range(s.ndim)))


# -- shrinkage, randomized relu, gumbel softmax ---------------------------------------------------
def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, 0 between."""
    if lambd < 0:
        raise NNValueError(f"lambda must be greater or equal to 0, but found to be {lambd}.")
    zero = full(input, 0)
    lo, hi = full(input, -lambd), full(input, lambd)
    return P.select(P.gt(input, hi), P.sub(input, hi),
                    P.select(P.lt(input, lo), P.sub(input, lo), zero))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where |x| > lambd, else 0."""
    keep = P.logical_or(P.gt(input, full(input, lambd)), P.lt(input, full(input, -lambd)))
    return P.select(keep, input, full(input, 0))


def rrelu(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Training: x * a where x <= 0, a ~ U(lower, upper) per element from gcomp's generator.
    Eval: leaky_relu with the mean slope (lower + upper) / 2, as torch."""
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    u = gcomp.rand(*input.shape, dtype=input.dtype)
    slope = P.add(scale(u, upper - lower), full(input, lower))
    out = P.select(P.le(input, full(input, 0)), P.mul(input, slope), input)
    return _inplace(input, out, inplace)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    return rrelu(input, lower, upper, training, inplace=True)


def gumbel_softmax(logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10,
                   dim: int = -1) -> Tensor:
    """softmax((logits + g) / tau) with g ~ Gumbel(0, 1) drawn from gcomp's generator; hard=True
    returns the one-hot argmax with the soft sample's gradient (straight-through)."""
    u = gcomp.rand(*logits.shape, dtype=logits.dtype)
    tiny = full(u, 1e-30 if logits.dtype == gcomp.float64 else 1e-37)
    gumbels = P.neg(P.log(P.neg(P.log(P.maximum(u, tiny)))))
    y_soft = softmax(scale(P.add(logits, gumbels), 1.0 / tau), dim)
    if not hard:
        return y_soft
    d = dim % max(logits.ndim, 1)
    with gcomp.no_grad():
        index = y_soft.detach().argmax(d)
        y_hard = gcomp.nn.functional.one_hot(index, logits.shape[d]).to(logits.dtype)
        if d != logits.ndim - 1:
            y_hard = y_hard.permute(*range(d), logits.ndim - 1, *range(d, logits.ndim - 1))
    return P.add(P.sub(y_hard, y_soft.detach()), y_soft)
