"""dot_general: the one contraction primitive (matmul, bmm, einsum, linear all lower to it)."""

from __future__ import annotations

from ..errors import ShapeError
from ..types import TensorType
from . import declare, same_dtype


@declare("dot_general", "linalg", 2, {"contract": "int_pairs", "batch": "int_pairs"},
         {"batch": []})
def _dot_general(types, contract, batch):
    """lax.dot_general. ``contract`` and ``batch`` are lists of (lhs dim, rhs dim) pairs; the
    result is batch dims, then lhs free dims, then rhs free dims."""
    lhs, rhs = types
    dtype = same_dtype("dot_general", types)
    used_l = [a for a, _ in contract] + [a for a, _ in batch]
    used_r = [b for _, b in contract] + [b for _, b in batch]
    for a, b in list(contract) + list(batch):
        if not (0 <= a < lhs.ndim and 0 <= b < rhs.ndim):
            raise ShapeError(f"dot_general: dims ({a}, {b}) out of range for {lhs} and {rhs}")
        if lhs.shape[a] != rhs.shape[b]:
            raise ShapeError(f"dot_general: size mismatch {lhs} dim {a} vs {rhs} dim {b}")
    if len(set(used_l)) != len(used_l) or len(set(used_r)) != len(used_r):
        raise ShapeError("dot_general: a dim is used twice")
    shape = [lhs.shape[a] for a, _ in batch]
    shape += [d for i, d in enumerate(lhs.shape) if i not in used_l]
    shape += [d for i, d in enumerate(rhs.shape) if i not in used_r]
    return [TensorType(tuple(shape), dtype)]
