"""VJP of dot_general (the transposes follow jax's _dot_general_transpose_lhs/rhs).

A node with an ``accumulate`` dtype (Note [Accumulation dtype] in ir/ops/linalg.py) has a
cotangent of that dtype and operands of a narrower one: the cotangent is cast to the operands'
dtype, each transpose product accumulates in the same dtype as the node, and its result is cast
back to the operand's dtype, the dtype its cotangent must have.
"""

from __future__ import annotations

import numpy as np

from ..core import prims as P
from ..core.autograd import needs_input_grad
from . import defvjp


def _ranges_like(*xs):
    start = 0
    for x in xs:
        yield list(range(start, start + len(x)))
        start += len(x)


def _transpose_lhs(g, x, y, x_contract, y_contract, x_batch, y_batch, swap_ans=False,
                   accumulate=""):
    x_ndim, y_ndim = len(x._type.shape), len(y._type.shape)
    x_kept = [i for i in range(x_ndim) if i not in x_contract and i not in x_batch]
    y_kept = [i for i in range(y_ndim) if i not in y_contract and i not in y_batch]
    if swap_ans:
        ans_batch, ans_y, _ = _ranges_like(x_batch, y_kept, x_kept)
    else:
        ans_batch, _, ans_y = _ranges_like(x_batch, x_kept, y_kept)
    contract = tuple(zip(ans_y, y_kept))
    batch = tuple(zip(ans_batch, y_batch))
    x_contract_sorted_by_y = list(np.take(x_contract, np.argsort(y_contract))) if x_contract else []
    out_axes = tuple(int(a) for a in np.argsort(list(x_batch) + x_kept + x_contract_sorted_by_y))
    prod = P.dot_general(g, y, contract=contract, batch=batch, accumulate=accumulate)
    if accumulate:
        prod = P.cast(prod, dtype=x._type.dtype)
    if out_axes != tuple(range(len(out_axes))):
        prod = P.transpose(prod, perm=out_axes)
    return prod


@defvjp("dot_general")
def _dot_general(cts, inputs, outputs, contract, batch, accumulate=""):
    (g,), (x, y) = cts, inputs
    xc, yc = [a for a, _ in contract], [b for _, b in contract]
    xb, yb = [a for a, _ in batch], [b for _, b in batch]
    acc = accumulate
    if acc:  # an f32 cotangent of bf16 operands: multiply in bf16, accumulate in f32
        g = P.cast(g, dtype=x._type.dtype)
    gx = _transpose_lhs(g, x, y, xc, yc, xb, yb, accumulate=acc) if needs_input_grad(0) else None
    gy = (_transpose_lhs(g, y, x, yc, xc, yb, xb, swap_ans=True, accumulate=acc)
          if needs_input_grad(1) else None)
    return [gx, gy]
