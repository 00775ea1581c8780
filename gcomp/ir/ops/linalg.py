"""dot_general: the one contraction primitive (matmul, bmm, einsum, linear all lower to it).

Note [Accumulation dtype]
``dot_general`` and ``convolution`` take an optional ``accumulate`` attribute: the dtype the
products are summed in, which is also the result's dtype (lax's ``preferred_element_type``).
Empty (the default, left out of the printed IR) means the operands' dtype, as before. Mixed
precision (passes/precision.py) writes ``accumulate="f32"`` on contractions of bf16 or f16
operands: the multiplies read low-precision values, the sums and the result stay float32. It
must be a float dtype that holds the operands' exactly (f32 or f64 for bf16 and f16 operands,
the operands' own dtype too); integer contractions take none. The attribute is a string (the
dtype's IR name) because a dtype attribute has no "unset" value in the op table.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..types import DType, TensorType, dtype_from_name, promote_types
from . import declare, same_dtype


def accumulate_dtype(op: str, dtype: DType, accumulate: str) -> DType:
    """The result dtype of a contraction of ``dtype`` operands with the ``accumulate``
    attribute (Note [Accumulation dtype])."""
    if not accumulate:
        return dtype
    acc = dtype_from_name(accumulate)
    if not (dtype.is_floating_point and acc.is_floating_point
            and promote_types(dtype, acc) == acc):
        raise ShapeError(f"{op}: cannot accumulate {dtype.short} operands in {acc.short}; "
                         "accumulate needs float operands and a float dtype at least as wide")
    return acc


@declare("dot_general", "linalg", 2,
         {"contract": "int_pairs", "batch": "int_pairs", "accumulate": "str"},
         {"batch": [], "accumulate": ""})
def _dot_general(types, contract, batch, accumulate):
    """lax.dot_general. ``contract`` and ``batch`` are lists of (lhs dim, rhs dim) pairs; the
    result is batch dims, then lhs free dims, then rhs free dims; ``accumulate`` is the dtype of
    the sums and the result when not the operands' (Note [Accumulation dtype])."""
    lhs, rhs = types
    dtype = accumulate_dtype("dot_general", same_dtype("dot_general", types), accumulate)
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
