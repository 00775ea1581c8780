"""Algebraic simplification: a rule table of rewrites that hold for every input.

Every rule gives the same bits for every input, NaN, infinities and both zeros included, so a
simplified graph computes exactly what the original did:

- ``x * 1``, ``1 * x``, ``x / 1`` are x (IEEE multiplication and division by one are exact).
- ``x + (-0.0)`` and ``x - (+0.0)`` are x for floats; ``x + 0.0`` is not (``-0.0 + 0.0`` is
  ``+0.0``), nor ``x - (-0.0)``. For integers any zero will do.
- ``neg(neg(x))`` is x; ``stop_gradient(stop_gradient(x))`` is the inner one.
- Transposes, reshapes and broadcasts of their own kind compose into one; one that changes
  nothing (identity permutation, the same shape, identity dims) is its operand, as is a cast to
  the operand's dtype and a slice that takes everything.
- A reduction over axes of size 1 only is a reshape (XLA does the same; a sum of one -0.0 is
  -0.0 in the reference interpreter and in the executable).

Rewrites that are not exact are not here: ``x * 0`` is not 0 (NaN, infinities, -0.0), ``x - x``
is not 0 (NaN, infinities), ``x / x`` is not 1. The constants recognized are ``full`` nodes and
broadcasts or reshapes of them (``rewrite.splat``), which is how tracing writes scalars.
"""

from __future__ import annotations

import math

from ..ir.graph import Value
from .manager import register
from .rewrite import Context, Pat, Rules, graph_rewrite, splat

REDUCTIONS = ("reduce_sum", "reduce_prod", "reduce_max", "reduce_min")


def _is_one(v: Value) -> bool:
    return splat(v) == 1


def _neg_zero(v: Value) -> bool:
    """The additive identity: -0.0 for floats, 0 for integers."""
    c = splat(v)
    if c is None or c != 0:
        return False
    if v.dtype.is_floating_point:
        return isinstance(c, float) and math.copysign(1.0, c) < 0
    return True


def _pos_zero(v: Value) -> bool:
    """What subtracting leaves every value unchanged by: +0.0 for floats, 0 for integers."""
    c = splat(v)
    if c is None or c != 0:
        return False
    return not (isinstance(c, float) and math.copysign(1.0, c) < 0)


def _identity(ctx: Context, x: Value, c: Value | None = None) -> Value:
    return x


def _inner(ctx: Context, inner: Value) -> Value:
    return inner


def _attrs(v: Value) -> dict:
    return v.producer.attrs


def _same_transpose(ctx: Context, x: Value, t: Value) -> Value | None:
    return x if tuple(_attrs(t)["perm"]) == tuple(range(x.type.ndim)) else None


def _transpose_transpose(ctx: Context, x: Value, inner: Value, t: Value) -> Value:
    # t[i] = inner[q[i]] = x[p[q[i]]]
    p, q = _attrs(inner)["perm"], _attrs(t)["perm"]
    return ctx.emit("transpose", [x], {"perm": [p[i] for i in q]})


def _same_reshape(ctx: Context, x: Value, r: Value) -> Value | None:
    return x if r.type.shape == x.type.shape else None


def _reshape_reshape(ctx: Context, x: Value, inner: Value, r: Value) -> Value:
    return ctx.emit("reshape", [x], {"shape": r.type.shape})


def _same_cast(ctx: Context, x: Value, c: Value) -> Value | None:
    return x if c.dtype == x.dtype else None


def _same_broadcast(ctx: Context, x: Value, b: Value) -> Value | None:
    same = b.type.shape == x.type.shape and tuple(_attrs(b)["dims"]) == tuple(range(x.type.ndim))
    return x if same else None


def _broadcast_broadcast(ctx: Context, x: Value, inner: Value, b: Value) -> Value:
    # operand dim i -> inner dim d1[i] -> result dim d2[d1[i]]; increasing, sizes still fit
    d1, d2 = _attrs(inner)["dims"], _attrs(b)["dims"]
    return ctx.emit("broadcast", [x], {"shape": b.type.shape, "dims": [d2[d] for d in d1]})


def _size_one_reduction(ctx: Context, x: Value, r: Value) -> Value | None:
    if any(x.type.shape[a] != 1 for a in _attrs(r)["axes"]):
        return None
    return ctx.emit("reshape", [x], {"shape": r.type.shape})


def _whole_slice(ctx: Context, x: Value, s: Value) -> Value | None:
    # a dim keeps its size from start 0 only with stride 1 (or when it has at most one element)
    whole = s.type.shape == x.type.shape and not any(_attrs(s)["start"])
    return x if whole else None


x = Pat(name="x")
RULES = Rules([
    (Pat("mul", x, Pat(name="c", where=_is_one), commute=True), _identity),
    (Pat("div", x, Pat(name="c", where=_is_one)), _identity),
    (Pat("add", x, Pat(name="c", where=_neg_zero), commute=True), _identity),
    (Pat("sub", x, Pat(name="c", where=_pos_zero)), _identity),
    (Pat("neg", Pat("neg", x)), _identity),
    (Pat("stop_gradient", Pat("stop_gradient", name="inner")), _inner),
    (Pat("transpose", x, name="t"), _same_transpose),
    (Pat("transpose", Pat("transpose", x, name="inner"), name="t"), _transpose_transpose),
    (Pat("reshape", x, name="r"), _same_reshape),
    (Pat("reshape", Pat("reshape", x, name="inner"), name="r"), _reshape_reshape),
    (Pat("cast", x, name="c"), _same_cast),
    (Pat("broadcast", x, name="b"), _same_broadcast),
    (Pat("broadcast", Pat("broadcast", x, name="inner"), name="b"), _broadcast_broadcast),
    (Pat(REDUCTIONS, x, name="r"), _size_one_reduction),
    (Pat("slice", x, name="s"), _whole_slice),
])


@register("simplify")
def simplify(graph):
    """Rewrite with RULES to a fixpoint (rewrite.graph_rewrite)."""
    return graph_rewrite(graph, RULES, "simplify")
