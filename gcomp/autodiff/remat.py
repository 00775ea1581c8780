"""VJPs of the rematerialization primitives: both are the identity on what they return."""

from __future__ import annotations

from . import defvjp


@defvjp("grad_seed")
def _grad_seed(cts, inputs, outputs):
    return [cts[0]]


@defvjp("optimization_barrier")
def _optimization_barrier(cts, inputs, outputs):
    return list(cts)
