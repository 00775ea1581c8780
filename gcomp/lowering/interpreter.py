"""The reference interpreter: run a graph node by node with the lowering rules, un-jitted."""

from __future__ import annotations

import numpy as np

from ..ir.errors import GcompError
from . import rule_for, to_jax_dtype


def check_inputs(graph, arrays):
    if len(arrays) != len(graph.inputs):
        raise GcompError(f"graph @{graph.name} takes {len(graph.inputs)} inputs "
                         f"({', '.join(str(v.type) for v in graph.inputs)}), got {len(arrays)}")
    out = []
    for v, a in zip(graph.inputs, arrays):
        a = a if hasattr(a, "shape") and hasattr(a, "dtype") else np.asarray(a)
        if tuple(a.shape) != v.type.shape or np.dtype(a.dtype) != to_jax_dtype(v.type.dtype):
            raise GcompError(f"input {v.name or v.index} of @{graph.name} must be {v.type}, got "
                             f"{a.dtype}{list(a.shape)}")
        out.append(a)
    return out


def interpret(graph, *arrays):
    """Outputs, then state updates, as a tuple of jax arrays."""
    env = dict(zip(graph.inputs, check_inputs(graph, arrays)))
    for node in graph.nodes:
        rule = REFERENCE.get(node.op) or rule_for(node.op)
        res = rule(*[env[v] for v in node.inputs], **node.attrs)
        if len(node.outputs) == 1:
            res = (res,)
        for v, r in zip(node.outputs, res):
            env[v] = r
    return tuple(env[v] for v in graph.all_outputs)


# Region ops run their regions with this interpreter, step by step in Python: a reference for
# their lowering rules (jax.lax.cond and jax.lax.scan), not a second use of them.
def _cond(pred, *operands, regions):
    return _single(interpret(regions[0] if bool(pred) else regions[1], *operands))


def _scan(*arrays, regions, length, reverse, num_consts, num_carry, unroll):
    import jax.numpy as jnp

    (body,) = regions
    consts = list(arrays[:num_consts])
    carry = list(arrays[num_consts:num_consts + num_carry])
    xs = arrays[num_consts + num_carry:]
    ys = [None] * length
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        out = interpret(body, *consts, *carry, *[x[t] for x in xs])
        carry, ys[t] = list(out[:num_carry]), out[num_carry:]
    y_types = [v.type for v in body.outputs[num_carry:]]
    stacked = [jnp.stack([y[k] for y in ys]) if length else
               jnp.zeros((0,) + t.shape, to_jax_dtype(t.dtype)) for k, t in enumerate(y_types)]
    return _single((*carry, *stacked))


def _fusion(*operands, regions):
    return _single(interpret(regions[0], *operands))


def _custom_vjp(*operands, regions, wrt):
    return _single(interpret(regions[0], *operands))


REFERENCE = {"cond": _cond, "scan": _scan, "fusion": _fusion, "custom_vjp": _custom_vjp}


def _single(results: tuple):
    return results[0] if len(results) == 1 else results
