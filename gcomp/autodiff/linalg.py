"""VJP of dot_general (the transposes follow jax's _dot_general_transpose_lhs/rhs)."""

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


def _transpose_lhs(g, x, y, x_contract, y_contract, x_batch, y_batch, swap_ans=False):
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
    prod = P.dot_general(g, y, contract=contract, batch=batch)
    if out_axes != tuple(range(len(out_axes))):
        prod = P.transpose(prod, perm=out_axes)
    return prod


@defvjp("dot_general")
def _dot_general(cts, inputs, outputs, contract, batch):
    (g,), (x, y) = cts, inputs
    xc, yc = [a for a, _ in contract], [b for _, b in contract]
    xb, yb = [a for a, _ in batch], [b for _, b in batch]
    gx = _transpose_lhs(g, x, y, xc, yc, xb, yb) if needs_input_grad(0) else None
    gy = _transpose_lhs(g, y, x, yc, xc, yb, xb, swap_ans=True) if needs_input_grad(1) else None
    return [gx, gy]
