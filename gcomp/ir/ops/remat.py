"""Rematerialization primitives: the marker of a gradient's seed and an optimization barrier.

Both are the identity on what they return; they exist for what passes and XLA may not do
(Note [Rematerialization in one graph] in passes/remat.py).
"""

from __future__ import annotations

from ..errors import ShapeError
from . import declare


# Family "control", as the grad request it belongs to: constant folding leaves that family alone
# (passes/fold.py), and would otherwise replace the marker of a constant seed (a training step's
# 1.0) by the constant, losing where the backward starts.
@declare("grad_seed", "control", 1)
def _grad_seed(types):
    """grad_seed(seed): ``seed``, the cotangent that a grad request starts from. The autodiff
    pass emits one per differentiated output: what depends on it is the backward."""
    return [types[0]]


@declare("optimization_barrier", "remat", None)
def _optimization_barrier(types):
    """optimization_barrier(x0, x1, ...): x0, x1, ... unchanged (jax.lax.optimization_barrier).
    XLA may neither merge what is computed from its results with what is computed from its
    operands (CSE) nor start on any result before every operand exists, so a recomputation
    behind one stays a recomputation and runs where it is placed."""
    if not types:
        raise ShapeError("optimization_barrier takes at least one operand")
    return list(types)
