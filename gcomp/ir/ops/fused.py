"""Fused ops: higher-level primitives that the fuse_patterns pass (passes/patterns.py) makes from
the primitive patterns composites trace to.

Each computes exactly what its pattern computes, to float rounding (Note [Fused patterns] in
passes/patterns.py says which patterns and why they are equal):

- ``scaled_dot_product_attention(q, k, v[, mask])``: softmax(scale * q k^T (+ mask)) v over the
  last two dims, q (*batch, L, E), k (*batch, S, E), v (*batch, S, Ev) -> (*batch, L, Ev).
  ``mask`` is "none" (no fourth operand), "add" (a float (*batch, L, S) operand added to the
  scaled scores) or "allow" (a bool (*batch, L, S) operand, True where attention is allowed: the
  others score -inf, so a row that allows nothing is NaN, as its pattern gives).
- ``cross_entropy(logits, target[, weight])``: PyTorch's cross_entropy with class indices,
  logits (N, C, *rest), target (N, *rest) integer, weight (C,) when ``weighted``; targets equal to
  ``ignore_index`` count zero (and nothing in the mean's denominator); ``reduction`` "none" gives
  (N, *rest), "sum" and "mean" a scalar.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType, bool_
from . import declare, same_dtype

MASKS = ("none", "add", "allow")
REDUCTIONS = ("none", "sum", "mean")


@declare("scaled_dot_product_attention", "fused", None, {"scale": "float", "mask": "str"},
         {"mask": "none"})
def _attention(types, scale, mask):
    """softmax(scale * q k^T (+ mask)) v over the last two dims."""
    if mask not in MASKS:
        raise ShapeError(f"scaled_dot_product_attention: mask must be one of {MASKS}, got "
                         f"{mask!r}")
    want = 3 if mask == "none" else 4
    if len(types) != want:
        raise ShapeError(f"scaled_dot_product_attention with mask={mask} takes {want} operands, "
                         f"got {len(types)}")
    q, k, v = types[:3]
    dtype = same_dtype("scaled_dot_product_attention", [q, k, v])
    if not dtype.is_floating_point:
        raise ShapeError(f"scaled_dot_product_attention: operands must be floats, got {q}")
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim:
        raise ShapeError(f"scaled_dot_product_attention: need (*batch, L, E), (*batch, S, E) and "
                         f"(*batch, S, Ev), got {q}, {k} and {v}")
    batch, (L, E), (S, E2), (S2, Ev) = q.shape[:-2], q.shape[-2:], k.shape[-2:], v.shape[-2:]
    if k.shape[:-2] != batch or v.shape[:-2] != batch or E2 != E or S2 != S:
        raise ShapeError(f"scaled_dot_product_attention: need (*batch, L, E), (*batch, S, E) and "
                         f"(*batch, S, Ev), got {q}, {k} and {v}")
    if mask != "none":
        m = types[3]
        if m.shape != batch + (L, S):
            raise ShapeError(f"scaled_dot_product_attention: the mask must have the scores' "
                             f"shape {list(batch + (L, S))}, got {m}")
        if mask == "allow" and m.dtype != bool_:
            raise ShapeError(f"scaled_dot_product_attention: mask=allow takes a bool mask, "
                             f"got {m}")
        if mask == "add" and m.dtype != dtype:
            raise ShapeError(f"scaled_dot_product_attention: mask=add takes a {dtype.short} "
                             f"mask, got {m}")
    return [TensorType(batch + (L, Ev), dtype)]


@declare("cross_entropy", "fused", None,
         {"ignore_index": "int", "reduction": "str", "label_smoothing": "float",
          "weighted": "bool"},
         {"ignore_index": -100, "reduction": "mean", "label_smoothing": 0.0, "weighted": False})
def _cross_entropy(types, ignore_index, reduction, label_smoothing, weighted):
    """torch.nn.functional.cross_entropy with class-index targets, classes on dim 1."""
    if reduction not in REDUCTIONS:
        raise ShapeError(f"cross_entropy: reduction must be one of {REDUCTIONS}, got "
                         f"{reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ShapeError(f"cross_entropy: label_smoothing must be in [0, 1], got "
                         f"{label_smoothing}")
    want = 3 if weighted else 2
    if len(types) != want:
        raise ShapeError(f"cross_entropy with weighted={weighted} takes {want} operands, got "
                         f"{len(types)}")
    x, t = types[:2]
    if not x.dtype.is_floating_point or x.ndim < 2:
        raise ShapeError(f"cross_entropy: logits must be floats (N, C, ...), got {x}")
    if t.dtype.is_floating_point or t.dtype == bool_ or t.shape != x.shape[:1] + x.shape[2:]:
        raise ShapeError(f"cross_entropy: targets must be integers of shape "
                         f"{list(x.shape[:1] + x.shape[2:])}, got {t}")
    if weighted and (types[2].shape != (x.shape[1],) or types[2].dtype != x.dtype):
        raise ShapeError(f"cross_entropy: weight must be {x.dtype.short}[{x.shape[1]}], got "
                         f"{types[2]}")
    return [TensorType(t.shape if reduction == "none" else (), x.dtype)]
