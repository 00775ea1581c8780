"""VJP rules, one per differentiable primitive, written in primitives through the dispatcher.

A rule is ``rule(cts, inputs, outputs, **attrs) -> list`` with one cotangent (or None) per input.
``cts`` has one entry per output, None where no cotangent arrived. Rules run eagerly for
``backward()``, under tracing inside the autodiff pass, and recursively for higher derivatives.
"""

from __future__ import annotations

from ..ir.errors import GcompError

VJPS: dict[str, callable] = {}


def defvjp(*names: str):
    def deco(rule):
        for n in names:
            if n in VJPS:
                raise RuntimeError(f"VJP for {n} registered twice")
            VJPS[n] = rule
        return rule

    return deco


def vjp_rule(op: str):
    try:
        return VJPS[op]
    except KeyError:
        raise GcompError(f"differentiating through {op!r} is not supported") from None


def first_ct(cts, outputs):
    """The cotangent of a single-output op (a zero tensor if none arrived)."""
    from ..core import prims as P

    return cts[0] if cts[0] is not None else P.zeros_like(outputs[0])


from . import (  # noqa: E402,F401
    control,
    conv,
    elementwise,
    fused,
    linalg,
    reduce,
    remat,
    shape,
    sort,
    window,
)
