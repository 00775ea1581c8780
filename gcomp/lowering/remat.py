"""jax rules of the rematerialization primitives (ir/ops/remat.py)."""

from __future__ import annotations

import jax

from . import lowers


@lowers("grad_seed")
def _grad_seed(seed):
    return seed


@lowers("optimization_barrier")
def _optimization_barrier(*xs):
    out = jax.lax.optimization_barrier(tuple(xs))
    return out[0] if len(out) == 1 else tuple(out)
