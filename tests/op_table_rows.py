"""The rows of the op table (test_op_table.py): for each primitive, operands, attributes and an
independent reference.

A row's ``make`` draws numpy operands from a generator; ``ref`` computes the expected result from
them with numpy, scipy.special or jax.random (called directly, not through gcomp); ``torch_fn`` is
the same math in torch, used as the reference where ``ref`` is None and for gradients. Operands of
differentiable rows are float64 and chosen away from kinks (abs at 0, ties of max, integers for
floor), except in rows named ``*_ties`` / ``*_zero*`` that pin down a convention and skip finite
differences (``fd=False``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
import torch
import torch.nn.functional as F

import gcomp
from gcomp.ir import OPS, ShapeError, TensorType, infer_types
from gcomp.lowering import from_jax_dtype


@dataclass(eq=False)
class Row:
    id: str
    op: str
    make: Callable[[np.random.Generator], list[np.ndarray]]
    attrs: dict
    ref: Callable | None = None  # numpy operands -> expected numpy result
    torch_fn: Callable | None = None  # torch tensors -> torch tensor, the same math
    wrt: tuple | None = None  # operands to differentiate; None: every float operand when the op
    #                           is differentiable and its result is a float
    fd: bool = True  # check the VJP against central finite differences
    eps: float = 1e-5  # the finite-difference step
    rtol: float = 1e-12  # eager vs reference
    grad_rtol: float = 1e-10  # VJP vs torch
    fd_rtol: float = 1e-6  # <J u, v> vs <u, J^T v>, relative to sum |J u * v|

    def __post_init__(self):
        if self.wrt is None:
            xs = self.make(np.random.default_rng(0))
            types = [TensorType(x.shape, from_jax_dtype(x.dtype)) for x in xs]
            out = infer_types(self.op, types, self.attrs)[0]
            diff = OPS[self.op].differentiable and out.dtype.is_floating_point
            self.wrt = tuple(i for i, x in enumerate(xs)
                             if diff and np.issubdtype(x.dtype, np.floating))

    def f32_ok(self) -> bool:
        """Whether the row has float64 operands and also type-checks with them as float32."""
        xs = self.make(np.random.default_rng(0))
        if not any(x.dtype == np.float64 for x in xs):
            return False
        types = [TensorType(x.shape, from_jax_dtype(np.float32 if x.dtype == np.float64
                                                   else x.dtype)) for x in xs]
        try:
            infer_types(self.op, types, self.attrs)
        except ShapeError:
            return False
        return True


def R(op, *makers, id=None, **kw):
    attrs = kw.pop("attrs", {})
    return Row(id or op, op, lambda r: [m(r) for m in makers], attrs, **kw)


# -- operand makers: rng -> array -----------------------------------------------------------
S = (3, 4)


def uniform(shape=S, lo=-2.0, hi=2.0, dtype=np.float64):
    return lambda r: r.uniform(lo, hi, shape).astype(dtype)


def away(shape=S, lo=0.2, hi=2.0):
    """Magnitudes in [lo, hi] with random signs: away from zero."""
    return lambda r: r.uniform(lo, hi, shape) * r.choice([-1.0, 1.0], shape)


def ints(shape=S, lo=-5, hi=5, dtype=np.int64):
    return lambda r: r.integers(lo, hi, shape).astype(dtype)


def nonzero_ints(shape=S, hi=5):
    return lambda r: r.integers(1, hi, shape) * r.choice([-1, 1], shape)


def bools(shape=S):
    return lambda r: r.random(shape) < 0.5


def small_floats(shape=S):
    """Values from a small set, so that ties and equal elements occur."""
    return lambda r: r.choice([-1.0, 0.0, 0.5, 1.0], shape)


def const(a):
    return lambda r: np.asarray(a)


def key(r):
    return r.integers(0, 2**32, 2, dtype=np.uint32)


def quotient_operands(r):
    """x = q y with frac(q) in [0.1, 0.9]: remainder and floor division away from their jumps."""
    y = away(S, 0.7, 2.0)(r)
    q = r.integers(-4, 4, S) + r.uniform(0.1, 0.9, S)
    return q * y


HALVES = [[-2.5, -1.5, -0.5, 0.5], [1.5, 2.5, 0.3, -0.7], [3.49, -3.51, 0.0, 7.5]]
WITH_ZEROS = [[-2.0, 0.0, 0.5, 1.5], [0.0, -0.25, 3.0, -0.0], [1e-300, -7.0, 0.0, 2.0]]


# -- references that need a few lines -----------------------------------------------------------
def trunc_div(x, y):
    return (np.sign(x) * np.sign(y) * (np.abs(x) // np.abs(y))).astype(x.dtype)


def int_pow(x, y):
    """x ** y for integers, negative y as 1 / x ** |y| truncated toward zero (as integer div)."""
    p = x ** np.abs(y)
    return np.where(y < 0, trunc_div(np.ones_like(p), p), p)


def torch_pad(x, low, high, interior, value):
    """lax.pad in torch: interior padding by strided assignment, then F.pad (negative crops)."""
    for d, it in enumerate(interior):
        if it and x.shape[d] > 1:
            shape = list(x.shape)
            shape[d] = x.shape[d] + (x.shape[d] - 1) * it
            z = torch.full(shape, value, dtype=x.dtype)
            idx = [slice(None)] * x.dim()
            idx[d] = slice(None, None, it + 1)
            z[tuple(idx)] = x
            x = z
    pads = [p for lo, hi in zip(reversed(low), reversed(high), strict=True) for p in (lo, hi)]
    return F.pad(x, pads, value=value)


def numpy_scatter_add(x, idx, upd, axis):
    out = x.copy()
    np.add.at(out, (slice(None),) * axis + (idx,), upd)
    return out


def torch_window_sum_dilated(x):
    """reduce_window sum over the last dim of x (2, 9): window 3, stride 2, padding (1, 2),
    base dilation 2, window dilation 2, as a ones convolution of the zero-dilated input."""
    xd = torch.zeros(x.shape[0], 2 * x.shape[1] - 1, dtype=x.dtype)
    xd[:, ::2] = x
    xd = F.pad(xd, (1, 2))
    return F.conv1d(xd[:, None], torch.ones(1, 1, 3, dtype=x.dtype), stride=2, dilation=2)[:, 0]


def torch_max_pool_grad(source, operand, kernel=3, stride=2, padding=1):
    """The input gradient of max_pool2d (by default kernel 3, stride 2, padding 1),
    differentiable in source."""
    x = operand.detach().requires_grad_()
    with torch.enable_grad():
        y = F.max_pool2d(x, kernel, stride, padding)
        return torch.autograd.grad(y, x, source, create_graph=True)[0]


def tiled_pool(kernel, padding):
    """Attributes of a max_pool2d whose windows tile the image (stride == kernel), which lowers
    as a reshape (Note [Max pooling's gradient as a reshape])."""
    return {"window": (1, 1, kernel, kernel), "stride": (1, 1, kernel, kernel),
            "padding": ((0, 0),) * 2 + ((padding, padding),) * 2}


def transposed_weight(w, groups):
    """The conv_transpose weight (in, out/groups, *k) doing what convolution with lhs_dilation
    does with w (out, in/groups, *k): flipped, in and out swapped within each group."""
    o, i = w.shape[:2]
    w = w.reshape(groups, o // groups, i, *w.shape[2:]).transpose(1, 2)
    return w.reshape(groups * i, o // groups, *w.shape[3:]).flip(*range(2, w.dim() - 1))


def torch_batch_grouped_conv(x, w, groups=2):
    """feature-grouped by batch: batch group g of x meets output-channel group g of w."""
    nb, no = x.shape[0] // groups, w.shape[0] // groups
    return torch.cat([F.conv2d(x[g * nb:(g + 1) * nb], w[g * no:(g + 1) * no])
                      for g in range(groups)], dim=1)


NP_COMPARE = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
              "gt": np.greater, "ge": np.greater_equal}
POOL2D = {"window": (1, 1, 3, 3), "stride": (1, 1, 2, 2), "padding": ((0, 0),) * 2 + ((1, 1),) * 2}
WINDOW_ONES = {"base_dilation": (1, 1, 1, 1), "window_dilation": (1, 1, 1, 1)}


def conv_attrs(stride, padding, lhs_dilation=None, rhs_dilation=None, **kw):
    n = len(stride)
    return {"stride": stride, "padding": padding, "lhs_dilation": lhs_dilation or (1,) * n,
            "rhs_dilation": rhs_dilation or (1,) * n, **kw}


# -- fused ops (gcomp/ir/ops/fused.py): torch's math written out -------------------------------
def torch_attention(scale, mask="none"):
    def f(q, k, v, m=None):
        s = q @ k.transpose(-2, -1) * scale
        if mask == "add":
            s = s + m
        elif mask == "allow":
            s = s.masked_fill(~m, float("-inf"))
        return torch.softmax(s, -1) @ v

    return f


def allow_mask(shape):
    """A bool mask in which every row allows its first position."""
    def make(r):
        m = r.random(shape) < 0.5
        m[..., 0] = True
        return m

    return make


def targets(shape, classes):
    return lambda r: r.integers(0, classes, shape)


def torch_cross_entropy(ignore_index=-100, reduction="mean", smoothing=0.0):
    """F.cross_entropy with class indices, differentiable in the weight (torch's is not)."""
    def f(x, t, w=None):
        C = x.shape[1]
        w = torch.ones(C, dtype=x.dtype) if w is None else w
        logp = torch.log_softmax(x, 1)
        valid = t != ignore_index
        safe = torch.where(valid, t, 0)
        wt = w[safe] * valid
        picked = -logp.gather(1, safe.unsqueeze(1)).squeeze(1) * wt
        smooth = -(logp * w.reshape((1, C) + (1,) * (x.ndim - 2))).sum(1) * valid
        loss = (1 - smoothing) * picked + smoothing / C * smooth
        if reduction == "none":
            return loss
        return loss.sum() if reduction == "sum" else loss.sum() / wt.sum()

    return f


# -- control flow: regions built with the IR builder (Note [Regions] in gcomp/ir/graph.py) --------
def region(name, in_shapes, body):
    """A float64 region: ``body(graph, *inputs)`` adds nodes and returns the outputs."""
    from gcomp.ir import Graph, float64

    g = Graph(name)
    ins = [g.add_input(TensorType(s, float64), f"a{i}") for i, s in enumerate(in_shapes)]
    g.outputs = list(body(g, *ins))
    return g


def _op(g, op, *args, **attrs):
    return g.add_node(op, list(args), attrs).outputs[0]


# scan body (w, h, x) -> tanh(h @ w + x), the Elman recurrence
RNN_BODY = region("body", [(3, 3), (2, 3), (2, 3)], lambda g, w, h, x: [
    _op(g, "tanh", _op(g, "add", _op(g, "dot_general", h, w, contract=[[1, 0]]), x))])
# scan body (w, x) -> sin(x @ w) * x: ys only
YS_BODY = region("body", [(3, 3), (2, 3)], lambda g, w, x: [
    _op(g, "mul", _op(g, "sin", _op(g, "dot_general", x, w, contract=[[1, 0]])), x)])
# cond branches (x, w) -> sin(x @ w) | x * x
THEN = region("then", [(2, 3), (3, 3)], lambda g, x, w: [
    _op(g, "sin", _op(g, "dot_general", x, w, contract=[[1, 0]]))])
ELSE = region("else", [(2, 3), (3, 3)], lambda g, x, w: [_op(g, "mul", x, x)])


def numpy_rnn(w, h, xs, reverse=False):
    for x in (xs[::-1] if reverse else xs):
        h = np.tanh(h @ w + x)
    return h


def torch_rnn(w, h, xs, reverse=False):
    for t in (range(xs.shape[0] - 1, -1, -1) if reverse else range(xs.shape[0])):
        h = torch.tanh(h @ w + xs[t])
    return h


# fusion body (x, b) -> tanh(x * b) summed over its last axis: a group ending in a reduction
FUSION_BODY = region("body", [(2, 3), (2, 3)], lambda g, x, b: [
    _op(g, "reduce_sum", _op(g, "tanh", _op(g, "mul", x, b)), axes=[1])])
# custom_vjp regions: forward x -> sin(x), backward (x, ct) -> ct * cos(x)
CUSTOM = {"regions": (region("forward", [(2, 3)], lambda g, x: [_op(g, "sin", x)]),
                      region("backward", [(2, 3), (2, 3)], lambda g, x, ct: [
                          _op(g, "mul", ct, _op(g, "cos", x))])), "wrt": [0]}
SCAN = {"regions": (RNN_BODY,), "length": 4, "num_consts": 1, "num_carry": 1}
SCAN_YS = {"regions": (YS_BODY,), "length": 4, "num_consts": 1, "num_carry": 0}
COND = {"regions": (THEN, ELSE)}


def numpy_cond(p, x, w):
    return np.sin(x @ w) if p else x * x


def torch_cond(p, x, w):
    return torch.sin(x @ w) if p else x * x


ROWS: list[Row] = [
    # -- elementwise, unary --------------------------------------------------------------------
    R("exp", uniform(), torch_fn=torch.exp),
    R("expm1", uniform(), torch_fn=torch.expm1),
    R("log", uniform(S, 0.3, 3.0), torch_fn=torch.log),
    R("log1p", uniform(S, -0.7, 2.0), torch_fn=torch.log1p),
    R("sqrt", uniform(S, 0.3, 3.0), torch_fn=torch.sqrt),
    R("rsqrt", uniform(S, 0.3, 3.0), torch_fn=torch.rsqrt),
    R("sin", uniform(S, -3.0, 3.0), torch_fn=torch.sin),
    R("cos", uniform(S, -3.0, 3.0), torch_fn=torch.cos),
    R("tan", uniform(S, -1.2, 1.2), torch_fn=torch.tan),
    R("tanh", uniform(), torch_fn=torch.tanh),
    R("logistic", uniform(S, -4.0, 4.0), ref=scipy.special.expit, torch_fn=torch.sigmoid),
    R("erf", uniform(), ref=scipy.special.erf, torch_fn=torch.erf),
    R("erf_inv", uniform(S, -0.9, 0.9), ref=scipy.special.erfinv,
      torch_fn=torch.special.erfinv),
    R("floor", const(HALVES), ref=np.floor),
    R("ceil", const(HALVES), ref=np.ceil),
    R("round", const(HALVES), ref=np.round),  # half to even, as torch.round
    R("neg", uniform(), torch_fn=torch.neg),
    R("neg", ints(), id="neg_int64", ref=np.negative),
    R("abs", away(), torch_fn=torch.abs),
    R("abs", ints(), id="abs_int64", ref=np.abs),
    R("sign", const(WITH_ZEROS), ref=np.sign),
    R("stop_gradient", uniform(), ref=lambda x: x, torch_fn=lambda x: x.detach() + 0 * x,
      fd=False),  # deliberately not the derivative of the identity
    # -- elementwise math API: inverse trig, hyperbolic, erfc, the gamma family ---------------
    R("asin", uniform(S, -0.9, 0.9), torch_fn=torch.asin),
    R("acos", uniform(S, -0.9, 0.9), torch_fn=torch.acos),
    R("atan", uniform(S, -3.0, 3.0), torch_fn=torch.atan),
    R("sinh", uniform(), torch_fn=torch.sinh),
    R("cosh", uniform(), torch_fn=torch.cosh),
    R("asinh", uniform(S, -3.0, 3.0), torch_fn=torch.asinh),
    R("acosh", uniform(S, 1.2, 4.0), torch_fn=torch.acosh),
    R("atanh", uniform(S, -0.9, 0.9), torch_fn=torch.atanh),
    R("erfc", uniform(), ref=scipy.special.erfc, torch_fn=torch.erfc),
    R("lgamma", uniform(S, 0.2, 5.0), ref=scipy.special.gammaln, torch_fn=torch.lgamma),
    R("digamma", uniform(S, 0.2, 5.0), ref=scipy.special.digamma, torch_fn=torch.digamma,
      grad_rtol=1e-8),  # lax.polygamma(1, x) is good to about 5e-10
    R("polygamma", uniform(S, 0.2, 5.0), attrs={"n": 1},
      ref=lambda x: scipy.special.polygamma(1, x), torch_fn=lambda x: torch.polygamma(1, x)),
    R("polygamma", uniform(S, 0.5, 5.0), id="polygamma_n3", attrs={"n": 3},
      ref=lambda x: scipy.special.polygamma(3, x), torch_fn=lambda x: torch.polygamma(3, x),
      rtol=1e-10),
    # torch.special's primitives (gcomp/special.py); igamma, igammac and zeta are
    # differentiable in their second operand only, as in torch
    R("erfcx", uniform(S, -2.0, 5.0), ref=scipy.special.erfcx, torch_fn=torch.special.erfcx),
    R("ndtri", uniform(S, 0.02, 0.98), ref=scipy.special.ndtri, torch_fn=torch.special.ndtri),
    R("bessel_i0e", away(S, 0.2, 4.0), ref=scipy.special.i0e, torch_fn=torch.special.i0e),
    R("bessel_i1e", away(S, 0.2, 4.0), ref=scipy.special.i1e, torch_fn=torch.special.i1e),
    R("igamma", uniform(S, 0.5, 3.0), uniform(S, 0.2, 4.0), wrt=(1,),
      ref=scipy.special.gammainc, torch_fn=torch.special.gammainc),
    R("igammac", uniform(S, 0.5, 3.0), uniform(S, 0.2, 4.0), wrt=(1,),
      ref=scipy.special.gammaincc, torch_fn=torch.special.gammaincc),
    R("zeta", uniform(S, 1.5, 4.0), uniform(S, 0.5, 3.0), wrt=(1,), ref=scipy.special.zeta,
      torch_fn=torch.special.zeta),
    # Bessel functions and Airy's Ai, without gradients (torch's Cephes code: torch is the
    # reference, to the last bits)
    R("bessel_j0", uniform(S, -12.0, 12.0), torch_fn=torch.special.bessel_j0),
    R("bessel_j1", uniform(S, -12.0, 12.0), torch_fn=torch.special.bessel_j1),
    R("bessel_y0", uniform(S, 0.1, 12.0), torch_fn=torch.special.bessel_y0),
    R("bessel_y1", uniform(S, 0.1, 12.0), torch_fn=torch.special.bessel_y1),
    R("bessel_k0", uniform(S, 0.1, 5.0), torch_fn=torch.special.modified_bessel_k0),
    R("bessel_k1", uniform(S, 0.1, 5.0), torch_fn=torch.special.modified_bessel_k1),
    R("bessel_k0e", uniform(S, 0.1, 5.0), torch_fn=torch.special.scaled_modified_bessel_k0),
    R("bessel_k1e", uniform(S, 0.1, 5.0), torch_fn=torch.special.scaled_modified_bessel_k1),
    R("airy_ai", uniform(S, -6.0, 6.0), torch_fn=torch.special.airy_ai, rtol=1e-11),
    R("orthogonal_polynomial", uniform(S, -1.5, 1.5), ints(S, -1, 12, dtype=np.float64),
      attrs={"kind": "chebyshev_t"}, torch_fn=torch.special.chebyshev_polynomial_t),
    R("orthogonal_polynomial", uniform(S, -1.5, 1.5), ints(S, -1, 12, dtype=np.float64),
      id="orthogonal_polynomial_hermite_he", attrs={"kind": "hermite_he"},
      torch_fn=torch.special.hermite_polynomial_he),
    # (end of the elementwise math API rows)
    # -- elementwise, binary -------------------------------------------------------------------
    R("add", uniform(), uniform(), torch_fn=torch.add),
    R("sub", uniform(), uniform(), torch_fn=torch.sub),
    R("mul", uniform(), uniform(), torch_fn=torch.mul),
    R("mul", ints(), ints(), id="mul_int64", ref=np.multiply),
    R("div", uniform(), away(S, 0.5, 2.0), torch_fn=torch.div),
    R("div", ints(S, -9, 9), nonzero_ints(), id="div_int64", ref=trunc_div),
    R("pow", uniform(S, 0.3, 2.0), uniform(), torch_fn=torch.pow),
    R("pow", const([[0.0, 0.0, 0.0], [0.0, 2.0, 0.5]]), const([[0.0, 1.0, 2.5], [3.0, 0.0, 2.0]]),
      id="pow_zero_base", torch_fn=torch.pow, fd=False),  # torch's conventions at x = 0
    R("pow", nonzero_ints(S, 4), ints(S, -3, 5), id="pow_int64", ref=int_pow),
    R("maximum", uniform(), uniform(), torch_fn=torch.maximum),
    R("maximum", small_floats(), small_floats(), id="maximum_ties", torch_fn=torch.maximum,
      fd=False),  # ties split the gradient in half
    R("minimum", uniform(), uniform(), torch_fn=torch.minimum),
    R("minimum", small_floats(), small_floats(), id="minimum_ties", torch_fn=torch.minimum,
      fd=False),
    R("remainder", quotient_operands, away(S, 0.7, 2.0), torch_fn=torch.remainder),
    R("remainder", ints(S, -9, 9), nonzero_ints(), id="remainder_int64", ref=np.mod),
    R("floor_divide", quotient_operands, away(S, 0.7, 2.0), ref=np.floor_divide),
    R("floor_divide", ints(S, -9, 9), nonzero_ints(), id="floor_divide_int64",
      ref=np.floor_divide),
    R("atan2", away(), away(), torch_fn=torch.atan2),
    *[R(op, ints(S, -2, 3), ints(S, -2, 3), ref=f) for op, f in NP_COMPARE.items()
      if op in ("eq", "ne")],
    *[R(op, small_floats(), small_floats(), ref=f) for op, f in NP_COMPARE.items()
      if op not in ("eq", "ne")],
    R("logical_and", bools(), bools(), ref=np.logical_and),
    R("logical_or", bools(), bools(), ref=np.logical_or),
    R("logical_xor", bools(), bools(), ref=np.logical_xor),
    R("logical_not", bools(), ref=np.logical_not),
    R("bitwise_and", ints(S, -100, 100), ints(S, -100, 100), ref=np.bitwise_and),
    R("bitwise_or", ints(S, -100, 100, np.int32), ints(S, -100, 100, np.int32),
      ref=np.bitwise_or),
    R("bitwise_xor", ints(S, 0, 256, np.uint8), ints(S, 0, 256, np.uint8), ref=np.bitwise_xor),
    R("bitwise_not", ints(S, -100, 100), ref=np.invert),
    R("shift_right_logical", ints(S, -2**31, 2**31, np.int32), ints(S, 0, 32, np.int32),
      ref=lambda x, s: (x.view(np.uint32) >> s.astype(np.uint32)).view(np.int32)),
    R("shift_right_logical", ints(S, 0, 2**32, np.uint32), const(np.full(S, 9, np.uint32)),
      id="shift_right_logical_u32", ref=lambda x, s: x >> s),
    # -- elementwise, other --------------------------------------------------------------------
    R("select", bools(), uniform(), uniform(), torch_fn=torch.where),
    R("cast", uniform(), id="cast_f64_to_f32", attrs={"dtype": gcomp.float32},
      torch_fn=lambda x: x.to(torch.float32), eps=1.0, fd_rtol=1e-5),  # linear: any step
    R("cast", uniform(dtype=np.float32), id="cast_f32_to_f64", attrs={"dtype": gcomp.float64},
      torch_fn=lambda x: x.to(torch.float64), eps=1.0, fd_rtol=1e-5),
    R("cast", uniform(S, -3.0, 3.0), id="cast_f64_to_i64", attrs={"dtype": gcomp.int64},
      ref=lambda x: np.trunc(x).astype(np.int64)),
    R("cast", const(WITH_ZEROS), id="cast_f64_to_bool", attrs={"dtype": gcomp.bool},
      ref=lambda x: x != 0),
    R("cast", ints(), id="cast_i64_to_f64", attrs={"dtype": gcomp.float64},
      ref=lambda x: x.astype(np.float64)),
    R("bitcast", uniform(dtype=np.float32), attrs={"dtype": gcomp.int32},
      ref=lambda x: x.view(np.int32)),
    R("bitcast", uniform(), id="bitcast_f64_to_i64", attrs={"dtype": gcomp.int64},
      ref=lambda x: x.view(np.int64)),
    R("bitcast", ints(S, 0x3F800000, 0x40000000, np.uint32), id="bitcast_u32_to_f32",
      attrs={"dtype": gcomp.float32}, ref=lambda x: x.view(np.float32)),  # bits -> [1, 2)
    R("iota", attrs={"shape": (3, 4), "dim": 1, "dtype": gcomp.int64},
      ref=lambda: np.broadcast_to(np.arange(4), (3, 4))),
    R("iota", id="iota_f32_dim0", attrs={"shape": (3, 2, 2), "dim": 0, "dtype": gcomp.float32},
      ref=lambda: np.broadcast_to(np.arange(3, dtype=np.float32)[:, None, None], (3, 2, 2))),
    R("full", attrs={"shape": (2, 3), "value": -1.25, "dtype": gcomp.float64},
      ref=lambda: np.full((2, 3), -1.25)),
    R("full", id="full_nan", attrs={"shape": (2,), "value": float("nan"), "dtype": gcomp.float32},
      ref=lambda: np.full((2,), np.nan, np.float32)),
    R("constant", attrs={"value": ((1.5, -2.0, 0.1), (3.0, 4.0, 1e-3)), "dtype": gcomp.float64},
      ref=lambda: np.array([[1.5, -2.0, 0.1], [3.0, 4.0, 1e-3]])),
    R("constant", id="constant_int64", attrs={"value": ((1, -2), (3, 4)), "dtype": gcomp.int64},
      ref=lambda: np.array([[1, -2], [3, 4]])),
    R("constant", id="constant_bool", attrs={"value": (True, False, True), "dtype": gcomp.bool},
      ref=lambda: np.array([True, False, True])),
    # -- linalg --------------------------------------------------------------------------------
    R("dot_general", uniform((2, 3, 4)), uniform((2, 4, 5)), id="dot_general_bmm",
      attrs={"contract": ((2, 1),), "batch": ((0, 0),)}, torch_fn=torch.bmm),
    R("dot_general", uniform((3, 4)), uniform((5, 4)), id="dot_general_linear",
      attrs={"contract": ((1, 1),)}, torch_fn=lambda x, w: x @ w.T),
    R("dot_general", uniform((3, 2, 4, 5)), uniform((5, 2, 4, 6)), id="dot_general_batch_middle",
      attrs={"contract": ((2, 2), (3, 0)), "batch": ((1, 1),)},
      torch_fn=lambda a, b: torch.einsum("abcd,dbce->bae", a, b)),
    R("dot_general", uniform((3,)), uniform((4,)), id="dot_general_outer", attrs={"contract": ()},
      torch_fn=torch.outer),
    R("dot_general", ints((3, 4), -3, 3), ints((4, 2), -3, 3), id="dot_general_int64",
      attrs={"contract": ((1, 0),)}, ref=np.matmul),
    # -- convolution ---------------------------------------------------------------------------
    R("convolution", uniform((2, 4, 9, 8)), uniform((6, 2, 3, 3)), id="conv2d_groups",
      attrs=conv_attrs((2, 2), ((1, 0), (2, 1)), rhs_dilation=(2, 1), groups=2),
      torch_fn=lambda x, w: F.conv2d(F.pad(x, (2, 1, 1, 0)), w, stride=2, dilation=(2, 1),
                                     groups=2)),
    R("convolution", uniform((2, 3, 10)), uniform((4, 3, 3)), id="conv1d",
      attrs=conv_attrs((3,), ((2, 2),), rhs_dilation=(2,)),
      torch_fn=lambda x, w: F.conv1d(x, w, stride=3, padding=2, dilation=2)),
    R("convolution", uniform((2, 3, 5)), uniform((4, 3, 3)), id="conv1d_lhs_dilation",
      attrs=conv_attrs((1,), ((2, 2),), lhs_dilation=(2,)),  # a transposed convolution
      torch_fn=lambda x, w: F.conv_transpose1d(x, w.transpose(0, 1).flip(-1), stride=2)),
    R("convolution", uniform((2, 4, 4, 3)), uniform((6, 2, 3, 3)), id="conv2d_transposed_groups",
      attrs=conv_attrs((1, 1), ((1, 2), (1, 2)), lhs_dilation=(2, 2), groups=2),
      torch_fn=lambda x, w: F.conv_transpose2d(x, transposed_weight(w, 2), stride=2, padding=1,
                                               output_padding=1, groups=2)),
    R("convolution", uniform((4, 3, 5, 5)), uniform((4, 3, 3, 3)), id="conv2d_batch_groups",
      attrs=conv_attrs((1, 1), ((0, 0), (0, 0)), batch_groups=2), torch_fn=torch_batch_grouped_conv,
      wrt=()),  # only the weight gradient makes these; their VJP is documented as unsupported
    # -- random --------------------------------------------------------------------------------
    R("random_bits", key, attrs={"shape": (3, 5)},
      ref=lambda k: np.asarray(jax.random.bits(jnp.asarray(k), (3, 5), jnp.uint32))),
    R("random_split", key, attrs={"num": 3},
      ref=lambda k: np.asarray(jax.random.split(jnp.asarray(k), 3))),
    # -- reductions ----------------------------------------------------------------------------
    R("reduce_sum", uniform((3, 4, 5)), attrs={"axes": (0, 2)},
      torch_fn=lambda x: torch.sum(x, dim=(0, 2))),
    R("reduce_sum", uniform((3, 4)), id="reduce_sum_all", attrs={"axes": (0, 1)},
      torch_fn=torch.sum),  # a 0-d result
    R("reduce_sum", uniform((3, 4, 5)), id="reduce_sum_keepdims",
      attrs={"axes": (1,), "keepdims": True}, torch_fn=lambda x: torch.sum(x, 1, keepdim=True)),
    R("reduce_prod", away((3, 4), 0.5, 1.5), attrs={"axes": (1,), "keepdims": True},
      torch_fn=lambda x: torch.prod(x, 1, keepdim=True)),
    R("reduce_prod", const([[1.5, 0.0, -2.0, 0.5], [0.0, 3.0, 0.0, 1.0], [1.0, 2.0, 0.5, -1.0]]),
      id="reduce_prod_zeros", attrs={"axes": (1,)}, torch_fn=lambda x: torch.prod(x, 1)),
    R("reduce_max", uniform((3, 4, 5)), attrs={"axes": (0,)},
      torch_fn=lambda x: torch.amax(x, 0)),
    R("reduce_max", small_floats((3, 5)), id="reduce_max_ties", attrs={"axes": (1,)},
      torch_fn=lambda x: torch.amax(x, 1), fd=False),  # ties share the gradient evenly
    R("reduce_min", uniform((3, 4, 5)), attrs={"axes": (1, 2)},
      torch_fn=lambda x: torch.amin(x, (1, 2))),
    R("reduce_min", small_floats((3, 5)), id="reduce_min_ties",
      attrs={"axes": (0,), "keepdims": True}, torch_fn=lambda x: torch.amin(x, 0, keepdim=True),
      fd=False),
    R("argmax", small_floats((3, 5)), attrs={"axis": 1, "keepdims": False, "dtype": gcomp.int64},
      ref=lambda x: np.argmax(x, 1)),  # first occurrence on ties
    R("argmax", const([[1.0, np.nan, 3.0, np.nan], [np.nan, 1.0, np.nan, 2.0]]), id="argmax_nan",
      attrs={"axis": 1, "keepdims": False, "dtype": gcomp.int64},
      ref=lambda x: np.argmax(x, 1)),  # the first NaN wins, as in torch
    R("argmin", small_floats((3, 5)), attrs={"axis": 0, "keepdims": True, "dtype": gcomp.int32},
      ref=lambda x: np.argmin(x, 0)[None].astype(np.int32)),
    R("cumsum", uniform((3, 4)), attrs={"axis": 1}, torch_fn=lambda x: torch.cumsum(x, 1)),
    R("cumsum", uniform((3, 4)), id="cumsum_reverse", attrs={"axis": 0, "reverse": True},
      torch_fn=lambda x: torch.cumsum(x.flip(0), 0).flip(0)),
    # -- shape ---------------------------------------------------------------------------------
    R("reshape", uniform((2, 3, 4)), attrs={"shape": (4, 6)},
      torch_fn=lambda x: x.reshape(4, 6)),
    R("broadcast", uniform((3, 1)), attrs={"shape": (2, 3, 4), "dims": (1, 2)},
      torch_fn=lambda x: x.reshape(1, 3, 1).expand(2, 3, 4)),
    R("transpose", uniform((2, 3, 4)), attrs={"perm": (2, 0, 1)},
      torch_fn=lambda x: x.permute(2, 0, 1)),
    R("slice", uniform((7, 8)), attrs={"start": (1, 2), "limit": (7, 7), "stride": (2, 3)},
      torch_fn=lambda x: x[1:7:2, 2:7:3]),
    R("pad", uniform((4, 5)), attrs={"low": (-1, 2), "high": (2, -1), "interior": (1, 2),
                                     "value": 0.5},
      torch_fn=lambda x: torch_pad(x, (-1, 2), (2, -1), (1, 2), 0.5)),
    R("concatenate", uniform((2, 1, 3)), uniform((2, 3, 3)), uniform((2, 2, 3)), attrs={"axis": 1},
      torch_fn=lambda *xs: torch.cat(xs, 1)),
    R("rev", uniform((3, 4, 5)), attrs={"dims": (0, 2)}, torch_fn=lambda x: x.flip(0, 2)),
    R("take", uniform((3, 5, 4)), const([[4, 0, 2], [2, 2, 1]]), attrs={"axis": 1},
      torch_fn=lambda x, i: x[:, i]),
    R("take", uniform((3, 5, 4)), const(2), id="take_scalar_index", attrs={"axis": 1},
      torch_fn=lambda x, i: x[:, i]),
    R("take", uniform((3, 5, 4)), const([[-2, 0, 7], [4, 5, 1]]), id="take_clamps",
      attrs={"axis": 1}, ref=lambda x, i: np.take(x, i, axis=1, mode="clip"),
      torch_fn=lambda x, i: x[:, i.clamp(0, 4)]),  # out-of-range indices are clamped
    R("scatter_add", uniform((3, 5, 4)), const([[4, 0, 2], [2, 2, 1]]), uniform((3, 2, 3, 4)),
      attrs={"axis": 1}, ref=lambda x, i, u: numpy_scatter_add(x, i, u, 1),
      torch_fn=lambda x, i, u: x.index_add(1, i.reshape(-1), u.reshape(3, 6, 4))),
    # -- windows -------------------------------------------------------------------------------
    R("reduce_window", uniform((2, 3, 7, 8)), id="reduce_window_max_pool2d",
      attrs={"kind": "max", **POOL2D, **WINDOW_ONES},
      torch_fn=lambda x: F.max_pool2d(x, 3, stride=2, padding=1)),
    R("reduce_window", uniform((2, 3, 7, 8)), id="reduce_window_sum_avg_pool2d",
      attrs={"kind": "sum", **POOL2D, **WINDOW_ONES},
      torch_fn=lambda x: F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=True) * 9),
    R("reduce_window", uniform((2, 9)), id="reduce_window_sum_dilated",
      attrs={"kind": "sum", "window": (1, 3), "stride": (1, 2), "padding": ((0, 0), (1, 2)),
             "base_dilation": (1, 2), "window_dilation": (1, 2)},
      torch_fn=torch_window_sum_dilated),
    R("reduce_window", uniform((2, 3, 11)), id="reduce_window_max_dilated",
      attrs={"kind": "max", "window": (1, 1, 3), "stride": (1, 1, 2),
             "padding": ((0, 0), (0, 0), (1, 1)), "base_dilation": (1, 1, 1),
             "window_dilation": (1, 1, 2)},
      torch_fn=lambda x: F.max_pool1d(x, 3, stride=2, padding=1, dilation=2),
      wrt=()),  # the gradient of a dilated max pooling is documented as unsupported
    R("reduce_window", small_floats((2, 3, 7, 8)), id="reduce_window_max_ties",
      attrs={"kind": "max", **POOL2D, **WINDOW_ONES},
      torch_fn=lambda x: F.max_pool2d(x, 3, stride=2, padding=1), fd=False),  # first max wins
    R("select_and_scatter_add", uniform((2, 3, 4, 4)), uniform((2, 3, 7, 8)), attrs=POOL2D,
      torch_fn=torch_max_pool_grad),
    R("select_and_scatter_add", uniform((2, 3, 4, 4)), small_floats((2, 3, 7, 8)),
      id="select_and_scatter_add_ties", attrs=POOL2D, torch_fn=torch_max_pool_grad, fd=False),
    # tiling windows: 2x2/2 over 7x9 (floor mode leaves a row and a column out), 3x3/3 padded
    R("select_and_scatter_add", uniform((2, 3, 3, 4)), uniform((2, 3, 7, 9)),
      id="select_and_scatter_add_tiled", attrs=tiled_pool(2, 0),
      torch_fn=lambda s, x: torch_max_pool_grad(s, x, 2, 2, 0)),
    R("select_and_scatter_add", uniform((2, 3, 3, 4)), small_floats((2, 3, 7, 9)),
      id="select_and_scatter_add_tiled_ties", attrs=tiled_pool(2, 0),
      torch_fn=lambda s, x: torch_max_pool_grad(s, x, 2, 2, 0), fd=False),
    R("select_and_scatter_add", uniform((2, 3, 3, 3)), uniform((2, 3, 8, 8)),
      id="select_and_scatter_add_tiled_padded", attrs=tiled_pool(3, 1),
      torch_fn=lambda s, x: torch_max_pool_grad(s, x, 3, 3, 1)),
    # -- fused ops: attention (lax in float64, jax.nn.dot_product_attention for the f32 copies) --
    R("scaled_dot_product_attention", uniform((2, 3, 4)), uniform((2, 5, 4)), uniform((2, 5, 4)),
      id="attention", attrs={"scale": 0.5}, torch_fn=torch_attention(0.5)),
    R("scaled_dot_product_attention", uniform((2, 2, 3, 4)), uniform((2, 2, 5, 4)),
      uniform((2, 2, 5, 4)), uniform((2, 2, 3, 5)), id="attention_add_mask",
      attrs={"scale": 0.3, "mask": "add"}, torch_fn=torch_attention(0.3, "add")),
    R("scaled_dot_product_attention", uniform((3, 4)), uniform((5, 4)), uniform((5, 2)),
      allow_mask((3, 5)), id="attention_allow_mask_value_size",
      attrs={"scale": 0.7, "mask": "allow"}, torch_fn=torch_attention(0.7, "allow")),
    R("cross_entropy", uniform((6, 5)), targets((6,), 5), id="cross_entropy",
      attrs={}, torch_fn=torch_cross_entropy()),
    R("cross_entropy", uniform((6, 5)), targets((6,), 5), uniform((5,), 0.5, 2.0),
      id="cross_entropy_weight_ignore_smoothing",
      attrs={"ignore_index": 1, "label_smoothing": 0.2, "weighted": True},
      torch_fn=torch_cross_entropy(1, "mean", 0.2)),
    R("cross_entropy", uniform((4, 3, 2)), targets((4, 2), 3), uniform((3,), 0.5, 2.0),
      id="cross_entropy_none_spatial",
      attrs={"ignore_index": 0, "reduction": "none", "weighted": True},
      torch_fn=torch_cross_entropy(0, "none")),
    R("cross_entropy", uniform((5, 4)), targets((5,), 4), id="cross_entropy_sum_smoothing",
      attrs={"reduction": "sum", "label_smoothing": 0.5},
      torch_fn=torch_cross_entropy(reduction="sum", smoothing=0.5)),
    # -- control flow: scan is differentiated by a reverse scan, cond by a cond --------------------
    R("scan", uniform((3, 3), -0.7, 0.7), uniform((2, 3)), uniform((4, 2, 3)), attrs=SCAN,
      ref=numpy_rnn, torch_fn=torch_rnn),
    R("scan", uniform((3, 3), -0.7, 0.7), uniform((2, 3)), uniform((4, 2, 3)), id="scan_reverse",
      attrs={**SCAN, "reverse": True}, ref=lambda w, h, xs: numpy_rnn(w, h, xs, True),
      torch_fn=lambda w, h, xs: torch_rnn(w, h, xs, True)),
    R("scan", uniform((3, 3)), uniform((4, 2, 3)), id="scan_ys", attrs=SCAN_YS,
      ref=lambda w, xs: np.sin(xs @ w) * xs, torch_fn=lambda w, xs: torch.sin(xs @ w) * xs),
    R("fusion", uniform((2, 3)), uniform((2, 3)), attrs={"regions": (FUSION_BODY,)},
      ref=lambda x, b: np.tanh(x * b).sum(1), torch_fn=lambda x, b: torch.tanh(x * b).sum(1)),
    R("custom_vjp", uniform((2, 3)), attrs=CUSTOM, ref=np.sin, torch_fn=torch.sin),
    # -- markers of the autodiff expansion and of rematerialization: identities --------------
    R("grad_seed", uniform(), ref=lambda x: x, torch_fn=lambda x: x * 1),
    R("optimization_barrier", uniform(), ref=lambda x: x, torch_fn=lambda x: x * 1),
    R("cond", const(True), uniform((2, 3)), uniform((3, 3)), id="cond_true", attrs=COND,
      ref=numpy_cond, torch_fn=torch_cond),
    R("cond", const(False), uniform((2, 3)), uniform((3, 3)), id="cond_false", attrs=COND,
      ref=numpy_cond, torch_fn=torch_cond),
]

# -- sorting and cumulative rows (gcomp/ir/ops/sort.py) ------------------------------------
NAN_ZERO = [[2.0, np.nan, -0.0, 0.0, 1.0, np.nan, -1.0], [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0]]
NAN_NO_TIES = [[2.0, np.nan, -0.5, 0.0, 1.0, np.nan, -1.0], [3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0]]
ROWS += [
    R("argsort", small_floats((3, 6)), attrs={"axis": 1},
      torch_fn=lambda x: torch.sort(x, dim=1, stable=True).indices),
    R("argsort", const(NAN_ZERO), id="argsort_nan_descending",
      attrs={"axis": 1, "descending": True},
      torch_fn=lambda x: torch.sort(x, dim=1, descending=True, stable=True).indices),
    R("argsort", ints((4, 3)), id="argsort_ints_descending", attrs={"axis": 0, "descending": True},
      torch_fn=lambda x: torch.sort(x, dim=0, descending=True, stable=True).indices),
    R("top_k", uniform((3, 6)), attrs={"k": 3, "axis": 1},
      torch_fn=lambda x: torch.topk(x, 3, 1).indices),
    R("top_k", const(NAN_NO_TIES), id="top_k_nan_smallest",
      attrs={"k": 4, "axis": 1, "largest": False},
      torch_fn=lambda x: torch.topk(x, 4, 1, largest=False).indices),
    R("top_k", ints((5, 3)), id="top_k_ints_axis0", attrs={"k": 2, "axis": 0},
      ref=lambda x: np.argsort(-x, axis=0, kind="stable")[:2]),
    R("cumargmax", small_floats((3, 6)), attrs={"axis": 1},
      torch_fn=lambda x: torch.cummax(x, 1).indices),
    R("cumargmin", const(NAN_ZERO), id="cumargmin_nan", attrs={"axis": 1},
      torch_fn=lambda x: torch.cummin(x, 1).indices),
    R("cumprod", uniform((3, 4)), attrs={"axis": 1}, torch_fn=lambda x: torch.cumprod(x, 1)),
    R("cumprod", const(WITH_ZEROS), id="cumprod_zeros", attrs={"axis": 1},
      torch_fn=lambda x: torch.cumprod(x, 1)),
    R("cumprod", const(WITH_ZEROS), id="cumprod_zeros_reverse", attrs={"axis": 1, "reverse": True},
      torch_fn=lambda x: torch.cumprod(x.flip(1), 1).flip(1)),
    R("logcumsumexp", uniform((3, 4), -3.0, 3.0), attrs={"axis": 1},
      torch_fn=lambda x: torch.logcumsumexp(x, 1)),
    R("logcumsumexp", uniform((3, 4), -3.0, 3.0), id="logcumsumexp_reverse",
      attrs={"axis": 0, "reverse": True},
      torch_fn=lambda x: torch.logcumsumexp(x.flip(0), 0).flip(0)),
]
# -- end sorting rows --

# -- scatter rows (gcomp/ir/ops/shape.py; scatter-index-linalg work) --------------------------
SCATTER_IDX = [[4, 0, 2], [2, 2, 1]]  # with repeats: every update to an element combines
ROWS += [
    R("scatter", uniform((3, 5, 4)), const([[4, 0], [2, 1]]), uniform((3, 2, 2, 4)),
      id="scatter_set", attrs={"axis": 1, "mode": "set"},
      torch_fn=lambda x, i, u: x.index_copy(1, i.reshape(-1), u.reshape(3, 4, 4))),
    R("scatter", uniform((3, 5, 4), 0.5, 2.0), const(SCATTER_IDX), uniform((3, 2, 3, 4), 0.5, 2.0),
      id="scatter_mul", attrs={"axis": 1, "mode": "mul"},
      torch_fn=lambda x, i, u: x.index_reduce(1, i.reshape(-1), u.reshape(3, 6, 4), "prod")),
    R("scatter", uniform((3, 5, 4)), const(SCATTER_IDX), uniform((3, 2, 3, 4)), id="scatter_max",
      attrs={"axis": 1, "mode": "max"},
      torch_fn=lambda x, i, u: x.index_reduce(1, i.reshape(-1), u.reshape(3, 6, 4), "amax")),
    R("scatter", uniform((3, 5, 4)), const(SCATTER_IDX), uniform((3, 2, 3, 4)), id="scatter_min",
      attrs={"axis": 1, "mode": "min"},
      torch_fn=lambda x, i, u: x.index_reduce(1, i.reshape(-1), u.reshape(3, 6, 4), "amin")),
]
# -- end scatter rows --


def well_conditioned(shape):
    """Random matrices plus a multiple of the identity (well away from singular)."""
    n = shape[-1]
    return lambda r: r.uniform(-1.0, 1.0, shape) + 3.0 * np.eye(n)


def spd_matrix(shape):
    def make(r):
        x = r.uniform(-1.0, 1.0, shape)
        return x @ np.swapaxes(x, -1, -2) + 2.0 * np.eye(shape[-1])

    return make


def torch_packed(*pieces):
    """Note [Packed results] in gcomp/ir/ops/linalg.py, in torch."""
    batch = pieces[0].shape[:-2] if pieces[0].ndim >= 2 else pieces[0].shape[:-1]
    return torch.cat([p.reshape(*batch, -1) for p in pieces], -1)


def torch_column_signs(x):
    """The canonical sign flips of gcomp's eigh and svd (Note [Packed results])."""
    big = x.detach().abs().argmax(-2, keepdim=True)
    s = torch.sign(torch.gather(x.detach(), -2, big))
    return torch.where(s == 0, torch.ones_like(s), s)


def torch_eigh(a):
    w, v = torch.linalg.eigh(a)
    return torch_packed(w, v * torch_column_signs(v))


def torch_svd(a):
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    flip = torch_column_signs(u)
    return torch_packed(u * flip, s, vh.mT * flip)


def torch_qr(a):
    q, r = torch.linalg.qr(a)
    d = torch.sign(torch.diagonal(r, dim1=-2, dim2=-1).detach())
    d = torch.where(d == 0, torch.ones_like(d), d)
    return torch_packed(q * d.unsqueeze(-2), r * d.unsqueeze(-1))


# -- linear algebra rows (gcomp/ir/ops/linalg.py; scatter-index-linalg work) -------------------
ROWS += [
    R("linalg_solve", well_conditioned((2, 3, 3)), uniform((2, 3, 2)),
      torch_fn=torch.linalg.solve, rtol=1e-10),
    R("slogdet", well_conditioned((2, 3, 3)), rtol=1e-10,
      torch_fn=lambda a: torch.stack(torch.linalg.slogdet(a), -1)),
    R("cholesky", spd_matrix((2, 3, 3)), torch_fn=torch.linalg.cholesky, rtol=1e-10,
      fd=False),  # reads one triangle; its gradient is torch's symmetric one
    R("eigh", spd_matrix((3, 3)), rtol=1e-10, fd=False,  # as cholesky
      torch_fn=torch_eigh),
    R("svd", uniform((4, 3)), rtol=1e-10, torch_fn=torch_svd),
    R("svd", uniform((2, 3, 4)), id="svd_batch_wide", rtol=1e-10, torch_fn=torch_svd),
    R("qr", uniform((4, 3)), rtol=1e-10, torch_fn=torch_qr),
]
# -- end linear algebra rows --

TABLE_OPS = frozenset(r.op for r in ROWS)  # what test_op_coverage.py holds against the op table
