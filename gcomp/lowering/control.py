"""Control flow: ``cond`` and ``scan`` lower to jax.lax.cond and jax.lax.scan, their regions to
jax functions (jit.to_function); a ``fusion`` to its body inline; ``grad`` has no lowering: the
autodiff pass replaces it first."""

from __future__ import annotations

import jax

from . import lowers


@lowers("grad")
def _grad(*args, outputs):
    from ..ir.errors import GcompError

    raise GcompError("a grad node reached lowering: run the 'autodiff' pass first "
                     "(gcomp.compile and gcomp.ir.compile do)")


@lowers("cond")
def _cond(pred, *operands, regions):
    from .jit import to_function

    then, other = (to_function(r) for r in regions)
    return _single(jax.lax.cond(pred, then, other, *operands))


@lowers("scan")
def _scan(*arrays, regions, length, reverse, num_consts, num_carry, unroll):
    from .jit import to_function

    body = to_function(regions[0])
    consts = arrays[:num_consts]
    init = tuple(arrays[num_consts:num_consts + num_carry])
    xs = tuple(arrays[num_consts + num_carry:])

    def step(carry, x):
        out = body(*consts, *carry, *x)
        return out[:num_carry], out[num_carry:]

    carry, ys = jax.lax.scan(step, init, xs, length=length, reverse=reverse, unroll=unroll)
    return _single((*carry, *ys))


@lowers("fusion")
def _fusion(*operands, regions):
    """The body inline; the node's named scope (jit.scope_name) marks its ops in the HLO."""
    from .jit import to_function

    return _single(to_function(regions[0])(*operands))


@lowers("custom_vjp")
def _custom_vjp(*operands, regions, wrt):
    """The forward inline; the backward region only matters to the autodiff pass."""
    from .jit import to_function

    return _single(to_function(regions[0])(*operands))


def _single(results: tuple):
    """A rule gives one array for a one-result op, a tuple otherwise."""
    return results[0] if len(results) == 1 else results
