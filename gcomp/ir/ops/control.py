"""``grad``: the request node that the autodiff pass expands into the backward graph."""

from __future__ import annotations

from ..errors import ShapeError
from . import declare


@declare("grad", "control", None, {"outputs": "int"}, {"outputs": 1}, differentiable=False)
def _grad(types, outputs):
    """grad(out_1..out_n, seed_1..seed_n, wrt_1..wrt_k) -> d(sum_i <seed_i, out_i>)/d wrt_j.

    Each seed has its output's type; the results have the types of the ``wrt`` operands."""
    if outputs < 1 or len(types) < 2 * outputs + 1:
        raise ShapeError(f"grad: needs {outputs} outputs, {outputs} seeds and at least one wrt")
    outs, seeds, wrt = types[:outputs], types[outputs:2 * outputs], types[2 * outputs:]
    for o, s in zip(outs, seeds, strict=True):
        if o != s:
            raise ShapeError(f"grad: seed {s} does not match output {o}")
    for w in wrt:
        if not w.dtype.is_floating_point:
            raise ShapeError(f"grad: can only differentiate with respect to floats, got {w}")
    return list(wrt)
