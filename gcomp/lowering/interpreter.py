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
        res = rule_for(node.op)(*[env[v] for v in node.inputs], **node.attrs)
        if len(node.outputs) == 1:
            res = (res,)
        for v, r in zip(node.outputs, res):
            env[v] = r
    return tuple(env[v] for v in graph.all_outputs)
